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
