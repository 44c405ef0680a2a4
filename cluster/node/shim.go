package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
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
// without a handler are ignored, as for any container's PID 1. An ephemeral
// container's init is started without CLONE_NEWPID from a thread that joined
// its target container's PID namespace, so it is not PID 1 there.
//
// Arguments: <hostname> <workdir> <root> -- <argv...>, where root is "" for
// the host's file system or a rootSpec in JSON for a distroless root. File
// descriptor 3 is a pipe that is closed by a successful exec (close-on-exec)
// and receives the error otherwise; descriptor 4 is the pod's network
// namespace.
func runInit(args []string) int {
	runtime.LockOSThread()
	errPipe := os.NewFile(3, "errpipe")
	unix.CloseOnExec(3)
	fail := func(format string, a ...any) int {
		fmt.Fprintf(errPipe, format, a...)
		return 128
	}
	if len(args) < 5 || args[3] != "--" {
		return fail("bad init arguments %q", args)
	}
	hostname, workdir, rootJSON, argv := args[0], args[1], args[2], args[4:]

	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail("make mounts private: %v", err)
	}
	// The entrypoint is looked up on the host, with the container's PATH.
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fail("exec: %q: executable file not found in $PATH", path)
		}
		path = p
	}
	if rootJSON != "" {
		var root rootSpec
		if err := json.Unmarshal([]byte(rootJSON), &root); err != nil {
			return fail("root spec: %v", err)
		}
		abs := path
		if !filepath.IsAbs(abs) {
			if workdir != "" {
				abs = filepath.Join(workdir, abs)
			} else if a, err := filepath.Abs(abs); err == nil {
				abs = a
			}
		}
		if err := distrolessRoot(root, abs, hostname); err != nil {
			return fail("distroless root: %v", err)
		}
		path = abs
		if workdir == "" {
			workdir = "/"
		}
	} else if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
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
	err := syscall.Exec(path, argv, os.Environ())
	return fail("exec %q: %v", path, err)
}

// Files of a distroless base image (gcr.io/distroless/static).
const (
	distrolessPasswd   = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	distrolessGroup    = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
	distrolessNsswitch = "passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\nnetworks:       files\nprotocols:      files\nservices:       files\nethers:         files\nrpc:            files\n"
)

// distrolessRoot builds, in the container's private mount namespace, a
// tmpfs root holding only: the entrypoint (bind-mounted read-only at its
// host path), /etc/passwd, /etc/group, /etc/nsswitch.conf, /etc/hosts,
// /etc/resolv.conf and /etc/ssl/certs (read-only from the host when
// present), /tmp, /root, /home/nonroot, /dev with null, zero, full, random,
// urandom and tty, a fresh /proc, and the volumes in root.Volumes; then
// pivots into it. No shell, no kill, no killall.
func distrolessRoot(root rootSpec, entry, hostname string) error {
	dir := root.Dir
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=16m"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	in := func(p string) string { return filepath.Join(dir, p) }
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{"etc", 0o755}, {"tmp", 0o1777}, {"root", 0o700}, {"home/nonroot", 0o700}, {"dev", 0o755}, {"proc", 0o555}} {
		if err := os.MkdirAll(in(d.path), d.mode); err != nil {
			return err
		}
		if err := os.Chmod(in(d.path), d.mode); err != nil {
			return err
		}
	}
	if err := os.Chown(in("home/nonroot"), 65532, 65532); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t" + hostname + "\n"
	for name, content := range map[string]string{"etc/passwd": distrolessPasswd, "etc/group": distrolessGroup,
		"etc/nsswitch.conf": distrolessNsswitch, "etc/hosts": hosts} {
		if err := os.WriteFile(in(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	bind := func(src, dst string, ro, optional bool) error {
		st, err := os.Stat(src)
		if err != nil {
			if optional {
				return nil
			}
			return err
		}
		target := in(dst)
		if st.IsDir() {
			err = os.MkdirAll(target, 0o755)
		} else {
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				var f *os.File
				if f, err = os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					f.Close()
				}
			}
		}
		if err != nil {
			return err
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		if ro {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("read-only %s: %w", dst, err)
			}
		}
		return nil
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bind("/dev/"+d, "dev/"+d, false, true); err != nil {
			return err
		}
	}
	if err := bind(entry, entry, true, false); err != nil {
		return fmt.Errorf("entrypoint: %w", err)
	}
	if err := bind("/etc/ssl/certs", "etc/ssl/certs", true, true); err != nil {
		return err
	}
	if err := bind("/etc/resolv.conf", "etc/resolv.conf", true, true); err != nil {
		return err
	}
	for _, v := range root.Volumes {
		if err := bind(v.Src, v.Dst, v.ReadOnly, false); err != nil {
			return fmt.Errorf("volume at %s: %w", v.Dst, err)
		}
	}
	if err := unix.Mount("proc", in("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	// pivot_root(".", "."), then detach the old root stacked on top, as
	// runc does: no directory for the old root is needed.
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}
