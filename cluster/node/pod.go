package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

type evKind int

const (
	evUpdate   evKind = iota // a new version of the pod object
	evExit                   // a container process was reaped
	evRestart                // a restart back-off expired
	evKill                   // a container's grace period expired: SIGKILL it
	evTurn                   // a stop plan's grace period passed: every container's turn
	evRetry                  // retry creating the sandbox
	evGone                   // the pod object was deleted from the API
	evShutdown               // the node stops
)

type event struct {
	kind evKind
	pod  *v1.Pod
	name string
	run  int
	ack  chan struct{}
	wait time.Duration
}

// lifecycle is where a pod worker is in its pod's life. It only moves
// forward, one step at a time except that a deletion or the end of the
// worker can cut steps short:
//
//	starting -> running -> stopping -> finished -> deleting
//	    \__________________^ (deleted before the sandbox came up)
//	any -> gone (pod object deleted from the API, or node shutdown)
type lifecycle int

const (
	// lifeStarting: no sandbox yet; creating it is retried every 2 s.
	lifeStarting lifecycle = iota
	// lifeRunning: the sandbox is up; containers are started in order and
	// restarted by policy.
	lifeRunning
	// lifeStopping: the stop plan w.stop is in force (SIGTERM in turn,
	// SIGKILL at each container's deadline); nothing starts or restarts.
	lifeStopping
	// lifeFinished: every process has stopped and the sandbox is torn
	// down; w.finalPhase is the pod's phase.
	lifeFinished
	// lifeDeleting: finished, and the pod object has a deletionTimestamp:
	// the status writer writes the final status, then deletes the object.
	lifeDeleting
	// lifeGone: the worker has ended (the pod object was deleted from the
	// API, or the node shuts down). Nothing happens any more.
	lifeGone
)

func (l lifecycle) String() string {
	return [...]string{"starting", "running", "stopping", "finished", "deleting", "gone"}[l]
}

// podWorker owns one pod: its sandbox (pause process and network
// namespace), its container processes and the status reported for it.
//
// Locking: every field below mu is guarded by it. The worker's goroutine
// (run) makes all changes, each event in one critical section (step): the
// methods it calls there (handle, reconcile, publish and their helpers) run
// with mu held and never release it. Waiting for processes to die (end)
// happens outside the lock. The HTTP handlers and the status writer take mu
// only to copy what they need. Processes (*proc) may be signalled and waited
// for without mu.
type podWorker struct {
	k          *kubelet
	uid        types.UID
	events     chan event
	quit       chan struct{}
	statusKick chan struct{}
	logBase    string
	observe    func(v1.PodStatus) // for tests: called with every new status

	mu         sync.Mutex
	life       lifecycle
	pod        *v1.Pod // latest version; deletion is pod.DeletionTimestamp != nil
	ctrs       []*ctrState
	specs      map[string]*v1.Container
	procs      map[string]*proc // container name -> current process, until reaped
	runs       map[string]int   // container name -> run number, to drop stale events
	envs       map[string][]string
	pause      *proc    // the pod's pause process (nil for hostNetwork pods)
	netns      *os.File // the pod's network namespace while the sandbox is up
	sandboxErr string   // last sandbox creation error, while starting
	startTime  time.Time
	stop       stopPlan    // the current stop round, from lifeStopping on
	lastPhase  v1.PodPhase // phase last reported before lifeFinished
	finalPhase v1.PodPhase // the pod's phase from lifeFinished on
	status     *v1.PodStatus
	statusGen  int
}

func podKey(ns, name string) string { return ns + "/" + name }

