/**
 * EventSink writing core/v1 Events, which `kubectl describe pod` lists. A repeat patches the
 * existing Event's count and lastTimestamp rather than creating another object.
 */
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { EventSink, PodEvent } from '../ports.ts';

export const REPORTING_CONTROLLER = 'hahaha';

export class ApiEventSink implements EventSink {
  private readonly api: CoreV1Api;
  private readonly instance: string;

  constructor(kc: KubeConfig, instance: string) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.instance = instance;
  }

  async create(event: PodEvent, at: Date): Promise<{ name: string }> {
    const created = await this.api.createNamespacedEvent({
      namespace: event.pod.namespace,
      body: {
        metadata: { generateName: `${event.regarding?.name ?? event.pod.name}.`, namespace: event.pod.namespace },
        involvedObject: {
          apiVersion: event.regarding?.apiVersion ?? 'v1',
          kind: event.regarding?.kind ?? 'Pod',
          namespace: event.pod.namespace,
          name: event.regarding?.name ?? event.pod.name,
          uid: event.regarding?.uid ?? event.pod.uid,
        },
        type: event.type,
        reason: event.reason,
        action: event.action,
        message: event.message.slice(0, 1024),
        source: { component: REPORTING_CONTROLLER },
        reportingComponent: REPORTING_CONTROLLER,
        reportingInstance: this.instance.slice(0, 128),
        firstTimestamp: at,
        lastTimestamp: at,
        count: 1,
      },
    });
    return { name: created.metadata?.name ?? '' };
  }

  async repeat(namespace: string, name: string, count: number, at: Date): Promise<void> {
    await this.api.patchNamespacedEvent(
      { namespace, name, body: { count, lastTimestamp: at.toISOString() } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
