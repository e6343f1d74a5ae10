{{/* Names, labels and the pieces every stage template shares. */}}

{{- define "xit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.fullname" -}}
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

{{- define "xit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "xit.labels" -}}
helm.sh/chart: {{ include "xit.chart" . }}
{{ include "xit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: xit
{{- end }}

{{- define "xit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "xit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "xit.semaphoreConfigMap" -}}
{{- printf "%s-semaphores" (include "xit.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.artifactRepositoryConfigMap" -}}
{{- printf "%s-artifact-repositories" (include "xit.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.image" -}}
{{- $img := index .Values.images .kind -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Environment of every xit container: store endpoint and credentials, metrics, caches. */}}
{{- define "xit.env" -}}
- name: HF_HOME
  value: /cache/hf
- name: XIT_CACHE
  value: /cache/xit
- name: AWS_DEFAULT_REGION
  value: {{ .Values.store.s3.region | quote }}
{{- with .Values.store.s3.endpoint }}
- name: XIT_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.store.s3.credentialsSecret }}
{{- if .name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .accessKeyKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .secretKeyKey }}
{{- end }}
{{- end }}
{{- with .Values.metrics.pushgateway.url }}
- name: XIT_PUSHGATEWAY
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
One stage template of the sweep. Call with (dict "root" $ "kind" "target" "gpu" true).
Argo's own {{...}} expressions are written as {{`{{...}}`}} so Helm leaves them alone.
*/}}
{{- define "xit.stageTemplate" -}}
{{- $root := .root -}}
{{- $kind := .kind -}}
{{- $cfg := index $root.Values.stages $kind -}}
- name: {{ $kind }}
  inputs:
    parameters:
      - name: sweep
      - name: key
  metadata:
    labels:
      {{- include "xit.selectorLabels" $root | nindent 6 }}
      xit.dev/stage-kind: {{ $kind }}
  {{- if .gpu }}
  synchronization:
    semaphores:
      - configMapKeyRef:
          name: {{ include "xit.semaphoreConfigMap" $root }}
          key: gpu-stages
  {{- end }}
  retryStrategy:
    limit: {{ $root.Values.retry.limit | int | quote }}
    retryPolicy: Always
    # Errors (the pod never ran properly) and failures whose message says the node or pod went away.
    # Failures of the stage itself (exit 1, bad input exit 2) are not retried.
    expression: {{ printf "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && lastRetry.message matches '%s')" $root.Values.retry.messagePattern | quote }}
    backoff:
      duration: {{ $root.Values.retry.backoff.duration | quote }}
      factor: {{ $root.Values.retry.backoff.factor | int }}
      maxDuration: {{ $root.Values.retry.backoff.maxDuration | quote }}
  {{- with include "xit.scheduling" $cfg }}{{ . | trim | nindent 2 }}{{ end }}
  {{- if $root.Values.metrics.argoTemplateMetrics }}
  metrics:
    prometheus:
      - name: xit_argo_stage_results_total
        help: "Stage pods finished, by stage kind and Argo status."
        labels:
          - {key: kind, value: {{ $kind }}}
          - {key: status, value: {{`"{{status}}"`}}}
        counter:
          value: "1"
      - name: xit_argo_stage_duration_seconds
        help: "Wall-clock seconds of stage pods, by stage kind."
        labels:
          - {key: kind, value: {{ $kind }}}
        histogram:
          value: {{`"{{duration}}"`}}
          buckets: [10, 60, 300, 900, 3600, 10800, 43200, 172800]
  {{- end }}
  volumes:
    - name: cache
      {{- if $root.Values.cache.existingClaim }}
      persistentVolumeClaim:
        claimName: {{ $root.Values.cache.existingClaim }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ $root.Values.cache.sizeLimit }}
      {{- end }}
    {{- if $cfg.shmSize }}
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ $cfg.shmSize }}
    {{- end }}
  container:
    image: {{ include "xit.image" (dict "Values" $root.Values "Chart" $root.Chart "kind" (ternary "gpu" "cpu" .gpu)) | quote }}
    imagePullPolicy: {{ (index $root.Values.images (ternary "gpu" "cpu" .gpu)).pullPolicy }}
    args:
      {{- if eq $kind "report" }}
      - report
      - --sweep
      - {{`"{{inputs.parameters.sweep}}"`}}
      - --store
      - {{`"{{workflow.parameters.store}}"`}}
      {{- else }}
      - stage
      - run
      - --sweep
      - {{`"{{inputs.parameters.sweep}}"`}}
      - --key
      - {{`"{{inputs.parameters.key}}"`}}
      - --store
      - {{`"{{workflow.parameters.store}}"`}}
      - --no-progress
      {{- end }}
    env:
      {{- include "xit.env" $root | nindent 6 }}
    resources:
      {{- toYaml $cfg.resources | nindent 6 }}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: false
      capabilities:
        drop: [ALL]
    volumeMounts:
      - name: cache
        mountPath: /cache
      {{- if $cfg.shmSize }}
      - name: dshm
        mountPath: /dev/shm
      {{- end }}
{{- end }}

{{/* Where and how long a template's pods may run, from one stage kind's values (plan or a stage kind). */}}
{{- define "xit.scheduling" -}}
{{- if .timeoutSeconds }}
activeDeadlineSeconds: {{ .timeoutSeconds | int }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