func newPodWorker(k *kubelet, pod *v1.Pod) *podWorker {
	w := &podWorker{
		k:          k,
		uid:        pod.UID,
		events:     make(chan event, 256),
		quit:       make(chan struct{}),
		statusKick: make(chan struct{}, 1),
		pod:        pod,
		specs:      map[string]*v1.Container{},
		procs:      map[string]*proc{},
		runs:       map[string]int{},
		envs:       map[string][]string{},
		logBase:    filepath.Join(k.rt.logDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		kind := kindInit
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			kind = kindSidecar
		}
		w.ctrs = append(w.ctrs, &ctrState{name: c.Name, kind: kind, image: c.Image})
		w.specs[c.Name] = c
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		w.ctrs = append(w.ctrs, &ctrState{name: c.Name, kind: kindRegular, image: c.Image})
		w.specs[c.Name] = c
	}
	w.addEphemeral()
	switch {
	case pod.Status.Phase == v1.PodSucceeded || pod.Status.Phase == v1.PodFailed:
		// Finished before this node process started: nothing to run.
		w.life = lifeFinished
		w.finalPhase = pod.Status.Phase
	case pod.Status.StartTime != nil:
		w.recoverFromStatus()
	}
	return w
}

// recoverFromStatus handles a pod that an earlier run of the node had
// started. Its processes are gone (they die with the node), so containers
// that were running are reported the way a kubelet reports containers that
// vanished, and the restart policy decides what happens next.
func (w *podWorker) recoverFromStatus() {
	w.startTime = w.pod.Status.StartTime.Time
	all := append(append([]v1.ContainerStatus{}, w.pod.Status.InitContainerStatuses...), w.pod.Status.ContainerStatuses...)
	byName := map[string]v1.ContainerStatus{}
	for _, cs := range all {
		byName[cs.Name] = cs
	}
	now := time.Now()
	for _, c := range w.ctrs {
		cs, ok := byName[c.name]
		if !ok || cs.ContainerID == "" {
			continue
		}
		c.id = cs.ContainerID
		c.restarts = cs.RestartCount
		if t := cs.LastTerminationState.Terminated; t != nil {
			c.last = termFromAPI(t)
		}
		c.phase = phaseTerminated
		if t := cs.State.Terminated; t != nil {
			c.term = termFromAPI(t)
		} else {
			started := now
			if cs.State.Running != nil {
				started = cs.State.Running.StartedAt.Time
			}
			c.term = &termInfo{exitCode: 137, reason: "ContainerStatusUnknown",
				message: "The container could not be located when the node restarted", startedAt: started, finishedAt: now, containerID: c.id}
		}
		if shouldRestart(c.kind, w.pod.Spec.RestartPolicy, c.term.exitCode) {
			c.restartPending = true
			w.scheduleRestart(c)
		}
	}
}

// addEphemeral takes in the entries of spec.ephemeralContainers it does not
// know yet (they can only be added, never changed or removed). mu held, or
// not yet shared.
func (w *podWorker) addEphemeral() {
	for i := range w.pod.Spec.EphemeralContainers {
		ec := &w.pod.Spec.EphemeralContainers[i]
		if _, ok := w.specs[ec.Name]; ok {
			continue
		}
		c := v1.Container(ec.EphemeralContainerCommon)
		w.ctrs = append(w.ctrs, &ctrState{name: ec.Name, kind: kindEphemeral, image: ec.Image, target: ec.TargetContainerName})
		w.specs[ec.Name] = &c
		log.Printf("pod %s: ephemeral container %s added (target %q)", podKey(w.pod.Namespace, w.pod.Name), ec.Name, ec.TargetContainerName)
	}
}

func termFromAPI(t *v1.ContainerStateTerminated) *termInfo {
	return &termInfo{exitCode: t.ExitCode, signal: t.Signal, reason: t.Reason, message: t.Message,
		startedAt: t.StartedAt.Time, finishedAt: t.FinishedAt.Time, containerID: t.ContainerID}
}

func (w *podWorker) send(ev event) {
	select {
	case w.events <- ev:
	case <-w.quit:
	}
}

func (w *podWorker) after(d time.Duration, ev event) {
	time.AfterFunc(d, func() { w.send(ev) })
}

