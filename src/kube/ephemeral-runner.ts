/**
 * Adds an ephemeral container to a pod (pods/ephemeralcontainers patch): the way to run a
 * command next to a sidecar whose image has no shell or kill. With targetContainerName the
 * ephemeral container shares the sidecar's PID namespace, so "PID 1" is the sidecar's.
 */
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { EphemeralContainerSpec, EphemeralRunner, PodRef } from '../ports.ts';

export class ApiEphemeralRunner implements EphemeralRunner {
  private readonly api: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CoreV1Api);
  }

  async start(pod: PodRef, spec: EphemeralContainerSpec): Promise<void> {
    await this.api.patchNamespacedPodEphemeralcontainers(
      {
        namespace: pod.namespace,
        name: pod.name,
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
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }
}
