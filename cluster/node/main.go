// Command hahaha-node is a small stand-in for the kubelet of a local test
// cluster. It registers one Node, runs the commands of the pods bound to it
// as local processes (one PID, mount and UTS namespace per container, one
// network namespace per pod), reports their status the way a kubelet does and
// serves exec, port-forward and container logs to the API server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type config struct {
	kubeconfig  string
	nodeName    string
	listen      string
	tlsCert     string
	tlsKey      string
	clientCA    string
	stateDir    string
	pathPrepend string
	maxBackoff  time.Duration
	profiles    string
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case pauseArg:
			os.Exit(runPause())
		case initArg:
			os.Exit(runInit(os.Args[2:]))
		}
	}

	var cfg config
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig used to talk to the API server (required)")
	flag.StringVar(&cfg.nodeName, "node-name", "", "name of the Node to register (required)")
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:10250", "loopback address:port of the kubelet HTTPS endpoint")
	flag.StringVar(&cfg.tlsCert, "tls-cert", "", "serving certificate (PEM) for --listen (required)")
	flag.StringVar(&cfg.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert (required)")
	flag.StringVar(&cfg.clientCA, "client-ca", "", "CA bundle (PEM) that must have signed the API server's client certificate (required)")
	flag.StringVar(&cfg.stateDir, "state-dir", "", "directory for logs and process records (required)")
	flag.StringVar(&cfg.pathPrepend, "path-prepend", "", "directory put in front of every container's PATH")
	flag.DurationVar(&cfg.maxBackoff, "max-restart-backoff", 10*time.Second, "upper bound of the back-off between container restarts")
	flag.StringVar(&cfg.profiles, "image-profiles", "", "YAML/JSON file of image patterns that run as distroless (default: the built-in image-profiles.yaml)")
	flag.Parse()

	var missing []string
	for name, v := range map[string]string{"kubeconfig": cfg.kubeconfig, "node-name": cfg.nodeName, "tls-cert": cfg.tlsCert, "tls-key": cfg.tlsKey, "client-ca": cfg.clientCA, "state-dir": cfg.stateDir} {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "hahaha-node: missing required flags: %s\n", strings.Join(missing, " "))
		os.Exit(2)
	}
	if !isLoopbackListen(cfg.listen) {
		fmt.Fprintf(os.Stderr, "hahaha-node: --listen must be a loopback address, got %q\n", cfg.listen)
		os.Exit(2)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("hahaha-node ")
	quietKlog()
	if err := run(cfg); err != nil {
		log.Printf("fatal: %v", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if err := os.MkdirAll(cfg.stateDir, 0o755); err != nil {
		return err
	}
	rt, err := newRuntime(cfg.stateDir, cfg.nodeName)
	if err != nil {
		return err
	}
	rt.killStale()
	profiles, err := loadProfiles(cfg.profiles)
	if err != nil {
		return fmt.Errorf("image profiles: %w", err)
	}

	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restCfg.QPS = 100
	restCfg.Burst = 200
	restCfg.UserAgent = "hahaha-node/" + cfg.nodeName
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	k := newKubelet(cfg, client, rt)
	k.profiles = profiles
	srv, err := k.startServer()
	if err != nil {
		return err
	}
	if err := k.registerNode(ctx); err != nil {
		return err
	}
	go k.heartbeat(ctx)
	go k.watchPods(ctx)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s := <-sigs
	log.Printf("received %v: stopping all pods", s)
	signal.Reset(syscall.SIGTERM, syscall.SIGINT)
	cancel()
	shutdownCtx, done := context.WithTimeout(context.Background(), 3*time.Second)
	_ = srv.Shutdown(shutdownCtx)
	done()
	k.shutdown(5 * time.Second)
	log.Printf("stopped")
	return nil
}
