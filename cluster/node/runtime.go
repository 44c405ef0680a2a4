package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// markerEnv is set in the environment of every process the node starts
// (pause processes and container PID 1s). Its value is unique per process
// and is written to the state directory with the pid and the process start
// time, so that a later run can kill leftovers and nothing else.
const markerEnv = "HAHAHA_NODE_PROCESS"

type procRecord struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Marker    string `json:"marker"`
	What      string `json:"what"`
}

type nodeRuntime struct {
	stateDir string
	nodeName string
	procDir  string
	logDir   string
	rootDir  string // empty mount point on which distroless roots are built
	volDir   string // emptyDir volumes of distroless containers
}

func newRuntime(stateDir, nodeName string) (*nodeRuntime, error) {
	rt := &nodeRuntime{
		stateDir: stateDir,
		nodeName: nodeName,
		procDir:  filepath.Join(stateDir, "procs"),
		logDir:   filepath.Join(stateDir, "logs"),
		rootDir:  filepath.Join(stateDir, "rootfs"),
		volDir:   filepath.Join(stateDir, "volumes"),
	}
	for _, d := range []string{rt.procDir, rt.logDir, rt.rootDir, rt.volDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// procStartTime reads field 22 of /proc/<pid>/stat (start time in clock
// ticks since boot), which tells a process apart from a later one that got
// the same pid.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, errors.New("short stat")
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

func procHasMarker(pid int, marker string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	want := markerEnv + "=" + marker
	for _, kv := range bytes.Split(b, []byte{0}) {
		if string(kv) == want {
			return true
		}
	}
	return false
}

func (rt *nodeRuntime) recordPath(marker string) string {
	return filepath.Join(rt.procDir, marker+".json")
}

func (rt *nodeRuntime) record(pid int, marker, what string) {
	st, err := procStartTime(pid)
	if err != nil {
		log.Printf("record pid %d: %v", pid, err)
		return
	}
	b, _ := json.Marshal(procRecord{Pid: pid, StartTime: st, Marker: marker, What: what})
	tmp := rt.recordPath(marker) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, rt.recordPath(marker))
	}
}

func (rt *nodeRuntime) forget(marker string) {
	_ = os.Remove(rt.recordPath(marker))
}

// killStale kills processes recorded by an earlier run of the node that are
// still alive. A record is acted on only when the pid still has the recorded
// start time and carries the recorded marker in its environment.
func (rt *nodeRuntime) killStale() {
	entries, err := os.ReadDir(rt.procDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(rt.procDir, e.Name())
		b, err := os.ReadFile(p)
		_ = os.Remove(p)
		if err != nil || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var r procRecord
		if json.Unmarshal(b, &r) != nil || r.Pid <= 1 || r.Marker == "" {
			continue
		}
		st, err := procStartTime(r.Pid)
		if err != nil || st != r.StartTime || !procHasMarker(r.Pid, r.Marker) {
			continue
		}
		log.Printf("killing leftover %s (pid %d) of an earlier run", r.What, r.Pid)
		_ = syscall.Kill(r.Pid, syscall.SIGKILL)
	}
}

// proc is one process started by the node, with its own reaper goroutine.
type proc struct {
	cmd    *exec.Cmd
	pid    int
	marker string
	done   chan struct{} // closed once the process was reaped
	state  *os.ProcessState
	ended  time.Time
}

// reap waits for the process, records how it ended, forgets its record and
// then calls onExit (when given). Run it in the process's own goroutine.
func (rt *nodeRuntime) reap(p *proc, onExit func(*proc)) {
	st, _ := p.cmd.Process.Wait()
	p.state = st
	p.ended = time.Now()
	rt.forget(p.marker)
	close(p.done)
	if onExit != nil {
		onExit(p)
	}
}

func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	// os.Process signals through a pidfd where the kernel has them, so a
	// reaped pid is never signalled.
	_ = p.cmd.Process.Signal(sig)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startPause starts a pod's pause process in a new network namespace and
// returns it with an open handle on that namespace.
func (rt *nodeRuntime) startPause(podKey string) (*proc, *os.File, error) {
	marker := newID()
	cmd := exec.Command("/proc/self/exe", pauseArg, podKey)
	cmd.Env = []string{markerEnv + "=" + marker}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, marker: marker, done: make(chan struct{})}
	rt.record(p.pid, marker, "pause process of "+podKey)
	line, _ := bufio.NewReader(out).ReadString('\n')
	out.Close()
	if strings.TrimSpace(line) != "ok" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		rt.forget(marker)
		return nil, nil, fmt.Errorf("pause process: %s", strings.TrimSpace(line))
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", p.pid))
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		rt.forget(marker)
		return nil, nil, err
	}
	go rt.reap(p, nil)
	return p, ns, nil
}

