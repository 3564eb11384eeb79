{{/* Names, labels and the checks that refuse contradictory values. */}}

{{- define "iap-run-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "iap-run-operator.fullname" -}}
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

{{- define "iap-run-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object: the chart's own, then commonLabels (which may not redefine them: validate). */}}
{{- define "iap-run-operator.labels" -}}
{{ include "iap-run-operator.ownLabels" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "iap-run-operator.ownLabels" -}}
helm.sh/chart: {{ include "iap-run-operator.chart" . }}
{{ include "iap-run-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: iap-run-operator
{{- end }}

{{/* Labels of the operator pod beyond its selector labels: commonLabels, overridden by podLabels. */}}
{{- define "iap-run-operator.podExtraLabels" -}}
{{- with merge (deepCopy .Values.podLabels) .Values.commonLabels }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the operator pod (immutable in the Deployment: never add to them). */}}
{{- define "iap-run-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iap-run-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "iap-run-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iap-run-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "iap-run-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* PromQL label matchers of the operator's series: metrics.prometheusRule.selector, or the job the chart's
monitor gives them (prometheus-operator names it after the Service, or namespace/PodMonitor). */}}
{{- define "iap-run-operator.seriesSelector" -}}
{{- if .Values.metrics.prometheusRule.selector }}
{{- .Values.metrics.prometheusRule.selector }}
{{- else if .Values.metrics.podMonitor.enabled }}
{{- printf "job=%q" (printf "%s/%s" .Release.Namespace (include "iap-run-operator.fullname" .)) }}
{{- else }}
{{- printf "job=%q" (printf "%s-metrics" (include "iap-run-operator.fullname" .)) }}
{{- end }}
{{- end }}

{{/* The tenancy policy file the operator reads (IAPRUN_TENANCY_POLICY_FILE). */}}
{{- define "iap-run-operator.tenancyPolicy" -}}
{{- dict "rules" .Values.tenancy.rules | toPrettyJson }}
{{- end }}

{{/*
Contradictory values fail the render with a message that names them. Included once, by the Deployment.
*/}}
{{- define "iap-run-operator.validate" -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) }}
{{- fail "serviceAccount.create=false needs serviceAccount.name: the operator must run as a ServiceAccount that the RBAC rules are bound to" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled=true needs metrics.enabled=true: there is nothing to scrape" }}
{{- end }}
{{- if and .Values.networkPolicy.metricsFrom (not .Values.metrics.enabled) }}
{{- fail "networkPolicy.metricsFrom is set but metrics.enabled=false: there is no metrics port to open" }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.liveness.port)) }}
{{- fail (printf "metrics.port and liveness.port are both %v: the two endpoints need their own ports" .Values.metrics.port) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget.enabled=true needs minAvailable or maxUnavailable" }}
{{- end }}
{{- if and .Values.config.googleApiEndpoint (hasKey .Values.serviceAccount.annotations "iam.gke.io/gcp-service-account") }}
{{- fail "config.googleApiEndpoint (the local emulator, anonymous credentials) contradicts a Workload Identity annotation on the ServiceAccount: the Google identity would never be used" }}
{{- end }}
{{- $own := include "iap-run-operator.ownLabels" . | fromYaml }}
{{- $own = set $own "app.kubernetes.io/component" "" }}
{{- range $key, $_ := merge (deepCopy .Values.commonLabels) .Values.podLabels }}
{{- if hasKey $own $key }}
{{- fail (printf "commonLabels/podLabels may not redefine the chart's own label %s (it selects or identifies the chart's objects)" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.metrics.podMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.podMonitor.enabled=true needs metrics.enabled=true: there is nothing to scrape" }}
{{- end }}
{{- if and (or .Values.metrics.prometheusRule.enabled .Values.metrics.dashboard.enabled) (not .Values.metrics.enabled) }}
{{- fail "metrics.prometheusRule and metrics.dashboard need metrics.enabled=true: they read the operator's metrics" }}
{{- end }}
{{- if and .Values.metrics.podMonitor.enabled .Values.metrics.serviceMonitor.enabled }}
{{- fail "metrics.podMonitor and metrics.serviceMonitor are both enabled: every series would be scraped twice; pick one" }}
{{- end }}
{{- if and (not .Values.rbac.create) .Values.rbac.aggregate }}
{{- fail "rbac.aggregate=true needs rbac.create=true (set both to false to manage all roles yourself)" }}
{{- end }}
{{- end }}
