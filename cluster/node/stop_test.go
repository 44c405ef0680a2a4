package main

import (
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestStopTurn(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// spec order: init containers (a, setup, b are native sidecars except
	// setup), then the regular containers.
	ctrs := []*ctrState{
		{name: "a", kind: kindSidecar}, {name: "setup", kind: kindInit}, {name: "b", kind: kindSidecar},
		{name: "main", kind: kindRegular}, {name: "other", kind: kindRegular},
	}
	idx := map[string]int{"a": 0, "setup": 1, "b": 2, "main": 3, "other": 4}
	cases := []struct {
		name  string
		live  []string
		who   string
		grace int64
		at    time.Duration // since the plan started
		want  bool
	}{
		{"regular containers go at once", []string{"a", "b", "main"}, "main", 30, 0, true},
		{"sidecar waits for a running regular container", []string{"b", "main"}, "b", 30, 0, false},
		{"last sidecar goes once regulars are gone", []string{"a", "b"}, "b", 30, 0, true},
		{"earlier sidecar waits for the later one", []string{"a", "b"}, "a", 30, 5 * time.Second, false},
		{"earlier sidecar goes once the later one exited", []string{"a"}, "a", 30, 5 * time.Second, true},
		{"a regular init container in between does not count", []string{"a", "setup"}, "a", 30, 0, true},
		{"grace period over: everyone's turn", []string{"a", "b", "main"}, "a", 30, 30 * time.Second, true},
		{"grace 0: no waiting", []string{"a", "b", "main"}, "a", 0, 0, true},
	}
	for _, c := range cases {
		liveSet := map[string]bool{}
		for _, n := range c.live {
			liveSet[n] = true
		}
		got := stopTurn(ctrs, func(n string) bool { return liveSet[n] }, idx[c.who], stopPlan{start: t0, grace: c.grace}, t0.Add(c.at))
		if got != c.want {
			t.Errorf("%s: stopTurn(%s) = %v, want %v", c.name, c.who, got, c.want)
		}
	}
}

func TestKillDelay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	cases := []struct {
		grace int64
		at    time.Duration
		want  time.Duration
	}{
		{30, 0, 30 * time.Second},
		{30, 10700 * time.Millisecond, 20 * time.Second}, // waited time truncated to whole seconds
		{30, 29 * time.Second, 2 * time.Second},          // never below the 2 s minimum
		{30, 31 * time.Second, 2 * time.Second},
		{1, 0, 2 * time.Second},
		{0, 0, 2 * time.Second},
		{3, 0, 3 * time.Second},
	}
	for _, c := range cases {
		if got := killDelay(stopPlan{start: t0, grace: c.grace}, t0.Add(c.at)); got != c.want {
			t.Errorf("killDelay(grace %d, after %s) = %s, want %s", c.grace, c.at, got, c.want)
		}
	}
}

// podRun is what a test saw of a pod run by a real podWorker.
type podRun struct {
	mu       sync.Mutex
	statuses []v1.PodStatus
	final    v1.PodStatus
	took     time.Duration // from the main container's last exit to the terminal status
}

func ctrStatus(st v1.PodStatus, name string) *v1.ContainerStatus {
	for _, l := range [][]v1.ContainerStatus{st.InitContainerStatuses, st.ContainerStatuses} {
		for i := range l {
			if l[i].Name == name {
				return &l[i]
			}
		}
	}
	return nil
}

// runPod runs a pod with a native sidecar "proxy" and a regular container
// "main" through a podWorker with real processes (in namespaces, so it needs
// root) until it reaches a terminal phase.
func runPod(t *testing.T, policy v1.RestartPolicy, grace int64, sidecar, main string) *podRun {
	t.Helper()
	always := v1.ContainerRestartPolicyAlways
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "p", UID: types.UID("uid-" + newID())},
		Spec: v1.PodSpec{
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			InitContainers:                []v1.Container{{Name: "proxy", Image: "any", RestartPolicy: &always, Command: []string{"sh", "-c", sidecar}}},
			Containers:                    []v1.Container{{Name: "main", Image: "any", Command: []string{"sh", "-c", main}, Env: []v1.EnvVar{{Name: "DIR", Value: t.TempDir()}}}},
		},
	}
	rt := podTestRuntime(t)
	r := &podRun{}
	done := make(chan struct{})
	var mainExit time.Time
	startTestWorker(t, rt, pod, func(st v1.PodStatus) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.statuses = append(r.statuses, st)
		if m := ctrStatus(st, "main"); m != nil && m.State.Terminated != nil {
			mainExit = m.State.Terminated.FinishedAt.Time
		}
		if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
			r.final = st
			r.took = time.Since(mainExit)
			select {
			case <-done:
			default:
				close(done)
			}
		}
	})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no terminal phase; statuses: %+v", r.statuses)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r
}