func (w *podWorker) ctr(name string) *ctrState {
	for _, c := range w.ctrs {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is the worker's goroutine: one step per event until the pod object is
// gone or the node shuts down.
func (w *podWorker) run() {
	go w.statusLoop()
	w.step(func() {
		if w.deleting() {
			w.onDeletion()
		}
	})
	for ev := range w.events {
		if ev.kind == evGone || ev.kind == evShutdown {
			w.end(ev)
			close(w.quit)
			if ev.ack != nil {
				close(ev.ack)
			}
			return
		}
		w.step(func() { w.handle(ev) })
	}
}

// step applies one change, then starts or stops what the new state calls
// for and publishes the resulting status, all in one critical section.
func (w *podWorker) step(change func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	change()
	w.reconcile()
	w.publish()
}

func (w *podWorker) deleting() bool { return w.pod.DeletionTimestamp != nil }

// handle applies one event (not evGone or evShutdown, see end). mu held.
func (w *podWorker) handle(ev event) {
	switch ev.kind {
	case evUpdate:
		wasDeleting := w.deleting()
		w.pod = ev.pod
		w.addEphemeral()
		if !wasDeleting && w.deleting() {
			w.onDeletion()
		}
	case evExit:
		if w.runs[ev.name] == ev.run {
			w.onExit(w.ctr(ev.name))
		}
	case evRestart:
		c := w.ctr(ev.name)
		if c != nil && c.restartPending && w.runs[c.name] == ev.run && w.life < lifeStopping {
			w.startCtr(c)
		}
	case evKill:
		if p := w.procs[ev.name]; p != nil && w.runs[ev.name] == ev.run && !p.exited() {
			log.Printf("pod %s container %s: grace period over, SIGKILL", podKey(w.pod.Namespace, w.pod.Name), ev.name)
			p.signal(syscall.SIGKILL)
		}
	case evTurn, evRetry:
		// Only a reason to reconcile.
	}
}

// onDeletion starts stopping a pod whose deletionTimestamp was just seen,
// with the pod worker's calculateEffectiveGracePeriod: the deletion grace
// period, at least 1 s. mu held.
func (w *podWorker) onDeletion() {
	grace := int64(30)
	if w.pod.DeletionGracePeriodSeconds != nil {
		grace = *w.pod.DeletionGracePeriodSeconds
	}
	if grace < 1 {
		grace = 1
	}
	w.beginStop(grace)
}

// end finishes the worker for evGone (kill everything now) or evShutdown
// (SIGTERM, then SIGKILL after ev.wait). It waits for the processes with mu
// released, taking it only to read and to tear down.
func (w *podWorker) end(ev event) {
	ps := w.runningProcs()
	if ev.kind == evShutdown {
		for _, p := range ps {
			p.signal(syscall.SIGTERM)
		}
		waitAll(ps, ev.wait)
	}
	for _, p := range ps {
		p.signal(syscall.SIGKILL)
	}
	waitAll(ps, 2*time.Second)
	if pause := w.teardownForGood(); pause != nil {
		waitAll([]*proc{pause}, time.Second)
	}
	if ev.kind == evGone {
		_ = os.RemoveAll(filepath.Join(w.k.rt.volDir, filepath.Base(w.logBase)))
	}
}

func (w *podWorker) runningProcs() []*proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running()
}

// teardownForGood kills the pause process, closes the network namespace
// and marks the worker gone; it returns the pause process to wait for.
func (w *podWorker) teardownForGood() *proc {
	w.mu.Lock()
	defer w.mu.Unlock()
	pause := w.pause
	w.teardown()
	w.life = lifeGone
	return pause
}

func (w *podWorker) running() []*proc {
	var ps []*proc
	for _, p := range w.procs {
		if !p.exited() {
			ps = append(ps, p)
		}
	}
	return ps
}

// onExit records the end of a container's process and applies the restart
// policy.
func (w *podWorker) onExit(c *ctrState) {
	p := w.procs[c.name]
	if c == nil || p == nil {
		return
	}
	delete(w.procs, c.name)
	code, sig, reason, msg := p.exitInfo()
	c.phase = phaseTerminated
	c.term = &termInfo{exitCode: code, signal: sig, reason: reason, message: msg,
		startedAt: c.startedAt, finishedAt: p.ended, containerID: c.id}
	log.Printf("pod %s container %s exited with %d (%s)", podKey(w.pod.Namespace, w.pod.Name), c.name, code, reason)
	if w.life < lifeStopping && shouldRestart(c.kind, w.pod.Spec.RestartPolicy, code) {
		c.restartPending = true
		w.scheduleRestart(c)
	}
}

func (w *podWorker) scheduleRestart(c *ctrState) {
	d := restartBackoff(c.restarts, w.k.cfg.maxBackoff)
	w.after(d, event{kind: evRestart, name: c.name, run: w.runs[c.name]})
}

// reconcile starts what should run next and stops what should stop, moving
// the worker along its lifecycle. mu held.
func (w *podWorker) reconcile() {
	if w.life == lifeStarting {
		if err := w.createSandbox(); err != nil {
			w.sandboxErr = err.Error()
			log.Printf("pod %s: sandbox: %v", podKey(w.pod.Namespace, w.pod.Name), err)
			w.after(2*time.Second, event{kind: evRetry})
			return
		}
		w.sandboxErr = ""
		w.life = lifeRunning
	}
	if w.life == lifeRunning {
		w.startNext()
		w.startEphemeral()
		if initFailed(w.ctrs) || regularsDone(w.ctrs) {
			// computePodActions' KillPod: nothing to keep and nothing to
			// start, so native sidecars are stopped too and not restarted.
			// setTerminationGracePeriod: the pod's
			// terminationGracePeriodSeconds (the API server defaults it to
			// 30), else the 2 s minimum.
			grace := int64(minGracePeriod)
			if w.pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = *w.pod.Spec.TerminationGracePeriodSeconds
			}
			w.beginStop(grace)
		}
	}
	if w.life == lifeStopping {
		w.advanceStop()
		if len(w.procs) == 0 {
			w.finish()
		}
	}
	if w.life == lifeFinished && w.deleting() {
		w.requestDelete()
	}
}

