{{/*
Names. The full name is truncated to 40 characters so that the longest derived name,
`<fullname>-operator-metrics`, stays a valid 63-character DNS label.
*/}}
{{- define "scim-kube.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "scim-kube.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "scim-kube.apiName" -}}
{{- printf "%s-api" (include "scim-kube.fullname" .) -}}
{{- end -}}

{{- define "scim-kube.operatorName" -}}
{{- printf "%s-operator" (include "scim-kube.fullname" .) -}}
{{- end -}}

{{- define "scim-kube.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of one component: (dict "ctx" $ "component" "api").
*/}}
{{- define "scim-kube.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scim-kube.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
All labels of one component: (dict "ctx" $ "component" "api").
*/}}
{{- define "scim-kube.labels" -}}
helm.sh/chart: {{ include "scim-kube.chart" .ctx }}
{{ include "scim-kube.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: scim-kube
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "scim-kube.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Pod-level security context shared by every pod of the chart.
*/}}
{{- define "scim-kube.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container-level security context shared by every container of the chart.
*/}}
{{- define "scim-kube.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "scim-kube.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Scheduling fields of a pod spec: (dict "ctx" $ "component" "api" "values" .Values.api).
Without an explicit affinity, replicas prefer different nodes.
*/}}
{{- define "scim-kube.scheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .values.affinity }}
affinity:
  {{- toYaml .values.affinity | nindent 2 }}
{{- else if gt (int .values.replicaCount) 1 }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "scim-kube.selectorLabels" . | nindent 14 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The API Service's in-cluster URL (used by the test hook and NOTES). */}}
{{- define "scim-kube.apiServiceUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "scim-kube.apiName" .) .Release.Namespace (int .Values.api.service.port) -}}
{{- end -}}

{{/* The label both metrics Services carry: the ServiceMonitor selects them by it. */}}
{{- define "scim-kube.metricsLabel" -}}
scim.optimaite.eu/metrics: "true"
{{- end -}}
