/**
 * Every bad environment variable stops `hahaha run` at once with exit 2 and one line naming the
 * variable, its constraint (range and reason) and the value it got; no stack trace.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/env.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { assertKnownFailure, hahaha, inProcess } from './cli-run.ts';

/** [what, environment, patterns the one line must match] */
const cases: [string, Record<string, string>, RegExp[]][] = [
  ['a port out of range', { METRICS_PORT: '99999' }, [/METRICS_PORT must be an integer from 1 to 65535 \(or 0 for a free port\), got "99999"/]],
  ['a blank port (was a random port)', { METRICS_PORT: ' ' }, [/METRICS_PORT must be an integer from 1 to 65535.*, got " "/]],
  ['a hexadecimal integer', { MAX_CONCURRENT_PODS: '0x10' }, [/MAX_CONCURRENT_PODS must be an integer from 1 to 10000, got "0x10"/]],
  ['zero concurrent pods', { MAX_CONCURRENT_PODS: '0' }, [/MAX_CONCURRENT_PODS must be an integer from 1 to 10000, got "0"/]],
  ['an exponent where an integer is needed', { MAX_CONCURRENT_PODS: '1e3' }, [/MAX_CONCURRENT_PODS must be an integer from 1 to 10000, got "1e3"/]],
  ['a fraction where an integer is needed', { WEBHOOK_PORT: '1.5' }, [/WEBHOOK_PORT must be an integer from 1 to 65535, got "1\.5"/]],
  ['a negative port', { WEBHOOK_PORT: '-1' }, [/WEBHOOK_PORT must be an integer from 1 to 65535, got "-1"/]],
  [
    'a namespace listed twice (two watch loops)',
    { WATCH_NAMESPACES: 'team-a,team-b,team-a' },
    [/WATCH_NAMESPACES must not list a namespace twice .*got "team-a" twice/],
  ],
  [
    'an invalid namespace name',
    { WATCH_NAMESPACES: 'team-a,Team_B' },
    [/WATCH_NAMESPACES must be a comma-separated list of namespace names \(lowercase letters, digits and '-', at most 63 characters\), got "Team_B"/],
  ],
  [
    'namespaces that are only commas (would watch all)',
    { WATCH_NAMESPACES: ',,' },
    [/WATCH_NAMESPACES must name at least one namespace \(unset it to watch all\)/],
  ],
  [
    'millisecond lease duration (hundreds of lease requests per second)',
    { LEASE_DURATION_SECONDS: '0.015', RENEW_DEADLINE_SECONDS: '0.01', RETRY_PERIOD_SECONDS: '0.002' },
    [
      /LEASE_DURATION_SECONDS must be a number of seconds from 1 to 3600 \(below 1 s replicas would send many lease requests per second.*\), got "0\.015"/,
      /RENEW_DEADLINE_SECONDS must be a number of seconds from 1 to 3600/,
      /RETRY_PERIOD_SECONDS must be a number of seconds from 1 to 3600 .*got "0\.002"/,
    ],
  ],
  [
    'a lease duration not above the renew deadline',
    { LEASE_DURATION_SECONDS: '5', RENEW_DEADLINE_SECONDS: '10' },
    [
      /LEASE_DURATION_SECONDS must be greater than RENEW_DEADLINE_SECONDS \(a leader must stop acting before its lease can pass to another replica\), got 5 <= 10/,
    ],
  ],
  [
    'a renew deadline not above the retry period',
    { RENEW_DEADLINE_SECONDS: '2', RETRY_PERIOD_SECONDS: '2' },
    [/RENEW_DEADLINE_SECONDS must be greater than RETRY_PERIOD_SECONDS \(.*\), got 2 <= 2/],
  ],
  ['words as seconds', { RETRY_PERIOD_SECONDS: 'two' }, [/RETRY_PERIOD_SECONDS must be a number of seconds from 1 to 3600 .*got "two"/]],
  [
    'a verify timeout below a second',
    { VERIFY_TIMEOUT_SECONDS: '0.5' },
    [/VERIFY_TIMEOUT_SECONDS must be a number of seconds from 1 to 600 \(the API needs time to show a stopped container\), got "0\.5"/],
  ],
  ['a verify timeout over ten minutes', { VERIFY_TIMEOUT_SECONDS: '601' }, [/VERIFY_TIMEOUT_SECONDS must be a number of seconds from 1 to 600/]],
  [
    'a zero retry base',
    { RETRY_BASE_SECONDS: '0' },
    [/RETRY_BASE_SECONDS must be a number of seconds from 1 to 3600 \(each retry of a failing pod may post an event\), got "0"/],
  ],
  ['an exponent as seconds', { RETRY_MAX_SECONDS: '1e9' }, [/RETRY_MAX_SECONDS must be a number of seconds from 1 to 86400 .*got "1e9"/]],
  [
    'a retry cap below the base',
    { RETRY_BASE_SECONDS: '60', RETRY_MAX_SECONDS: '10' },
    [/RETRY_MAX_SECONDS must be at least RETRY_BASE_SECONDS \(it caps the doubling delay\), got 10 < 60/],
  ],
  ['a negative grace period', { SHUTDOWN_GRACE_SECONDS: '-5' }, [/SHUTDOWN_GRACE_SECONDS must be a number of seconds from 1 to 600 .*got "-5"/]],
  ['an unknown log level', { LOG_LEVEL: 'loud' }, [/LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, got "loud"/]],
  ['a boolean that is not one', { LEADER_ELECT: 'maybe' }, [/LEADER_ELECT must be true or false, got "maybe"/]],
  ['webhook switch "on"', { WEBHOOK_ENABLED: 'on' }, [/WEBHOOK_ENABLED must be true or false, got "on"/]],
  ['a lease name with capitals', { LEASE_NAME: 'My_Lease' }, [/LEASE_NAME must be a DNS-1123 name .*got "My_Lease"/]],
  ['a lease namespace with a dot', { LEASE_NAMESPACE: 'a.b' }, [/LEASE_NAMESPACE must be one of the namespace names .*got "a\.b"/]],
  ['a metrics host with blanks', { METRICS_HOST: 'my host' }, [/METRICS_HOST must be an IP address or a host name, got "my host"/]],
  [
    'the webhook on the metrics port',
    { WEBHOOK_ENABLED: 'true', WEBHOOK_PORT: '8999' },
    [/WEBHOOK_PORT must differ from METRICS_PORT \(both servers listen\), got 8999 for both/],
  ],
  ['a blank selector', { WATCH_SELECTOR: '   ' }, [/WATCH_SELECTOR must be a label selector, got a blank value/]],
  [
    'a selector the API server would refuse',
    { WATCH_SELECTOR: 'nais.io/naisjob in (true' },
    [/WATCH_SELECTOR must be a label selector: unbalanced "\(", got "nais.io\/naisjob in \(true"/],
  ],
  [
    'an ephemeral signal image not pinned by digest',
    { EPHEMERAL_SIGNAL_IMAGE: 'busybox:latest' },
    [/EPHEMERAL_SIGNAL_IMAGE must be an image pinned by digest/],
  ],
  ['a dry run that is not a boolean', { DRY_RUN: 'maybe' }, [/DRY_RUN must be true or false, got "maybe"/]],
  ['a blank instance name', { INSTANCE_NAME: ' ' }, [/INSTANCE_NAME must be a name, not blank/]],
  [
    'several problems at once, all on one line',
    { METRICS_PORT: 'x', LOG_LEVEL: 'loud', MAX_CONCURRENT_PODS: '-1' },
    [/LOG_LEVEL must be one of/, /METRICS_PORT must be an integer/, /MAX_CONCURRENT_PODS must be an integer from 1 to 10000, got "-1"/],
  ],
];

