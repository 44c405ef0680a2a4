package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = remotecommand.DefaultStreamCreationTimeout
)

// startServer serves the kubelet API subset the API server uses: exec,
// port-forward and container logs, over TLS with verified client
// certificates.
func (k *kubelet) startServer() (*http.Server, error) {
	caPEM, err := os.ReadFile(k.cfg.clientCA)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("client CA %s: no certificates", k.cfg.clientCA)
	}
	cert, err := tls.LoadX509KeyPair(k.cfg.tlsCert, k.cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{ns}/{pod}/{container}", k.serveExec)
	mux.HandleFunc("/exec/{ns}/{pod}/{uid}/{container}", k.serveExec)
	mux.HandleFunc("/portForward/{ns}/{pod}", k.servePortForward)
	mux.HandleFunc("/portForward/{ns}/{pod}/{uid}", k.servePortForward)
	mux.HandleFunc("/containerLogs/{ns}/{pod}/{container}", k.serveLogs)
	mux.HandleFunc("/pods", k.servePods)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

	ln, err := net.Listen("tcp", k.cfg.listen)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
			// The SPDY upgrade used by exec and port-forward needs HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		},
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("server: %v", err)
		}
	}()
	log.Printf("serving kubelet API on https://%s", k.cfg.listen)
	return srv, nil
}

// execTarget is what an exec needs to know about a running container.
type execTarget struct {
	pid     int
	env     []string
	workDir string
}

