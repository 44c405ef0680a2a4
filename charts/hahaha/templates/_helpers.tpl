{{/* The chart's name, or nameOverride. */}}
{{- define "hahaha.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the release name alone when it already contains the chart name. */}}
{{- define "hahaha.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hahaha.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hahaha.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hahaha.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hahaha.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: sidecar-reaper
{{- end -}}

{{- define "hahaha.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hahaha.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hahaha.leaseName" -}}
{{- default (include "hahaha.fullname" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{- define "hahaha.catalogConfigMap" -}}
{{- default (printf "%s-catalog" (include "hahaha.fullname" .)) .Values.catalog.existingConfigMap -}}
{{- end -}}

{{/* The catalog text the ConfigMap carries: catalog.content, else the shipped catalog. */}}
{{- define "hahaha.catalogContent" -}}
{{- if .Values.catalog.content -}}
{{- .Values.catalog.content -}}
{{- else -}}
{{- .Files.Get "files/sidecars.yaml" -}}
{{- end -}}
{{- end -}}

{{- define "hahaha.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Fails rendering on value combinations that would make hahaha act twice or not start. */}}
{{- define "hahaha.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled: without a lease every replica would act on every pod" -}}
{{- end -}}
{{- $le := .Values.leaderElection -}}
{{- if not (and (gt (float64 $le.leaseDurationSeconds) (float64 $le.renewDeadlineSeconds)) (gt (float64 $le.renewDeadlineSeconds) (float64 $le.retryPeriodSeconds))) -}}
{{- fail "leaderElection needs leaseDurationSeconds > renewDeadlineSeconds > retryPeriodSeconds" -}}
{{- end -}}
{{- if lt (float64 .Values.retry.maxSeconds) (float64 .Values.retry.baseSeconds) -}}
{{- fail "retry.maxSeconds must be at least retry.baseSeconds" -}}
{{- end -}}
{{- if and .Values.catalog.content .Values.catalog.existingConfigMap -}}
{{- fail "set catalog.content or catalog.existingConfigMap, not both" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (empty .Values.networkPolicy.apiServer.cidrs) -}}
{{- fail "networkPolicy.enabled needs networkPolicy.apiServer.cidrs: the API server's endpoint addresses (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes)" -}}
{{- end -}}
{{- end -}}

{{/* The webhook's Service, also the name its serving certificate is issued for. */}}
{{- define "hahaha.webhookService" -}}
{{- printf "%s-webhook" (include "hahaha.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret with the webhook's serving certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "hahaha.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "hahaha.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where the daemon reads tls.crt and tls.key (WEBHOOK_CERT_DIR, its default). */}}
{{- define "hahaha.webhookCertDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end -}}

{{/*
The webhook's objectSelector as YAML: webhook.objectSelector, else watch.selector turned into a
LabelSelector. Only the equality-based forms translate one to one (k=v, k==v, k!=v, k, !k,
comma-separated); anything else fails rendering rather than sending the webhook other pods than
the reaper watches.
*/}}
{{- define "hahaha.webhookObjectSelector" -}}
{{- if .Values.webhook.objectSelector -}}
{{- toYaml .Values.webhook.objectSelector -}}
{{- else -}}
{{- $selector := .Values.watch.selector -}}
{{- $ask := printf "watch.selector %q cannot be turned into the webhook's objectSelector (only k=v, k==v, k!=v, k and !k, comma-separated, can): set webhook.objectSelector to a LabelSelector selecting the same pods" $selector -}}
{{- $key := "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$" -}}
{{- $value := "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$" -}}
{{- if regexMatch "[()]" $selector -}}
{{- fail $ask -}}
{{- end -}}
{{- $labels := dict -}}
{{- $expressions := list -}}
{{- range $term := splitList "," $selector -}}
{{- $term = trim $term -}}
{{- $k := "" -}}
{{- $v := "" -}}
{{- $op := "" -}}
{{- if contains "!=" $term -}}
{{- $parts := splitn "!=" 2 $term -}}
{{- $k = trim $parts._0 -}}{{- $v = trim $parts._1 -}}{{- $op = "NotIn" -}}
{{- else if contains "==" $term -}}
{{- $parts := splitn "==" 2 $term -}}
{{- $k = trim $parts._0 -}}{{- $v = trim $parts._1 -}}{{- $op = "=" -}}
{{- else if contains "=" $term -}}
{{- $parts := splitn "=" 2 $term -}}
{{- $k = trim $parts._0 -}}{{- $v = trim $parts._1 -}}{{- $op = "=" -}}
{{- else if hasPrefix "!" $term -}}
{{- $k = trim (trimPrefix "!" $term) -}}{{- $op = "DoesNotExist" -}}
{{- else -}}
{{- $k = $term -}}{{- $op = "Exists" -}}
{{- end -}}
{{- if not (and (regexMatch $key $k) (le (len (regexReplaceAll "^.*/" $k "")) 63) (regexMatch $value $v) (le (len $v) 63)) -}}
{{- fail $ask -}}
{{- end -}}
{{- if eq $op "=" -}}
{{- if and (hasKey $labels $k) (ne (get $labels $k) $v) -}}
{{- fail $ask -}}
{{- end -}}
{{- $_ := set $labels $k $v -}}
{{- else if eq $op "NotIn" -}}
{{- $expressions = append $expressions (dict "key" $k "operator" "NotIn" "values" (list $v)) -}}
{{- else -}}
{{- $expressions = append $expressions (dict "key" $k "operator" $op) -}}
{{- end -}}
{{- end -}}
{{- $out := dict -}}
{{- if $labels -}}{{- $_ := set $out "matchLabels" $labels -}}{{- end -}}
{{- if $expressions -}}{{- $_ := set $out "matchExpressions" $expressions -}}{{- end -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{/*
The webhook's namespaceSelector as YAML: webhook.namespaceSelector, else every namespace but
kube-system, the release's own (hahaha's pods must never wait on hahaha) and those labelled
hahaha.nais.io/native-sidecars=false; only watch.namespaces when set.
*/}}
{{- define "hahaha.webhookNamespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{- toYaml .Values.webhook.namespaceSelector -}}
{{- else -}}
{{- $expressions := list
  (dict "key" "hahaha.nais.io/native-sidecars" "operator" "NotIn" "values" (list "false"))
  (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (list "kube-system" .Release.Namespace | uniq)) -}}
{{- if .Values.watch.namespaces -}}
{{- $expressions = append $expressions (dict "key" "kubernetes.io/metadata.name" "operator" "In" "values" .Values.watch.namespaces) -}}
{{- end -}}
{{- toYaml (dict "matchExpressions" $expressions) -}}
{{- end -}}
{{- end -}}