const LINE = [/^hahaha: invalid environment: /, /\(see the Configuration table in the README\)$/];

describe('environment errors (hahaha run)', () => {
  // Every case through the CLI's error boundary in-process (fast); one per class also through
  // bin/hahaha.js as a child process, as a user runs it.
  const asChild = new Set([0, 1, 2, 7, 10, 16, 20, 29]);
  const children = new Map([...asChild].map((i) => [i, hahaha(['run'], cases[i]?.[1] ?? {})]));
  for (const [i, [what, env, patterns]] of cases.entries()) {
    it(`refuses ${what} with exit 2 and one line${asChild.has(i) ? ' (bin/hahaha.js)' : ''}`, async () => {
      assertKnownFailure(await inProcess(['run'], env), 2, [...LINE, ...patterns]);
      const child = children.get(i);
      if (child !== undefined) assertKnownFailure(await child, 2, [...LINE, ...patterns]);
    });
  }

  it('takes what the README documents: defaults, decimal seconds and 0 for a free metrics port', () => {
    const c = loadConfig({
      RETRY_PERIOD_SECONDS: '1.5',
      RENEW_DEADLINE_SECONDS: '4',
      LEASE_DURATION_SECONDS: '6',
      METRICS_PORT: '0',
      WATCH_NAMESPACES: ' a , b ',
    });
    assert.equal(c.retryPeriodSeconds, 1.5);
    assert.equal(c.metricsPort, 0);
    assert.deepEqual(c.watchNamespaces, ['a', 'b']);
    assert.equal(loadConfig({}).verifyTimeoutSeconds, 10);
  });

  it('counts an empty variable as unset', () => {
    assert.equal(loadConfig({ METRICS_PORT: '', MAX_CONCURRENT_PODS: '' }).metricsPort, 8999);
  });

  it('throws a ConfigError whose message is one line', () => {
    assert.throws(
      () => loadConfig({ METRICS_PORT: '99999', LOG_LEVEL: 'x' }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('\n'),
    );
  });
});
