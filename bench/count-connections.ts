/**
 * Preloaded (`node --import`) by bench/cluster.ts into hahaha and the floor for the burst: counts
 * the process's outgoing TCP connections (TLS ones included; diagnostics_channel
 * `net.client.socket`) and writes the running count to $BENCH_CONN_DIR/<pid> once a second and at
 * exit. The bench reads it before and after a burst: a connection is a TLS handshake, a cost that
 * the CPU figure's noise hides. Does nothing without BENCH_CONN_DIR.
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.BENCH_CONN_DIR;
if (dir !== undefined && dir !== '') {
  const file = join(dir, String(process.pid));
  let opened = 0;
  let written = -1;
  subscribe('net.client.socket', () => {
    opened += 1;
  });
  const write = () => {
    if (opened === written) return;
    writeFileSync(file, String(opened));
    written = opened;
  };
  write();
  setInterval(write, 1000).unref();
  process.on('exit', write);
}
