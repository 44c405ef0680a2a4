package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// TestMain lets the test binary act as the pause and init helpers, since the
// runtime re-executes /proc/self/exe.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		if code, ok := testHelper(os.Args[1:]); ok {
			os.Exit(code)
		}
		switch os.Args[1] {
		case pauseArg:
			os.Exit(runPause())
		case initArg:
			os.Exit(runInit(os.Args[2:]))
		}
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces")
	}
}

// podTestRuntime is a node runtime in a temp dir that can make network namespaces; the test is
// skipped where it cannot (it needs root).
func podTestRuntime(t *testing.T) *nodeRuntime {
	t.Helper()
	needRoot(t)
	rt, err := newRuntime(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if p, ns, err := rt.startPause("probe/netns"); err != nil {
		t.Skipf("cannot create network namespace here: %v", err)
	} else {
		p.signal(9)
		ns.Close()
	}
	return rt
}

// startTestWorker runs a pod worker for pod on rt against a fake API client, calling observe with
// every status it would write. When the test ends the worker is stopped and the containers' logs
// are logged.
func startTestWorker(t *testing.T, rt *nodeRuntime, pod *v1.Pod, observe func(v1.PodStatus)) *podWorker {
	t.Helper()
	k := &kubelet{cfg: config{maxBackoff: 200 * time.Millisecond}, client: fake.NewSimpleClientset(pod), rt: rt, workers: map[types.UID]*podWorker{}}
	w := newPodWorker(k, pod)
	w.observe = observe
	go w.run()
	t.Cleanup(func() {
		if logs, _ := filepath.Glob(filepath.Join(rt.logDir, "*", "*", "*.log")); len(logs) > 0 {
			for _, l := range logs {
				if b, _ := os.ReadFile(l); len(b) > 0 {
					t.Logf("%s: %s", strings.TrimPrefix(l, rt.logDir), b)
				}
			}
		}
		ack := make(chan struct{})
		w.send(event{kind: evGone, ack: ack})
		select {
		case <-ack:
		case <-time.After(10 * time.Second):
			t.Error("pod worker did not stop")
		}
	})
	return w
}

func runCtr(t *testing.T, rt *nodeRuntime, ns *os.File, script string) (string, int32) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "c.log")
	exited := make(chan *proc, 1)
	p, _, err := rt.startContainer(ctrSpec{
		argv:     []string{"sh", "-c", script},
		env:      []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		hostname: "testpod",
		netns:    ns,
		logPath:  logPath,
	}, func(p *proc) { exited <- p })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		p.signal(syscall.SIGKILL)
		t.Fatal("container did not exit")
	}
	code, _, _, _ := p.exitInfo()
	out, _ := os.ReadFile(logPath)
	return string(out), code
}

func TestContainerNamespaces(t *testing.T) {
	needRoot(t)
	rt, err := newRuntime(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	pause, ns, err := rt.startPause("test/pod")
	if err != nil {
		t.Skipf("cannot create network namespace here: %v", err)
	}
	defer func() { pause.signal(syscall.SIGKILL); ns.Close() }()

	out, code := runCtr(t, rt, ns, `echo pid=$$; echo host=$(cat /proc/sys/kernel/hostname); ls /proc | grep -c '^[0-9]' ; cat /proc/net/dev | grep -c ':'; exit 7`)
	if code != 7 {
		t.Errorf("exit code %d, want 7; output %q", code, out)
	}
	lines := strings.Fields(out)
	if len(lines) < 4 || lines[0] != "pid=1" || lines[1] != "host=testpod" {
		t.Fatalf("want PID 1 and hostname testpod, got %q", out)
	}
	if lines[2] != "2" && lines[2] != "3" {
		t.Errorf("want only the container's processes in /proc, got %s entries", lines[2])
	}
	if lines[3] != "1" {
		t.Errorf("want only lo in the pod network namespace, got %s interfaces", lines[3])
	}

	// PID 1 without a handler ignores SIGTERM sent from inside the namespace.
	out, code = runCtr(t, rt, ns, `kill -TERM 1; echo alive; exit 0`)
	if code != 0 || !strings.Contains(out, "alive") {
		t.Errorf("PID 1 should ignore unhandled SIGTERM: code %d output %q", code, out)
	}

	if _, _, err := rt.startContainer(ctrSpec{argv: []string{"no-such-command-hahaha"}, env: []string{"PATH=/bin"},
		hostname: "x", netns: ns, logPath: filepath.Join(t.TempDir(), "x.log")}, func(*proc) {}); err == nil ||
		!strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("missing command: err %v", err)
	}
}

func TestKillStaleOnlyOurs(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	rt, err := newRuntime(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	pause, ns, err := rt.startPause("test/stale")
	if err != nil {
		t.Skipf("cannot create network namespace here: %v", err)
	}
	ns.Close()
	// A record that points at a process without the marker must be ignored.
	st, _ := procStartTime(os.Getpid())
	_ = os.WriteFile(filepath.Join(rt.procDir, "bogus.json"),
		[]byte(`{"pid":`+itoa(os.Getpid())+`,"startTime":`+utoa(st)+`,"marker":"not-ours"}`), 0o644)

	rt2, _ := newRuntime(dir, "test")
	rt2.killStale()
	select {
	case <-pause.done:
	case <-time.After(5 * time.Second):
		pause.signal(syscall.SIGKILL)
		t.Fatal("stale pause process was not killed")
	}
	entries, _ := os.ReadDir(rt.procDir)
	if len(entries) != 0 {
		t.Errorf("records left: %v", entries)
	}
}

func itoa(i int) string { return utoa(uint64(i)) }

func utoa(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b []byte
	for u > 0 {
		b = append([]byte{byte('0' + u%10)}, b...)
		u /= 10
	}
	return string(b)
}