// startNext runs init containers one after another (native sidecars are
// started and left running), then all regular containers.
func (w *podWorker) startNext() {
	for _, c := range w.ctrs {
		switch c.kind {
		case kindSidecar:
			if c.id == "" {
				w.startCtr(c)
			}
		case kindInit:
			if c.completedOK() {
				continue
			}
			if c.phase == phaseWaiting && c.id == "" {
				w.startCtr(c)
			}
			return
		}
	}
	for _, c := range w.ctrs {
		if c.kind == kindRegular && c.phase == phaseWaiting && c.id == "" {
			w.startCtr(c)
		}
	}
}

// startEphemeral starts each ephemeral container that never ran, like the
// kubelet's computePodActions (EphemeralContainersToStart: those without a
// runtime status, even before the pod is initialized). One with a target
// joins the PID namespace of the target's running process. When the target
// never ran, the kubelet's getTargetID fails (CreateContainerConfigError);
// when it is not running, containerd refuses to create the container
// (validateTargetContainer: CreateContainerError). Either way the
// ephemeral container stays waiting with that reason and is tried again at
// the next sync (here: every reconcile), so it still runs if the target
// is restarted. mu held.
func (w *podWorker) startEphemeral() {
	for _, c := range w.ctrs {
		if c.kind != kindEphemeral || c.id != "" {
			continue
		}
		if c.target != "" {
			tc := w.ctr(c.target)
			if tc == nil || tc.id == "" {
				c.waitingReason = "CreateContainerConfigError"
				c.waitingMessage = fmt.Sprintf("unable to find target container %s", c.target)
				continue
			}
			if p := w.procs[c.target]; p == nil || p.exited() {
				c.waitingReason = "CreateContainerError"
				c.waitingMessage = fmt.Sprintf("failed to generate container spec: invalid target container: container %q is not running - in state CONTAINER_EXITED",
					strings.TrimPrefix(tc.id, "hahaha://"))
				continue
			}
		}
		c.waitingReason, c.waitingMessage = "", ""
		w.startCtr(c)
	}
}

// beginStop starts stopping every container with a grace period in
// seconds; reconcile sends the signals (advanceStop). Nothing is restarted
// any more. A later call (the pod was deleted while its containers were
// being stopped) starts a new round only if that ends sooner, like the pod
// worker, which only ever shortens a grace period.
func (w *podWorker) beginStop(grace int64) {
	now := time.Now()
	plan := stopPlan{start: now, grace: grace}
	switch {
	case w.life > lifeStopping:
		return
	case w.life == lifeStopping && !plan.deadline().Before(w.stop.deadline()):
		return
	case w.life < lifeStopping:
		w.life = lifeStopping
		for _, c := range w.ctrs {
			c.restartPending = false
		}
	}
	w.stop = plan
	for _, c := range w.ctrs {
		c.stopSent = false
	}
	if grace > 0 {
		w.after(time.Duration(grace)*time.Second, event{kind: evTurn})
	}
}

