import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCatalog } from '../../src/config/catalog-file.ts';
import { ATTEMPT_KIND_NAMES, ATTEMPT_KINDS, describeKind, kindJson } from '../../src/domain/attempt-kinds/index.ts';
import { execStrategy } from '../../src/strategies/exec.ts';
import { httpStrategy } from '../../src/strategies/http.ts';
import { createRegistry } from '../../src/strategies/registry.ts';
import { cannotHaveStopped, causeOf } from '../../src/strategies/strategy.ts';

const examples: Record<string, unknown> = {
  http: { method: 'GET', port: 24444, path: '/api/processes.killWorkers' },
  exec: { command: ['/bin/killall', 'configmap-reload'] },
};

describe('attempt kinds: one table', () => {
  const registry = createRegistry({
    portForwarder: { request: async () => ({ status: 200, body: '' }) },
    executor: { exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }) },
  });

  for (const kind of ATTEMPT_KIND_NAMES) {
    it(`${kind}: the catalog parses it, it describes itself, explain prints it, and a strategy runs it`, () => {
      assert.ok(kind in examples, `add an example for the new kind ${kind}`);
      const catalog = parseCatalog({ sidecars: [{ name: 'x', containers: ['x'], attempts: [{ [kind]: examples[kind] }] }] }, 'test.yaml');
      const a = catalog.entries[0]?.attempts[0];
      assert.equal(a?.kind, kind);
      if (a === undefined) return;
      assert.match(describeKind(a), new RegExp(`^${kind} `));
      assert.equal(kindJson(a).kind, kind);
      assert.equal(typeof registry[a.kind].run, 'function');
      assert.ok(ATTEMPT_KINDS[kind].synopsis.startsWith(kind));
    });
  }

  it("the catalog's message lists every kind", () => {
    assert.throws(
      () => parseCatalog({ sidecars: [{ name: 'x', containers: ['x'], attempts: [{}] }] }, 't.yaml'),
      /exactly one of http \{method, port, path\} or exec \{command\}/,
    );
  });
});

describe('event texts without API noise', () => {
  it('drops the empty uid and the sandbox id of port-forward errors', async () => {
    const { withoutApiNoise } = await import('../../src/strategies/strategy.ts');
    assert.equal(
      withoutApiNoise(`error forwarding port 9091 to pod ${'a'.repeat(64)}, uid : dial tcp 127.0.0.1:9091: connect: connection refused`),
      'error forwarding port 9091: dial tcp 127.0.0.1:9091: connect: connection refused',
    );
    assert.equal(withoutApiNoise('error forwarding port 9091 to pod job-1, uid : failed'), 'error forwarding port 9091 to pod job-1: failed');
  });
});

describe("attempt kinds keep the catalog loader's wording", () => {
  const attempt = (a: unknown) => () => parseCatalog({ sidecars: [{ name: 'x', containers: ['x'], attempts: [a] }] }, 't.yaml');
  it('quotes a wrong method and describes other values as the loader does', () => {
    assert.throws(attempt({ http: { method: 'post', port: 1, path: '/' } }), /http\.method\): must be one of GET, POST, PUT, got "post"/);
    assert.throws(attempt({ http: { port: 1, path: 'x y' } }), /http\.path\): must be a URL path starting with \/ and without blanks, got the string "x y"/);
    assert.throws(attempt({ exec: { command: ['kill', ''] } }), /command\[1\]\): must be a non-empty string \(quote numbers: "1"\), got the string ""/);
    assert.throws(attempt({ exec: { command: ['kill', { a: 1 }] } }), /command\[1\]\): must be a non-empty string \(quote numbers: "1"\), got a mapping/);
  });
});

describe('failure causes', () => {
  it('an exec the API server refuses because the container is not running may have landed before: cut-off, verified', () => {
    const text =
      'Internal error occurred: Internal error occurred: error executing command in container: container "vks-sidecar" in pod soak/three-100-xqsmd is not running';
    assert.equal(causeOf(new Error(text)), 'cut-off');
    assert.equal(cannotHaveStopped(causeOf(new Error(text))), false);
    // A port-forward to a pod whose containers have all exited: containerd's wording, the local node's.
    for (const gone of [
      'error forwarding port 4191 to pod 0123, uid : sandbox container is not running',
      'error forwarding port 4191 to pod burst-48-rgvks: pod bench-burst/burst-48-rgvks has no running sandbox',
    ]) {
      assert.equal(causeOf(new Error(gone)), 'cut-off', gone);
    }
    assert.equal(causeOf(new Error('connect ECONNREFUSED 127.0.0.1:4191')), 'refused');
    assert.equal(causeOf(new Error('lost the connection to the API server (the WebSocket closed without a close frame)')), 'api-unavailable');
  });

  it('a port-forward that could not be opened carried no request: api-unreachable; an exec may have started: api-unavailable', async () => {
    const fail = (text: string) => async (): Promise<never> => {
      throw new Error(text);
    };
    const target = { pod: { namespace: 'team', name: 'p', uid: 'u' }, container: 'linkerd-proxy' };
    const http = { method: 'POST', port: 4191, path: '/shutdown', acceptStatus: [200], timeoutSeconds: 5 } as const;
    const exec = { command: ['/bin/kill', '-s', 'INT', '1'], timeoutSeconds: 5 } as const;
    for (const text of ['cannot reach the API server: socket hang up', 'cannot reach the API server: read ECONNRESET']) {
      const viaHttp = await httpStrategy({ request: fail(text) }).run(target, { kind: 'http', ...http }, undefined);
      assert.equal(viaHttp.ok === false && viaHttp.cause, 'api-unreachable', text);
      const viaExec = await execStrategy({ exec: fail(text) }).run(target, { kind: 'exec', ...exec }, undefined);
      assert.equal(viaExec.ok === false && viaExec.cause, 'api-unavailable', text);
    }
    const lost = await httpStrategy({ request: fail('lost the connection to the API server (the WebSocket closed without a close frame)') }).run(
      target,
      { kind: 'http', ...http },
      undefined,
    );
    assert.equal(lost.ok === false && lost.cause, 'api-unavailable');
    // Timed out before the port was open: the request was never written.
    const slow = await httpStrategy({ request: fail('the API server did not open the port-forward within 5s') }).run(
      target,
      { kind: 'http', ...http },
      undefined,
    );
    assert.equal(slow.ok === false && slow.cause, 'api-unreachable');
  });
});
