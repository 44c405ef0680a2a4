// Command fake-sidecar stands in for the sidecars hahaha stops, for the local
// test cluster. Each subcommand listens where the real sidecar listens,
// answers its shutdown endpoint the way the real one does and then exits 0;
// other methods on that endpoint are refused as the real one refuses them.
//
//	fake-sidecar linkerd   admin 4191: POST /shutdown, GET /ready, /live; --no-identity: every
//	                       stop drains the whole grace period (2 min) before exit 0
//	fake-sidecar istio     pilot-agent 15020 and Envoy admin 15000: POST /quitquitquit;
//	                       SIGINT/SIGTERM drain 5 s (--termination-drain-duration), exit 0
//	envoy (argv[0])        Envoy's admin 15000 only, Envoy's flags ignored: the Envoy that the
//	                       real pilot-agent starts (PROXY_CONFIG binaryPath) on the test node
//	fake-sidecar cloudsql  admin 9091: GET or POST /quitquitquit with --quitquitquit;
//	                       SIGINT exits 130, SIGTERM 143 (0 with --exit-zero-on-sigterm)
//	fake-sidecar fluentd   RPC 24444: GET /api/processes.killWorkers
//	fake-sidecar vks       no port; exits 0 on SIGINT
//	fake-sidecar vault     Vault Agent cache listener 8200: POST /agent/v1/quit (agent-enable-quit)
//	fake-sidecar dapr      daprd HTTP port 3500: POST /v1.0/shutdown
//	fake-sidecar hang      accepts connections and never answers; exits 0 on SIGINT
//	fake-sidecar refuse    answers every request with an error status; exits 0 on SIGINT
//	fake-sidecar deaf      no port; catches and ignores every catchable signal, never exits:
//	                       only SIGKILL stops it, even outside a PID namespace
//	fake-sidecar configmap-reload
//	                       no port; runs as a process named configmap-reload (so that
//	                       `killall configmap-reload` finds it) and, like the real one as
//	                       PID 1, exits 2 on SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT
//
// Every request is logged to stderr as one line. Every shutdown request a
// sidecar receives (a request to its shutdown endpoint, whatever the method
// and answer; any request to hang and refuse; a signal it handles) is also
// logged as one line containing "shutdown-request: ", before it is acted on,
// so that tests can count them from the container's log.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if len(os.Args) < 2 {
		usage()
	}
	// Run as `envoy` (a link of that name): the Envoy the real pilot-agent starts.
	if filepath.Base(os.Args[0]) == "envoy" {
		log.SetPrefix("fake-sidecar envoy: ")
		envoy()
		return
	}
	name, args := os.Args[1], os.Args[2:]
	log.SetPrefix("fake-sidecar " + name + ": ")
	switch name {
	case "linkerd":
		linkerd(args)
	case "istio":
		istio(args)
	case "cloudsql":
		cloudsql(args)
	case "fluentd":
		fluentd(args)
	case "vks":
		vks(args)
	case "vault":
		postOnly("vault", args, 8200, "/agent/v1/quit", http.StatusNoContent)
	case "dapr":
		postOnly("dapr", args, 3500, "/v1.0/shutdown", http.StatusNoContent)
	case "hang":
		hang(args)
	case "refuse":
		refuse(args)
	case "deaf":
		deaf(args)
	case "configmap-reload":
		configmapReload(args)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fake-sidecar linkerd|istio|cloudsql|fluentd|vks|vault|dapr|hang|refuse|deaf|configmap-reload [flags]")
	os.Exit(2)
}

// exiter ends the process once, after the response that triggered it has
// been written and flushed.
type exiter struct{ once sync.Once }

func (e *exiter) exitAfter(w http.ResponseWriter, code int, why string) {
	e.exit(w, code, 50*time.Millisecond, why)
}

// exitSoon exits 0 `after` the response (a program that takes that long to end).
func (e *exiter) exitSoon(w http.ResponseWriter, after time.Duration, why string) {
	e.exit(w, 0, after, why)
}

