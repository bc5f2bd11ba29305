{{/*
The watcher container. Rendered either among initContainers with restartPolicy: Always (a native
sidecar: started before the generator, stopped after it, so the last lines written are still
published) or as a plain second container.
*/}}
{{- define "redtail.watcherContainer" -}}
- name: watcher
  image: {{ include "redtail.image" (dict "ctx" . "image" .Values.watcher.image) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.watcher.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  ports:
    - name: watch-metrics
      containerPort: {{ .Values.watcher.metricsPort }}
      protocol: TCP
  env:
    {{- include "redtail.redisEnv" . | nindent 4 }}
    {{- include "redtail.transportEnv" . | nindent 4 }}
    {{- include "redtail.processEnv" . | nindent 4 }}
    {{- if gt (int .Values.externalRedis.replicaAcks) 0 }}
    - name: REDTAIL_REPLICA_ACKS
      value: {{ .Values.externalRedis.replicaAcks | int | quote }}
    {{- end }}
    # The source id keys this watcher's offsets in Redis: qualified by the namespace, two releases
    # sharing one Redis never collide (a pod name alone is unique only within its namespace).
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- if .Values.watcher.sourceIncludesNamespace }}
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: REDTAIL_SOURCE
      value: "$(POD_NAMESPACE)/$(POD_NAME)"
    {{- else }}
    - name: REDTAIL_SOURCE
      value: "$(POD_NAME)"
    {{- end }}
    - name: REDTAIL_LOG_PATH
      value: {{ .Values.watcher.logPath | quote }}
    - name: REDTAIL_CHECKPOINT_PATH
      value: /var/lib/redtail/checkpoint.json
    - name: REDTAIL_CHECKPOINT_EVERY_LINES
      value: {{ .Values.watcher.checkpointEveryLines | int64 | quote }}
    - name: REDTAIL_CHECKPOINT_INTERVAL_MS
      value: {{ .Values.watcher.checkpointIntervalMs | int64 | quote }}
    - name: REDTAIL_START_AT
      value: {{ .Values.watcher.startAt | quote }}
    - name: REDTAIL_MAX_LINE_BYTES
      value: {{ .Values.watcher.maxLineBytes | int64 | quote }}
    - name: REDTAIL_BATCH_MAX_LINES
      value: {{ .Values.watcher.batchMaxLines | int64 | quote }}
    - name: REDTAIL_STREAM_MAXLEN
      value: {{ .Values.watcher.streamMaxlen | int64 | quote }}
    - name: REDTAIL_POLL_INTERVAL_MS
      value: {{ .Values.watcher.pollIntervalMs | int64 | quote }}
    - name: REDTAIL_METRICS_ADDR
      value: {{ printf "0.0.0.0:%d" (.Values.watcher.metricsPort | int) | quote }}
    {{- with .Values.watcher.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.watcher.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.watcher.lifecycle }}
  lifecycle:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "redtail.probes" (dict "port" "watch-metrics" "values" .Values.watcher) | nindent 2 }}
  resources:
    {{- toYaml .Values.watcher.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    # The watcher only reads the logs: a read-only mount makes that a guarantee.
    - name: logs
      mountPath: /var/log/app
      readOnly: true
    - name: checkpoint
      mountPath: /var/lib/redtail
    {{- include "redtail.tlsVolumeMount" . | nindent 4 }}
    {{- with .Values.watcher.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
