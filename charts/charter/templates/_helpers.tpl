{{- define "charter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "charter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "charter.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "charter.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "charter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "charter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "charter.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "charter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
{{- end -}}

{{- define "charter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "charter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "charter.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "charter.tlsSecretName" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "charter.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "charter.signingKeySecretName" -}}
{{- default (printf "%s-audit-key" (include "charter.fullname" .)) .Values.audit.signingKey.existingSecret -}}
{{- end -}}

{{- define "charter.postgresSecretName" -}}
{{- default (printf "%s-audit-db" (include "charter.fullname" .)) .Values.audit.postgres.existingSecret -}}
{{- end -}}

{{- define "charter.usePostgres" -}}
{{- if and .Values.audit.enabled (or .Values.audit.postgres.existingSecret .Values.audit.postgres.url) -}}true{{- end -}}
{{- end -}}

{{- define "charter.useSqlite" -}}
{{- if and .Values.audit.enabled (not (include "charter.usePostgres" .)) -}}true{{- end -}}
{{- end -}}

{{/* Configuration the chart refuses to render: called from the Deployment. */}}
{{- define "charter.validate" -}}
{{- if and (include "charter.useSqlite" .) (gt (int .Values.replicaCount) 1) -}}
{{- fail "audit: SQLite is a single-writer store; with replicaCount > 1 set audit.postgres.existingSecret (or audit.postgres.url) for the shared PostgreSQL audit log, or set replicaCount: 1" -}}
{{- end -}}
{{- if and .Values.audit.postgres.existingSecret .Values.audit.postgres.url -}}
{{- fail "audit.postgres: set existingSecret or url, not both" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret (not .Values.tls.caBundle) (not .Values.tls.certManager.enabled) -}}
{{- fail "tls.existingSecret needs tls.caBundle (the PEM CA that signed it, base64-encoded or not)" -}}
{{- end -}}
{{- if and .Values.tls.existingSecret .Values.tls.certManager.enabled -}}
{{- fail "tls: use cert-manager or tls.existingSecret, not both" -}}
{{- end -}}
{{- if and .Values.audit.enabled (not .Values.audit.signingKey.existingSecret) (not .Values.audit.signingKey.generate) -}}
{{- fail "audit.signingKey: set existingSecret (an Ed25519 key from `charter audit keygen`) or generate: true" -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the webhook never judges: its own (it could not restart itself), kube-system, and the extra ones. */}}
{{- define "charter.excludedNamespaces" -}}
{{- $ns := concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq | sortAlpha -}}
{{- toJson $ns -}}
{{- end -}}
