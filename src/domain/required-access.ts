/**
 * What hahaha needs the API server to allow, as SelfSubjectAccessReview attributes: exactly the
 * chart's ClusterRole and Role (test/e2e/rbac.test.ts proves those against the chart). Pure.
 */

export interface AccessNeed {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  /** Absent: cluster-wide. */
  readonly namespace?: string;
  readonly name?: string;
  /** What hahaha cannot do without it. */
  readonly why: string;
}

export interface AccessScope {
  /** Empty: all namespaces. */
  readonly namespaces: readonly string[];
  readonly leaderElect: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
}

/** `create pods/exec in team-a`, as logs and /readyz say it. */
export function describeNeed(n: AccessNeed): string {
  const resource = `${n.resource}${n.subresource === undefined ? '' : `/${n.subresource}`}${n.group === '' ? '' : `.${n.group}`}`;
  const name = n.name === undefined ? '' : ` ${n.name}`;
  return `${n.verb} ${resource}${name} ${n.namespace === undefined ? 'cluster-wide' : `in ${n.namespace}`}`;
}

export function requiredAccess(scope: AccessScope): AccessNeed[] {
  const places: (string | undefined)[] = scope.namespaces.length === 0 ? [undefined] : [...scope.namespaces];
  const needs: AccessNeed[] = [];
  for (const namespace of places) {
    const at = namespace === undefined ? {} : { namespace };
    for (const verb of ['get', 'list', 'watch']) needs.push({ verb, group: '', resource: 'pods', ...at, why: 'watch the job pods' });
    for (const sub of ['exec', 'portforward']) {
      for (const verb of ['get', 'create']) {
        needs.push({ verb, group: '', resource: 'pods', subresource: sub, ...at, why: `stop sidecars through pods/${sub}` });
      }
    }
    for (const verb of ['create', 'patch']) needs.push({ verb, group: '', resource: 'events', ...at, why: 'record what it did as Events' });
  }
  if (scope.leaderElect) {
    const lease = { group: 'coordination.k8s.io', resource: 'leases', namespace: scope.leaseNamespace, why: 'leader election' };
    needs.push({ verb: 'create', ...lease });
    for (const verb of ['get', 'update']) needs.push({ verb, ...lease, name: scope.leaseName });
  }
  return needs;
}
