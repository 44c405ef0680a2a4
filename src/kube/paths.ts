/** API paths of the objects hahaha reads and writes, with each name segment escaped. */

const seg = encodeURIComponent;

/** `/api/v1/pods` (all namespaces) or `/api/v1/namespaces/<ns>/pods`. */
export function podsPath(namespace?: string): string {
  return namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${seg(namespace)}/pods`;
}

export function podPath(pod: { readonly namespace: string; readonly name: string }, subresource?: string): string {
  return `${podsPath(pod.namespace)}/${seg(pod.name)}${subresource === undefined ? '' : `/${subresource}`}`;
}

export function eventsPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${seg(namespace)}/events${name === undefined ? '' : `/${seg(name)}`}`;
}

export function leasePath(namespace: string, name?: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${seg(namespace)}/leases${name === undefined ? '' : `/${seg(name)}`}`;
}
