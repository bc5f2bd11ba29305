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
defined before the URL), so the password never appears in the pod spec. TLS files (tls.*) are
mounted by "redtail.tlsVolumeMount".
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
{{- end }}
{{- with .Values.tls.existingSecret }}
{{- if $.Values.tls.caKey }}
- name: REDTAIL_REDIS_CA_PATH
  value: {{ printf "/etc/redtail/tls/%s" $.Values.tls.caKey | quote }}
{{- end }}
{{- if $.Values.tls.certKey }}
- name: REDTAIL_REDIS_CLIENT_CERT_PATH
  value: {{ printf "/etc/redtail/tls/%s" $.Values.tls.certKey | quote }}
- name: REDTAIL_REDIS_CLIENT_KEY_PATH
  value: {{ printf "/etc/redtail/tls/%s" $.Values.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The TLS Secret's mount (tls.existingSecret), for the containers that talk to Redis. */}}
{{- define "redtail.tlsVolumeMount" -}}
{{- if .Values.tls.existingSecret -}}
- name: redis-tls
  mountPath: /etc/redtail/tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "redtail.tlsVolume" -}}
{{- if .Values.tls.existingSecret -}}
- name: redis-tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{/* Variables of the generator and every other process (crates/cli/vars.rs PROCESS). */}}
{{- define "redtail.processEnv" -}}
- name: REDTAIL_LOG_FORMAT
  value: {{ .Values.config.logFormat | quote }}
- name: RUST_LOG
  value: {{ .Values.config.rustLog | quote }}
- name: REDTAIL_SHUTDOWN_TIMEOUT_MS
  value: {{ .Values.config.shutdownTimeoutMs | int64 | quote }}
{{- end }}

{{/*
The transport (crates/cli/vars.rs REDIS, less the URL): the mode and the one key it uses, the
stream or the channel. The generator never talks to Redis and gets none of it.
*/}}
{{- define "redtail.transportEnv" -}}
- name: REDTAIL_MODE
  value: {{ .Values.config.mode | quote }}
{{- if eq .Values.config.mode "stream" }}
- name: REDTAIL_STREAM
  value: {{ .Values.config.stream | quote }}
{{- else }}
- name: REDTAIL_CHANNEL
  value: {{ .Values.config.channel | quote }}
{{- end }}
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
{{- /* The application pod: with the native sidecar Kubernetes stops the generator (the app) first
       and the watcher only after it has exited, both within one grace period; the watcher then
       drains what the files hold for up to its REDTAIL_SHUTDOWN_TIMEOUT_MS. So the period must
       hold the app's stop, the watcher's drain and a margin for the kubelet. */}}
{{- $appStop := .Values.generator.shutdownSeconds | int64 }}
{{- $margin := 5 }}
{{- $needApp := add (div (add $timeout 999) 1000) $margin }}
{{- if .Values.watcher.nativeSidecar }}
{{- $needApp = add $needApp $appStop }}
{{- end }}
{{- $grace := .Values.generator.terminationGracePeriodSeconds | int64 }}
{{- if lt $grace $needApp }}
{{- fail (printf "generator.terminationGracePeriodSeconds (%d) must be at least %d: %sthe watcher's drain (config.shutdownTimeoutMs %d ms) and a %d s margin, or Kubernetes kills the watcher before its lines are shipped" $grace $needApp (ternary (printf "the app's stop (generator.shutdownSeconds %d s), then " $appStop) "" .Values.watcher.nativeSidecar) $timeout $margin) }}
{{- end }}
{{- $needSub := add (div (add $timeout 999) 1000) $margin }}
{{- $subGrace := .Values.subscriber.terminationGracePeriodSeconds | int64 }}
{{- if lt $subGrace $needSub }}
{{- fail (printf "subscriber.terminationGracePeriodSeconds (%d) must be at least %d: config.shutdownTimeoutMs (%d ms) plus a %d s margin" $subGrace $needSub $timeout $margin) }}
{{- end }}
{{- if and .Values.watcher.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "watcher.nativeSidecar=true needs Kubernetes 1.29 or newer (this cluster: %s): set watcher.nativeSidecar=false for the plain second container" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (not .Values.redis.enabled) .Values.redis.auth.password }}
{{- fail "redis.auth.password is for the bundled Redis (redis.enabled=true); give an external Redis's password in externalRedis.url or its Secret" }}
{{- end }}
{{- if and .Values.redis.enabled (not .Values.redis.auth.existingSecret) (not .Values.redis.auth.password) }}
{{- fail "the bundled Redis needs a password: set redis.auth.existingSecret (a Secret you create once, e.g. kubectl create secret generic redtail-redis-auth --from-literal=redis-password=\"$(openssl rand -hex 24)\") or redis.auth.password" }}
{{- end }}
{{- if and .Values.redis.auth.existingSecret .Values.redis.auth.password }}
{{- fail "give only one of redis.auth.existingSecret and redis.auth.password" }}
{{- end }}
{{- if eq .Values.subscriber.sink.type "secops" }}
{{- $s := .Values.subscriber.sink.secops }}
{{- if not $s.endpoint }}{{ fail "subscriber.sink.type=secops needs subscriber.sink.secops.endpoint" }}{{ end }}
{{- if and (ne $s.api "legacy") (not $s.instance) }}{{ fail "subscriber.sink.secops.instance is required (projects/<p>/locations/<l>/instances/<customer id>) unless api=legacy" }}{{ end }}
{{- if and (eq $s.api "legacy") (not $s.customerId) }}{{ fail "subscriber.sink.secops.api=legacy needs subscriber.sink.secops.customerId" }}{{ end }}
{{- if and (ne $s.api "events") (not $s.logType) }}{{ fail (printf "subscriber.sink.secops.logType is required for api=%s" $s.api) }}{{ end }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled }}
{{- fail "enable only one of metrics.serviceMonitor and metrics.podMonitor: both scrape every redtail process, so every series would be counted twice" }}
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

