/**
 * EventSink writing core/v1 Events, which `kubectl describe pod` lists. A repeat patches the
 * existing Event's count and lastTimestamp rather than creating another object.
 */
import type { EventSink, PodEvent } from '../ports.ts';
import { apiStatus, type KubeClient } from './kube-client.ts';
import { eventsPath } from './paths.ts';

export const REPORTING_CONTROLLER = 'hahaha';

export class ApiEventSink implements EventSink {
  private readonly client: KubeClient;
  private readonly instance: string;

  constructor(client: KubeClient, instance: string) {
    this.client = client;
    this.instance = instance;
  }

  async create(event: PodEvent, at: Date): Promise<{ name: string; existed?: boolean }> {
    const { namespace } = event.pod;
    const name = event.regarding?.name ?? event.pod.name;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: event.name === undefined ? { generateName: `${name}.`, namespace } : { name: event.name, namespace },
      involvedObject: {
        apiVersion: event.regarding?.apiVersion ?? 'v1',
        kind: event.regarding?.kind ?? 'Pod',
        namespace,
        name,
        uid: event.regarding?.uid ?? event.pod.uid,
      },
      type: event.type,
      reason: event.reason,
      action: event.action,
      message: event.message.slice(0, 1024),
      source: { component: REPORTING_CONTROLLER },
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: this.instance.slice(0, 128),
      firstTimestamp: at.toISOString(),
      lastTimestamp: at.toISOString(),
      count: 1,
    };
    try {
      const created = await this.client.request<{ metadata?: { name?: string } }>('POST', eventsPath(namespace), { body });
      return { name: created?.metadata?.name ?? '' };
    } catch (err) {
      // AlreadyExists: an event with this fixed name was posted before (see PodEvent.name).
      if (event.name !== undefined && apiStatus(err) === 409) return { name: event.name, existed: true };
      throw err;
    }
  }

  async repeat(namespace: string, name: string, count: number, at: Date): Promise<void> {
    await this.client.request('PATCH', eventsPath(namespace, name), {
      body: { count, lastTimestamp: at.toISOString() },
      contentType: 'application/merge-patch+json',
    });
  }
}
