package main

import (
	"time"
)

// minGracePeriod is the kubelet's minimumGracePeriodInSeconds
// (pkg/kubelet/kuberuntime/kuberuntime_manager.go): every container gets at
// least this long between its stop signal and SIGKILL.
const minGracePeriod = 2

// stopPlan is one round of stopping a pod's containers, as the kubelet's
// killContainersWithSyncResult does it (pkg/kubelet/kuberuntime/
// kuberuntime_container.go): all containers running at start are stopped
// concurrently, each with the same grace period, but a native sidecar first
// waits for its turn (kuberuntime_termination_order.go): until every regular
// container has exited and the next native sidecar in spec order (sidecars
// stop in reverse order) has exited, or until the grace period has passed.
// The time spent waiting, truncated to whole seconds, is taken off the
// sidecar's own grace period, which never drops below minGracePeriod.
type stopPlan struct {
	start time.Time
	grace int64 // seconds
}

func (p stopPlan) deadline() time.Time {
	return p.start.Add(time.Duration(p.grace) * time.Second)
}

// stopTurn reports whether the i-th container may be sent its stop signal
// now. live tells whether a container's process is still there.
func stopTurn(ctrs []*ctrState, live func(name string) bool, i int, plan stopPlan, now time.Time) bool {
	if ctrs[i].kind != kindSidecar || plan.grace <= 0 || !now.Before(plan.deadline()) {
		return true
	}
	for _, c := range ctrs {
		if c.kind == kindRegular && live(c.name) {
			return false
		}
	}
	for _, c := range ctrs[i+1:] {
		if c.kind == kindRegular {
			break
		}
		if c.kind == kindSidecar {
			return !live(c.name)
		}
	}
	return true
}

// killDelay is how long after its stop signal, sent at now, a container is
// killed with SIGKILL.
func killDelay(plan stopPlan, now time.Time) time.Duration {
	g := plan.grace
	if g > 0 {
		g -= int64(now.Sub(plan.start).Seconds())
	}
	if g < minGracePeriod {
		g = minGracePeriod
	}
	return time.Duration(g) * time.Second
}
