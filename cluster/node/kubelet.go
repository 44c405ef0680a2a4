package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

const (
	kubeletVersion = "v1.37.2"
	leaseNamespace = "kube-node-lease"
	leaseDuration  = 40
	renewInterval  = 10 * time.Second
)

type kubelet struct {
	cfg      config
	client   kubernetes.Interface
	rt       *nodeRuntime
	profiles *imageProfiles // nil: every container on the host's file system
	port     int

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	nodeUID  types.UID
	stopping bool // set on shutdown: no new pod is started
}

func newKubelet(cfg config, client kubernetes.Interface, rt *nodeRuntime) *kubelet {
	_, portStr, _ := net.SplitHostPort(cfg.listen)
	port, _ := strconv.Atoi(portStr)
	return &kubelet{cfg: cfg, client: client, rt: rt, port: port, workers: map[types.UID]*podWorker{}}
}

func isLoopbackListen(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// watchPods follows the pods bound to this node.
func (k *kubelet) watchPods(ctx context.Context) {
	lw := cache.NewFilteredListWatchFromClient(k.client.CoreV1().RESTClient(), "pods", metav1.NamespaceAll,
		func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + k.cfg.nodeName })
	inf := cache.NewSharedIndexInformer(lw, &v1.Pod{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.podChanged(obj) },
		UpdateFunc: func(_, obj any) { k.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*v1.Pod); ok {
				k.podGone(pod.UID)
			}
		},
	})
	inf.Run(ctx.Done())
}

func (k *kubelet) podChanged(obj any) {
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	w := k.workers[pod.UID]
	if w == nil {
		if k.stopping {
			k.mu.Unlock()
			return
		}
		w = newPodWorker(k, pod.DeepCopy())
		k.workers[pod.UID] = w
		k.mu.Unlock()
		go w.run()
		return
	}
	k.mu.Unlock()
	w.send(event{kind: evUpdate, pod: pod.DeepCopy()})
}

func (k *kubelet) podGone(uid types.UID) {
	k.mu.Lock()
	w := k.workers[uid]
	delete(k.workers, uid)
	k.mu.Unlock()
	if w != nil {
		w.send(event{kind: evGone})
	}
}

// shutdown stops the processes of all pods: SIGTERM, then SIGKILL after
// grace, then the pause processes.
func (k *kubelet) shutdown(grace time.Duration) {
	k.mu.Lock()
	k.stopping = true
	var ws []*podWorker
	for _, w := range k.workers {
		ws = append(ws, w)
	}
	k.mu.Unlock()
	var acks []chan struct{}
	for _, w := range ws {
		ack := make(chan struct{})
		acks = append(acks, ack)
		w.send(event{kind: evShutdown, ack: ack, wait: grace})
	}
	for i, ack := range acks {
		select {
		case <-ack:
		case <-ws[i].quit:
		case <-time.After(grace + 5*time.Second):
		}
	}
}

// findPod returns the worker of a pod by namespace and name, and optionally
// UID, as the kubelet's server looks pods up.
func (k *kubelet) findPod(ns, name, uid string) *podWorker {
	k.mu.Lock()
	defer k.mu.Unlock()
	var found *podWorker
	for _, w := range k.workers {
		w.mu.Lock()
		match := w.pod.Namespace == ns && w.pod.Name == name && (uid == "" || string(w.pod.UID) == uid)
		final := w.life >= lifeFinished
		w.mu.Unlock()
		if match && (found == nil || !final) {
			found = w
		}
	}
	return found
}

func (k *kubelet) nodeLabels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":  k.cfg.nodeName,
		"kubernetes.io/os":        "linux",
		"kubernetes.io/arch":      goruntime.GOARCH,
		"beta.kubernetes.io/os":   "linux",
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 8 << 30
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 8 << 30
}