func (e *exiter) exit(w http.ResponseWriter, code int, after time.Duration, why string) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	e.once.Do(func() {
		go func() {
			// Let the server finish writing the response on the wire.
			time.Sleep(after)
			log.Printf("exiting with %d: %s", code, why)
			os.Exit(code)
		}()
	})
}

// RequestMarker starts the log message of every shutdown request a sidecar
// receives; tests count the lines that contain it. Keep it stable.
const RequestMarker = "shutdown-request: "

// shutdownRequest logs one shutdown request: "shutdown-request: <how>".
func shutdownRequest(format string, args ...any) {
	log.Print(RequestMarker + fmt.Sprintf(format, args...))
}

// counted logs every request to a shutdown endpoint as a shutdown request,
// before the endpoint handles it (it may end the process).
func counted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		shutdownRequest("http %s %s from %s", r.Method, r.URL.Path, r.RemoteAddr)
		h(w, r)
	}
}

func logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		h.ServeHTTP(rec, r)
		log.Printf("%s %s from %s -> %d", r.Method, r.URL.RequestURI(), r.RemoteAddr, rec.status)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func serve(addr string, h http.Handler) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("listen %s: %v", addr, err)
	}
	log.Printf("listening on %s", ln.Addr())
	go func() {
		// A listener closed on purpose (a port that stops listening) ends only its server.
		if err := http.Serve(ln, logged(h)); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Fatalf("serve %s: %v", addr, err)
		}
	}()
	return ln
}

func addr(bind string, port int) string { return net.JoinHostPort(bind, strconv.Itoa(port)) }

// waitSignals blocks until one of the signals in codes arrives and exits
// with the code given for it.
func waitSignals(codes map[os.Signal]int) {
	s := waitSignal(codes)
	log.Printf("received %v, exiting with %d", s, codes[s])
	os.Exit(codes[s])
}

// waitSignal blocks until one of the signals in codes arrives, logs it as a shutdown request and
// returns it; later signals are caught and ignored.
func waitSignal(codes map[os.Signal]int) os.Signal {
	ch := make(chan os.Signal, 1)
	for s := range codes {
		signal.Notify(ch, s)
	}
	s := <-ch
	shutdownRequest("signal %v", s)
	return s
}

var gracefulSignals = map[os.Signal]int{syscall.SIGINT: 0, syscall.SIGTERM: 0}

// drainOnSignal blocks until SIGINT or SIGTERM, stops listening on `ln` (if any) at once, drains
// for `drain` and exits 0: how linkerd2-proxy and pilot-agent end on a signal.
func drainOnSignal(drain time.Duration, ln net.Listener) {
	s := waitSignal(gracefulSignals)
	if ln != nil {
		_ = ln.Close()
	}
	log.Printf("received %v, draining for %v", s, drain)
	time.Sleep(drain)
	log.Printf("exiting with 0")
	os.Exit(0)
}

