package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ctrKind tells how a container takes part in the pod's lifecycle.
type ctrKind int

const (
	kindInit      ctrKind = iota // init container that must complete
	kindSidecar                  // init container with restartPolicy Always (native sidecar)
	kindRegular                  // entry of spec.containers
	kindEphemeral                // entry of spec.ephemeralContainers: run once, never restarted
)

type ctrPhase int

const (
	phaseWaiting ctrPhase = iota
	phaseRunning
	phaseTerminated
)

// termInfo is one finished run of a container.
type termInfo struct {
	exitCode    int32
	signal      int32
	reason      string
	message     string
	startedAt   time.Time
	finishedAt  time.Time
	containerID string
}

// ctrState is what the node knows about one container of a pod. The pure
// functions in this file turn a set of these into the API's PodStatus.
type ctrState struct {
	name   string
	kind   ctrKind
	image  string
	target string // ephemeral containers: targetContainerName

	phase          ctrPhase
	waitingReason  string
	waitingMessage string
	id             string // current or last container ID, "hahaha://..."
	startedAt      time.Time
	term           *termInfo // set while phase == phaseTerminated
	last           *termInfo // the run before the current one
	restarts       int32
	restartPending bool // terminated, will be started again
	stopSent       bool // got its stop signal in the current stop round
}

func (c *ctrState) completedOK() bool {
	return c.phase == phaseTerminated && c.term.exitCode == 0 && !c.restartPending
}

// exitReason is the reason a container runtime gives a finished container.
func exitReason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}

// shouldRestart decides, like the kubelet, whether a container that just
// exited with code gets started again. Native sidecars restart regardless of
// the pod's policy while the pod is not stopping.
func shouldRestart(kind ctrKind, policy v1.RestartPolicy, code int32) bool {
	if kind == kindEphemeral {
		return false
	}
	if kind == kindSidecar {
		return true
	}
	switch policy {
	case v1.RestartPolicyAlways:
		// Init containers of an Always pod are retried only until they succeed.
		return kind == kindRegular || code != 0
	case v1.RestartPolicyOnFailure:
		return code != 0
	default:
		return false
	}
}

