/**
 * LeaseLock on a coordination.k8s.io/v1 Lease. Times are MicroTime values, which the API server
 * only parses with six fractional digits, so they are written as strings here rather than as
 * Date objects (which client-node would send with three).
 */
import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { LeaseConflict, type LeaseLock, type LeaseRecord } from '../ports.ts';

/** RFC 3339 with microseconds, as metav1.MicroTime expects. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function parseTime(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return 0;
}

function isStatus(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

export class ApiLeaseLock implements LeaseLock {
  private readonly api: CoordinationV1Api;
  private readonly namespace: string;
  private readonly name: string;

  constructor(kc: KubeConfig, namespace: string, name: string) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.namespace = namespace;
    this.name = name;
  }

  describe(): string {
    return `${this.namespace}/${this.name}`;
  }

  async get(): Promise<{ record: LeaseRecord; version: string } | undefined> {
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ namespace: this.namespace, name: this.name });
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
      const lease = await this.api.createNamespacedLease({ namespace: this.namespace, body: this.body(record) });
      return lease.metadata?.resourceVersion ?? '';
    } catch (err) {
      if (isStatus(err, 409)) throw new LeaseConflict('lease already exists');
      throw err;
    }
  }

  async update(record: LeaseRecord, version: string): Promise<string> {
    try {
      const lease = await this.api.replaceNamespacedLease({
        namespace: this.namespace,
        name: this.name,
        body: this.body(record, version),
      });
      return lease.metadata?.resourceVersion ?? '';
    } catch (err) {
      if (isStatus(err, 409)) throw new LeaseConflict('lease changed since it was read');
      throw err;
    }
  }

  private body(record: LeaseRecord, version?: string): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...(version !== undefined && { resourceVersion: version }) },
      spec: {
        holderIdentity: record.holderIdentity,
        leaseDurationSeconds: record.leaseDurationSeconds,
        // MicroTime strings; see the module comment.
        acquireTime: microTime(record.acquireTime) as unknown as Date,
        renewTime: microTime(record.renewTime) as unknown as Date,
        leaseTransitions: record.leaseTransitions,
      },
    };
  }
}
