package main

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running(name string, kind ctrKind) *ctrState {
	return &ctrState{name: name, kind: kind, phase: phaseRunning, id: "hahaha://" + name, startedAt: time.Unix(100, 0)}
}

func exited(name string, kind ctrKind, code int32) *ctrState {
	return &ctrState{name: name, kind: kind, phase: phaseTerminated, id: "hahaha://" + name,
		term: &termInfo{exitCode: code, reason: exitReason(code), containerID: "hahaha://" + name}}
}

func waiting(name string, kind ctrKind) *ctrState {
	return &ctrState{name: name, kind: kind}
}

func pending(c *ctrState) *ctrState { c.restartPending = true; return c }

func TestDesiredPhase(t *testing.T) {
	never, onFailure, always := v1.RestartPolicyNever, v1.RestartPolicyOnFailure, v1.RestartPolicyAlways
	cases := []struct {
		name     string
		policy   v1.RestartPolicy
		terminal bool // every process has stopped (podIsTerminal)
		ctrs     []*ctrState
		want     v1.PodPhase
	}{
		{"nothing started", never, false, []*ctrState{waiting("main", kindRegular)}, v1.PodPending},
		{"init running", never, false, []*ctrState{running("init", kindInit), waiting("main", kindRegular)}, v1.PodPending},
		{"init failed under Never", never, false, []*ctrState{exited("init", kindInit, 1), waiting("main", kindRegular)}, v1.PodFailed},
		{"init failed under OnFailure, will retry", onFailure, false, []*ctrState{pending(exited("init", kindInit, 1)), waiting("main", kindRegular)}, v1.PodPending},
		{"sidecar not yet started", never, false, []*ctrState{waiting("proxy", kindSidecar), waiting("main", kindRegular)}, v1.PodPending},
		{"main running", never, false, []*ctrState{exited("init", kindInit, 0), running("main", kindRegular)}, v1.PodRunning},
		{"main done, regular sidecar running", never, false, []*ctrState{exited("main", kindRegular, 0), running("linkerd", kindRegular)}, v1.PodRunning},
		{"all exited 0", never, false, []*ctrState{exited("main", kindRegular, 0), exited("linkerd", kindRegular, 0)}, v1.PodSucceeded},
		{"regular sidecar exited 143", never, false, []*ctrState{exited("main", kindRegular, 0), exited("cloudsql", kindRegular, 143)}, v1.PodFailed},
		// getPhase counts a running native sidecar as running: the pod
		// stays Running until the kubelet has stopped it.
		{"native sidecar still running", never, false, []*ctrState{running("proxy", kindSidecar), exited("main", kindRegular, 0)}, v1.PodRunning},
		{"native sidecar exited 2 after SIGTERM", never, true, []*ctrState{exited("reload", kindSidecar, 2), exited("main", kindRegular, 0)}, v1.PodSucceeded},
		{"native sidecar SIGKILLed (137)", never, true, []*ctrState{exited("deaf", kindSidecar, 137), exited("main", kindRegular, 0)}, v1.PodSucceeded},
		{"native sidecar 143 under OnFailure", onFailure, true, []*ctrState{exited("proxy", kindSidecar, 143), exited("main", kindRegular, 0)}, v1.PodSucceeded},
		{"OnFailure: main failed, restart pending, native sidecar runs", onFailure, false, []*ctrState{running("proxy", kindSidecar), pending(exited("main", kindRegular, 1))}, v1.PodRunning},
		{"OnFailure: main failed, restart pending, no sidecar", onFailure, false, []*ctrState{pending(exited("main", kindRegular, 1))}, v1.PodRunning},
		{"OnFailure: main succeeded on its second run, sidecar stopped", onFailure, true, []*ctrState{exited("proxy", kindSidecar, 0), exited("main", kindRegular, 0)}, v1.PodSucceeded},
		{"Never: main exit 1, native sidecar still running", never, false, []*ctrState{running("proxy", kindSidecar), exited("main", kindRegular, 1)}, v1.PodRunning},
		{"Never: main exit 1, native sidecar exited 0", never, true, []*ctrState{exited("proxy", kindSidecar, 0), exited("main", kindRegular, 1)}, v1.PodFailed},
		{"Never: main exit 1, native sidecar exited 2", never, true, []*ctrState{exited("proxy", kindSidecar, 2), exited("main", kindRegular, 1)}, v1.PodFailed},
		{"Never: main exit 1, not yet terminal", never, false, []*ctrState{exited("proxy", kindSidecar, 0), exited("main", kindRegular, 1)}, v1.PodFailed},
		{"Always: main exited 0 is restarted", always, false, []*ctrState{exited("main", kindRegular, 0)}, v1.PodRunning},
		{"Always: terminal after deletion", always, true, []*ctrState{exited("main", kindRegular, 0)}, v1.PodSucceeded},
		{"native sidecar restarting after the main started", never, false, []*ctrState{pending(exited("proxy", kindSidecar, 1)), running("main", kindRegular)}, v1.PodRunning},
		{"one waiting", never, false, []*ctrState{running("a", kindRegular), waiting("b", kindRegular)}, v1.PodPending},
	}
	for _, c := range cases {
		if got := desiredPhase(c.ctrs, c.policy, c.terminal); got != c.want {
			t.Errorf("%s: phase %s, want %s", c.name, got, c.want)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	cases := []struct {
		kind   ctrKind
		policy v1.RestartPolicy
		code   int32
		want   bool
	}{
		{kindRegular, v1.RestartPolicyNever, 0, false},
		{kindRegular, v1.RestartPolicyNever, 1, false},
		{kindRegular, v1.RestartPolicyOnFailure, 0, false},
		{kindRegular, v1.RestartPolicyOnFailure, 1, true},
		{kindRegular, v1.RestartPolicyAlways, 0, true},
		{kindRegular, v1.RestartPolicyAlways, 2, true},
		{kindInit, v1.RestartPolicyAlways, 0, false},
		{kindInit, v1.RestartPolicyAlways, 1, true},
		{kindInit, v1.RestartPolicyNever, 1, false},
		{kindInit, v1.RestartPolicyOnFailure, 1, true},
		{kindSidecar, v1.RestartPolicyNever, 0, true},
		{kindSidecar, v1.RestartPolicyNever, 137, true},
	}
	for _, c := range cases {
		if got := shouldRestart(c.kind, c.policy, c.code); got != c.want {
			t.Errorf("shouldRestart(%v, %s, %d) = %v, want %v", c.kind, c.policy, c.code, got, c.want)
		}
	}
}

func TestRestartBackoff(t *testing.T) {
	max := 10 * time.Second
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := restartBackoff(int32(i), max); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i, got, w)
		}
	}
}