// A sidecar shell loop that answers SIGTERM with the given exit code.
func trapLoop(code string) string {
	return `trap "exit ` + code + `" TERM; while :; do sleep 0.05; done`
}

func TestNativeSidecarTermination(t *testing.T) {
	cases := []struct {
		name        string
		policy      v1.RestartPolicy
		grace       int64
		sidecar     string
		main        string
		phase       v1.PodPhase
		sidecarExit int32
		mainRuns    int32 // restartCount + 1 of main
		minTook     time.Duration
		maxTook     time.Duration
	}{
		// configmap-reload answers SIGTERM with exit 2: not counted.
		{"sidecar exits 2 after SIGTERM", v1.RestartPolicyNever, 30, trapLoop("2"), "exit 0", v1.PodSucceeded, 2, 1, 0, 5 * time.Second},
		// PID 1 without a handler ignores SIGTERM: SIGKILL from outside
		// after the pod's terminationGracePeriodSeconds.
		{"sidecar ignores SIGTERM: SIGKILL after the grace period", v1.RestartPolicyNever, 3, "exec sleep 100000", "exit 0", v1.PodSucceeded, 137, 1, 2900 * time.Millisecond, 8 * time.Second},
		{"grace 0 still gives the 2 s minimum", v1.RestartPolicyNever, 0, "exec sleep 100000", "exit 0", v1.PodSucceeded, 137, 1, 1900 * time.Millisecond, 7 * time.Second},
		{"OnFailure: main fails once, sidecar keeps running, then Succeeded", v1.RestartPolicyOnFailure, 30, trapLoop("0"),
			`if [ -e "$DIR/ran" ]; then exit 0; fi; touch "$DIR/ran"; exit 1`, v1.PodSucceeded, 0, 2, 0, 5 * time.Second},
		{"Never: main exits 1, sidecar exits 0: Failed", v1.RestartPolicyNever, 30, trapLoop("0"), "exit 1", v1.PodFailed, 0, 1, 0, 5 * time.Second},
		{"Never: main exits 1, sidecar exits 2: Failed", v1.RestartPolicyNever, 30, trapLoop("2"), "exit 1", v1.PodFailed, 2, 1, 0, 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runPod(t, c.policy, c.grace, c.sidecar, c.main)
			if r.final.Phase != c.phase {
				t.Errorf("phase %s, want %s", r.final.Phase, c.phase)
			}
			sc := ctrStatus(r.final, "proxy")
			if sc == nil || sc.State.Terminated == nil || sc.State.Terminated.ExitCode != c.sidecarExit {
				t.Errorf("sidecar status %+v, want terminated with %d", sc, c.sidecarExit)
			} else if sc.RestartCount != 0 {
				t.Errorf("sidecar was restarted %d times, want it kept running", sc.RestartCount)
			}
			m := ctrStatus(r.final, "main")
			if m == nil || m.RestartCount+1 != c.mainRuns {
				t.Errorf("main status %+v, want %d run(s)", m, c.mainRuns)
			}
			if r.took < c.minTook || r.took > c.maxTook {
				t.Errorf("terminal %s after the main container exited, want %s..%s", r.took, c.minTook, c.maxTook)
			}
			// The phase is never terminal while a process runs, and a
			// failed run that will be retried keeps the pod Running.
			sawRetry := false
			for _, st := range r.statuses[:len(r.statuses)-1] {
				if st.Phase == v1.PodSucceeded || st.Phase == v1.PodFailed {
					t.Errorf("terminal phase %s before the end", st.Phase)
				}
				if m := ctrStatus(st, "main"); m != nil && m.State.Terminated != nil && m.State.Terminated.ExitCode == 1 && c.mainRuns > 1 {
					sawRetry = true
					if st.Phase != v1.PodRunning {
						t.Errorf("phase %s while main waits to be restarted, want Running", st.Phase)
					}
					if s := ctrStatus(st, "proxy"); s == nil || s.State.Running == nil {
						t.Errorf("native sidecar not running while main waits to be restarted: %+v", s)
					}
				}
			}
			if c.mainRuns > 1 && !sawRetry {
				t.Error("never saw main's failed run")
			}
		})
	}
}
