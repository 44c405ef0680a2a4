/**
 * Wires the daemon together: watch → decide → act → record, plus leader election, the metrics
 * server and graceful shutdown. The only place that builds the kube adapters.
 */
import type http from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { loadCatalog } from './config/catalog-file.ts';
import type { Config } from './config/env.ts';
import { ApiEventSink } from './kube/event-sink.ts';
import { ApiExecutor } from './kube/executor.ts';
import { ApiLeaseLock } from './kube/lease-lock.ts';
import { PodSource } from './kube/pod-source.ts';
import { ApiPortForwarder } from './kube/port-forwarder.ts';
import { LeaderElector } from './leader/elector.ts';
import { PodCache } from './pod-cache.ts';
import { Reconciler } from './reconcile/reconciler.ts';
import { WorkQueue } from './reconcile/work-queue.ts';
import { EventRecorder } from './record/event-recorder.ts';
import { Metrics } from './record/metrics.ts';
import { startHttpServer } from './server/http-server.ts';
import { createRegistry } from './strategies/registry.ts';

export interface Daemon {
  /** Resolves once the daemon has stopped (after `stop()`). */
  readonly done: Promise<void>;
  /** Graceful stop: no new work, in-flight work within the grace period, lease released. */
  stop(): Promise<void>;
  readonly metrics: Metrics;
  readonly server: http.Server;
}

export async function startDaemon(config: Config, log: Logger, kc: KubeConfig = defaultKubeConfig()): Promise<Daemon> {
  const catalog = loadCatalog(config.catalogPath);
  log.info(
    {
      selector: config.watchSelector,
      namespaces: config.watchNamespaces.length === 0 ? 'all' : config.watchNamespaces,
      catalog: config.catalogPath,
      sidecars: catalog.entries.map((e) => e.name),
      server: kc.getCurrentCluster()?.server,
      leaderElect: config.leaderElect,
    },
    'starting hahaha',
  );

  const metrics = new Metrics();
  const cache = new PodCache();
  const events = new EventRecorder(new ApiEventSink(kc, config.instanceName), metrics, log);
  const reconciler = new Reconciler({
    store: cache,
    catalog,
    strategies: createRegistry({ portForwarder: new ApiPortForwarder(kc), executor: new ApiExecutor(kc) }),
    events,
    metrics,
    log,
    verifyTimeoutMs: config.verifyTimeoutSeconds * 1000,
  });

  // Aborted when this replica stops leading: in-flight attempts stop at once.
  let term = new AbortController();
  let elector: LeaderElector | undefined;
  const queue = new WorkQueue({
    concurrency: config.maxConcurrentPods,
    retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
    handler: (key, signal) => reconciler.reconcile(key, AbortSignal.any([signal, term.signal])),
    onError: (key, err) => log.error({ err, key }, 'reconcile threw'),
    onStats: ({ waiting, running }) => {
      metrics.queueDepth.set(waiting);
      metrics.inFlight.set(running);
    },
  });

  const source = new PodSource(
    kc,
    { selector: config.watchSelector, namespaces: config.watchNamespaces },
    cache,
    {
      // A standby keeps its cache warm but queues nothing: it enqueues every cached pod when it
      // becomes leader, so its queue metrics stay at zero meanwhile.
      onUpsert: (key) => {
        if (elector?.isLeader ?? true) queue.add(key);
      },
      onDelete: (key, pod) => {
        queue.forget(key);
        reconciler.forget(pod.uid);
      },
      onMalformed: (info) => {
        metrics.skippedPods.inc({ reason: 'malformed' });
        log.warn({ namespace: info.namespace, pod: info.name, uid: info.uid, reason: info.reason }, 'skipping malformed pod');
      },
    },
    metrics,
    log,
  );

  if (config.leaderElect) {
    queue.pause();
    metrics.leader.set(0);
    elector = new LeaderElector(
      new ApiLeaseLock(kc, config.leaseNamespace, config.leaseName),
      {
        identity: config.instanceName,
        leaseDurationMs: config.leaseDurationSeconds * 1000,
        renewDeadlineMs: config.renewDeadlineSeconds * 1000,
        retryPeriodMs: config.retryPeriodSeconds * 1000,
        onStartedLeading: () => {
          term = new AbortController();
          metrics.leader.set(1);
          for (const key of cache.keys()) queue.add(key);
          queue.resume();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          queue.pause();
          term.abort(new Error('lost leadership'));
        },
      },
      log,
    );
  } else {
    metrics.leader.set(1);
  }

  const server = await startHttpServer({
    host: config.metricsHost,
    port: config.metricsPort,
    registry: metrics.registry,
    isReady: () => source.synced,
  });
  log.info({ address: server.address() }, 'serving /metrics, /healthz and /readyz');

  source.start();
  elector?.start();

  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info({ graceSeconds: config.shutdownGraceSeconds }, 'shutting down: no new work, finishing in-flight pods');
      const inTime = await queue.shutdown(config.shutdownGraceSeconds * 1000);
      if (!inTime) log.warn('grace period over; interrupted in-flight pods');
      await elector?.stop();
      await source.stop();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      log.info('stopped');
      resolveDone();
    })();
    return stopping;
  };
  return { done, stop, metrics, server };
}

function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