func (k *kubelet) nodeStatus(now time.Time, old []v1.NodeCondition) v1.NodeStatus {
	res := v1.ResourceList{
		v1.ResourceCPU:              *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		v1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
		v1.ResourcePods:             *resource.NewQuantity(110, resource.DecimalSI),
		v1.ResourceEphemeralStorage: *resource.NewQuantity(50<<30, resource.BinarySI),
	}
	prev := map[v1.NodeConditionType]v1.NodeCondition{}
	for _, c := range old {
		prev[c.Type] = c
	}
	cond := func(t v1.NodeConditionType, st v1.ConditionStatus, reason, msg string) v1.NodeCondition {
		c := v1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg,
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
		if p, ok := prev[t]; ok && p.Status == st {
			c.LastTransitionTime = p.LastTransitionTime
		}
		return c
	}
	return v1.NodeStatus{
		Capacity:    res,
		Allocatable: res,
		Phase:       v1.NodeRunning,
		Conditions: []v1.NodeCondition{
			cond(v1.NodeMemoryPressure, v1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(v1.NodeDiskPressure, v1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(v1.NodePIDPressure, v1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(v1.NodeReady, v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses:       []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: v1.NodeDaemonEndpoints{KubeletEndpoint: v1.DaemonEndpoint{Port: int32(k.port)}},
		NodeInfo: v1.NodeSystemInfo{
			MachineID:               k.cfg.nodeName,
			SystemUUID:              k.cfg.nodeName,
			BootID:                  bootID(),
			KernelVersion:           kernelVersion(),
			OSImage:                 "hahaha-node",
			ContainerRuntimeVersion: "hahaha://" + kubeletVersion,
			KubeletVersion:          kubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            goruntime.GOARCH,
		},
	}
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func kernelVersion() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

// registerNode creates the Node (or takes over an existing one of the same
// name) and posts a Ready status.
func (k *kubelet) registerNode(ctx context.Context) error {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Labels: k.nodeLabels()}}
	var err error
	for attempt := 0; ; attempt++ {
		var created *v1.Node
		created, err = k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err == nil {
			k.nodeUID = created.UID
			break
		}
		if apierrors.IsAlreadyExists(err) {
			existing, gerr := k.client.CoreV1().Nodes().Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
			if gerr == nil {
				k.nodeUID = existing.UID
				err = nil
				break
			}
			err = gerr
		}
		if attempt >= 60 {
			return fmt.Errorf("register node: %w", err)
		}
		log.Printf("register node: %v (retrying)", err)
		time.Sleep(time.Second)
	}
	if err := k.postNodeStatus(ctx); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	if err := k.renewLease(ctx); err != nil {
		log.Printf("lease: %v", err)
	}
	log.Printf("node %s registered, kubelet endpoint port %d", k.cfg.nodeName, k.port)
	return nil
}

func (k *kubelet) postNodeStatus(ctx context.Context) error {
	var old []v1.NodeCondition
	if n, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.nodeName, metav1.GetOptions{}); err == nil {
		old = n.Status.Conditions
	}
	body, err := json.Marshal(map[string]any{"status": k.nodeStatus(time.Now(), old)})
	if err != nil {
		return err
	}
	_, err = k.client.CoreV1().Nodes().Patch(ctx, k.cfg.nodeName, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}

func (k *kubelet) renewLease(ctx context.Context) error {
	leases := k.client.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	holder := k.cfg.nodeName
	dur := int32(leaseDuration)
	l, err := leases.Get(ctx, k.cfg.nodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.nodeName, Namespace: leaseNamespace},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &dur, RenewTime: &now},
		}
		if k.nodeUID != "" {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: k.cfg.nodeName, UID: k.nodeUID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &dur
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// heartbeat renews the node's Lease and re-posts its status, so the node
// lifecycle controller keeps the node Ready.
func (k *kubelet) heartbeat(ctx context.Context) {
	t := time.NewTicker(renewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := k.renewLease(ctx); err != nil && ctx.Err() == nil {
			log.Printf("lease: %v", err)
		}
		if err := k.postNodeStatus(ctx); err != nil && ctx.Err() == nil {
			log.Printf("node status: %v", err)
		}
	}
}
