{{/* Names, labels and the pieces every workload shares. */}}

{{- define "guardserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "guardserve.fullname" -}}
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

{{- define "guardserve.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "guardserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* selectorLabels: (dict "ctx" $ "component" "gateway") */}}
{{- define "guardserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guardserve.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given (pin what you deploy) */}}
{{- define "guardserve.image" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository .tag }}
{{- end }}
{{- end }}

{{/* A model name as a DNS label: "llama-3.1-8b" -> "llama-3-1-8b" */}}
{{- define "guardserve.dnsName" -}}
{{- regexReplaceAll "[^a-z0-9-]+" (lower .) "-" | trunc 40 | trimAll "-" }}
{{- end }}

{{/* The Service of one model server: (dict "ctx" $ "name" NAME) */}}
{{- define "guardserve.modelService" -}}
{{- printf "%s-model-%s" (include "guardserve.fullname" .ctx | trunc 22 | trimSuffix "-") (include "guardserve.dnsName" .name) }}
{{- end }}

{{- define "guardserve.secretName" -}}
{{- default (printf "%s-secrets" (include "guardserve.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{- define "guardserve.redisName" -}}
{{- printf "%s-redis" (include "guardserve.fullname" .) }}
{{- end }}

{{/* Every model server: the CPU engine (if on) and each vLLM model, as one list of dicts. */}}
{{- define "guardserve.modelServers" -}}
{{- $servers := list }}
{{- if .Values.engine.enabled }}
{{- $servers = append $servers (dict "name" .Values.engine.name "runtime" "cpu" "port" 8001 "contextLength" .Values.engine.contextLength) }}
{{- end }}
{{- range .Values.vllm.models }}
{{- $m := mergeOverwrite (deepCopy $.Values.vllm.defaults) (deepCopy .) }}
{{- $servers = append $servers (merge (dict "runtime" "vllm" "port" $.Values.vllm.port "contextLength" $m.maxModelLen) $m) }}
{{- end }}
{{- toJson (dict "servers" $servers) }}
{{- end }}

{{- define "guardserve.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "guardserve.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end }}
