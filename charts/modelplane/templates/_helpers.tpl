{{/*
The chart name, overridable by nameOverride.
*/}}
{{- define "modelplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name, truncated to 63 characters (the DNS label limit). When the release
name already contains the chart name it is used as is.
*/}}
{{- define "modelplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version for the helm.sh/chart label.
*/}}
{{- define "modelplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "modelplane.labels" -}}
helm.sh/chart: {{ include "modelplane.chart" . }}
{{ include "modelplane.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelplane
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "modelplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: include with (dict "context" $ "component" "router").
*/}}
{{- define "modelplane.componentLabels" -}}
{{ include "modelplane.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelplane.componentSelectorLabels" -}}
{{ include "modelplane.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Component resource names.
*/}}
{{- define "modelplane.operator.fullname" -}}
{{- printf "%s-operator" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelplane.router.fullname" -}}
{{- printf "%s-router" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "modelplane.redis.fullname" -}}
{{- printf "%s-redis" (include "modelplane.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the service account to use, one per component.
*/}}
{{- define "modelplane.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "modelplane.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelplane.router.serviceAccountName" -}}
{{- if .Values.router.serviceAccount.create }}
{{- default (include "modelplane.router.fullname" .) .Values.router.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.router.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespaces each component watches when it is not cluster-wide.
*/}}
{{- define "modelplane.operator.watchNamespace" -}}
{{- default .Release.Namespace .Values.operator.watchNamespace }}
{{- end }}

{{- define "modelplane.router.watchNamespace" -}}
{{- default (include "modelplane.operator.watchNamespace" .) .Values.router.watchNamespace }}
{{- end }}

{{/*
An image reference from {registry, repository, tag, digest}: include with
(dict "image" .Values.image "defaultTag" .Chart.AppVersion).
*/}}
{{- define "modelplane.imageRef" -}}
{{- $repository := .image.repository }}
{{- if .image.registry }}
{{- $repository = printf "%s/%s" .image.registry .image.repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .defaultTag .image.tag) }}
{{- end }}
{{- end }}

{{- define "modelplane.image" -}}
{{- include "modelplane.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) }}
{{- end }}

{{- define "modelplane.redis.image" -}}
{{- include "modelplane.imageRef" (dict "image" .Values.redis.image "defaultTag" "latest") }}
{{- end }}

{{- define "modelplane.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Redis wiring for the router. "modelplane.redis.configured" is "true" when the router gets a Redis
URL (bundled or external); the password always comes from a Secret.
*/}}
{{- define "modelplane.redis.configured" -}}
{{- if or .Values.redis.enabled .Values.redis.external.url }}true{{- end }}
{{- end }}

{{- define "modelplane.redis.url" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s.%s.svc:6379/0" (include "modelplane.redis.fullname" .) .Release.Namespace }}
{{- else }}
{{- .Values.redis.external.url }}
{{- end }}
{{- end }}

{{- define "modelplane.redis.secretName" -}}
{{- if .Values.redis.enabled }}
{{- default (include "modelplane.redis.fullname" .) .Values.redis.auth.existingSecret }}
{{- else if .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecret }}
{{- else if .Values.redis.external.password }}
{{- printf "%s-external" (include "modelplane.redis.fullname" .) }}
{{- end }}
{{- end }}

{{- define "modelplane.redis.secretKey" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}{{ .Values.redis.auth.existingSecretPasswordKey }}{{ else }}redis-password{{ end }}
{{- else if .Values.redis.external.existingSecret }}
{{- .Values.redis.external.existingSecretPasswordKey }}
{{- else }}redis-password
{{- end }}
{{- end }}

{{/*
Reject value combinations that render but cannot work.
*/}}
{{- define "modelplane.validateValues" -}}
{{- if and .Values.redis.enabled .Values.redis.external.url }}
{{- fail "redis.enabled and redis.external.url are exclusive: set redis.enabled=false to use an external Redis" }}
{{- end }}
{{- if and .Values.redis.external.url (not (regexMatch "^rediss?://[^@/]+(/[0-9]+)?$" .Values.redis.external.url)) }}
{{- fail "redis.external.url must look like redis://host:port/db or rediss://host:port/db, without credentials (put the password in redis.external.existingSecret)" }}
{{- end }}
{{- if eq (int .Values.router.metricsPort) (int .Values.router.port) }}
{{- fail "router.metricsPort must differ from router.port (the router refuses to serve both on one port)" }}
{{- end }}
{{- if and .Values.router.autoscaling.enabled (gt (int .Values.router.autoscaling.minReplicas) (int .Values.router.autoscaling.maxReplicas)) }}
{{- fail "router.autoscaling.minReplicas must not exceed router.autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.operator.watchAllNamespaces (not .Values.networkPolicy.models.namespaces) }}
{{- fail "with operator.watchAllNamespaces, list the namespaces of your models in networkPolicy.models.namespaces: the router may reach model pods only there" }}
{{- end }}
{{- end }}