// advanceStop sends the stop signal (SIGTERM) to every running container
// whose turn has come (stopTurn) and has not had it in this round, and
// schedules its SIGKILL (killDelay).
func (w *podWorker) advanceStop() {
	now := time.Now()
	live := func(name string) bool {
		p := w.procs[name]
		return p != nil && !p.exited()
	}
	for i, c := range w.ctrs {
		p := w.procs[c.name]
		if p == nil || p.exited() || c.stopSent || !stopTurn(w.ctrs, live, i, w.stop, now) {
			continue
		}
		c.stopSent = true
		d := killDelay(w.stop, now)
		log.Printf("pod %s container %s: SIGTERM, SIGKILL in %s", podKey(w.pod.Namespace, w.pod.Name), c.name, d)
		p.signal(syscall.SIGTERM)
		w.after(d, event{kind: evKill, name: c.name, run: w.runs[c.name]})
	}
}

// finish ends lifeStopping once no process is left. mu held.
func (w *podWorker) finish() {
	w.teardown()
	w.life = lifeFinished
	phase := desiredPhase(w.ctrs, w.pod.Spec.RestartPolicy, true)
	if phase != v1.PodSucceeded && phase != v1.PodFailed {
		phase = v1.PodFailed
		if regularsAllSucceeded(w.ctrs) {
			phase = v1.PodSucceeded
		}
	}
	w.finalPhase = phase
	log.Printf("pod %s finished: %s", podKey(w.pod.Namespace, w.pod.Name), phase)
}

func regularsAllSucceeded(ctrs []*ctrState) bool {
	for _, c := range ctrs {
		if c.kind == kindRegular && (c.phase != phaseTerminated || c.term.exitCode != 0) {
			return false
		}
	}
	return true
}

// teardown kills the pause process and lets go of the network namespace.
func (w *podWorker) teardown() {
	if w.pause != nil {
		w.pause.signal(syscall.SIGKILL)
		w.pause = nil
	}
	if w.netns != nil {
		w.netns.Close()
		w.netns = nil
	}
}

// createSandbox gives the pod its network namespace: a new one held by a
// pause process, or the node's own for hostNetwork pods.
func (w *podWorker) createSandbox() error {
	if w.pod.Spec.HostNetwork {
		ns, err := os.Open("/proc/self/ns/net")
		if err != nil {
			return err
		}
		w.netns = ns
	} else {
		p, ns, err := w.k.rt.startPause(podKey(w.pod.Namespace, w.pod.Name))
		if err != nil {
			return err
		}
		w.pause, w.netns = p, ns
	}
	if w.startTime.IsZero() {
		w.startTime = time.Now()
	}
	return nil
}

func (w *podWorker) startCtr(c *ctrState) {
	spec := w.specs[c.name]
	if c.phase == phaseTerminated {
		c.last = c.term
		c.restarts++
	}
	c.restartPending = false
	c.stopSent = false
	c.term = nil
	w.runs[c.name]++
	run := w.runs[c.name]
	c.id = "hahaha://" + newID()

	env := w.containerEnv(spec)
	w.envs[c.name] = env
	argv := append(expandAll(spec.Command, env), expandAll(spec.Args, env)...)
	var err error
	var p *proc
	var started time.Time
	if len(argv) == 0 {
		err = fmt.Errorf("container %q has neither command nor args: hahaha-node runs only commands, images are names", c.name)
		started = time.Now()
	} else {
		hostname := w.hostname()
		if len(hostname) > 63 {
			hostname = hostname[:63]
		}
		cs := ctrSpec{
			argv:     argv,
			env:      env,
			workDir:  spec.WorkingDir,
			hostname: hostname,
			netns:    w.netns,
			logPath:  w.logPath(c.name, c.restarts),
		}
		if w.k.profiles.forContainer(w.pod, c.name, c.image) == profileDistroless {
			cs.root = &rootSpec{Dir: w.k.rt.rootDir, Volumes: w.volumeMounts(spec)}
		}
		if c.kind == kindEphemeral && c.target != "" {
			if tp := w.procs[c.target]; tp != nil {
				cs.pidTarget = tp.pid
			}
		}
		p, started, err = w.k.rt.startContainer(cs, func(p *proc) {
			w.send(event{kind: evExit, name: c.name, run: run})
		})
	}
	c.startedAt = started
	if err != nil {
		log.Printf("pod %s container %s: start: %v", podKey(w.pod.Namespace, w.pod.Name), c.name, err)
		c.phase = phaseTerminated
		c.term = &termInfo{exitCode: 128, reason: "StartError", message: err.Error(),
			startedAt: started, finishedAt: started, containerID: c.id}
		if w.life < lifeStopping && shouldRestart(c.kind, w.pod.Spec.RestartPolicy, 128) {
			c.restartPending = true
			w.scheduleRestart(c)
		}
		return
	}
	w.procs[c.name] = p
	c.phase = phaseRunning
	log.Printf("pod %s container %s started (pid %d)", podKey(w.pod.Namespace, w.pod.Name), c.name, p.pid)
}