func TestRegularsDone(t *testing.T) {
	if regularsDone([]*ctrState{exited("main", kindRegular, 0), running("sidecar", kindRegular)}) {
		t.Error("a running regular container means not done")
	}
	if regularsDone([]*ctrState{pending(exited("main", kindRegular, 1))}) {
		t.Error("a pending restart means not done")
	}
	if !regularsDone([]*ctrState{running("proxy", kindSidecar), exited("main", kindRegular, 0)}) {
		t.Error("native sidecars do not keep the pod from being done")
	}
}

func TestDescribeExit(t *testing.T) {
	code, _, reason, _ := describeExit(true, 0, false, 0)
	if code != 0 || reason != "Completed" {
		t.Errorf("exit 0: %d %s", code, reason)
	}
	code, _, reason, _ = describeExit(true, 3, false, 0)
	if code != 3 || reason != "Error" {
		t.Errorf("exit 3: %d %s", code, reason)
	}
	code, _, reason, _ = describeExit(false, -1, true, 9)
	if code != 137 || reason != "Error" {
		t.Errorf("SIGKILL: %d %s", code, reason)
	}
}

func TestBuildStatus(t *testing.T) {
	scheduled := metav1.NewTime(time.Unix(10, 0))
	pod := &v1.Pod{Status: v1.PodStatus{Conditions: []v1.PodCondition{
		{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: scheduled},
		{Type: v1.PodReady, Status: v1.ConditionFalse, LastTransitionTime: scheduled},
	}}}
	sidecar := running("proxy", kindSidecar)
	main := exited("main", kindRegular, 0)
	main.last = &termInfo{exitCode: 1, reason: "Error"}
	main.restarts = 1
	other := running("linkerd", kindRegular)
	now := time.Unix(200, 0)
	st := buildStatus(statusInput{pod: pod, ctrs: []*ctrState{sidecar, main, other}, phase: v1.PodRunning,
		sandboxReady: true, podIP: "127.0.0.1", hostIP: "127.0.0.1", startTime: time.Unix(50, 0), now: now})

	if st.Phase != v1.PodRunning || st.PodIP != "127.0.0.1" || len(st.PodIPs) != 1 || st.StartTime == nil {
		t.Fatalf("pod fields: %+v", st)
	}
	if len(st.InitContainerStatuses) != 1 || len(st.ContainerStatuses) != 2 {
		t.Fatalf("statuses: %d init, %d regular", len(st.InitContainerStatuses), len(st.ContainerStatuses))
	}
	sc := st.InitContainerStatuses[0]
	if sc.State.Running == nil || !sc.Ready || sc.Started == nil || !*sc.Started {
		t.Errorf("native sidecar status: %+v", sc)
	}
	m := st.ContainerStatuses[0]
	if m.State.Terminated == nil || m.State.Terminated.ExitCode != 0 || m.State.Terminated.Reason != "Completed" ||
		m.Ready || *m.Started || m.RestartCount != 1 || m.LastTerminationState.Terminated == nil ||
		m.LastTerminationState.Terminated.ExitCode != 1 || m.ContainerID != "hahaha://main" {
		t.Errorf("main status: %+v", m)
	}
	conds := map[v1.PodConditionType]v1.PodCondition{}
	for _, c := range st.Conditions {
		conds[c.Type] = c
	}
	if c := conds[v1.PodScheduled]; c.Status != v1.ConditionTrue || !c.LastTransitionTime.Equal(&scheduled) {
		t.Errorf("PodScheduled must be kept: %+v", c)
	}
	if c := conds[v1.PodInitialized]; c.Status != v1.ConditionTrue {
		t.Errorf("Initialized: %+v", c)
	}
	if c := conds[v1.PodReady]; c.Status != v1.ConditionFalse || c.Reason != "ContainersNotReady" || !c.LastTransitionTime.Equal(&scheduled) {
		t.Errorf("Ready: %+v", c)
	}
	if c := conds[v1.ContainersReady]; c.Status != v1.ConditionFalse || c.LastTransitionTime.Time != now {
		t.Errorf("ContainersReady: %+v", c)
	}
	if c := conds[v1.PodReadyToStartContainers]; c.Status != v1.ConditionTrue {
		t.Errorf("PodReadyToStartContainers: %+v", c)
	}

	done := buildStatus(statusInput{pod: pod, ctrs: []*ctrState{exited("main", kindRegular, 0)}, phase: v1.PodSucceeded, now: now})
	for _, c := range done.Conditions {
		if c.Type == v1.PodReady && (c.Status != v1.ConditionFalse || c.Reason != "PodCompleted") {
			t.Errorf("terminal Ready: %+v", c)
		}
	}
}

func TestInitializedWhileInitRuns(t *testing.T) {
	st := buildStatus(statusInput{pod: &v1.Pod{}, ctrs: []*ctrState{running("setup", kindInit), waiting("main", kindRegular)},
		phase: v1.PodPending, now: time.Unix(1, 0)})
	for _, c := range st.Conditions {
		if c.Type == v1.PodInitialized && (c.Status != v1.ConditionFalse || c.Message != "containers with incomplete status: [setup]") {
			t.Errorf("Initialized: %+v", c)
		}
	}
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("main waiting reason: %+v", st.ContainerStatuses[0].State)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	cases := map[string]string{
		"$(A)":         "x",
		"$(A)-$(B)":    "x-y",
		"$$(A)":        "$(A)",
		"$(C)":         "$(C)",
		"$A":           "$A",
		"plain":        "plain",
		"$(unclosed":   "$(unclosed",
		"sh -c 'e $1'": "sh -c 'e $1'",
	}
	for in, want := range cases {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