{{/*
The Google SecOps sink (subscriber.sink.type=secops; INTERFACE.md "Delivery to Google SecOps").
Only the variables given are set, so the subscriber's own defaults (which differ for the legacy
API) apply to the rest.
*/}}
{{- define "redtail.secopsEnv" -}}
{{- $s := .Values.subscriber.sink.secops -}}
- name: REDTAIL_SINK
  value: secops
- name: REDTAIL_SECOPS_API
  value: {{ $s.api | quote }}
- name: REDTAIL_SECOPS_ENDPOINT
  value: {{ $s.endpoint | quote }}
{{- with $s.instance }}
- name: REDTAIL_SECOPS_INSTANCE
  value: {{ . | quote }}
{{- end }}
{{- with $s.customerId }}
- name: REDTAIL_SECOPS_CUSTOMER_ID
  value: {{ . | quote }}
{{- end }}
{{- with $s.logType }}
- name: REDTAIL_SECOPS_LOG_TYPE
  value: {{ . | quote }}
{{- end }}
{{- with $s.namespace }}
- name: REDTAIL_SECOPS_NAMESPACE
  value: {{ . | quote }}
{{- end }}
{{- if $s.credentials.existingSecret }}
- name: REDTAIL_SECOPS_CREDENTIALS
  value: /etc/redtail/secops/credentials.json
{{- end }}
{{- range $key, $var := dict "batchBytes" "REDTAIL_SECOPS_BATCH_BYTES" "batchEntries" "REDTAIL_SECOPS_BATCH_ENTRIES" "batchMs" "REDTAIL_SECOPS_BATCH_MS" "maxAgeMs" "REDTAIL_SECOPS_MAX_AGE_MS" }}
{{- $v := index $s $key | int64 }}
{{- if gt $v 0 }}
- name: {{ $var }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}
- name: REDTAIL_SECOPS_GZIP
  value: {{ $s.gzip | toString | quote }}
{{- end }}

{{/*
Redis's maxmemory: redis.maxmemory when given, else redis.maxmemoryPercent of the container's
memory limit (the rest is headroom for the append-only file rewrite's copy-on-write, client
buffers and fragmentation). A Kubernetes quantity (1Gi, 800M, 1073741824) is read as bytes.
*/}}
{{- define "redtail.redisMaxmemory" -}}
{{- if .Values.redis.maxmemory -}}
{{- .Values.redis.maxmemory -}}
{{- else -}}
{{- $limit := (.Values.redis.resources.limits | default dict).memory | default "" | toString -}}
{{- if not $limit -}}
{{- fail "redis.resources.limits.memory is needed to derive Redis's maxmemory (or set redis.maxmemory)" -}}
{{- end -}}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- $m := regexFind "^[0-9]+" $limit -}}
{{- $suffix := trimPrefix $m $limit -}}
{{- if or (not $m) (and $suffix (not (hasKey $units $suffix))) -}}
{{- fail (printf "redis.resources.limits.memory %q: use an integer with Ki, Mi, Gi, Ti, k, M, G or T (or set redis.maxmemory)" $limit) -}}
{{- end -}}
{{- $bytes := mul (int64 $m) (int64 (get $units $suffix | default 1)) -}}
{{- div (mul $bytes (int64 .Values.redis.maxmemoryPercent)) 100 -}}
{{- end -}}
{{- end }}