type ctrSpec struct {
	argv     []string
	env      []string
	workDir  string
	hostname string
	netns    *os.File
	logPath  string
	root     *rootSpec // nil: the host's file system
	// pidTarget, when non-zero, is a process whose PID namespace the
	// container joins instead of getting its own (ephemeral containers).
	pidTarget int
}

// rootSpec asks the init for a distroless root (distrolessRoot in shim.go).
type rootSpec struct {
	Dir     string      `json:"dir"` // an empty directory on the host to build it on
	Volumes []bindMount `json:"volumes,omitempty"`
}

type bindMount struct {
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// startContainer starts argv as PID 1 of new PID, mount and UTS namespaces
// inside the pod's network namespace. It returns once the command has been
// executed (or failed to start); onExit runs after the process was reaped.
func (rt *nodeRuntime) startContainer(spec ctrSpec, onExit func(*proc)) (*proc, time.Time, error) {
	if err := os.MkdirAll(filepath.Dir(spec.logPath), 0o755); err != nil {
		return nil, time.Time{}, err
	}
	logf, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer logf.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	defer errR.Close()

	marker := newID()
	rootArg := ""
	if spec.root != nil {
		b, err := json.Marshal(spec.root)
		if err != nil {
			return nil, time.Time{}, err
		}
		rootArg = string(b)
	}
	args := append([]string{initArg, spec.hostname, spec.workDir, rootArg, "--"}, spec.argv...)
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(append([]string{}, spec.env...), markerEnv+"="+marker)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{errW, spec.netns}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Pdeathsig:  syscall.SIGKILL,
		Setpgid:    true,
	}
	p := &proc{cmd: cmd, marker: marker, done: make(chan struct{})}
	if spec.pidTarget != 0 {
		cmd.SysProcAttr.Cloneflags &^= syscall.CLONE_NEWPID
		// No Pdeathsig: Go's child compares getppid() with the parent's
		// pid to catch a parent that already died, and in a PID namespace
		// joined with setns getppid() is 0, so the child would kill
		// itself. The process dies with the target's PID 1 anyway: the
		// kernel kills a PID namespace's members when its init dies, and
		// that init has Pdeathsig.
		cmd.SysProcAttr.Pdeathsig = 0
		err = startInPIDNamespace(cmd, spec.pidTarget)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		errW.Close()
		return nil, time.Time{}, err
	}
	errW.Close()
	p.pid = cmd.Process.Pid
	rt.record(p.pid, marker, "container "+spec.hostname+"/"+filepath.Base(filepath.Dir(spec.logPath)))
	msg, _ := io.ReadAll(errR)
	started := time.Now()
	if len(msg) > 0 {
		_ = cmd.Wait()
		close(p.done)
		rt.forget(marker)
		return nil, started, errors.New(string(msg))
	}
	go rt.reap(p, onExit)
	return p, started, nil
}

// startInPIDNamespace starts cmd as a member of the PID namespace of the
// process target: a locked OS thread joins that namespace for its children
// (setns with CLONE_NEWPID changes only where children go), forks there and
// returns to the node's own namespace before it is unlocked. The thread must
// not end: a thread's end sends Pdeathsig to every child it ever forked
// (other containers too), so if it cannot return it stays parked for good.
func startInPIDNamespace(cmd *exec.Cmd, target int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/pid_for_children")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer own.Close()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", target))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID)
		ns.Close()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("join PID namespace of pid %d: %w", target, err)
			return
		}
		errc <- cmd.Start()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWPID); err != nil {
			log.Printf("return to the node's PID namespace: %v; parking the thread", err)
			select {}
		}
		runtime.UnlockOSThread()
	}()
	return <-errc
}

// exitInfo reads exit code and signal from a reaped process.
func (p *proc) exitInfo() (int32, int32, string, string) {
	if p.state == nil {
		return 255, 0, "Error", "process state unknown"
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	if !ok {
		return int32(p.state.ExitCode()), 0, exitReason(int32(p.state.ExitCode())), ""
	}
	sig := 0
	if ws.Signaled() {
		sig = int(ws.Signal())
	}
	return describeExit(ws.Exited(), ws.ExitStatus(), ws.Signaled(), sig)
}

// waitAll waits until every given process is reaped or the deadline passes.
func waitAll(ps []*proc, d time.Duration) bool {
	deadline := time.After(d)
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline:
			return false
		}
	}
	return true
}
