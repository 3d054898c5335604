{{/*
Shared names and labels. Every template builds names through these helpers so that two releases in
one cluster never collide (cluster-scoped objects carry the release namespace in their name).
*/}}

{{- define "rzero.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rzero.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects (ClusterRole, ClusterRoleBinding) are shared by all namespaces. */}}
{{- define "rzero.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "rzero.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rzero.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rzero.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rzero
{{- end -}}

{{- define "rzero.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rzero.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The leader-election Lease (in the release namespace). */}}
{{- define "rzero.leaseName" -}}
{{- include "rzero.fullname" . -}}
{{- end -}}

{{- define "rzero.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rzero.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rzero.operatorImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "rzero.workerImage" -}}
{{- printf "%s:%s" .Values.worker.image.repository (default .Chart.AppVersion .Values.worker.image.tag) -}}
{{- end -}}

{{/* The namespaces where runs live (namespaced mode): the list, or else the release namespace.
Templates call it as: {{- $namespaces := include "rzero.watchedNamespaces" . | splitList "," }} */}}
{{- define "rzero.watchedNamespaces" -}}
{{- join "," (default (list .Release.Namespace) .Values.watch.namespaces) -}}
{{- end -}}

{{- define "rzero.minioName" -}}
{{- printf "%s-minio" (include "rzero.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The default storage the operator hands to runs: explicit values win, then the demo MinIO. */}}
{{- define "rzero.storageEndpoint" -}}
{{- if .Values.storage.endpoint -}}
{{- .Values.storage.endpoint -}}
{{- else if .Values.minio.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "rzero.minioName" .) .Release.Namespace (int .Values.minio.port) -}}
{{- end -}}
{{- end -}}

{{- define "rzero.storageSecret" -}}
{{- if .Values.storage.secretName -}}
{{- .Values.storage.secretName -}}
{{- else if .Values.minio.enabled -}}
{{- include "rzero.minioName" . -}}
{{- end -}}
{{- end -}}
