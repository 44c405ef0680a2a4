/**
 * admission.k8s.io/v1 AdmissionReview in, AdmissionReview out, for pod CREATEs. Pure: the
 * conversion itself is domain/native-conversion.ts. The answer always allows the pod: a pod
 * hahaha cannot or will not convert is created as it was sent.
 */
import type { Catalog } from '../domain/catalog.ts';
import type { LabelSelector } from '../domain/label-selector.ts';
import { type ConversionPlan, conversionPatch, type JsonPatchOp, planConversion } from '../domain/native-conversion.ts';
import { isObject } from '../domain/pod-view.ts';

export interface AdmissionRequestInfo {
  readonly uid: string;
  readonly namespace: string;
  /** The pod's name, or its generateName followed by `*` when the API server has not named it yet. */
  readonly pod: string;
  readonly dryRun: boolean;
}

export type ReviewResult =
  | {
      readonly ok: true;
      readonly request: AdmissionRequestInfo;
      readonly plan: ConversionPlan;
      readonly patch: readonly JsonPatchOp[];
      /** The AdmissionReview to send back. */
      readonly response: object;
    }
  | { readonly ok: false; readonly error: string; readonly response?: object };

function allow(uid: string, patch: readonly JsonPatchOp[] = []): object {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(patch.length > 0 && { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
    },
  };
}

/**
 * Answers one AdmissionReview. Anything that is not a pod CREATE is allowed unchanged; a review
 * without a request uid cannot be answered and yields an error (the API server then applies the
 * webhook's failurePolicy, Ignore).
 */
export function reviewPodCreate(review: unknown, catalog: Catalog, nativeSidecarsSupported: boolean, selector?: LabelSelector): ReviewResult {
  if (!isObject(review) || !isObject(review.request)) return { ok: false, error: 'not an AdmissionReview with a request' };
  const req = review.request;
  if (typeof req.uid !== 'string' || req.uid === '') return { ok: false, error: 'the AdmissionReview request has no uid' };
  const uid = req.uid;
  const kind = isObject(req.kind) ? req.kind : {};
  const resource = isObject(req.resource) ? req.resource : {};
  const isPod = (kind.kind === 'Pod' || resource.resource === 'pods') && (req.subResource ?? '') === '';
  if (!isPod || req.operation !== 'CREATE') {
    return { ok: false, error: `not a pod CREATE (${String(req.operation)} ${String(resource.resource ?? kind.kind)})`, response: allow(uid) };
  }
  const namespace = typeof req.namespace === 'string' ? req.namespace : '';
  const object = req.object;
  const meta = isObject(object) && isObject(object.metadata) ? object.metadata : {};
  const pod = typeof meta.name === 'string' && meta.name !== '' ? meta.name : `${String(meta.generateName ?? '')}*`;
  const request: AdmissionRequestInfo = { uid, namespace, pod, dryRun: req.dryRun === true };

  const plan = planConversion(object, namespace, catalog, {
    nativeSidecarsSupported,
    ...(selector !== undefined && { selects: (labels: Readonly<Record<string, string>>) => selector.matches(labels) }),
  });
  const patch = conversionPatch(object, plan);
  return { ok: true, request, plan, patch, response: allow(uid, patch) };
}