func (k *kubelet) containerTarget(ns, pod, uid, container string) (execTarget, error) {
	w := k.findPod(ns, pod, uid)
	if w == nil {
		return execTarget{}, fmt.Errorf("pod %s/%s not found", ns, pod)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	spec, ok := w.specs[container]
	if !ok {
		return execTarget{}, fmt.Errorf("container %q not found in pod %s/%s", container, ns, pod)
	}
	p := w.procs[container]
	if p == nil || p.exited() {
		return execTarget{}, fmt.Errorf("container %q in pod %s/%s is not running", container, ns, pod)
	}
	return execTarget{pid: p.pid, env: w.envs[container], workDir: spec.WorkingDir}, nil
}

func (k *kubelet) serveExec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, pod, uid, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container")
	if k.findPod(ns, pod, uid) == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	cmd := r.URL.Query()["command"]
	log.Printf("exec %s/%s/%s %q", ns, pod, container, cmd)
	remotecommand.ServeExec(w, r, &executor{k: k, ns: ns, uid: uid}, pod, uid, container, cmd, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

type executor struct {
	k   *kubelet
	ns  string
	uid string
}

// exitError carries a command's exit status in the form cri-streaming turns
// into the NonZeroExitCode stream status.
type exitError struct{ code int }

func (e exitError) Error() string   { return "command terminated with exit code " + strconv.Itoa(e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }

// ExecInContainer runs cmd in the container's PID, mount, UTS and network
// namespaces with nsenter, so it sees and signals only that container's
// processes.
func (e *executor) ExecInContainer(ctx context.Context, podName, uid, container string, argv []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	if len(argv) == 0 {
		return errors.New("no command given")
	}
	t, err := e.k.containerTarget(e.ns, podName, e.uid, container)
	if err != nil {
		return err
	}
	if err := checkExecutable(t, argv[0]); err != nil {
		return err
	}
	args := []string{"--target", strconv.Itoa(t.pid), "--pid", "--mount", "--uts", "--net"}
	if t.workDir != "" {
		args = append(args, "--wd="+t.workDir)
	} else {
		args = append(args, "--wd")
	}
	args = append(append(args, "--"), argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = t.env
	cmd.WaitDelay = time.Second
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	var copyDone chan struct{}
	if tty {
		ptm, pts, err := openPTY()
		if err != nil {
			return err
		}
		defer ptm.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			pts.Close()
			return err
		}
		pts.Close()
		if in != nil {
			go func() { _, _ = io.Copy(ptm, in) }()
		}
		copyDone = make(chan struct{})
		go func() {
			if out != nil {
				_, _ = io.Copy(out, ptm)
			} else {
				_, _ = io.Copy(io.Discard, ptm)
			}
			close(copyDone)
		}()
		if resize != nil {
			go func() {
				for sz := range resize {
					_ = unix.IoctlSetWinsize(int(ptm.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
				}
			}()
		}
	} else {
		if in != nil {
			cmd.Stdin = in
		}
		if out != nil {
			cmd.Stdout = out
		}
		if errw != nil {
			cmd.Stderr = errw
		}
		if err := cmd.Start(); err != nil {
			return err
		}
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-copyDone:
		}
	}()
	err = cmd.Wait()
	if copyDone != nil {
		select {
		case <-copyDone:
		case <-time.After(time.Second):
		}
	}
	st := cmd.ProcessState
	if st == nil {
		return err
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return exitError{code: 128 + int(ws.Signal())}
	case ws.ExitStatus() != 0:
		return exitError{code: ws.ExitStatus()}
	}
	return nil
}

// checkExecutable looks for an exec's command in the container's root
// (/proc/<pid>/root: the host's for most images, the distroless root for
// distroless ones) the way runc does before it executes it, and returns the
// error containerd gives the kubelet when it is missing. cri-streaming turns
// an error that is not an exit status into a Failure status whose message
// is "error executing command in container: " + this error.
func checkExecutable(t execTarget, name string) error {
	root := fmt.Sprintf("/proc/%d/root", t.pid)
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			wd := t.workDir
			if wd == "" {
				wd = "/"
			}
			p = filepath.Join(wd, p)
		}
		if _, err := os.Stat(filepath.Join(root, p)); errors.Is(err, fs.ErrNotExist) {
			return execStartError(fmt.Sprintf("exec: %q: stat %s: no such file or directory", name, name))
		}
		return nil
	}
	for _, dir := range filepath.SplitList(envMap(t.env)["PATH"]) {
		if dir == "" {
			dir = "."
		}
		if st, err := os.Stat(filepath.Join(root, dir, name)); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return nil
		}
	}
	return execStartError(fmt.Sprintf("exec: %q: executable file not found in $PATH", name))
}

// execStartError is containerd's error for an exec that runc could not
// start (internal/cri/server: "failed to exec in container", "failed to
// start exec"; runc: "OCI runtime exec failed: exec failed: unable to start
// container process: ...: unknown").
func execStartError(detail string) error {
	return fmt.Errorf("failed to exec in container: failed to start exec %q: OCI runtime exec failed: exec failed: unable to start container process: %s: unknown",
		newID()+newID(), detail)
}

// openPTY allocates a pseudo-terminal pair.
func openPTY() (*os.File, *os.File, error) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(ptm.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptm.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		ptm.Close()
		return nil, nil, err
	}
	return ptm, pts, nil
}