// volumeMounts are the bind mounts a distroless root gets for the
// container's volumeMounts: hostPath volumes from their host path, emptyDir
// volumes from a directory per pod in the state directory. Other volume
// types are ignored, as everywhere on this node (a container on the host's
// file system sees the host's paths instead). mu held.
func (w *podWorker) volumeMounts(spec *v1.Container) []bindMount {
	vols := map[string]*v1.Volume{}
	for i := range w.pod.Spec.Volumes {
		vols[w.pod.Spec.Volumes[i].Name] = &w.pod.Spec.Volumes[i]
	}
	var out []bindMount
	for _, m := range spec.VolumeMounts {
		v := vols[m.Name]
		if v == nil {
			continue
		}
		var src string
		switch {
		case v.HostPath != nil:
			src = v.HostPath.Path
		case v.EmptyDir != nil:
			src = filepath.Join(w.k.rt.volDir, filepath.Base(w.logBase), v.Name)
			if err := os.MkdirAll(src, 0o777); err != nil {
				log.Printf("pod %s: emptyDir %s: %v", podKey(w.pod.Namespace, w.pod.Name), v.Name, err)
				continue
			}
		default:
			continue
		}
		out = append(out, bindMount{Src: src, Dst: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return out
}

// hostname is the pod's name (or spec.hostname), or the node's hostname for
// hostNetwork pods.
func (w *podWorker) hostname() string {
	if w.pod.Spec.HostNetwork {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	if w.pod.Spec.Hostname != "" {
		return w.pod.Spec.Hostname
	}
	return w.pod.Name
}

func (w *podWorker) logPath(name string, restart int32) string {
	return filepath.Join(w.logBase, name, strconv.Itoa(int(restart))+".log")
}

// containerEnv builds the environment of a container: a default PATH with
// --path-prepend first, HOSTNAME and HOME, then spec.env in order with
// $(VAR) references expanded as the kubelet does.
func (w *podWorker) containerEnv(c *v1.Container) []string {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if w.k.cfg.pathPrepend != "" {
		path = w.k.cfg.pathPrepend + ":" + path
	}
	hostname := w.hostname()
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", path)
	set("HOSTNAME", hostname)
	set("HOME", "/root")
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			if v, ok := w.fieldValue(e.ValueFrom); ok {
				set(e.Name, v)
			}
			continue
		}
		set(e.Name, expand(e.Value, vars))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out
}

func (w *podWorker) fieldValue(src *v1.EnvVarSource) (string, bool) {
	if src.FieldRef == nil {
		return "", false
	}
	p := w.pod
	switch src.FieldRef.FieldPath {
	case "metadata.name":
		return p.Name, true
	case "metadata.namespace":
		return p.Namespace, true
	case "metadata.uid":
		return string(p.UID), true
	case "spec.nodeName":
		return p.Spec.NodeName, true
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, true
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", true
	}
	if strings.HasPrefix(src.FieldRef.FieldPath, "metadata.labels['") {
		k := strings.TrimSuffix(strings.TrimPrefix(src.FieldRef.FieldPath, "metadata.labels['"), "']")
		return p.Labels[k], true
	}
	if strings.HasPrefix(src.FieldRef.FieldPath, "metadata.annotations['") {
		k := strings.TrimSuffix(strings.TrimPrefix(src.FieldRef.FieldPath, "metadata.annotations['"), "']")
		return p.Annotations[k], true
	}
	return "", false
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if i := strings.IndexByte(kv, '='); i > 0 {
			m[kv[:i]] = kv[i+1:]
		}
	}
	return m
}

func expandAll(in []string, env []string) []string {
	m := envMap(env)
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, expand(s, m))
	}
	return out
}