// restartBackoff is the delay before the n-th restart (n counts from 0):
// 1s, 2s, 4s, ... capped at max.
func restartBackoff(n int32, max time.Duration) time.Duration {
	d := time.Second
	for i := int32(0); i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// initDone reports whether every regular init container completed and every
// native sidecar has been started once.
func initDone(ctrs []*ctrState) bool {
	for _, c := range ctrs {
		switch c.kind {
		case kindInit:
			if !c.completedOK() {
				return false
			}
		case kindSidecar:
			if c.id == "" {
				return false
			}
		}
	}
	return true
}

// initFailed reports whether a regular init container failed for good.
func initFailed(ctrs []*ctrState) bool {
	for _, c := range ctrs {
		if c.kind == kindInit && c.phase == phaseTerminated && c.term.exitCode != 0 && !c.restartPending {
			return true
		}
	}
	return false
}

// regularsDone reports whether all regular containers have terminated and
// none of them will be restarted: the pod has reached its end.
func regularsDone(ctrs []*ctrState) bool {
	n := 0
	for _, c := range ctrs {
		if c.kind != kindRegular {
			continue
		}
		n++
		if c.phase != phaseTerminated || c.restartPending {
			return false
		}
	}
	return n > 0
}

// desiredPhase is the phase the pod's containers call for. It follows the
// kubelet's getPhase (pkg/kubelet/kubelet_pods.go, v1.37, with the default
// feature gates, so ContainerRestartRules is on): a running native sidecar
// counts as running, a terminated one does not count at all, so its exit code
// never decides the outcome; a regular container that stopped and will be
// restarted keeps the pod Running; podIsTerminal (every process has stopped
// and nothing will be started again) turns "all stopped" into Succeeded or
// Failed whatever the restart policy says.
func desiredPhase(ctrs []*ctrState, policy v1.RestartPolicy, podIsTerminal bool) v1.PodPhase {
	pendingRegularInit, pendingSidecars, failedInitNotRestartable := 0, 0, 0
	running, waiting, stopped, stoppedNotRestartable, succeeded := 0, 0, 0, 0, 0
	for _, c := range ctrs {
		switch c.kind {
		case kindInit:
			switch c.phase {
			case phaseWaiting, phaseRunning:
				pendingRegularInit++
			case phaseTerminated:
				if code := c.term.exitCode; code != 0 && !shouldRestart(c.kind, policy, code) {
					failedInitNotRestartable++
				}
			}
		case kindSidecar:
			switch c.phase {
			case phaseWaiting:
				if c.id == "" {
					pendingSidecars++
					waiting++
				}
			case phaseRunning:
				running++
			}
		case kindRegular:
			switch c.phase {
			case phaseWaiting:
				waiting++
			case phaseRunning:
				running++
			case phaseTerminated:
				stopped++
				if !shouldRestart(c.kind, policy, c.term.exitCode) {
					stoppedNotRestartable++
				}
				if c.term.exitCode == 0 {
					succeeded++
				}
			}
		}
	}
	if failedInitNotRestartable > 0 {
		return v1.PodFailed
	}
	switch {
	case pendingRegularInit > 0 || (pendingSidecars > 0 && !anyRegularStarted(ctrs)):
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0:
		return v1.PodRunning
	case stopped > 0:
		if podIsTerminal {
			if stopped == succeeded {
				return v1.PodSucceeded
			}
			return v1.PodFailed
		}
		if stopped != stoppedNotRestartable {
			return v1.PodRunning
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	return v1.PodPending
}

// statusInput is everything buildStatus needs besides the containers.
type statusInput struct {
	pod          *v1.Pod
	ctrs         []*ctrState
	phase        v1.PodPhase // phase to report
	sandboxReady bool
	podIP        string
	hostIP       string
	startTime    time.Time
	reason       string
	message      string
	now          time.Time
}

// buildStatus renders the PodStatus a kubelet would report.
func buildStatus(in statusInput) v1.PodStatus {
	s := v1.PodStatus{
		Phase:   in.phase,
		Reason:  in.reason,
		Message: in.message,
		HostIP:  in.hostIP,
		PodIP:   in.podIP,
	}
	if in.hostIP != "" {
		s.HostIPs = []v1.HostIP{{IP: in.hostIP}}
	}
	if in.podIP != "" {
		s.PodIPs = []v1.PodIP{{IP: in.podIP}}
	}
	if !in.startTime.IsZero() {
		t := metav1.NewTime(in.startTime)
		s.StartTime = &t
	}
	terminal := in.phase == v1.PodSucceeded || in.phase == v1.PodFailed
	initialized := initDone(in.ctrs)
	for _, c := range in.ctrs {
		cs := containerStatus(c, initialized)
		switch c.kind {
		case kindRegular:
			s.ContainerStatuses = append(s.ContainerStatuses, cs)
		case kindEphemeral:
			s.EphemeralContainerStatuses = append(s.EphemeralContainerStatuses, cs)
		default:
			s.InitContainerStatuses = append(s.InitContainerStatuses, cs)
		}
	}

	var notInit, notReady []string
	for _, c := range in.ctrs {
		switch c.kind {
		case kindInit:
			if !c.completedOK() {
				notInit = append(notInit, c.name)
			}
		case kindSidecar:
			if c.id == "" {
				notInit = append(notInit, c.name)
			}
			if c.phase != phaseRunning {
				notReady = append(notReady, c.name)
			}
		case kindRegular:
			if c.phase != phaseRunning {
				notReady = append(notReady, c.name)
			}
		}
	}
	// Once the regular containers started, the pod stays initialized even
	// when a sidecar restarts.
	if len(notInit) > 0 && anyRegularStarted(in.ctrs) {
		notInit = nil
	}

	var conds []v1.PodCondition
	conds = append(conds, boolCond(v1.PodReadyToStartContainers, in.sandboxReady, "", ""))
	if len(notInit) == 0 {
		conds = append(conds, boolCond(v1.PodInitialized, true, "", ""))
	} else {
		conds = append(conds, boolCond(v1.PodInitialized, false, "ContainersNotInitialized", "containers with incomplete status: "+list(notInit)))
	}
	switch {
	case terminal:
		conds = append(conds, boolCond(v1.ContainersReady, false, "PodCompleted", ""), boolCond(v1.PodReady, false, "PodCompleted", ""))
	case len(notReady) == 0:
		conds = append(conds, boolCond(v1.ContainersReady, true, "", ""), boolCond(v1.PodReady, true, "", ""))
	default:
		msg := "containers with unready status: " + list(notReady)
		conds = append(conds, boolCond(v1.ContainersReady, false, "ContainersNotReady", msg), boolCond(v1.PodReady, false, "ContainersNotReady", msg))
	}
	s.Conditions = mergeConditions(in.pod.Status.Conditions, conds, in.now)
	return s
}

func anyRegularStarted(ctrs []*ctrState) bool {
	for _, c := range ctrs {
		if c.kind == kindRegular && c.id != "" {
			return true
		}
	}
	return false
}

func list(names []string) string { return "[" + strings.Join(names, " ") + "]" }

func boolCond(t v1.PodConditionType, ok bool, reason, msg string) v1.PodCondition {
	st := v1.ConditionFalse
	if ok {
		st = v1.ConditionTrue
	}
	return v1.PodCondition{Type: t, Status: st, Reason: reason, Message: msg}
}

var kubeletConditions = map[v1.PodConditionType]bool{
	v1.PodReadyToStartContainers: true,
	v1.PodInitialized:            true,
	v1.ContainersReady:           true,
	v1.PodReady:                  true,
}

// mergeConditions keeps the conditions the kubelet does not own (such as
// PodScheduled) and sets its own, keeping lastTransitionTime while a
// condition's status does not change.
func mergeConditions(old, own []v1.PodCondition, now time.Time) []v1.PodCondition {
	prev := map[v1.PodConditionType]v1.PodCondition{}
	var out []v1.PodCondition
	for _, c := range old {
		prev[c.Type] = c
		if !kubeletConditions[c.Type] {
			out = append(out, c)
		}
	}
	for _, c := range own {
		if p, ok := prev[c.Type]; ok && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		} else {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		out = append(out, c)
	}
	order := map[v1.PodConditionType]int{v1.PodReadyToStartContainers: 0, v1.PodInitialized: 1, v1.PodReady: 2, v1.ContainersReady: 3, v1.PodScheduled: 4}
	sort.SliceStable(out, func(i, j int) bool {
		oi, ok := order[out[i].Type]
		if !ok {
			oi = 5
		}
		oj, ok := order[out[j].Type]
		if !ok {
			oj = 5
		}
		return oi < oj
	})
	return out
}

func containerStatus(c *ctrState, initialized bool) v1.ContainerStatus {
	cs := v1.ContainerStatus{
		Name:         c.name,
		Image:        c.image,
		ImageID:      "hahaha-image://" + c.image,
		RestartCount: c.restarts,
		ContainerID:  c.id,
	}
	started := false
	switch c.phase {
	case phaseWaiting:
		reason := c.waitingReason
		if reason == "" {
			reason = "ContainerCreating"
			if c.kind == kindRegular && !initialized {
				reason = "PodInitializing"
			}
		}
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: c.waitingMessage}
	case phaseRunning:
		started = true
		cs.Ready = true
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
	case phaseTerminated:
		cs.State.Terminated = terminated(c.term)
		cs.Ready = c.kind == kindInit && c.term.exitCode == 0
	}
	if c.kind == kindEphemeral {
		// Never ready; the kubelet's prober sets started only for init
		// and regular containers.
		cs.Ready = false
	} else {
		cs.Started = &started
	}
	if c.last != nil {
		cs.LastTerminationState.Terminated = terminated(c.last)
	}
	return cs
}

func terminated(t *termInfo) *v1.ContainerStateTerminated {
	ct := &v1.ContainerStateTerminated{
		ExitCode:    t.exitCode,
		Signal:      t.signal,
		Reason:      t.reason,
		Message:     t.message,
		ContainerID: t.containerID,
	}
	if !t.startedAt.IsZero() {
		ct.StartedAt = metav1.NewTime(t.startedAt)
	}
	if !t.finishedAt.IsZero() {
		ct.FinishedAt = metav1.NewTime(t.finishedAt)
	}
	return ct
}

// describeExit turns a wait status into exit code, signal and reason the way
// container runtimes report them: a signalled process exits with 128+signal.
func describeExit(exited bool, code int, signaled bool, sig int) (int32, int32, string, string) {
	if signaled && !exited {
		ec := int32(128 + sig)
		return ec, 0, "Error", fmt.Sprintf("terminated by signal %d", sig)
	}
	return int32(code), 0, exitReason(int32(code)), ""
}
