/**
 * The floor as a process of its own, for the burst's CPU floor in bench/cluster.ts:
 *
 *   node bench/floor-reaper.ts <kubeconfig> <namespace> <label selector>
 *
 * Watches the namespace's pods as hahaha watches (the label selector and
 * `status.phase=Running`, one raw HTTPS watch, every line parsed) and reaps each pod once, in the
 * watch event that first shows its main container (named by its `app` label) terminated, with
 * floorReap: the same API requests as hahaha, and nothing else (no cache, no metrics, no logs, no
 * retries; a watch that ends is opened again). Prints "ready" once its watch is open; exits on SIGTERM.
 */
import { apiFromKubeconfig, floorReap, rawPodWatch } from './floor.ts';

const [kubeconfig, namespace, selector] = process.argv.slice(2);
if (kubeconfig === undefined || namespace === undefined || selector === undefined) {
  process.stderr.write('usage: node bench/floor-reaper.ts <kubeconfig> <namespace> <label selector>\n');
  process.exit(2);
}
const api = apiFromKubeconfig(kubeconfig, 16); // hahaha's REST connection bound
const reaped = new Set<string>();

function onPod(pod: any): void {
  const uid: string = pod.metadata.uid;
  if (reaped.has(uid)) return;
  const main = pod.metadata.labels?.app;
  const statuses: { name: string; state?: { terminated?: unknown } }[] = pod.status?.containerStatuses ?? [];
  if (!statuses.some((s) => s.name === main && s.state?.terminated !== undefined)) return;
  reaped.add(uid);
  floorReap(api, pod).catch((err: Error) => process.stderr.write(`floor-reaper: ${pod.metadata.name}: ${err.message}\n`));
}

/** Watches; when the watch ends, says so and watches again (the pods there are come again). */
async function watch(): Promise<void> {
  await rawPodWatch(
    api,
    namespace as string,
    { label: selector as string, field: 'status.phase=Running' },
    {
      pod: onPod,
      error: (message) => process.stderr.write(`floor-reaper: watch: ${message}\n`),
      end: (why) => {
        process.stderr.write(`floor-reaper: watch ended: ${why}; watching again\n`);
        watch().catch((err: Error) => {
          process.stderr.write(`floor-reaper: watch: ${err.message}\n`);
          process.exit(1);
        });
      },
    },
  );
}

await watch();
process.on('SIGTERM', () => process.exit(0));
process.stdout.write('ready\n');
