package main

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ephemeralRun runs a pod of regular containers through a real podWorker,
// waits until every container runs (or, for those named in exited, has
// terminated), then adds one ephemeral container "debug" running
// sh -c script with the given target, as a PATCH of
// pods/ephemeralcontainers does. It returns a function that waits for a
// status matching cond.
func ephemeralRun(t *testing.T, ctrs map[string]string, exited map[string]bool, target, script string) func(what string, cond func(v1.PodStatus) bool) v1.PodStatus {
	t.Helper()
	rt := podTestRuntime(t)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "p", UID: types.UID("uid-" + newID())},
		Spec:       v1.PodSpec{RestartPolicy: v1.RestartPolicyNever},
	}
	for _, name := range []string{"app", "done"} {
		if cmd, ok := ctrs[name]; ok {
			pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: name, Image: "any", Command: []string{"sh", "-c", cmd}})
		}
	}
	var mu sync.Mutex
	var statuses []v1.PodStatus
	changed := make(chan struct{}, 1)
	w := startTestWorker(t, rt, pod, func(st v1.PodStatus) {
		mu.Lock()
		statuses = append(statuses, st)
		mu.Unlock()
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	wait := func(what string, cond func(v1.PodStatus) bool) v1.PodStatus {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			mu.Lock()
			for _, st := range statuses {
				if cond(st) {
					mu.Unlock()
					return st
				}
			}
			last := statuses
			mu.Unlock()
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("%s: not seen; statuses: %+v", what, last)
			}
		}
	}
	wait("containers started", func(st v1.PodStatus) bool {
		for name := range ctrs {
			cs := ctrStatus(st, name)
			if cs == nil || (exited[name] && cs.State.Terminated == nil) || (!exited[name] && cs.State.Running == nil) {
				return false
			}
		}
		return true
	})
	upd := pod.DeepCopy()
	upd.Spec.EphemeralContainers = []v1.EphemeralContainer{{
		EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "debug", Image: "busybox", Command: []string{"sh", "-c", script}},
		TargetContainerName:      target,
	}}
	w.send(event{kind: evUpdate, pod: upd})
	return wait
}

func ephStatus(st v1.PodStatus) *v1.ContainerStatus {
	for i := range st.EphemeralContainerStatuses {
		if st.EphemeralContainerStatuses[i].Name == "debug" {
			return &st.EphemeralContainerStatuses[i]
		}
	}
	return nil
}

func ephTerminated(st v1.PodStatus) bool {
	e := ephStatus(st)
	return e != nil && e.State.Terminated != nil
}

// kill -s TERM 1 from an ephemeral container reaches the target's PID 1,
// which ignores it (no handler: PID-1 semantics); the ephemeral container
// exits 0, is never restarted and the pod keeps running.
func TestEphemeralSignalIgnoredByPID1(t *testing.T) {
	wait := ephemeralRun(t, map[string]string{"app": "exec sleep 100000"}, nil, "app",
		`echo "pid $$$$"; test $$$$ -ne 1 && grep -q sleep /proc/1/cmdline && kill -s TERM 1`)
	st := wait("ephemeral container terminated", ephTerminated)
	e := ephStatus(st)
	if e.State.Terminated.ExitCode != 0 || e.RestartCount != 0 || e.Ready || e.Started != nil {
		t.Errorf("ephemeral status %+v, want terminated with 0 (it ran in the target's PID namespace)", e)
	}
	time.Sleep(500 * time.Millisecond)
	st = wait("app still running", func(st v1.PodStatus) bool { return ephTerminated(st) })
	if a := ctrStatus(st, "app"); a == nil || a.State.Running == nil || st.Phase != v1.PodRunning {
		t.Errorf("app %+v phase %s, want it running: PID 1 ignores an unhandled SIGTERM", a, st.Phase)
	}
	if len(st.ContainerStatuses) != 1 {
		t.Errorf("the ephemeral container shows up among the containers: %+v", st.ContainerStatuses)
	}
}

// kill -s INT 1 against a PID 1 that handles SIGINT (like fake-sidecar vks)
// stops it with exit 0; the pod succeeds, the ephemeral container's status
// stays reported and does not change the phase.
func TestEphemeralSignalHandledByPID1(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	// The signal must not come before the trap is set.
	wait := ephemeralRun(t, map[string]string{"app": `trap "exit 0" INT; touch ` + ready + `; while :; do sleep 0.05; done`}, nil, "app",
		`while [ ! -e `+ready+` ]; do sleep 0.02; done; kill -s INT 1`)
	st := wait("pod succeeded", func(st v1.PodStatus) bool { return st.Phase == v1.PodSucceeded })
	if a := ctrStatus(st, "app"); a == nil || a.State.Terminated == nil || a.State.Terminated.ExitCode != 0 {
		t.Errorf("app %+v, want terminated with 0", a)
	}
	if e := ephStatus(st); e == nil || e.State.Terminated == nil || e.State.Terminated.ExitCode != 0 {
		t.Errorf("ephemeral %+v, want terminated with 0", e)
	}
}

// A target that is not running: containerd refuses to create the container,
// so the kubelet reports it waiting with CreateContainerError (and tries
// again at each sync); a target that never ran: CreateContainerConfigError.
func TestEphemeralTargetNotRunning(t *testing.T) {
	wait := ephemeralRun(t, map[string]string{"app": "exec sleep 100000", "done": "exit 0"}, map[string]bool{"done": true}, "done", "exit 0")
	st := wait("ephemeral waiting", func(st v1.PodStatus) bool {
		e := ephStatus(st)
		return e != nil && e.State.Waiting != nil && e.State.Waiting.Reason == "CreateContainerError"
	})
	if e := ephStatus(st); e.State.Waiting.Message == "" || st.Phase != v1.PodRunning {
		t.Errorf("ephemeral %+v phase %s", e, st.Phase)
	}
}
