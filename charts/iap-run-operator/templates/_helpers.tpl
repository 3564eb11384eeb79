{{/*
The tenancy rule fields that are plain glob lists, rendered to one admission-policy param each and checked for
character classes: one list, so a new reference kind cannot be added to one place and missed in the other.
*/}}
{{- define "iap-run-operator.globFields" -}}
projects regions serviceNames secretProjects images networks sqlInstances buckets nfsServers kmsKeys binaryAuthorizationPolicies oauthClientSecrets
{{- end }}

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

{{/* The tenancy policy file the operator reads (IAPRUN_TENANCY_POLICY_FILE): the values, as they are. */}}
{{- define "iap-run-operator.tenancyPolicy" -}}
{{- dict "singleTenant" .Values.tenancy.singleTenant "rules" .Values.tenancy.rules | toPrettyJson }}
{{- end }}

{{/* The operator's own Google account: explicit, else the Workload Identity annotation of its ServiceAccount. */}}
{{- define "iap-run-operator.operatorServiceAccount" -}}
{{- default (get .Values.serviceAccount.annotations "iam.gke.io/gcp-service-account") .Values.tenancy.operatorServiceAccount }}
{{- end }}

{{/*
A glob list as one anchored RE2 expression that matches exactly what Python's fnmatchcase matches with any of
the globs: every character is quoted except `*` (any run, newlines too: `(?s)`) and `?` (one character).
Character classes are refused by the values schema and by "validate" below. An empty list matches nothing.
*/}}
{{- define "iap-run-operator.globRegex" -}}
{{- $alternatives := list }}
{{- range . }}
{{- $alternatives = append $alternatives (regexQuoteMeta . | replace "\\*" ".*" | replace "\\?" ".") }}
{{- end }}
{{- if $alternatives }}
{{- printf "^(?s:%s)$" (join "|" $alternatives) }}
{{- else }}
{{- "^[^\\x00-\\x{10FFFF}]$" }}
{{- end }}
{{- end }}

{{/*
The rules both enforcers apply, in the operator's order, as a JSON list: with singleTenant first its one
implicit rule (every namespace and everything, except public access; the operator's own account is refused
before any rule), then tenancy.rules (which may add what the implicit rule lacks).
*/}}
{{- define "iap-run-operator.effectiveRules" -}}
{{- $rules := list }}
{{- if .Values.tenancy.singleTenant }}
{{- $any := list "*" }}
{{- $rules = append $rules (dict "name" "singleTenant" "namespaces" $any "projects" $any "regions" $any "serviceNames" $any "serviceAccounts" $any "allowDefaultServiceAccount" true "secretProjects" $any "images" $any "networks" $any "sqlInstances" $any "buckets" $any "nfsServers" $any "kmsKeys" $any "binaryAuthorizationPolicies" $any "adoptServiceNames" $any "accessorMemberKinds" (list "user" "group" "serviceAccount" "domain" "principal" "principalSet") "accessorDomains" $any "allowIapDisabled" true "allowPublicInvokerBindings" true "allowPublicAccess" false "allowBinaryAuthorizationBreakglass" true "envValues" "Any" "oauthClientSecrets" $any) }}
{{- end }}
{{- concat $rules (.Values.tenancy.rules | default list) | toJson }}
{{- end }}

{{/*
The admission policy's params: the policy flattened into ConfigMap keys, since CEL reads a ConfigMap's data
(a map of strings) and nothing else of it. `rules` lists the rule indexes in order; `rule.I.FIELD` holds a
glob list as one anchored regex (globRegex), a selector's labels as `k=v,k=v`, a flag as "true"/"false".
*/}}
{{- define "iap-run-operator.admissionParams" -}}
{{- $rules := include "iap-run-operator.effectiveRules" . | fromJsonArray }}
{{- $indexes := list }}
{{- range $i, $rule := $rules }}
{{- $indexes = append $indexes (toString $i) }}
{{- end }}
operatorServiceAccount: {{ include "iap-run-operator.operatorServiceAccount" . | quote }}
rules: {{ join "," $indexes | quote }}
{{- range $i, $rule := $rules }}
{{- $key := printf "rule.%d." $i }}
{{ $key }}name: {{ $rule.name | quote }}
{{- $selector := $rule.namespaceSelector | default dict }}
{{- $labels := list }}
{{- range $k, $v := $selector.matchLabels | default dict }}
{{- $labels = append $labels (printf "%s=%s" $k $v) }}
{{- end }}
{{- if or $rule.namespaces $labels }}
{{ $key }}namespaces: {{ include "iap-run-operator.globRegex" ($rule.namespaces | default (list "*")) | quote }}
{{- else }}
{{ $key }}namespaces: {{ include "iap-run-operator.globRegex" list | quote }}
{{- end }}
{{ $key }}labels: {{ join "," $labels | quote }}
{{- range $field := splitList " " (include "iap-run-operator.globFields" .) }}
{{ $key }}{{ $field }}: {{ include "iap-run-operator.globRegex" (get $rule $field | default list) | quote }}
{{- end }}
{{- $accounts := list }}
{{- range $rule.serviceAccounts | default list }}{{ $accounts = append $accounts (lower .) }}{{ end }}
{{ $key }}serviceAccounts: {{ include "iap-run-operator.globRegex" $accounts | quote }}
{{- $kinds := list "user" "group" "serviceAccount" }}
{{- if hasKey $rule "accessorMemberKinds" }}{{ $kinds = $rule.accessorMemberKinds | default list }}{{ end }}
{{ $key }}accessorMemberKinds: {{ include "iap-run-operator.globRegex" $kinds | quote }}
{{- $domains := list }}
{{- range $rule.accessorDomains | default list }}{{ $domains = append $domains (lower .) }}{{ end }}
{{ $key }}accessorDomains: {{ include "iap-run-operator.domainRegex" $domains | quote }}
{{- range $flag := list "allowDefaultServiceAccount" "allowIapDisabled" "allowPublicInvokerBindings" "allowPublicAccess" "allowBinaryAuthorizationBreakglass" }}
{{ $key }}{{ $flag }}: {{ get $rule $flag | default false | toString | quote }}
{{- end }}
{{ $key }}envSecretsOnly: {{ eq ($rule.envValues | default "Any") "SecretsOnly" | toString | quote }}
{{- end }}
{{- end }}

