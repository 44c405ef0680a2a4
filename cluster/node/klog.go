package main

import (
	"bytes"
	"flag"
	"io"
	"os"

	"k8s.io/klog/v2"
)

// quietKlog sends the streaming libraries' klog output to stderr once per
// message, without the "use of closed network connection" lines that every
// finished exec or port-forward stream produces.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	// klog writes a message to the output of its own severity and of every
	// lower one; the INFO output therefore sees each message exactly once.
	klog.SetOutputBySeverity("INFO", closedConnFilter{os.Stderr})
	for _, s := range []string{"WARNING", "ERROR", "FATAL"} {
		klog.SetOutputBySeverity(s, io.Discard)
	}
}

type closedConnFilter struct{ w io.Writer }

func (f closedConnFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("use of closed network connection")) {
		return len(p), nil
	}
	return f.w.Write(p)
}
