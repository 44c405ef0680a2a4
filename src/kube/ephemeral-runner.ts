/**
 * Adds an ephemeral container to a pod (pods/ephemeralcontainers patch): the way to run a
 * command next to a sidecar whose image has no shell or kill. With targetContainerName the
 * ephemeral container shares the sidecar's PID namespace, so "PID 1" is the sidecar's.
 */
import type { EphemeralContainerSpec, EphemeralRunner, PodRef } from '../ports.ts';
import type { KubeClient } from './kube-client.ts';
import { podPath } from './paths.ts';

export class ApiEphemeralRunner implements EphemeralRunner {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  async start(pod: PodRef, spec: EphemeralContainerSpec): Promise<void> {
    await this.client.request('PATCH', podPath(pod, 'ephemeralcontainers'), {
      contentType: 'application/strategic-merge-patch+json',
      body: {
        metadata: { uid: pod.uid },
        spec: {
          ephemeralContainers: [
            {
              name: spec.name,
              image: spec.image,
              command: [...spec.command],
              targetContainerName: spec.targetContainerName,
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      },
    });
  }
}