func (k *kubelet) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod, uid := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("uid")
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if k.findPod(ns, pod, uid) == nil {
		http.Error(w, "pod does not exist", http.StatusNotFound)
		return
	}
	log.Printf("port-forward %s/%s", ns, pod)
	portforward.ServePortForward(w, r, &portForwarder{k: k, ns: ns}, pod, uid, opts,
		streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

type portForwarder struct {
	k  *kubelet
	ns string
}

// PortForward connects to 127.0.0.1:port inside the pod's network namespace
// and copies data both ways until either side closes.
func (f *portForwarder) PortForward(ctx context.Context, podName, uid string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	pw := f.k.findPod(f.ns, podName, uid)
	if pw == nil {
		return fmt.Errorf("pod %s/%s not found", f.ns, podName)
	}
	pw.mu.Lock()
	var ns *os.File
	if pw.netns != nil {
		fd, err := unix.Dup(int(pw.netns.Fd()))
		if err == nil {
			ns = os.NewFile(uintptr(fd), "netns")
		}
	}
	pw.mu.Unlock()
	if ns == nil {
		return fmt.Errorf("pod %s/%s has no running sandbox", f.ns, podName)
	}
	conn, err := dialInNetns(ns, port)
	ns.Close()
	if err != nil {
		return fmt.Errorf("failed to connect to localhost:%d inside namespace of pod %s/%s: %v", port, f.ns, podName, err)
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		close(done)
	}()
	_, err = io.Copy(stream, conn)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// dialInNetns creates the socket inside the network namespace ns: a locked
// OS thread enters the namespace, dials, and returns to its own namespace.
// A thread that cannot return stays locked, so the runtime discards it.
func dialInNetns(ns *os.File, port int32) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		// Like "localhost": IPv4 loopback first, then IPv6.
		c, derr := net.DialTimeout("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), 5*time.Second)
		if derr != nil {
			if c6, err6 := net.DialTimeout("tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port))), 5*time.Second); err6 == nil {
				c, derr = c6, nil
			}
		}
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			if c != nil {
				c.Close()
			}
			ch <- result{nil, fmt.Errorf("return to node network namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, derr}
	}()
	r := <-ch
	return r.c, r.err
}

// serveLogs streams a container's output file. Supported query parameters:
// follow, previous, tailLines, limitBytes.
func (k *kubelet) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	pw := k.findPod(ns, pod, "")
	if pw == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s not found", ns, pod), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	follow := q.Get("follow") == "true"
	previous := q.Get("previous") == "true"
	pw.mu.Lock()
	c := pw.ctr(container)
	if c == nil {
		pw.mu.Unlock()
		http.Error(w, fmt.Sprintf("container %q in pod %q is not valid", container, pod), http.StatusBadRequest)
		return
	}
	run := c.restarts
	if previous {
		run--
	}
	path := pw.logPath(container, run)
	pw.mu.Unlock()
	if run < 0 {
		http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod), http.StatusBadRequest)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, fmt.Sprintf("container %q in pod %q is waiting to start", container, pod), http.StatusBadRequest)
		return
	}
	defer f.Close()
	var limit int64 = -1
	if v, err := strconv.ParseInt(q.Get("limitBytes"), 10, 64); err == nil && v > 0 {
		limit = v
	}
	if v, err := strconv.Atoi(q.Get("tailLines")); err == nil && v >= 0 {
		seekTail(f, v)
	}
	w.Header().Set("Content-Type", "text/plain")
	fl, _ := w.(http.Flusher)
	var written int64
	buf := make([]byte, 32*1024)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if limit >= 0 && written+int64(n) > limit {
				n = int(limit - written)
			}
			_, _ = w.Write(buf[:n])
			written += int64(n)
			if fl != nil {
				fl.Flush()
			}
			if limit >= 0 && written >= limit {
				return
			}
		}
		if err == nil {
			continue
		}
		if !follow || !k.containerRunning(pw, container, run) {
			// One more read catches output written just before the exit.
			if n2, _ := f.Read(buf); n2 > 0 {
				_, _ = w.Write(buf[:n2])
				continue
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (k *kubelet) containerRunning(pw *podWorker, name string, run int32) bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	c := pw.ctr(name)
	if c == nil || c.restarts != run {
		return false
	}
	p := pw.procs[name]
	return p != nil && !p.exited()
}

// seekTail positions f so that the last n lines remain to be read.
func seekTail(f *os.File, n int) {
	data, err := io.ReadAll(f)
	if err != nil {
		return
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	pos := 0
	count := 0
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			count++
			if count == n {
				pos = i + 1
				break
			}
		}
	}
	if n == 0 {
		pos = len(data)
	}
	_, _ = f.Seek(int64(pos), io.SeekStart)
}

func (k *kubelet) servePods(w http.ResponseWriter, _ *http.Request) {
	list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	k.mu.Lock()
	for _, pw := range k.workers {
		pw.mu.Lock()
		p := pw.pod.DeepCopy()
		if pw.status != nil {
			p.Status = *pw.status
		}
		pw.mu.Unlock()
		list.Items = append(list.Items, *p)
	}
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}
