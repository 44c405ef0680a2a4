package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as fake-sidecar when FAKE_SIDECAR_AS_MAIN is set.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_SIDECAR_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type sidecar struct {
	cmd    *exec.Cmd
	done   chan struct{}
	code   int
	stderr *syncBuffer
}

// syncBuffer is the sidecar's stderr, written by exec's copying goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requests returns what follows the marker on each shutdown request line the
// sidecar has logged so far, as a test reading the container's log sees it.
func (s *sidecar) requests() []string {
	var out []string
	for _, l := range strings.Split(s.stderr.String(), "\n") {
		if i := strings.Index(l, RequestMarker); i >= 0 {
			out = append(out, l[i+len(RequestMarker):])
		}
	}
	return out
}

// expectRequests fails unless the sidecar has logged exactly the shutdown
// requests whose descriptions start with want, in this order.
func (s *sidecar) expectRequests(t *testing.T, want ...string) {
	t.Helper()
	got := s.requests()
	if len(got) != len(want) {
		t.Fatalf("shutdown requests %q, want %d starting with %q", got, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("shutdown request %d is %q, want it to start with %q", i, got[i], want[i])
		}
	}
}

func start(t *testing.T, waitPort int, args ...string) *sidecar {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FAKE_SIDECAR_AS_MAIN=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{cmd: cmd, done: make(chan struct{}), stderr: stderr}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.code = ee.ExitCode()
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	if waitPort > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(waitPort))
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: port %d never opened", args, waitPort)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

func (s *sidecar) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *sidecar) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(5 * time.Second):
		t.Fatal("sidecar did not exit")
		return -1
	}
}

func (s *sidecar) stillRunning(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("sidecar exited with %d, should still run", s.code)
	case <-time.After(150 * time.Millisecond):
	}
}

func call(t *testing.T, method string, port int, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLinkerd(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "linkerd", "--admin-port", strconv.Itoa(p))
	if code, _ := call(t, "GET", p, "/shutdown"); code != 405 {
		t.Errorf("GET /shutdown: %d, want 405", code)
	}
	if code, body := call(t, "GET", p, "/ready"); code != 200 || body != "ready\n" {
		t.Errorf("GET /ready: %d %q", code, body)
	}
	s.stillRunning(t)
	if code, body := call(t, "POST", p, "/shutdown"); code != 200 || body != "shutdown\n" {
		t.Errorf("POST /shutdown: %d %q", code, body)
	}
	// The drain stops listening at once.
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second); err == nil {
		conn.Close()
		t.Errorf("the admin port still accepts connections after POST /shutdown")
	}
	if code := s.waitExit(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	// A refused method on the endpoint is a request too; /ready is not one.
	s.expectRequests(t, "http GET /shutdown from 127.0.0.1:", "http POST /shutdown from 127.0.0.1:")
}

func TestLinkerdShutdownDisabled(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "linkerd", "--admin-port", strconv.Itoa(p), "--shutdown-disabled")
	// The method is checked before the switch, as the real proxy does.
	if code, body := call(t, "GET", p, "/shutdown"); code != 405 || body != "" {
		t.Errorf("GET /shutdown when disabled: %d %q, want 405 and no body", code, body)
	}
	if code, _ := call(t, "POST", p, "/shutdown"); code != 404 {
		t.Errorf("POST /shutdown when disabled: %d, want 404", code)
	}
	s.stillRunning(t)
	s.expectRequests(t, "http GET /shutdown", "http POST /shutdown")
}

func TestLinkerdWithoutIdentity(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "linkerd", "--admin-port", strconv.Itoa(p), "--no-identity", "--shutdown-grace-period", "400ms")
	if code, _ := call(t, "GET", p, "/ready"); code != 503 {
		t.Errorf("GET /ready without identity: %d, want 503", code)
	}
	t0 := time.Now()
	if code, _ := call(t, "POST", p, "/shutdown"); code != 200 {
		t.Errorf("POST /shutdown: %d", code)
	}
	s.exitsZeroAfter(t, t0, 400*time.Millisecond, "POST /shutdown")
	s.expectRequests(t, "http POST /shutdown")
}

