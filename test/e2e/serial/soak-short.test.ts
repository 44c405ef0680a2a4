/**
 * The soak (test/soak/soak.ts), short: 160 Jobs and one fault of each kind (API server restart,
 * leader SIGKILL, SIGKILL mid-reap, etcd compaction with an API server restart), on a cluster
 * of its own in a temp dir, so the suite's cluster is not disturbed. About two and a half minutes.
 * Every target is enforced, 0 lost events included: a stop whose replica was SIGKILLed before
 * posting its Killing event is reported by the next leader (the hand-over), and a post that
 * fails while the API server restarts is retried for ~31 s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../harness.ts';

describe('soak, short', () => {
  it('160 Jobs through two replicas with one fault of each kind: none hung, no double stop, no event lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-soak-short-'));
    try {
      const child = spawn(process.execPath, [`${ROOT}test/soak/soak.ts`], {
        env: {
          ...process.env,
          // Four faults, at 30, 60, 90 and 120 Jobs done, each at least 20 s after the last and on
          // a recovered cluster, with Jobs still flowing 20 at a time (with 40, a failover held up
          // every Job in flight and they all finished at once after it); the last 20 Jobs wait
          // for the fourth fault.
          SOAK_JOBS: '160',
          SOAK_FAULT_EVERY: '30',
          SOAK_CONCURRENCY: '20',
          SOAK_CLUSTER_DIR: join(dir, 'cluster'),
          SOAK_OUT: join(dir, 'soak.txt'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
      });
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      const line = stdout.trim().split('\n').at(-1) ?? '';
      process.stderr.write(`${line}\n`);
      assert.equal(code, 0, `the soak failed (exit ${code}):\n${stdout}\n${stderr.split('\n').slice(-60).join('\n')}`);
      assert.match(line, /^soak: jobs=160 hung>60s=0 double-stops=0 events-lost=0 expected-hangs=\d+ faults=/);
      for (const fault of ['api-restart', 'leader-kill', 'kill-mid-reap', 'etcd-compact', 'hang-sidecars']) {
        assert.match(line, new RegExp(`[=,]${fault}:[1-9]`), `no ${fault} in ${line}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
