package main

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// testHelper lets the (static) test binary serve as a container entrypoint
// in a distroless root, where nothing else exists.
func testHelper(args []string) (int, bool) {
	switch args[0] {
	case "__hahaha_test_sleep":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT)
		<-sigs
		return 0, true
	case "__hahaha_test_ls":
		entries, err := os.ReadDir(args[1])
		if err != nil {
			fmt.Println(err)
			return 1, true
		}
		for _, e := range entries {
			fmt.Println(e.Name())
		}
		return 0, true
	}
	return 0, false
}

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

func TestDistrolessExec(t *testing.T) {
	needRoot(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if f, err := elf.Open(self); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Skip("test binary is dynamically linked (build with CGO_ENABLED=0)")
			}
		}
		f.Close()
	}
	rt, err := newRuntime(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	pause, ns, err := rt.startPause("test/distroless")
	if err != nil {
		t.Skipf("cannot create network namespace here: %v", err)
	}
	defer func() { pause.signal(syscall.SIGKILL); ns.Close() }()

	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "p", UID: types.UID("uid-" + newID())},
		Spec:       v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "gcr.io/distroless/static"}}},
	}
	k := &kubelet{client: fake.NewSimpleClientset(pod), rt: rt, workers: map[types.UID]*podWorker{}}
	w := newPodWorker(k, pod)
	k.workers[pod.UID] = w
	env := []string{"PATH=" + filepath.Dir(self) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	exited := make(chan struct{})
	p, _, err := rt.startContainer(ctrSpec{
		argv: []string{filepath.Base(self), "__hahaha_test_sleep"}, env: env, hostname: "p", netns: ns,
		logPath: filepath.Join(t.TempDir(), "c.log"), root: &rootSpec{Dir: rt.rootDir},
	}, func(*proc) { close(exited) })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer func() {
		p.signal(syscall.SIGKILL)
		<-exited
	}()
	w.procs["c"], w.envs["c"] = p, env

	exec := func(argv ...string) (string, error) {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := (&executor{k: k, ns: "test"}).ExecInContainer(ctx, "p", "", "c", argv, nil, nopCloser{&out}, nopCloser{&errb}, false, nil, 0)
		return out.String() + errb.String(), err
	}

	// The root holds the distroless base and the entrypoint's top directory.
	out, err := exec(self, "__hahaha_test_ls", "/")
	if err != nil {
		t.Fatalf("exec of the entrypoint: %v (%s)", err, out)
	}
	got := strings.Fields(out)
	sort.Strings(got)
	want := []string{"dev", "etc", "home", "proc", "root", "tmp"}
	if top := strings.Split(self, "/")[1]; !strings.Contains(" "+strings.Join(want, " ")+" ", " "+top+" ") {
		want = append(want, top)
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("root holds %v, want %v", got, want)
	}
	out, _ = exec(self, "__hahaha_test_ls", "/etc")
	for _, f := range []string{"passwd", "group", "nsswitch.conf", "hosts"} {
		if !strings.Contains(out, f) {
			t.Errorf("/etc lacks %s: %q", f, out)
		}
	}
	out, _ = exec(self, "__hahaha_test_ls", "/dev")
	for _, f := range []string{"null", "zero", "random", "urandom", "tty"} {
		if !strings.Contains(out, f) {
			t.Errorf("/dev lacks %s: %q", f, out)
		}
	}
	// The entrypoint runs as PID 1 and sees only its own PID namespace.
	if out, _ = exec(self, "__hahaha_test_ls", "/proc/1"); !strings.Contains(out, "cmdline") {
		t.Errorf("/proc/1 in the container: %q", out)
	}

	// Missing binaries fail like containerd reports them.
	_, err = exec("/bin/kill", "-s", "INT", "1")
	if err == nil || !strings.HasPrefix(err.Error(), "failed to exec in container: failed to start exec ") ||
		!strings.HasSuffix(err.Error(), `: OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/kill": stat /bin/kill: no such file or directory: unknown`) {
		t.Errorf("exec /bin/kill: %v", err)
	}
	if _, ok := err.(exitError); ok {
		t.Errorf("exec /bin/kill: an exit status, want a Failure")
	}
	for _, cmd := range []string{"killall", "sh", "kill"} {
		_, err = exec(cmd)
		if err == nil || !strings.Contains(err.Error(), `exec: "`+cmd+`": executable file not found in $PATH: unknown`) {
			t.Errorf("exec %s: %v", cmd, err)
		}
	}
	// An existing entrypoint's exit status still comes back as such.
	if _, err = exec(self, "__hahaha_test_ls", "/no-such-dir"); err == nil || err.Error() != "command terminated with exit code 1" {
		t.Errorf("exec with exit 1: %v", err)
	}
}