// exitsZeroAfter checks that the sidecar exits 0, and no sooner than `least` after t0 (what it
// drains after `what`).
func (s *sidecar) exitsZeroAfter(t *testing.T, t0 time.Time, least time.Duration, what string) {
	t.Helper()
	if code := s.waitExit(t); code != 0 {
		t.Errorf("%s: exit code %d, want 0", what, code)
	}
	if d := time.Since(t0); d < least {
		t.Errorf("exited %v after %s, before its %v drain", d, what, least)
	}
}

func TestIstio(t *testing.T) {
	for _, which := range []string{"status", "admin"} {
		sp, ap := freePort(t), freePort(t)
		s := start(t, sp, "istio", "--status-port", strconv.Itoa(sp), "--admin-port", strconv.Itoa(ap))
		port := sp
		if which == "admin" {
			port = ap
		}
		if code, _ := call(t, "GET", port, "/quitquitquit"); code != 405 {
			t.Errorf("%s GET /quitquitquit: %d, want 405", which, code)
		}
		s.stillRunning(t)
		if code, body := call(t, "POST", port, "/quitquitquit"); code != 200 || !strings.HasPrefix(body, "OK") {
			t.Errorf("%s POST /quitquitquit: %d %q", which, code, body)
		}
		if which == "status" {
			// pilot-agent has killed Envoy by the time it answers: its admin port is gone.
			if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(ap), time.Second); err == nil {
				conn.Close()
				t.Errorf("the Envoy admin port still accepts connections after POST :%d/quitquitquit", sp)
			}
		}
		if code := s.waitExit(t); code != 0 {
			t.Errorf("%s: exit code %d", which, code)
		}
		s.expectRequests(t, "http GET /quitquitquit", "http POST /quitquitquit")
	}
}

func TestIstioSignalDrains(t *testing.T) {
	sp, ap := freePort(t), freePort(t)
	s := start(t, sp, "istio", "--status-port", strconv.Itoa(sp), "--admin-port", strconv.Itoa(ap), "--termination-drain-duration", "300ms")
	t0 := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	// The status port closes at once; the process drains, then exits 0.
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(sp), 100*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the status port still listens 200 ms after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.exitsZeroAfter(t, t0, 300*time.Millisecond, "SIGTERM")
	s.expectRequests(t, "signal terminated")
}

func TestFromLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:5": true, "127.9.9.9:5": true, "[::1]:5": true, "192.0.2.2:5": false, "[2001:db8::1]:5": false, "junk": false} {
		if got := fromLoopback(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("fromLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// Run under the name envoy, with Envoy's flags, as pilot-agent starts its Envoy.
func TestEnvoyByName(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:15000"); err != nil {
		t.Skipf("port 15000 is taken here: %v", err)
	} else {
		ln.Close()
	}
	cmd := exec.Command(os.Args[0])
	cmd.Args = []string{"envoy", "-c", "etc/istio/proxy/envoy-rev.json", "--drain-time-s", "45", "--disable-hot-restart", "-l", "warning"}
	cmd.Env = append(os.Environ(), "FAKE_SIDECAR_AS_MAIN=1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	for i := 0; ; i++ {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:15000", 100*time.Millisecond); err == nil {
			conn.Close()
			break
		}
		if i > 100 {
			t.Fatalf("envoy did not listen on 15000: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := call(t, "GET", 15000, "/ready"); code != 200 || body != "LIVE\n" {
		t.Errorf("GET /ready: %d %q", code, body)
	}
	if code, _ := call(t, "POST", 15000, "/quitquitquit"); code != 200 {
		t.Errorf("POST /quitquitquit: %d", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("envoy did not exit after POST /quitquitquit")
	}
	if !strings.Contains(stderr.String(), "fake-sidecar envoy: ") {
		t.Errorf("log prefix: %s", stderr.String())
	}
}

func TestCloudSQL(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "cloudsql", "--admin-port", strconv.Itoa(p))
	if code, _ := call(t, "GET", p, "/quitquitquit"); code != 404 {
		t.Errorf("without --quitquitquit: %d, want 404", code)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.waitExit(t); code != 143 {
		t.Errorf("SIGTERM: exit %d, want 143", code)
	}
	// Without --quitquitquit there is no endpoint, so the 404 is no shutdown request.
	s.expectRequests(t, "signal terminated")

	p = freePort(t)
	s = start(t, p, "cloudsql", "--admin-port", strconv.Itoa(p))
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.waitExit(t); code != 130 {
		t.Errorf("SIGINT: exit %d, want 130", code)
	}
	s.expectRequests(t, "signal interrupt")

	p = freePort(t)
	s = start(t, p, "cloudsql", "--admin-port", strconv.Itoa(p), "--exit-zero-on-sigterm")
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.waitExit(t); code != 0 {
		t.Errorf("SIGTERM with --exit-zero-on-sigterm: exit %d, want 0", code)
	}

	for _, m := range []string{"GET", "POST"} {
		p = freePort(t)
		s = start(t, p, "cloudsql", "--admin-port", strconv.Itoa(p), "--quitquitquit")
		if code, _ := call(t, "PUT", p, "/quitquitquit"); code != 400 {
			t.Errorf("PUT /quitquitquit: %d, want 400", code)
		}
		if code, _ := call(t, m, p, "/quitquitquit"); code != 200 {
			t.Errorf("%s /quitquitquit: %d", m, code)
		}
		if code := s.waitExit(t); code != 0 {
			t.Errorf("%s /quitquitquit: exit %d", m, code)
		}
		s.expectRequests(t, "http PUT /quitquitquit", "http "+m+" /quitquitquit")
	}
}

func TestFluentd(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "fluentd", "--rpc-port", strconv.Itoa(p))
	if code, body := call(t, "GET", p, "/api/processes.killWorkers"); code != 200 || body != `{"ok":true}` {
		t.Errorf("killWorkers: %d %q", code, body)
	}
	if code := s.waitExit(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	s.expectRequests(t, "http GET /api/processes.killWorkers")
}

func TestVKS(t *testing.T) {
	s := start(t, 0, "vks")
	time.Sleep(200 * time.Millisecond)
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.waitExit(t); code != 0 {
		t.Errorf("SIGINT: exit %d", code)
	}
	s.expectRequests(t, "signal interrupt")
}

func TestHangAndRefuse(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "hang", "--port", strconv.Itoa(p))
	req, _ := http.NewRequest("POST", "http://127.0.0.1:"+strconv.Itoa(p)+"/shutdown", nil)
	if _, err := (&http.Client{Timeout: 300 * time.Millisecond}).Do(req); err == nil {
		t.Error("hang answered")
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.waitExit(t); code != 0 {
		t.Errorf("hang SIGINT: exit %d", code)
	}
	s.expectRequests(t, `http "POST /shutdown HTTP/1.1" from 127.0.0.1:`, "signal interrupt")

	p = freePort(t)
	s = start(t, p, "refuse", "--port", strconv.Itoa(p))
	if code, _ := call(t, "POST", p, "/shutdown"); code != 500 {
		t.Errorf("refuse: %d, want 500", code)
	}
	s.stillRunning(t)
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.waitExit(t); code != 0 {
		t.Errorf("refuse SIGINT: exit %d", code)
	}
	s.expectRequests(t, "http POST /shutdown", "signal interrupt")
}

func TestDeaf(t *testing.T) {
	cmd := exec.Command(os.Args[0], "deaf")
	cmd.Env = append(os.Environ(), "FAKE_SIDECAR_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		b := make([]byte, 4096)
		var buf string
		for {
			n, err := stderr.Read(b)
			buf += string(b[:n])
			for {
				i := strings.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				lines <- buf[:i]
				buf = buf[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	expect := func(what string) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stderr closed before %q", what)
				}
				if strings.Contains(l, what) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q on stderr", what)
			}
		}
	}
	expect("ignoring every catchable signal") // handlers are installed
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatalf("%v: %v", sig, err)
		}
		expect(RequestMarker + "signal " + sig.String())
		expect("received " + sig.String() + ", ignoring it")
	}
	select {
	case <-done:
		t.Fatalf("exited: %v", cmd.ProcessState)
	case <-time.After(200 * time.Millisecond):
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGKILL did not stop it")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("want killed by SIGKILL, got %v", cmd.ProcessState)
	}
}

// Two shutdown requests in a row are two lines, also when the first one
// already ends the process: what a test needs to see a double stop.
func TestEveryShutdownRequestIsLogged(t *testing.T) {
	for _, c := range []struct {
		name, method, path string
		args               []string
	}{
		{"linkerd", "POST", "/shutdown", []string{"--admin-port"}},
		{"fluentd", "GET", "/api/processes.killWorkers", []string{"--rpc-port"}},
		{"vault", "POST", "/agent/v1/quit", []string{"--port"}},
		{"dapr", "POST", "/v1.0/shutdown", []string{"--port"}},
		{"cloudsql", "POST", "/quitquitquit", []string{"--quitquitquit", "--admin-port"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := freePort(t)
			s := start(t, p, append(append([]string{c.name}, c.args...), strconv.Itoa(p))...)
			call(t, c.method, p, c.path)
			call(t, c.method, p, c.path) // within the 50 ms before the exit
			s.waitExit(t)
			s.expectRequests(t, "http "+c.method+" "+c.path, "http "+c.method+" "+c.path)
		})
	}
}

func TestDapr(t *testing.T) {
	p := freePort(t)
	s := start(t, p, "dapr", "--port", strconv.Itoa(p))
	if code, _ := call(t, "GET", p, "/v1.0/shutdown"); code != 405 {
		t.Errorf("GET /v1.0/shutdown: %d, want 405", code)
	}
	if code, _ := call(t, "GET", p, "/v1.0/healthz"); code != 404 {
		t.Errorf("GET /v1.0/healthz: %d, want 404", code)
	}
	if code, _ := call(t, "POST", p, "/v1.0/shutdown"); code != 204 {
		t.Errorf("POST /v1.0/shutdown: %d, want 204", code)
	}
	if code := s.waitExit(t); code != 0 {
		t.Errorf("exit %d", code)
	}
	s.expectRequests(t, "http GET /v1.0/shutdown", "http POST /v1.0/shutdown")
}

// configmap-reload is found by what killall compares (the process name and
// argv[0]), keeps its pid through the re-exec, exits 2 on SIGTERM as the real
// one does as PID 1, and logs the signal. killall itself is not run here: it
// would reach every configmap-reload on the machine.
func TestConfigmapReload(t *testing.T) {
	s := start(t, 0, "configmap-reload", "--volume-dir", t.TempDir())
	pid := s.cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if strings.TrimSpace(string(comm)) == "configmap-reloa" && argv0 == "configmap-reload" && strings.Contains(s.stderr.String(), "running as pid") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: comm %q, argv[0] %q; killall configmap-reload would not find it", pid, comm, argv0)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if links, _ := filepath.Glob(filepath.Join(os.TempDir(), "fake-sidecar-reload-*")); len(links) > 0 {
		for _, l := range links {
			if target, err := os.Readlink(filepath.Join(l, "configmap-reload")); err == nil && target == os.Args[0] {
				t.Errorf("link dir %s left behind", l)
			}
		}
	}
	_ = s.cmd.Process.Signal(syscall.SIGUSR1)
	s.stillRunning(t)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.waitExit(t); code != 2 {
		t.Errorf("SIGTERM: exit %d, want 2", code)
	}
	s.expectRequests(t, "signal terminated")
}
