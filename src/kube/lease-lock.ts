/**
 * LeaseLock on a coordination.k8s.io/v1 Lease. Times are MicroTime values, which the API server
 * only parses with six fractional digits.
 */
import { LeaseConflict, type LeaseLock, type LeaseRecord } from '../ports.ts';
import { apiStatus, type KubeClient } from './kube-client.ts';
import { leasePath } from './paths.ts';

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** RFC 3339 with microseconds, as metav1.MicroTime expects. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function parseTime(v: unknown): number {
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return 0;
}

function isStatus(err: unknown, code: number): boolean {
  return apiStatus(err) === code;
}

export class ApiLeaseLock implements LeaseLock {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;

  constructor(client: KubeClient, namespace: string, name: string) {
    this.client = client;
    this.namespace = namespace;
    this.name = name;
  }

  describe(): string {
    return `${this.namespace}/${this.name}`;
  }

  async get(): Promise<{ record: LeaseRecord; version: string } | undefined> {
    let lease: Lease;
    try {
      lease = await this.client.request<Lease>('GET', leasePath(this.namespace, this.name), { timeoutMs: 10_000 });
    } catch (err) {
      if (isStatus(err, 404)) return undefined;
      throw err;
    }
    const spec = lease.spec ?? {};
    return {
      version: lease.metadata?.resourceVersion ?? '',
      record: {
        holderIdentity: spec.holderIdentity ?? '',
        leaseDurationSeconds: spec.leaseDurationSeconds ?? 15,
        acquireTime: parseTime(spec.acquireTime),
        renewTime: parseTime(spec.renewTime),
        leaseTransitions: spec.leaseTransitions ?? 0,
      },
    };
  }

  async create(record: LeaseRecord): Promise<string> {
    try {
      const lease = await this.client.request<Lease>('POST', leasePath(this.namespace), { body: this.body(record), timeoutMs: 10_000 });
      return lease.metadata?.resourceVersion ?? '';
    } catch (err) {
      if (isStatus(err, 409)) throw new LeaseConflict('lease already exists');
      throw err;
    }
  }

  async update(record: LeaseRecord, version: string): Promise<string> {
    try {
      const lease = await this.client.request<Lease>('PUT', leasePath(this.namespace, this.name), { body: this.body(record, version), timeoutMs: 10_000 });
      return lease.metadata?.resourceVersion ?? '';
    } catch (err) {
      if (isStatus(err, 409)) throw new LeaseConflict('lease changed since it was read');
      throw err;
    }
  }

  private body(record: LeaseRecord, version?: string): Lease & { apiVersion: string; kind: string } {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...(version !== undefined && { resourceVersion: version }) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        acquireTime: microTime(record.acquireTime),
        renewTime: microTime(record.renewTime),
        leaseTransitions: record.leaseTransitions,
      },
    };
  }
}
