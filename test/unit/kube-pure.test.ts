/** The pure helpers of the kube adapters: wire formats the API server is strict about. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exitCodeFromStatus } from '../../src/kube/executor.ts';
import { microTime } from '../../src/kube/lease-lock.ts';

describe('kube wire formats', () => {
  it('MicroTime has six fractional digits (metav1.MicroTime refuses three)', () => {
    assert.equal(microTime(Date.parse('2026-11-27T08:00:00.123Z')), '2026-11-27T08:00:00.123000Z');
    assert.match(microTime(Date.now()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('exec status: Success is 0, NonZeroExitCode carries the code, anything else throws', () => {
    assert.equal(exitCodeFromStatus({ status: 'Success' }), 0);
    assert.equal(
      exitCodeFromStatus({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        message: 'command terminated with non-zero exit code: exit status 130',
        details: { causes: [{ reason: 'ExitCode', message: '130' }] },
      }),
      130,
    );
    assert.throws(
      () => exitCodeFromStatus({ status: 'Failure', message: 'exec: "/bin/kill": stat /bin/kill: no such file or directory' }),
      /no such file or directory/,
    );
  });
});
