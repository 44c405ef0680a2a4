/**
 * Wires the daemon together and is the only place that builds the kube adapters. It runs two
 * things side by side:
 * - the reaper (controller/reaper-controller.ts): watch → decide → act → record, leader-gated;
 * - the native sidecar admission webhook (webhook/webhook-server.ts), when enabled, on every
 *   replica, leader or not;
 * plus the metrics server and graceful shutdown.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import { loadCatalog } from './config/catalog-file.ts';
import type { Config } from './config/env.ts';
import { type ClusterAccess, loadKubeConfig } from './config/kubeconfig.ts';
import { AccessCheck } from './controller/access-check.ts';
import { ReaperController } from './controller/reaper-controller.ts';
import { catalogReads } from './domain/catalog.ts';
import { parseLabelSelector } from './domain/label-selector.ts';
import { requiredAccess } from './domain/required-access.ts';
import { ApiAccessReviewer } from './kube/access-review.ts';
import { ApiEphemeralRunner } from './kube/ephemeral-runner.ts';
import { ApiEventSink } from './kube/event-sink.ts';
import { ApiExecutor } from './kube/executor.ts';
import { KubeClient } from './kube/kube-client.ts';
import { ApiLeaseLock } from './kube/lease-lock.ts';
import { ApiPodReader } from './kube/pod-reader.ts';
import { PodSource } from './kube/pod-source.ts';
import { ApiPortForwarder } from './kube/port-forwarder.ts';
import { ApiServerVersion } from './kube/server-version.ts';
import { leaseIdentity } from './leader/elector.ts';
import { closeServer } from './node-http.ts';
import { EventRecorder } from './record/event-recorder.ts';
import { Metrics } from './record/metrics.ts';
import { startHttpServer } from './server/http-server.ts';
import { createRegistry } from './strategies/registry.ts';
import { startWebhookServer, type WebhookServer } from './webhook/webhook-server.ts';

/**
 * Only running pods can need anything: a Pending pod has a container that never started (the
 * kubelet reports Pending while any container waits without having run), and Succeeded/Failed
 * pods are done. Watching only Running pods keeps memory proportional to running jobs.
 */
const RUNNING_PODS = 'status.phase=Running';

export interface Daemon {
  /** Resolves once the daemon has stopped (after `stop()`). */
  readonly done: Promise<void>;
  /** Graceful stop: no new work, in-flight work within the grace period, lease released. */
  stop(): Promise<void>;
  readonly metrics: Metrics;
  readonly server: http.Server;
  /** The webhook's HTTPS server, when enabled. */
  readonly webhook?: WebhookServer;
}

/** `clusterAccess` defaults to the credentials loadKubeConfig finds. */
export async function startDaemon(config: Config, log: Logger, clusterAccess: ClusterAccess = loadKubeConfig().access): Promise<Daemon> {
  const client = new KubeClient(clusterAccess);
  const catalog = loadCatalog(config.catalogPath);
  // Validated by the config already (config/env.ts); parsed again for the webhook's matching.
  const selector = parseLabelSelector(config.watchSelector);
  log.info(
    {
      selector: config.watchSelector,
      namespaces: config.watchNamespaces.length === 0 ? 'all' : config.watchNamespaces,
      catalog: config.catalogPath,
      sidecars: catalog.entries.map((e) => e.name),
      native: catalog.entries.filter((e) => e.native).map((e) => e.name),
      server: client.server,
      leaderElect: config.leaderElect,
      webhook: config.webhookEnabled,
      dryRun: config.dryRun,
      ephemeralSignalImage: config.ephemeralSignalImage,
    },
    'starting hahaha',
  );

  const metrics = new Metrics();
  const reads = catalogReads(catalog);
  const reaper = new ReaperController({
    watch: (cache, events) =>
      new PodSource(
        client,
        { selector: config.watchSelector, fieldSelector: RUNNING_PODS, namespaces: config.watchNamespaces, ...reads },
        cache,
        events,
        metrics,
        log,
      ),
    reader: new ApiPodReader(client, { ...reads, selector: config.watchSelector, namespaces: config.watchNamespaces }),
    catalog,
    strategies: createRegistry({
      portForwarder: new ApiPortForwarder(client),
      executor: new ApiExecutor(client),
      ...(config.ephemeralSignalImage !== undefined && {
        ephemeral: { runner: new ApiEphemeralRunner(client), image: config.ephemeralSignalImage },
      }),
    }),
    events: new EventRecorder(new ApiEventSink(client, config.instanceName), metrics, log),
    metrics,
    log,
    maxConcurrentPods: config.maxConcurrentPods,
    retry: { baseMs: config.retryBaseSeconds * 1000, maxMs: config.retryMaxSeconds * 1000 },
    verifyTimeoutMs: config.verifyTimeoutSeconds * 1000,
    dryRun: config.dryRun,
    ephemeralSignal: config.ephemeralSignalImage !== undefined,
    ...(config.leaderElect && {
      leaderElection: {
        lock: new ApiLeaseLock(client, config.leaseNamespace, config.leaseName),
        identity: leaseIdentity(config.instanceName),
        leaseDurationMs: config.leaseDurationSeconds * 1000,
        renewDeadlineMs: config.renewDeadlineSeconds * 1000,
        retryPeriodMs: config.retryPeriodSeconds * 1000,
      },
    }),
  });

  const webhook = config.webhookEnabled
    ? await startWebhookServer({
        host: config.webhookHost,
        port: config.webhookPort,
        certDir: config.webhookCertDir,
        catalog,
        selector,
        version: new ApiServerVersion(client),
        metrics,
        log,
        dryRun: config.dryRun,
      })
    : undefined;

  const access = new AccessCheck(
    new ApiAccessReviewer(client),
    requiredAccess({
      namespaces: config.watchNamespaces,
      leaderElect: config.leaderElect,
      leaseNamespace: config.leaseNamespace,
      leaseName: config.leaseName,
    }),
    log,
  );
  const server = await startHttpServer({
    host: config.metricsHost,
    port: config.metricsPort,
    registry: metrics.registry,
    notReadyReasons: () => [...(reaper.synced ? [] : ['pod list not synced yet']), ...(access.missing ?? []).map((m) => `missing permission: ${m}`)],
  });
  log.info({ address: server.address() }, 'serving /metrics, /healthz and /readyz');

  reaper.start();
  void access.start();

  let resolveDone: () => void = () => {};
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info({ graceSeconds: config.shutdownGraceSeconds }, 'shutting down: no new work, finishing in-flight pods');
      const inTime = await reaper.stop(config.shutdownGraceSeconds * 1000);
      if (!inTime) log.warn('grace period over; interrupted in-flight pods');
      access.stop();
      await webhook?.stop();
      // A scrape or probe in flight has a second to be answered.
      await closeServer(server, 1000);
      client.close();
      log.info('stopped');
      resolveDone();
    })();
    return stopping;
  };
  return { done, stop, metrics, server, ...(webhook !== undefined && { webhook }) };
}