// linkerd stands in for linkerd2-proxy's admin server, as measured with the real proxy (built
// from linkerd/linkerd2-proxy at 29637b6, 2026-08): /shutdown checks the method first (405,
// empty body, also when the endpoint is off), then that the client is on loopback (403), then
// that the endpoint is on (404); then it answers 200 "shutdown\n", stops listening at once and
// exits 0 once its drain is done: at once with a healthy control plane, only after the shutdown
// grace period (2 minutes by default) when the proxy never got its identity (--no-identity). A
// signal drains the same way. The exit code is always 0.
func linkerd(args []string) {
	fs := flag.NewFlagSet("linkerd", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "admin bind address")
	port := fs.Int("admin-port", 4191, "admin port")
	disabled := fs.Bool("shutdown-disabled", false, "answer /shutdown as a proxy without config.linkerd.io/proxy-admin-shutdown: enabled")
	noIdentity := fs.Bool("no-identity", false, "a proxy whose control plane never gave it an identity: not ready, and its drain lasts the whole grace period")
	grace := fs.Duration("shutdown-grace-period", 2*time.Minute, "LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD: the longest drain")
	_ = fs.Parse(args)
	drain := 3 * time.Millisecond
	if *noIdentity {
		drain = *grace
	}
	var ex exiter
	var ln net.Listener
	mux := http.NewServeMux()
	mux.HandleFunc("/shutdown", counted(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if !fromLoopback(r) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "Requests are only permitted from localhost.")
			return
		}
		if *disabled {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "shutdown endpoint is not enabled\n")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "9")
		_, _ = io.WriteString(w, "shutdown\n")
		// The drain stops every accept loop at once: the admin port is refused from now on.
		_ = ln.Close()
		ex.exitSoon(w, drain, "POST /shutdown")
	}))
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if *noIdentity {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "live\n") })
	mux.HandleFunc("/", http.NotFound)
	ln = serve(addr(*bind, *port), mux)
	drainOnSignal(drain, ln)
}

// istio stands in for the istio-proxy container: pilot-agent's status port and its Envoy child's
// admin port, as measured with the real pilot-agent (istio.io/istio v0.0.0-20260827124520-eed52ebb66ad,
// 1.31): the status port refuses requests from outside loopback with 403 before it looks at the
// method; POST /quitquitquit answers 200 "OK", kills Envoy at once (its admin port is refused
// from then on) and exits 0 about 20 ms later, skipping every drain setting; SIGTERM or SIGINT
// closes the status port, drains for terminationDrainDuration (5 s by default) and exits 0.
func istio(args []string) {
	fs := flag.NewFlagSet("istio", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "bind address of both ports")
	statusPort := fs.Int("status-port", 15020, "pilot-agent status port")
	adminPort := fs.Int("admin-port", 15000, "Envoy admin port")
	noStatus := fs.Bool("no-status-port", false, "do not listen on the status port")
	noAdmin := fs.Bool("no-admin-port", false, "do not listen on the Envoy admin port")
	drain := fs.Duration("termination-drain-duration", 5*time.Second, "how long SIGTERM or SIGINT drains before the exit")
	_ = fs.Parse(args)
	var ex exiter
	var admin, status net.Listener
	if !*noAdmin {
		admin = serve(addr(*bind, *adminPort), envoyAdmin(&ex))
	}
	if !*noStatus {
		mux := http.NewServeMux()
		mux.HandleFunc("/quitquitquit", counted(func(w http.ResponseWriter, r *http.Request) {
			if !fromLoopback(r) {
				http.Error(w, "Only requests from localhost are allowed", http.StatusForbidden)
				return
			}
			if r.Method != http.MethodPost {
				http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
				return
			}
			w.Header().Set("Content-Length", "2")
			_, _ = io.WriteString(w, "OK")
			// pilot-agent SIGKILLs Envoy right away: its admin port is gone.
			if admin != nil {
				_ = admin.Close()
			}
			ex.exitSoon(w, 20*time.Millisecond, "pilot-agent POST /quitquitquit")
		}))
		mux.HandleFunc("/healthz/ready", func(w http.ResponseWriter, r *http.Request) {})
		mux.HandleFunc("/", http.NotFound)
		status = serve(addr(*bind, *statusPort), mux)
	}
	drainOnSignal(*drain, status)
}

// envoy stands in for the Envoy that pilot-agent starts: its admin port 15000 on loopback (the
// bootstrap's default), whatever flags it was given; exit 0 on SIGTERM or SIGINT.
func envoy() {
	var ex exiter
	serve(addr("127.0.0.1", 15000), envoyAdmin(&ex))
	waitSignals(gracefulSignals)
}