// expand replaces $(VAR) with the variable's value when it is defined and
// $$ with $, leaving anything else as written (the kubelet's rules).
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// publish computes the status to report and hands it to the status writer.
func (w *podWorker) publish() {
	finished := w.life >= lifeFinished
	phase := desiredPhase(w.ctrs, w.pod.Spec.RestartPolicy, false)
	switch {
	case finished:
		phase = w.finalPhase
	case phase == v1.PodSucceeded || phase == v1.PodFailed:
		// Terminal only once every process stopped, like the kubelet's
		// status manager.
		phase = w.lastPhase
		if phase == "" {
			phase = v1.PodPending
		}
	}
	if !finished {
		w.lastPhase = phase
	}
	in := statusInput{
		pod:          w.pod,
		ctrs:         w.ctrs,
		phase:        phase,
		sandboxReady: w.netns != nil,
		hostIP:       "127.0.0.1",
		startTime:    w.startTime,
		now:          time.Now(),
	}
	if w.netns != nil || finished {
		in.podIP = "127.0.0.1"
	}
	if w.sandboxErr != "" {
		in.message = "sandbox: " + w.sandboxErr
	}
	if finished && w.startTime.IsZero() {
		// A pod that was already finished when the node started: leave
		// its status as it is.
		return
	}
	st := buildStatus(in)
	if w.status != nil && apiequality.Semantic.DeepEqual(*w.status, st) {
		return
	}
	w.status = &st
	w.statusGen++
	if w.observe != nil {
		w.observe(st)
	}
	select {
	case w.statusKick <- struct{}{}:
	default:
	}
}

// requestDelete moves a finished, deleted pod to lifeDeleting and wakes the
// status writer, which deletes the object after the final status. mu held.
func (w *podWorker) requestDelete() {
	w.life = lifeDeleting
	select {
	case w.statusKick <- struct{}{}:
	default:
	}
}

// statusLoop writes the latest status with a merge patch on pods/status and,
// after the final status of a deleted pod, deletes the pod object with grace
// period 0 and a UID precondition, as the kubelet does.
func (w *podWorker) statusLoop() {
	written := 0
	deleted := false
	for {
		select {
		case <-w.quit:
			return
		case <-w.statusKick:
		}
		w.mu.Lock()
		st, gen := w.status, w.statusGen
		ns, name, uid := w.pod.Namespace, w.pod.Name, w.pod.UID
		wantDelete := w.life == lifeDeleting
		w.mu.Unlock()

		if st != nil && gen != written {
			if err := w.k.patchStatus(ns, name, uid, st); err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					continue
				}
				log.Printf("pod %s: status update: %v", podKey(ns, name), err)
				w.retryKick()
				continue
			}
			written = gen
		}
		if wantDelete && !deleted {
			zero := int64(0)
			err := w.k.client.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{
				GracePeriodSeconds: &zero,
				Preconditions:      &metav1.Preconditions{UID: &uid},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				log.Printf("pod %s: delete: %v", podKey(ns, name), err)
				w.retryKick()
				continue
			}
			deleted = true
		}
	}
}

func (w *podWorker) retryKick() {
	time.AfterFunc(300*time.Millisecond, func() {
		select {
		case w.statusKick <- struct{}{}:
		default:
		}
	})
}

func (k *kubelet) patchStatus(ns, name string, uid types.UID, st *v1.PodStatus) error {
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": uid},
		"status":   st,
	})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Pods(ns).Patch(context.Background(), name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}
