/**
 * The soak's Jobs: kinds of sidecar setups, dealt from a shuffled deck so that any run of
 * deck-size Jobs (58) holds every kind, in the proportions of their weights.
 */

const CSQL_ARGS = ['--token=fake', '--sqladmin-api-endpoint=http://127.0.0.1:1', '--port', '5432', 'proj:region:inst'];
const OPT_OUT = { 'hahaha.nais.io/native-sidecars': 'false' };
const LINKERD_SHUTDOWN = { 'config.linkerd.io/proxy-admin-shutdown': 'enabled' };

interface Container {
  name: string;
  image: string;
  command: string[];
}

export interface Kind {
  name: string;
  /** How many of the deck's cards are this kind. */
  weight: number;
  /** The main container's name (and the pod's app label). */
  main: string;
  sidecars: Container[];
  annotations: Record<string, string>;
  /** The webhook is meant to convert its sidecars (catalog entries with native: true, no opt-out). */
  native: boolean;
  /** The pod may end Failed: a reaped sidecar exits non-zero (configmap-reload's 2). */
  mayFail?: boolean;
}

const fake = (name: string, ...args: string[]): Container => ({ name, image: `example.invalid/${name}:soak`, command: ['fake-sidecar', ...args] });
const realCsql = (): Container => ({
  name: 'cloud-sql-proxy',
  image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0',
  command: ['cloud-sql-proxy', ...CSQL_ARGS, '--quitquitquit'],
});
const realReload = (): Container => ({
  name: 'secure-logs-configmap-reload',
  // a host image name: with a shell and killall, should the webhook not convert it
  image: 'example.invalid/configmap-reload:soak',
  command: ['configmap-reload', '--volume-dir=/tmp', '--webhook-url=http://127.0.0.1:9999/-/reload', '--web.listen-address=127.0.0.1:9533'],
});

function kind(
  name: string,
  weight: number,
  sidecars: Container[],
  o: { optOut?: boolean; native?: boolean; annotations?: Record<string, string>; mayFail?: boolean } = {},
): Kind {
  return {
    name,
    weight,
    main: 'main',
    sidecars,
    annotations: { ...(o.optOut && OPT_OUT), ...o.annotations },
    native: o.native === true,
    ...(o.mayFail && { mayFail: true }),
  };
}

export const KINDS: readonly Kind[] = [
  kind('linkerd', 7, [fake('linkerd-proxy', 'linkerd')], { annotations: LINKERD_SHUTDOWN }),
  kind('istio', 6, [fake('istio-proxy', 'istio')]),
  kind('cloudsql-quit', 5, [fake('cloud-sql-proxy', 'cloudsql', '--quitquitquit')], { optOut: true }),
  kind('cloudsql-native', 3, [fake('cloud-sql-proxy', 'cloudsql', '--quitquitquit')], { native: true }),
  kind('csql-real-quit', 3, [realCsql()], { optOut: true }),
  kind('csql-real-native', 2, [realCsql()], { native: true }),
  kind('fluentd', 5, [fake('secure-logs-fluentd', 'fluentd')], { optOut: true }),
  kind('fluentd-native', 2, [fake('secure-logs-fluentd', 'fluentd')], { native: true }),
  kind('vks', 5, [fake('vks-sidecar', 'vks')], { optOut: true }),
  kind('vks-native', 2, [fake('vks-sidecar', 'vks')], { native: true }),
  kind('reload-real-native', 2, [realReload()], { native: true, mayFail: true }),
  kind('reload-killall', 2, [fake('secure-logs-configmap-reload', 'configmap-reload')], { optOut: true, mayFail: true }),
  kind('three', 6, [fake('linkerd-proxy', 'linkerd'), fake('secure-logs-fluentd', 'fluentd'), fake('vks-sidecar', 'vks')], {
    optOut: true,
    annotations: LINKERD_SHUTDOWN,
  }),
  // pilot-agent's endpoint never answers: hahaha times out (5 s) and stops it through Envoy's
  kind('istio-hang', 3, [
    {
      name: 'istio-proxy',
      image: 'example.invalid/istio-proxy:soak',
      command: ['sh', '-c', 'fake-sidecar hang --port 15020 & exec fake-sidecar istio --no-status-port'],
    },
  ]),
  // hangs: no signal stops it and hahaha must say so (a Warning once exec'ing kill did not work)
  kind('deaf-vks', 1, [fake('vks-sidecar', 'deaf')], { optOut: true }),
  // hangs, predicted: no catalog entry (SidecarPreflight at pod start)
  kind('deaf-agent', 2, [fake('my-agent', 'deaf')]),
  // converted: the kubelet SIGKILLs it after the grace period, and the Job completes
  kind('deaf-native', 2, [fake('vks-sidecar', 'deaf')], { native: true }),
];

/** A deterministic PRNG (mulberry32) in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every kind `weight` times, shuffled with `seed`. */
export function deck(seed: number): Kind[] {
  const cards = KINDS.flatMap((k) => Array.from({ length: k.weight }, () => k));
  const rnd = random(seed);
  for (let i = cards.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [cards[i], cards[j]] = [cards[j] as Kind, cards[i] as Kind];
  }
  return cards;
}

/** A Naisjob-like Job of `kind` whose main container sleeps `seconds`. */
export function jobManifest(namespace: string, name: string, kind: Kind, labels: Record<string, string>, seconds: number) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, labels: { app: name, ...labels } },
    spec: {
      backoffLimit: 0,
      // a backstop: the soak deletes each Job once it has checked it
      ttlSecondsAfterFinished: 300,
      template: {
        metadata: { labels: { app: kind.main, 'nais.io/naisjob': 'true', ...labels }, annotations: kind.annotations },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 5,
          containers: [{ name: kind.main, image: 'example.invalid/main:soak', command: ['sh', '-c', `echo working; sleep ${seconds}`] }, ...kind.sidecars],
        },
      },
    },
  };
}
