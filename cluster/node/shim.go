package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The node re-executes itself for two helpers. Their first argument selects
// the role; it also marks the process in /proc/<pid>/cmdline.
const (
	pauseArg = "__hahaha_node_pause"
	initArg  = "__hahaha_node_init"
)

// runPause is the process that owns a pod's network namespace. It is started
// with CLONE_NEWNET, brings up the loopback interface, reports "ok" on stdout
// and then sleeps until it is told to stop.
func runPause() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := loopbackUp(); err != nil {
		fmt.Fprintf(os.Stdout, "error: %v\n", err)
		return 1
	}
	fmt.Fprintln(os.Stdout, "ok")
	os.Stdout.Close()
	<-sigs
	return 0
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// runInit prepares a container and replaces itself with the container's
// command. It is started with CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWUTS, so it is
// PID 1 of a fresh PID namespace and the command inherits that: signals
// without a handler are ignored, as for any container's PID 1.
//
// Arguments: <hostname> <workdir> -- <argv...>. File descriptor 3 is a pipe
// that is closed by a successful exec (close-on-exec) and receives the error
// otherwise; descriptor 4 is the pod's network namespace.
func runInit(args []string) int {
	runtime.LockOSThread()
	errPipe := os.NewFile(3, "errpipe")
	unix.CloseOnExec(3)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(errPipe, format, a...)
		return 128
	}
	if len(args) < 4 || args[2] != "--" {
		return fail("bad init arguments %q", args)
	}
	hostname, workdir, argv := args[0], args[1], args[3:]

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make mounts private: %v", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail("mount /proc: %v", err)
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fail("sethostname: %v", err)
	}
	if err := unix.Setns(4, unix.CLONE_NEWNET); err != nil {
		return fail("join pod network namespace: %v", err)
	}
	unix.Close(4)
	if workdir != "" {
		if err := os.Chdir(workdir); err != nil {
			return fail("working directory %q: %v", workdir, err)
		}
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fail("exec: %q: executable file not found in $PATH", path)
		}
		path = p
	}
	err := syscall.Exec(path, argv, os.Environ())
	return fail("exec %q: %v", path, err)
}