{{/*
Domains as one regex: a listed domain (taken literally, not as a glob) or any subdomain of it; "*" is any
domain; the empty list matches nothing.
*/}}
{{- define "iap-run-operator.domainRegex" -}}
{{- if has "*" . }}
{{- include "iap-run-operator.globRegex" (list "*") }}
{{- else if . }}
{{- $quoted := list }}
{{- range . }}{{ $quoted = append $quoted (regexQuoteMeta .) }}{{ end }}
{{- printf "^(?s:(?:.*\\.)?(?:%s))$" (join "|" $quoted) }}
{{- else }}
{{- include "iap-run-operator.globRegex" list }}
{{- end }}
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
{{- if and (or .Values.podDisruptionBudget.enabled .Values.ha.enabled) (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) }}
{{- fail "podDisruptionBudget (enabled, or ha.enabled) needs minAvailable or maxUnavailable" }}
{{- end }}
{{- if not (lt (float64 .Values.ha.renewDeadlineSeconds) (float64 .Values.ha.leaseDurationSeconds)) }}
{{- fail "ha.renewDeadlineSeconds must be below ha.leaseDurationSeconds: the active pod must stop before a standby may take over" }}
{{- end }}
{{- if not (lt (float64 .Values.ha.retryPeriodSeconds) (float64 .Values.ha.renewDeadlineSeconds)) }}
{{- fail "ha.retryPeriodSeconds must be below ha.renewDeadlineSeconds: the active pod needs more than one try to renew" }}
{{- end }}
{{- if and .Values.config.googleApiEndpoint (hasKey .Values.serviceAccount.annotations "iam.gke.io/gcp-service-account") }}
{{- fail "config.googleApiEndpoint (the local emulator, anonymous credentials) contradicts a Workload Identity annotation on the ServiceAccount: the Google identity would never be used" }}
{{- end }}
{{- $names := dict }}
{{- if .Values.tenancy.singleTenant }}
{{- $_ := set $names "singleTenant" true }}
{{- end }}
{{- range $i, $rule := .Values.tenancy.rules }}
{{- if not $rule.name }}
{{- fail (printf "tenancy.rules[%d] has no name: every denial names its rule" $i) }}
{{- end }}
{{- if hasKey $names $rule.name }}
{{- fail (printf "tenancy.rules: two rules are named %q (singleTenant is the implicit rule's name): a denial must say which rule gave it" $rule.name) }}
{{- end }}
{{- $_ := set $names $rule.name true }}
{{- if and (hasKey $rule "namespaceSelector") (not ($rule.namespaceSelector | default dict).matchLabels) }}
{{- fail (printf "tenancy.rules[%d] (%q): namespaceSelector needs at least one matchLabels entry (namespaces: [\"*\"] selects every namespace)" $i $rule.name) }}
{{- end }}
{{- if and (not $rule.namespaces) (not ($rule.namespaceSelector | default dict).matchLabels) }}
{{- fail (printf "tenancy.rules[%d] (%q) sets neither namespaces nor namespaceSelector.matchLabels, so it selects no namespace" $i $rule.name) }}
{{- end }}
{{- range $field := concat (list "namespaces" "serviceAccounts" "adoptServiceNames" "accessorDomains") (splitList " " (include "iap-run-operator.globFields" $)) }}
{{- range get $rule $field | default list }}
{{- if regexMatch "[][]" . }}
{{- fail (printf "tenancy.rules[%d].%s: %q uses a character class ([ or ]); only * and ? are supported" $i $field .) }}
{{- end }}
{{- end }}
{{- end }}
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

{{/* In the admission policy's CEL: the params key of one field of the rule with index `i`. */}}
{{- define "iap-run-operator.param" -}}
params.data['rule.' + i + '.{{ . }}']
{{- end }}
