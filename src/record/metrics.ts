/**
 * Every metric hahaha exports, on a registry owned by the instance (never module globals, so
 * tests and several daemons in one process do not share counters).
 * HAHAHA's four names and labels are kept unchanged for existing dashboards and alerts.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type SidecarLabels = 'container' | 'job_name' | 'namespace';

export class Metrics {
  readonly registry: Registry;
  /** HAHAHA: sidecars shut down (verified terminated). */
  readonly sidecarShutdowns: Counter<SidecarLabels>;
  /** HAHAHA: sidecars whose every attempt failed in one reconcile. */
  readonly failedSidecarShutdowns: Counter<SidecarLabels>;
  /** HAHAHA: sidecars with no catalog entry, counted once per pod. */
  readonly unsupportedSidecars: Counter<SidecarLabels>;
  /** HAHAHA: events that could not be written to the API. */
  readonly unsuccessfulEventPosts: Counter;
  /** Seconds from the main container's exit to the sidecar seen terminated. */
  readonly shutdownLatency: Histogram<'container'>;
  /** Duration of single attempts, by strategy kind and outcome (ok, error). */
  readonly attemptDuration: Histogram<'kind' | 'outcome'>;
  /** Pods waiting in the work queue (not yet started). */
  readonly queueDepth: Gauge;
  /** Pods being handled right now. */
  readonly inFlight: Gauge;
  /** Pods left alone, by reason (once per pod and reason). */
  readonly skippedPods: Counter<'reason'>;
  /** Restarts of the pod watch after errors. */
  readonly watchRestarts: Counter;
  /** Pods currently in the watch cache. */
  readonly watchedPods: Gauge;
  /** 1 while this replica holds the leader lease (or runs without election), else 0. */
  readonly leader: Gauge;
  /** Sidecars hahaha stopped, by the class of the exit code they left: zero, error (1-128), signal (>128). */
  readonly stoppedSidecarExits: Counter<SidecarLabels | 'exit_class'>;
  /** Pods that ended Failed although every main container exited 0: a sidecar's exit failed the Job. */
  readonly podsFailedBySidecars: Counter<'namespace' | 'job_name'>;
  /** Stops a previous leader made without reporting them, reported by this replica (domain/handover.ts). */
  readonly handoverReports: Counter;
  /** Admission requests of the native sidecar webhook, by outcome (converted, unchanged, error). */
  readonly webhookRequests: Counter<'outcome'>;
  /** Seconds to answer one admission request. */
  readonly webhookDuration: Histogram;
  /** Sidecars converted to native sidecars at admission, by container name. */
  readonly nativeConversions: Counter<'container'>;
  /** Sidecars predicted at pod start to hang or fail the Job, by outcome (hangs, fails-pod). */
  readonly preflightWarnings: Counter<'outcome'>;
  /** Dry run: sidecars hahaha would have shut down, once per pod. */
  readonly dryRunWouldStop: Counter<SidecarLabels>;
  /** Dry run: sidecars the webhook would have converted. */
  readonly dryRunWouldConvert: Counter<'container'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    const sidecarLabels: SidecarLabels[] = ['container', 'job_name', 'namespace'];
    this.sidecarShutdowns = new Counter({
      name: 'hahaha_sidecar_shutdowns',
      help: 'Sidecars shut down, verified terminated through the API',
      labelNames: sidecarLabels,
      registers: [registry],
    });
    this.failedSidecarShutdowns = new Counter({
      name: 'hahaha_failed_sidecar_shutdowns',
      help: 'Sidecar shutdowns where every attempt failed',
      labelNames: sidecarLabels,
      registers: [registry],
    });
    this.unsupportedSidecars = new Counter({
      name: 'hahaha_unsupported_sidecars',
      help: 'Running sidecars with no entry in the sidecar catalog, once per pod',
      labelNames: sidecarLabels,
      registers: [registry],
    });
    this.unsuccessfulEventPosts = new Counter({
      name: 'hahaha_total_unsuccessful_event_posts',
      help: 'Kubernetes Events that could not be posted',
      registers: [registry],
    });
    this.shutdownLatency = new Histogram({
      name: 'hahaha_sidecar_shutdown_latency_seconds',
      help: 'Seconds from the main container terminating to hahaha seeing the sidecar terminated',
      labelNames: ['container'],
      buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    });
    this.attemptDuration = new Histogram({
      name: 'hahaha_attempt_duration_seconds',
      help: 'Duration of one shutdown attempt, by strategy kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    });
    this.queueDepth = new Gauge({ name: 'hahaha_queue_depth', help: 'Pods waiting in the work queue', registers: [registry] });
    this.inFlight = new Gauge({ name: 'hahaha_queue_in_flight', help: 'Pods being handled now', registers: [registry] });
    this.skippedPods = new Counter({
      name: 'hahaha_skipped_pods_total',
      help: 'Pods left alone, by reason, once per pod and reason',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.watchRestarts = new Counter({
      name: 'hahaha_watch_restarts_total',
      help: 'Restarts of the pod watch after an error',
      registers: [registry],
    });
    this.watchedPods = new Gauge({ name: 'hahaha_watched_pods', help: 'Pods in the watch cache', registers: [registry] });
    this.leader = new Gauge({
      name: 'hahaha_leader',
      help: '1 while this replica is the leader (or runs without leader election)',
      registers: [registry],
    });
    this.stoppedSidecarExits = new Counter({
      name: 'hahaha_stopped_sidecar_exits_total',
      help: 'Sidecars stopped by hahaha, by the exit code class they left (zero; error 1-128 and signal >128 fail the pod)',
      labelNames: [...sidecarLabels, 'exit_class'],
      registers: [registry],
    });
    this.podsFailedBySidecars = new Counter({
      name: 'hahaha_pods_failed_by_sidecars_total',
      help: 'Pods seen ending Failed although every main container exited 0',
      labelNames: ['namespace', 'job_name'],
      registers: [registry],
    });
    this.handoverReports = new Counter({
      name: 'hahaha_handover_reported_stops_total',
      help: 'Sidecar stops a previous leader made without reporting them, reported by this replica',
      registers: [registry],
    });
    this.webhookRequests = new Counter({
      name: 'hahaha_webhook_requests_total',
      help: 'Admission requests of the native sidecar webhook, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.webhookDuration = new Histogram({
      name: 'hahaha_webhook_request_duration_seconds',
      help: 'Seconds to answer one admission request',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
    this.nativeConversions = new Counter({
      name: 'hahaha_native_sidecar_conversions_total',
      help: 'Sidecars converted to native sidecars at admission',
      labelNames: ['container'],
      registers: [registry],
    });
    this.preflightWarnings = new Counter({
      name: 'hahaha_preflight_warnings_total',
      help: 'Sidecars predicted at pod start to hang or fail the Job, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.dryRunWouldStop = new Counter({
      name: 'hahaha_dry_run_would_stop_total',
      help: 'Dry run: sidecars hahaha would have shut down, once per pod',
      labelNames: sidecarLabels,
      registers: [registry],
    });
    this.dryRunWouldConvert = new Counter({
      name: 'hahaha_dry_run_would_convert_total',
      help: 'Dry run: sidecars the webhook would have converted to native sidecars',
      labelNames: ['container'],
      registers: [registry],
    });
    // The event-loop delay histogram samples every 100 ms instead of prom-client's 10 ms: at 10 ms
    // its timer alone was an idle daemon's CPU (0.24 of 0.28 CPU-seconds a minute, measured).
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  }
}