// envoyAdmin is Envoy's admin API as hahaha and pilot-agent use it.
func envoyAdmin(ex *exiter) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/quitquitquit", counted(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = io.WriteString(w, "This operation requires a POST method\n")
			return
		}
		_, _ = io.WriteString(w, "OK\n")
		ex.exitAfter(w, 0, "envoy POST /quitquitquit")
	}))
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "LIVE\n") })
	// pilot-agent's drain on SIGTERM, and its readiness and metrics scrapes.
	mux.HandleFunc("/drain_listeners", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "OK\n") })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/", http.NotFound)
	return mux
}

// fromLoopback says whether a request came from 127.0.0.0/8 or ::1, as pilot-agent's
// IsRequestFromLocalhost does.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func cloudsql(args []string) {
	fs := flag.NewFlagSet("cloudsql", flag.ExitOnError)
	bind := fs.String("admin-address", "127.0.0.1", "admin server bind address")
	port := fs.Int("admin-port", 9091, "admin server port")
	quit := fs.Bool("quitquitquit", false, "enable the /quitquitquit endpoint")
	zero := fs.Bool("exit-zero-on-sigterm", false, "exit 0 instead of 143 on SIGTERM")
	_ = fs.Parse(args)
	var ex exiter
	mux := http.NewServeMux()
	if *quit {
		mux.HandleFunc("/quitquitquit", counted(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost && r.Method != http.MethodGet {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			ex.exitAfter(w, 0, r.Method+" /quitquitquit")
		}))
	}
	mux.HandleFunc("/", http.NotFound)
	serve(addr(*bind, *port), mux)
	term := 143
	if *zero {
		term = 0
	}
	waitSignals(map[os.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: term})
}

func fluentd(args []string) {
	fs := flag.NewFlagSet("fluentd", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "RPC endpoint bind address")
	port := fs.Int("rpc-port", 24444, "RPC endpoint port")
	_ = fs.Parse(args)
	var ex exiter
	mux := http.NewServeMux()
	mux.HandleFunc("/api/processes.killWorkers", counted(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
		ex.exitAfter(w, 0, "killWorkers")
	}))
	mux.HandleFunc("/", http.NotFound)
	serve(addr(*bind, *port), mux)
	waitSignals(gracefulSignals)
}

func vks(args []string) {
	fs := flag.NewFlagSet("vks", flag.ExitOnError)
	_ = fs.Parse(args)
	log.Printf("running; SIGINT stops me")
	waitSignals(map[os.Signal]int{syscall.SIGINT: 0, syscall.SIGTERM: 143})
}

func hang(args []string) {
	fs := flag.NewFlagSet("hang", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "bind address")
	port := fs.Int("port", 4191, "port")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", addr(*bind, *port))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	log.Printf("listening on %s; requests are never answered", ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				line := string(buf[:n])
				for i := 0; i < len(line); i++ {
					if line[i] == '\r' || line[i] == '\n' {
						line = line[:i]
						break
					}
				}
				if n > 0 {
					shutdownRequest("http %q from %s (never answered)", line, c.RemoteAddr())
				}
				log.Printf("%q from %s -> no answer", line, c.RemoteAddr())
				_, _ = io.Copy(io.Discard, c)
				c.Close()
			}(c)
		}
	}()
	waitSignals(gracefulSignals)
}

func refuse(args []string) {
	fs := flag.NewFlagSet("refuse", flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "bind address")
	port := fs.Int("port", 4191, "port")
	status := fs.Int("status", http.StatusInternalServerError, "status answered to every request (e.g. 500 or 405)")
	_ = fs.Parse(args)
	serve(addr(*bind, *port), counted(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, http.StatusText(*status), *status)
	}))
	waitSignals(gracefulSignals)
}

