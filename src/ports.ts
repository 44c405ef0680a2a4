/**
 * The small interfaces through which everything outside `kube/` reaches Kubernetes.
 * `kube/` implements them against the API server; unit tests pass fakes.
 */
import type { PodView } from './domain/pod-view.ts';
import type { AccessNeed } from './domain/required-access.ts';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export interface HttpCall {
  readonly method: string;
  readonly port: number;
  readonly path: string;
  /** Bounds the whole call: WebSocket handshake, request and response. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface HttpReply {
  readonly status: number;
  /** The first few hundred bytes of the body, for error messages. */
  readonly body: string;
}

/** Sends one HTTP request to 127.0.0.1:<port> inside a pod, through pods/portforward. */
export interface PortForwarder {
  request(pod: PodRef, call: HttpCall): Promise<HttpReply>;
}

export interface ExecCall {
  readonly container: string;
  readonly command: readonly string[];
  /** Bounds the whole call: WebSocket handshake and the command's run. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv inside a container through pods/exec and reports its exit status. */
export interface Executor {
  exec(pod: PodRef, call: ExecCall): Promise<ExecResult>;
}

/** An object an event may be about other than the pod itself (the pod's Job). */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

export interface PodEvent {
  readonly pod: PodRef;
  /** The event is about this object (in the pod's namespace) instead of the pod. */
  readonly regarding?: ObjectRef;
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly action: string;
  readonly message: string;
  /**
   * A fixed name instead of a generated one, for an event that must exist at most once (a
   * sidecar's stop, or what is said once per pod; see domain/handover.ts): a create that finds
   * the name taken is no error.
   */
  readonly name?: string;
}

/** Writes one Event about a pod; `series` > 1 marks a repeat of an event already posted. */
export interface EventSink {
  /** `existed`: the event has a fixed name that was taken, so it was posted before. */
  create(event: PodEvent, at: Date): Promise<{ name: string; existed?: boolean }>;
  repeat(namespace: string, name: string, count: number, at: Date): Promise<void>;
}

/** What a pod watch tells its owner; level-based: only the key matters. */
export interface PodWatchEvents {
  /** A pod was added, or changed in what its view shows (an update of only what a view leaves out is not told). */
  onUpsert(key: string, pod: PodView): void;
  /** The pod left the watch: deleted, or finished (its last state, when the watch delivered it). */
  onDelete(key: string, pod: PodView): void;
  /** A pod that cannot be parsed; reported at most once per uid. */
  onMalformed(info: { namespace: string; name: string; uid: string; reason: string }): void;
}

/** A list+watch of pods that keeps a cache current and restarts itself after errors. */
export interface PodWatch {
  start(): void;
  stop(): Promise<void>;
  /** True once the first list of every watched namespace has been read. */
  readonly synced: boolean;
  /** When that first happened (epoch ms): since then, every pod that left the watch was told. */
  readonly syncedAt: number | undefined;
}

/** The watched pods as the informer currently sees them. */
export interface PodStore {
  get(key: string): PodView | undefined;
  /**
   * Resolves with the pod as soon as `predicate` holds for it (checked now and on every update),
   * or with undefined after `timeoutMs`, when the pod is gone, or when `signal` aborts.
   */
  waitFor(key: string, predicate: (pod: PodView) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<PodView | undefined>;
  /**
   * Whether the watch was down at some moment since `since` (epoch ms), or is now: an update
   * (a container's exit) may not have reached the store yet.
   */
  disruptedSince(since: number): boolean;
  /** Resolves true once the watch is up (at once if it is), false after `timeoutMs` or on abort. */
  whenCurrent(timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
}

/** The content of a coordination.k8s.io Lease that leader election reads and writes. */
export interface LeaseRecord {
  /** Empty when the lease is released. */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** Epoch milliseconds. */
  readonly acquireTime: number;
  readonly renewTime: number;
  readonly leaseTransitions: number;
}

/** A Lease object read, created and updated with optimistic concurrency. */
export interface LeaseLock {
  /** undefined when the Lease does not exist. */
  get(): Promise<{ record: LeaseRecord; version: string } | undefined>;
  /** Throws LeaseConflict when it already exists. */
  create(record: LeaseRecord): Promise<string>;
  /** Throws LeaseConflict when `version` is stale. Returns the new version. */
  update(record: LeaseRecord, version: string): Promise<string>;
  /** Where the lease lives, for logs. */
  describe(): string;
}

export class LeaseConflict extends Error {
  override readonly name = 'LeaseConflict';
}

/** The API server's version as GET /version reports it (minor may read "29+"). */
export interface ServerVersion {
  readonly major: string;
  readonly minor: string;
  readonly gitVersion: string;
}

export interface ServerVersionSource {
  get(): Promise<ServerVersion>;
}

/** Whether this process's credentials allow one thing (SelfSubjectAccessReview). */
export interface AccessReviewer {
  review(need: AccessNeed): Promise<{ allowed: boolean; reason?: string }>;
}

/** One pod as the API has it now; undefined when it is gone (or is another pod of that name). */
export interface PodReader {
  read(pod: PodRef): Promise<PodView | undefined>;
  /** Every finished pod the watch would select, page by page; malformed ones are skipped. */
  listFinished?(onPod: (pod: PodView) => Promise<void>): Promise<void>;
}

export interface EphemeralContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  /** The container whose PID namespace it joins. */
  readonly targetContainerName: string;
}

/** Adds an ephemeral container to a running pod; resolves once the API accepted it. */
export interface EphemeralRunner {
  start(pod: PodRef, spec: EphemeralContainerSpec): Promise<void>;
}
