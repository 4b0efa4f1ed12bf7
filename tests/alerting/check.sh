#!/usr/bin/env bash
# Offline checks of alert-rules/: rules parse and pass promtool's lint, every unit test passes,
# the Alertmanager config loads and routes each severity to the right receivers, and the
# notification templates render. Needs promtool and amtool (Debian: prometheus,
# prometheus-alertmanager). Exit status 0 only when everything passed.
#
#   tests/alerting/check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RULES="$ROOT/alert-rules"
AM="$RULES/alertmanager.yml"
log() { printf '[alerting-check] %s\n' "$*" >&2; }

for tool in promtool amtool; do
  command -v "$tool" >/dev/null || { log "ERROR: $tool not found (apt-get install prometheus prometheus-alertmanager)"; exit 2; }
done
log "$(promtool --version 2>&1 | head -1)"
log "$(amtool --version 2>&1 | head -1)"

log "promtool check rules --lint=all --lint-fatal"
promtool check rules --lint=all --lint-fatal "$RULES"/*.rules.yml

log "promtool test rules"
(cd "$RULES/tests" && promtool test rules ./*.test.yml)

log "amtool check-config"
amtool check-config "$AM"

# amtool prints a harmless "--config.file flag overrides --alertmanager.url" warning on stderr.
route() { # expected-receivers label=value...
  local want="$1"; shift
  local got
  if ! got="$(amtool config routes test --config.file="$AM" --verify.receivers="$want" "$@" 2>/dev/null)"; then
    log "FAIL: $* -> $got (want $want)"; exit 1
  fi
  log "route ok: $* -> $got"
}
route pager,chat severity=critical alertname=LlmwatchErrorBudgetBurn service_name=chat slo=availability
route pager,chat severity=critical alertname=LlmwatchBudgetUtilisationHigh budget=daily-total
route pager,chat severity=critical alertname=LlmwatchDown job=llmwatch instance=127.0.0.1:9464
route chat severity=warning alertname=LlmwatchErrorBudgetBurn service_name=chat slo=availability
route chat severity=warning alertname=LlmwatchDriftDetected service_name=chat signal=output_tokens
route low-noise severity=info alertname=LlmwatchUnpricedModelTraffic service_name=chat
route low-noise severity=info alertname=LlmwatchSurvivorshipBias service_name=chat
route chat alertname=SomethingWithoutSeverity

log "amtool template render"
DATA="$(mktemp)"; trap 'rm -f "$DATA"' EXIT
cat >"$DATA" <<'JSON'
{"receiver": "chat", "status": "firing",
 "alerts": [{"status": "firing",
   "labels": {"alertname": "LlmwatchErrorBudgetBurn", "severity": "critical", "service_name": "chat"},
   "annotations": {"summary": "LLM calls are failing fast enough to exhaust the availability error budget.",
     "description": "chat is burning the availability error budget 20.0x faster than sustainable.",
     "runbook_url": "https://example.invalid/llmwatch/blob/main/alert-rules/runbook.md#llmwatcherrorbudgetburn"}}],
 "groupLabels": {"alertname": "LlmwatchErrorBudgetBurn"},
 "commonLabels": {"alertname": "LlmwatchErrorBudgetBurn", "severity": "critical", "service_name": "chat"},
 "commonAnnotations": {"summary": "LLM calls are failing fast enough to exhaust the availability error budget."},
 "externalURL": "http://127.0.0.1:9093"}
JSON
title="$(amtool template render --template.glob="$RULES/llmwatch.tmpl" --template.data="$DATA" --template.text='{{ template "llmwatch.title" . }}')"
[[ "$title" == "[FIRING:1] LlmwatchErrorBudgetBurn (critical)" ]] || { log "FAIL: title rendered as '$title'"; exit 1; }
amtool template render --template.glob="$RULES/llmwatch.tmpl" --template.data="$DATA" --template.text='{{ template "llmwatch.text" . }}' | grep -q 'runbook.md#llmwatcherrorbudgetburn' \
  || { log "FAIL: text template lacks the runbook link"; exit 1; }
log "template ok: $title"
log "all alerting checks passed"