// postOnly serves one shutdown endpoint that accepts POST only, answers with
// status and exits 0: Vault Agent's /agent/v1/quit and daprd's /v1.0/shutdown.
func postOnly(name string, args []string, defaultPort int, path string, status int) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	bind := fs.String("bind", "127.0.0.1", "bind address")
	port := fs.Int("port", defaultPort, "port")
	_ = fs.Parse(args)
	var ex exiter
	mux := http.NewServeMux()
	mux.HandleFunc(path, counted(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(status)
		ex.exitAfter(w, 0, "POST "+path)
	}))
	mux.HandleFunc("/", http.NotFound)
	serve(addr(*bind, *port), mux)
	waitSignals(gracefulSignals)
}

// deafSignals are the signals deaf catches and ignores: every signal whose
// default action ends or stops a process and that a handler can catch, except
// the synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP),
// which the Go runtime keeps for itself. SIGKILL and SIGSTOP cannot be caught.
var deafSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
	syscall.SIGABRT, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGVTALRM, syscall.SIGPROF,
	syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
}

// deaf is a sidecar that no signal but SIGKILL stops: like `sleep` as PID 1
// of a container, but also outside a PID namespace (run directly, or where
// the signal comes from the parent namespace and PID 1 semantics do not
// help). Each signal is logged and ignored.
func deaf(args []string) {
	fs := flag.NewFlagSet("deaf", flag.ExitOnError)
	_ = fs.Parse(args)
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, deafSignals...)
	log.Printf("running as pid %d; ignoring every catchable signal, only SIGKILL stops me", os.Getpid())
	for s := range ch {
		shutdownRequest("signal %v", s)
		log.Printf("received %v, ignoring it", s)
	}
}

// reloadName is the process name `killall configmap-reload` looks for.
const reloadName = "configmap-reload"

// reloadLinkEnv names the temporary directory of the configmap-reload link,
// removed by the process started through it.
const reloadLinkEnv = "FAKE_SIDECAR_RELOAD_LINK_DIR"

// configmapReload stands in for configmap-reload where a test must count the
// signals it gets: killall matches the process name (the first 15
// characters, "configmap-reloa", from the file executed) and, for a name
// that long, the base name of argv[0]. So it re-executes itself, keeping its
// pid (PID 1 stays PID 1), through a symbolic link named configmap-reload in
// a temporary directory, removed once started. Then, like configmap-reload
// v0.12.0 as PID 1 (Go's runtime, no handler), it exits 2 on SIGTERM, SIGINT,
// SIGHUP, SIGQUIT and SIGABRT and ignores SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM.
func configmapReload(args []string) {
	if dir := os.Getenv(reloadLinkEnv); dir != "" {
		_ = os.RemoveAll(dir)
		_ = os.Unsetenv(reloadLinkEnv)
	} else if filepath.Base(os.Args[0]) != reloadName {
		self, err := os.Executable()
		if err != nil {
			log.Fatalf("own executable: %v", err)
		}
		dir, err := os.MkdirTemp("", "fake-sidecar-reload-")
		if err != nil {
			log.Fatalf("link dir: %v", err)
		}
		link := filepath.Join(dir, reloadName)
		if err := os.Symlink(self, link); err != nil {
			log.Fatalf("link: %v", err)
		}
		env := append(os.Environ(), reloadLinkEnv+"="+dir)
		argv := append([]string{reloadName, "configmap-reload"}, args...)
		err = syscall.Exec(link, argv, env)
		log.Fatalf("exec %s: %v", link, err)
	}
	fs := flag.NewFlagSet("configmap-reload", flag.ExitOnError)
	_ = fs.String("volume-dir", "", "ignored, as the real one's watched directory")
	_ = fs.String("webhook-url", "", "ignored")
	_ = fs.Parse(args)
	signal.Ignore(syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM)
	log.Printf("running as pid %d, named %s; killall %s stops me with exit code 2", os.Getpid(), reloadName, reloadName)
	waitSignals(map[os.Signal]int{syscall.SIGTERM: 2, syscall.SIGINT: 2, syscall.SIGHUP: 2, syscall.SIGQUIT: 2, syscall.SIGABRT: 2})
}
