{{/*
Names. "redtail.fullname" prefixes every resource; it is cut to 63 characters minus the longest
suffix the chart adds ("-subscriber", 11) so derived names stay valid DNS labels.
*/}}
{{- define "redtail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "redtail.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "redtail.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels shared by every pod of the release; a component label narrows them. */}}
{{- define "redtail.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redtail.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "redtail.labels" -}}
helm.sh/chart: {{ include "redtail.chart" . }}
{{ include "redtail.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: redtail
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Usage: include "redtail.componentLabels" (dict "ctx" $ "component" "generator") */}}
{{- define "redtail.componentLabels" -}}
{{ include "redtail.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "redtail.componentSelectorLabels" -}}
{{ include "redtail.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "redtail.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "redtail.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
A redtail image reference. Usage: include "redtail.image" (dict "ctx" $ "image" .Values.generator.image)
The registry and tag fall back to the shared image.* values, the tag to the chart's appVersion.
*/}}
{{- define "redtail.image" -}}
{{- $registry := .ctx.Values.image.registry }}
{{- $ref := .image.repository }}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end }}
{{- if .image.digest }}
{{- printf "%s@%s" $ref .image.digest }}
{{- else }}
{{- printf "%s:%s" $ref (.image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* A third-party image (Redis, the test pod): registry, repository, tag, digest of its own. */}}
{{- define "redtail.externalImage" -}}
{{- $ref := .repository }}
{{- if .registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" .registry) $ref }}{{ end }}
{{- if .digest }}
{{- printf "%s@%s" $ref .digest }}
{{- else }}
{{- printf "%s:%s" $ref .tag }}
{{- end }}
{{- end }}

{{- define "redtail.redisFullname" -}}
{{- printf "%s-redis" (include "redtail.fullname" .) }}
{{- end }}

{{/* The Secret and key the redis password lives in (redis.enabled). */}}
{{- define "redtail.redisSecretName" -}}
{{- default (include "redtail.redisFullname" .) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "redtail.redisSecretKey" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecretPasswordKey }}
{{- else -}}
redis-password
{{- end }}
{{- end }}

{{/* The Secret and key the whole URL lives in (redis.enabled=false). */}}
{{- define "redtail.externalRedisSecretName" -}}
{{- default (printf "%s-external-redis" (include "redtail.fullname" .)) .Values.externalRedis.existingSecret }}
{{- end }}

{{- define "redtail.externalRedisSecretKey" -}}
{{- if .Values.externalRedis.existingSecret }}
{{- .Values.externalRedis.existingSecretUrlKey }}
{{- else -}}
redis-url
{{- end }}
{{- end }}

{{/*
Environment giving REDTAIL_REDIS_URL. With the bundled Redis the password comes from its Secret
and is spliced into the URL by Kubernetes' dependent variable expansion ($(REDIS_PASSWORD) must be
defined before the URL), so the password never appears in the pod spec.
*/}}
{{- define "redtail.redisEnv" -}}
{{- if .Values.redis.enabled -}}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "redtail.redisSecretName" . }}
      key: {{ include "redtail.redisSecretKey" . }}
- name: REDTAIL_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "redtail.redisFullname" .) | quote }}
{{- else -}}
- name: REDTAIL_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "redtail.externalRedisSecretName" . }}
      key: {{ include "redtail.externalRedisSecretKey" . }}
{{- if .Values.externalRedis.cluster }}
- name: REDTAIL_REDIS_CLUSTER
  value: "true"
{{- end }}
{{- if gt (int .Values.externalRedis.replicaAcks) 0 }}
- name: REDTAIL_REPLICA_ACKS
  value: {{ .Values.externalRedis.replicaAcks | int | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Variables every redtail process reads. Usage: include "redtail.commonEnv" . */}}
{{- define "redtail.commonEnv" -}}
- name: REDTAIL_MODE
  value: {{ .Values.config.mode | quote }}
- name: REDTAIL_STREAM
  value: {{ .Values.config.stream | quote }}
- name: REDTAIL_CHANNEL
  value: {{ .Values.config.channel | quote }}
- name: REDTAIL_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.config.rustLog | quote }}
- name: REDTAIL_SHUTDOWN_TIMEOUT_MS
  value: {{ .Values.config.shutdownTimeoutMs | int64 | quote }}
{{- end }}

{{/*
HTTP probes against the admin server. Usage:
include "redtail.probes" (dict "port" "gen-metrics" "values" .Values.generator)
Startup and liveness use /healthz (alive, even while Redis is down); readiness uses /readyz.
*/}}
{{- define "redtail.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml .values.startupProbe | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  {{- toYaml .values.livenessProbe | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  {{- toYaml .values.readinessProbe | nindent 2 }}
{{- end }}

{{/*
Checks the schema cannot express. Included by every workload template so that helm template,
lint and install all fail with the same message.
*/}}
{{- define "redtail.validate" -}}
{{- $timeout := .Values.config.shutdownTimeoutMs | int64 }}
{{- range $component := list "generator" "subscriber" }}
{{- $grace := (index $.Values $component).terminationGracePeriodSeconds | int64 }}
{{- if le (mul $grace 1000) $timeout }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must be larger than config.shutdownTimeoutMs/1000 (%d ms): Kubernetes would kill redtail before its graceful shutdown ends" $component $grace $timeout) }}
{{- end }}
{{- end }}
{{- if not .Values.redis.enabled }}
{{- if and (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) }}
{{- fail "redis.enabled=false needs externalRedis.url or externalRedis.existingSecret" }}
{{- end }}
{{- if and .Values.externalRedis.url .Values.externalRedis.existingSecret }}
{{- fail "give only one of externalRedis.url and externalRedis.existingSecret" }}
{{- end }}
{{- end }}
{{- if not (hasPrefix "/var/log/app/" .Values.watcher.logPath) }}
{{- fail (printf "watcher.logPath (%s) must be under /var/log/app/, the shared log volume" .Values.watcher.logPath) }}
{{- end }}
{{- end }}
