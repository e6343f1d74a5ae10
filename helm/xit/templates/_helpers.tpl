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

{{/* The sweep WorkflowTemplate: "<fullname>-sweep" (xit-sweep for a release named xit), so two releases in
one namespace do not collide; sweep.templateName overrides it. */}}
{{- define "xit.sweepTemplateName" -}}
{{- default (printf "%s-sweep" (include "xit.fullname" .)) .Values.sweep.templateName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.semaphoreConfigMap" -}}
{{- printf "%s-semaphores" (include "xit.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Argo's name for the GPU semaphore in its lock metrics: <namespace>/ConfigMap/<name>/<key>
(workflow/sync/lock_name.go, lockName.String). */}}
{{- define "xit.gpuLockName" -}}
{{- printf "%s/ConfigMap/%s/gpu-stages" .Release.Namespace (include "xit.semaphoreConfigMap" .) }}
{{- end }}

{{- define "xit.artifactRepositoryConfigMap" -}}
{{- printf "%s-artifact-repositories" (include "xit.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "xit.image" -}}
{{- $img := index .Values.images .kind -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) }}
{{- end }}

{{/* Environment of every xit container: store endpoint and credentials, metrics, caches. The root
filesystem is read-only: everything xit and its libraries write goes to /cache or /tmp (emptyDirs). */}}
{{- define "xit.env" -}}
- name: HOME
  value: /tmp
- name: MPLCONFIGDIR
  value: /tmp/matplotlib
- name: XDG_CACHE_HOME
  value: /cache/xdg
- name: TRITON_CACHE_DIR
  value: /cache/triton
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
    {{- include "xit.podMetadata" (dict "root" $root "kind" $kind) | nindent 4 }}
  # One pod per stage key in the namespace: two sweeps sharing a stage (same key) do not run it twice;
  # the second waits, then finds it committed and skips. Argo substitutes the inputs into the lock name
  # (operator.go, executeTemplate: TryAcquire on processedTmpl.Synchronization) and scopes a mutex to the
  # namespace (workflow/sync/lock_name.go, getMutexLockName). A template's locks are taken all at once or
  # not at all (workflow/sync/sync_manager.go, tryAcquireImpl): a stage waiting on its mutex holds no GPU slot.
  synchronization:
    {{- if .gpu }}
    semaphores:
      - configMapKeyRef:
          name: {{ include "xit.semaphoreConfigMap" $root }}
          key: gpu-stages
    {{- end }}
    mutexes:
      - name: {{ printf "xit-stage-%s" `{{inputs.parameters.key}}` | quote }}
  retryStrategy:
    limit: {{ $root.Values.retry.limit | int | quote }}
    retryPolicy: Always
    # Errors (the pod never ran properly) and failures whose message says the node or pod went away.
    # Failures of the stage itself (exit 1, bad input exit 2) are not retried.
    expression: {{ printf "lastRetry.status == 'Error' || (lastRetry.status == 'Failed' && lastRetry.message matches '%s')" $root.Values.retry.messagePattern | quote }}
    # Argo (workflow/controller/operator.go, processNodeRetries): each wait is duration × factor^n, cut to
    # `cap`; `maxDuration` is a total window from the first attempt's start, and a retried pod gets the rest
    # of it as its deadline. So the window is sized to let every attempt use the stage's whole timeout.
    backoff:
      duration: {{ $root.Values.retry.backoff.duration | quote }}
      factor: {{ $root.Values.retry.backoff.factor | int }}
      cap: {{ $root.Values.retry.backoff.cap | quote }}
      {{- with include "xit.retryWindow" (dict "retry" $root.Values.retry "timeout" $cfg.timeoutSeconds) }}
      maxDuration: {{ . | quote }}
      {{- end }}
  {{- if eq $kind "target" }}
  # A target pod also runs the stages that score its model (xit stage run --scorers) and names them
  # (`scored`), which `xit status` counts as done with the pod.
  outputs:
    parameters:
      - name: scored
        valueFrom:
          path: /work/outputs/scored
  {{- end }}
  {{- $sched := ternary (merge (dict "gpuDriverFloor" $root.Values.gpuDriverFloor) $cfg) $cfg (eq .gpu true) }}
  {{- with include "xit.scheduling" $sched }}{{ . | trim | nindent 2 }}{{ end }}
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
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    {{- if eq $kind "target" }}
    - name: work
      emptyDir:
        sizeLimit: 1Mi
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
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
    # Always a command: without one, Argo's emissary executor looks the image's entrypoint up in the
    # registry (workflow/controller/workflowpod.go, createWorkflowPod: `len(c.Command) == 0` →
    # lookupImage), which fails for images loaded into kind (pullPolicy Never) and private registries.
    command: [xit]
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
      {{- if has $kind (list "intermediate" "target") }}
      {{- /* One training process per GPU of the pod (torch.distributed.run inside it): the launch count is the
      container's nvidia.com/gpu limit, so the two cannot disagree. */}}
      - --nproc
      - {{ index ($cfg.resources.limits | default dict) "nvidia.com/gpu" | default (index ($cfg.resources.requests | default dict) "nvidia.com/gpu") | default 1 | quote }}
      {{- end }}
      {{- if eq $kind "target" }}
      - --scorers
      - --outputs
      - /work/outputs
      {{- end }}
      {{- end }}
    env:
      {{- include "xit.env" $root | nindent 6 }}
    resources:
      {{- toYaml $cfg.resources | nindent 6 }}
    securityContext:
      {{- include "xit.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: cache
        mountPath: /cache
      - name: tmp
        mountPath: /tmp
      {{- if eq $kind "target" }}
      - name: work
        mountPath: /work
      {{- end }}
      {{- with $root.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
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
{{- $aff := deepCopy (.affinity | default dict) }}
{{- with .gpuDriverFloor }}
{{- if gt (int .minDriverMajor) 0 }}
{{- /* GPU nodes whose driver is at least the GPU image's floor (its label dev.xit.nvidia-driver-min), by the
driver-major label NVIDIA's GPU feature discovery puts on nodes: ANDed into every required node selector term. */}}
{{- $expr := dict "key" .label "operator" "Gt" "values" (list (toString (sub (int .minDriverMajor) 1))) }}
{{- $na := get $aff "nodeAffinity" | default dict }}
{{- $req := get $na "requiredDuringSchedulingIgnoredDuringExecution" | default dict }}
{{- $terms := list }}
{{- range (get $req "nodeSelectorTerms" | default (list dict)) }}
{{- $t := deepCopy . }}
{{- $_ := set $t "matchExpressions" (append (get $t "matchExpressions" | default list) $expr) }}
{{- $terms = append $terms $t }}
{{- end }}
{{- $_ := set $req "nodeSelectorTerms" $terms }}
{{- $_ := set $na "requiredDuringSchedulingIgnoredDuringExecution" $req }}
{{- $_ := set $aff "nodeAffinity" $na }}
{{- end }}
{{- end }}
{{- with $aff }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- $patch := deepCopy (.podSpecPatch | default dict) }}
{{- with .runtimeClassName }}{{ $_ := set $patch "runtimeClassName" . }}{{ end }}
{{- if $patch }}
# Argo applies it to the pod spec it builds (workflow/controller/workflowpod.go, createWorkflowPod → ApplyPodSpecPatch).
podSpecPatch: {{ toJson $patch | quote }}
{{- end }}
{{- end }}

{{/* Seconds of a stage's total retry window: (limit + 1) × timeout + limit × cap; empty without a timeout. */}}
{{- define "xit.retryWindow" -}}
{{- $timeout := .timeout | default 0 | int -}}
{{- if gt $timeout 0 -}}
{{- $cap := toString .retry.backoff.cap -}}
{{- $n := regexFind "^[0-9]+" $cap | atoi -}}
{{- $unit := dict "" 1 "s" 1 "m" 60 "h" 3600 -}}
{{- $capSeconds := mul $n (get $unit (trimPrefix (toString $n) $cap)) -}}
{{- $limit := .retry.limit | int -}}
{{- add (mul (add $limit 1) $timeout) (mul $limit $capSeconds) -}}
{{- end -}}
{{- end }}

{{/* Container security context of every xit container: the "restricted" Pod Security Standard. */}}
{{- define "xit.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
A CPU step that writes output parameters (plan: the sweep's plan; branch-lookup: one branch's keys).
Both run the CPU image with the plan step's resources and scheduling. Call with
(dict "root" $ "name" "plan" "outputs" (list ...)).
*/}}
{{- define "xit.cpuStep" -}}
{{- $root := .root -}}
{{- $plan := $root.Values.stages.plan -}}
- name: {{ .name }}
  metadata:
    {{- include "xit.podMetadata" (dict "root" $root "kind" .name) | nindent 4 }}
  {{- if eq .name "plan" }}
  inputs:
    artifacts:
      - name: spec
        path: /spec/spec.yaml
        raw:
          data: {{`"{{workflow.parameters.spec}}"`}}
  {{- else }}
  inputs:
    parameters:
      - name: sweep
      - name: index
  {{- end }}
  outputs:
    parameters:
      {{- range .outputs }}
      - name: {{ . }}
        valueFrom:
          path: /work/outputs/{{ . }}
      {{- end }}
  retryStrategy:
    limit: {{ $root.Values.retry.limit | int | quote }}
    retryPolicy: OnError
  {{- with include "xit.scheduling" $plan }}{{ . | trim | nindent 2 }}{{ end }}
  volumes:
    - name: work
      emptyDir: {}
    - name: cache
      emptyDir: {}
    - name: tmp
      emptyDir: {}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  container:
    image: {{ include "xit.image" (dict "Values" $root.Values "Chart" $root.Chart "kind" "cpu") | quote }}
    imagePullPolicy: {{ $root.Values.images.cpu.pullPolicy }}
    command: [xit]
    args:
      {{- if eq .name "plan" }}
      - stage
      - plan
      - /spec/spec.yaml
      {{- else }}
      - stage
      - branch
      - --sweep
      - {{`"{{inputs.parameters.sweep}}"`}}
      - --index
      - {{`"{{inputs.parameters.index}}"`}}
      {{- end }}
      - --store
      - {{`"{{workflow.parameters.store}}"`}}
      - --outputs
      - /work/outputs
    env:
      {{- include "xit.env" $root | nindent 6 }}
    resources:
      {{- toYaml $plan.resources | nindent 6 }}
    securityContext:
      {{- include "xit.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: work
        mountPath: /work
      - name: cache
        mountPath: /cache
      - name: tmp
        mountPath: /tmp
      {{- with $root.Values.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
{{- end }}

{{/* Labels and annotations of a template's pods: the chart's selector labels, the stage kind, podLabels/podAnnotations. */}}
{{- define "xit.podMetadata" -}}
labels:
  {{- include "xit.selectorLabels" .root | nindent 2 }}
  xit.dev/stage-kind: {{ .kind }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .root.Values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
