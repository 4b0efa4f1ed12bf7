#!/usr/bin/env python3
"""Writes llmwatch's Grafana dashboards (dashboards/*.json) from the definitions below.

    python3 dashboards/generate.py           # rewrite the JSON files
    python3 dashboards/generate.py --check   # exit 1 if a JSON file differs from what this writes

The JSON files are what SREs import; this script only keeps seven dashboards consistent (same
variables, links, datasource handling, units). Every PromQL expression here is checked against
the metric catalog by tests/tests/artifacts.rs. Python 3.8+, standard library only.

Conventions (see docs/alerting.md):
- classic dashboard JSON, schemaVersion 39, fixed `uid`, tag `llmwatch`, `editable: false`;
- a `datasource` variable used by every panel and variable (no `__inputs`), then `job` and
  `instance` (from llmwatch_build_info), then `service`, `provider`, `model`, `feature` chained
  from `label_values()`. Label variables match everything with `.*` (an empty label value means
  the attribute was absent, and `feature` is absent unless configured as a dimension);
- `$__rate_interval` in every rate; `$__range` only for totals over the dashboard's time range;
  fixed windows of an hour or more only where the panel says so (trailing means, projections);
- a unit and a description on every panel: what it shows and what to do when it looks wrong;
- thresholds equal to the alert thresholds in alert-rules/ where a panel mirrors an alert.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
TAG = "llmwatch"

# Selectors. A metric may only be given labels it has (checked by tests/tests/artifacts.rs).
TARGET = 'job=~"$job", instance=~"$instance"'
GENAI = TARGET + ', service_name=~"$service", gen_ai_provider_name=~"$provider", gen_ai_request_model=~"$model", feature=~"$feature"'
DRIFT = GENAI  # drift keys: service, provider, request model and the dimensions
QUALITY = TARGET + ', service_name=~"$service", gen_ai_request_model=~"$model"'
SERVICE = TARGET + ', service_name=~"$service"'
MODEL = TARGET + ', gen_ai_request_model=~"$model"'
RI = "$__rate_interval"

DASHBOARDS = {
    "overview": "Overview",
    "cost": "Cost",
    "latency": "Latency",
    "quality": "Quality",
    "drift": "Drift",
    "safety": "Safety",
    "self": "llmwatch itself",
}


def link(name, title=None):
    """A panel link to another llmwatch dashboard, keeping time range and variables."""
    return {
        "title": title or "llmwatch / " + DASHBOARDS[name],
        "url": "/d/llmwatch-" + name + "?${__url_time_range}&${__all_variables}",
    }


def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend, "range": not instant, "instant": instant}
    if fmt:
        t["format"] = fmt
    return t


def thresholds(*steps):
    """steps: (value, color) pairs after the base green step."""
    out = [{"color": "green", "value": None}]
    out += [{"color": c, "value": v} for v, c in steps]
    return {"mode": "absolute", "steps": out}


class Panel:
    def __init__(self, kind, title, description, unit, targets, w=12, h=8, links=(), **extra):
        self.kind, self.title, self.description, self.unit = kind, title, description, unit
        self.targets, self.w, self.h, self.links, self.extra = targets, w, h, list(links), extra

    def json(self, pid, x, y):
        defaults = {"unit": self.unit}
        for key in ("min", "max", "decimals"):
            if key in self.extra:
                defaults[key] = self.extra[key]
        defaults["thresholds"] = self.extra.get("thresholds", thresholds())
        options = {}
        if self.kind == "timeseries":
            defaults["color"] = {"mode": "palette-classic"}
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10 if not self.extra.get("stack") else 60,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"mode": "normal" if self.extra.get("stack") else "none", "group": "A"},
                "thresholdsStyle": {"mode": "line" if "thresholds" in self.extra else "off"},
            }
            options = {
                "legend": {"displayMode": "table", "placement": "bottom", "showLegend": True, "calcs": ["mean", "max", "lastNotNull"]},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif self.kind == "stat":
            defaults["color"] = {"mode": "thresholds"}
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background" if "thresholds" in self.extra else "value",
                "graphMode": "area",
                "justifyMode": "auto",
                "orientation": "auto",
                "textMode": "auto",
            }
        elif self.kind == "bargauge":
            defaults["color"] = {"mode": "thresholds"}
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "displayMode": "gradient",
                "orientation": "horizontal",
                "showUnfilled": True,
            }
        elif self.kind == "table":
            options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
        elif self.kind == "heatmap":
            options = {
                "calculate": False,
                "yAxis": {"unit": self.unit, "axisPlacement": "left"},
                "cellGap": 1,
                "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64, "exponent": 0.5, "fill": "dark-orange", "reverse": False},
                "rowsFrame": {"layout": "auto"},
                "tooltip": {"mode": "single", "yHistogram": True},
                "legend": {"show": True},
                "exemplars": {"color": "rgba(255,0,255,0.7)"},
            }
        out = {
            "type": self.kind,
            "id": pid,
            "title": self.title,
            "description": self.description,
            "datasource": DS,
            "gridPos": {"h": self.h, "w": self.w, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": self.extra.get("overrides", [])},
            "options": options,
            "targets": self.targets,
        }
        if self.kind == "table" and "transformations" in self.extra:
            out["transformations"] = self.extra["transformations"]
        if self.links:
            out["links"] = self.links
        return out


def ts(title, description, unit, *targets, **kw):
    return Panel("timeseries", title, description, unit, list(targets), **kw)


def stat(title, description, unit, *targets, **kw):
    kw.setdefault("w", 4)
    kw.setdefault("h", 4)
    return Panel("stat", title, description, unit, list(targets), **kw)


def heatmap(title, description, unit, metric, selector, **kw):
    expr = "sum by (le) (rate(" + metric + "_bucket{" + selector + "}[" + RI + "]))"
    t = target(expr, "{{le}}", fmt="heatmap")
    return Panel("heatmap", title, description, unit, [t], **kw)


def table(title, description, unit, *targets, **kw):
    kw.setdefault("transformations", [{"id": "merge", "options": {}}])
    return Panel("table", title, description, unit, list(targets), **kw)


def bargauge(title, description, unit, *targets, **kw):
    return Panel("bargauge", title, description, unit, list(targets), **kw)


def quantiles(metric, selector, by, qs=(0.5, 0.95, 0.99)):
    """histogram_quantile targets, one per quantile, split by `by` (a label or '')."""
    group = "le, " + by if by else "le"
    out = []
    for i, q in enumerate(qs):
        expr = "histogram_quantile(" + str(q) + ", sum by (" + group + ") (rate(" + metric + "_bucket{" + selector + "}[" + RI + "])))"
        legend = ("p" + str(int(q * 100))) + ((" {{" + by + "}}") if by else "")
        out.append(target(expr, legend, ref=chr(ord("A") + i)))
    return out


def rate(metric, selector, by=None, window=RI, agg="sum"):
    inner = "rate(" + metric + "{" + selector + "}[" + window + "])"
    return agg + (" by (" + by + ")" if by else "") + " (" + inner + ")"


def increase(metric, selector, by=None, window="$__range"):
    inner = "increase(" + metric + "{" + selector + "}[" + window + "])"
    return "sum" + (" by (" + by + ")" if by else "") + " (" + inner + ")"


# ------------------------------------------------------------------------------------------------
# Variables
# ------------------------------------------------------------------------------------------------

def query_var(name, label, query, all_value):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "definition": query,
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }


def variables(kind):
    out = [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "includeAll": False,
            "multi": False,
            "options": [],
            "skipUrlSync": False,
        },
        query_var("job", "Job", "label_values(llmwatch_build_info, job)", ".+"),
        query_var("instance", "Instance", 'label_values(llmwatch_build_info{job=~"$job"}, instance)', ".+"),
    ]
    if kind == "self":
        return out
    calls = "llmwatch_llm_calls_total"
    out += [
        query_var("service", "Service", "label_values(" + calls + "{" + TARGET + "}, service_name)", ".*"),
        query_var("provider", "Provider", "label_values(" + calls + "{" + TARGET + ', service_name=~"$service"}, gen_ai_provider_name)', ".*"),
        query_var("model", "Model", "label_values(" + calls + "{" + TARGET + ', service_name=~"$service", gen_ai_provider_name=~"$provider"}, gen_ai_request_model)', ".*"),
        query_var("feature", "Feature", "label_values(" + calls + "{" + TARGET + ', service_name=~"$service"}, feature)', ".*"),
    ]
    if kind == "quality":
        out.append(query_var("spc_signal", "SPC chart", "label_values(llmwatch_spc_value{" + TARGET + ', service_name=~"$service"}, signal)', ".*"))
    if kind == "drift":
        out.append(query_var("signal", "Signal", "label_values(llmwatch_drift_score{" + DRIFT + "}, signal)", ".*"))
    return out


# ------------------------------------------------------------------------------------------------
# Dashboards
# ------------------------------------------------------------------------------------------------

def overview():
    calls = rate("llmwatch_llm_calls_total", GENAI)
    errors = rate("llmwatch_llm_calls_total", GENAI + ', error_type!=""')
    ttft = "gen_ai_client_operation_time_to_first_chunk_seconds"
    ttft_q = lambda q: "histogram_quantile(" + q + ", sum by (le) (rate(" + ttft + "_bucket{" + GENAI + "}[" + RI + "])))"
    finish = "llmwatch_finish_reasons_total"
    return [
        ("Now", [
            stat("Calls per second", "Model calls per second over the selected services and models. A drop to zero with traffic expected means the app stopped calling or stopped exporting telemetry: check the llmwatch itself dashboard (ingest rate).", "reqps",
                 target(calls), links=[link("latency")]),
            stat("Error ratio", "Share of calls that failed (any error type). Orange at 1 % (the availability objective's budget), red at 5 %. When red, open the error breakdown below and the LlmwatchErrorBudgetBurn runbook.", "percentunit",
                 target("(" + errors + " or vector(0)) / " + calls), thresholds=thresholds((0.01, "orange"), (0.05, "red")), min=0, max=1),
            stat("Tokens per second", "Input plus output tokens per second (input includes cached tokens, output includes reasoning). A step up without more calls means longer prompts or answers: see the Cost dashboard.", "short",
                 target(rate("llmwatch_tokens_total", GENAI + ', token_type=~"input|output"')), links=[link("cost")]),
            stat("Spend per hour", "Spend in USD per hour at the current rate, from the price catalog. Calls to unpriced models are not included (see Cost → unpriced calls).", "currencyUSD",
                 target(rate("llmwatch_cost_usd_total", GENAI) + " * 3600"), links=[link("cost")]),
            stat("TTFT p50", "Median time to first token of streamed calls. Compare with the p95 next to it: a widening gap means a slow tail (provider congestion, long prompts).", "s",
                 target(ttft_q("0.5")), links=[link("latency")]),
            stat("TTFT p95", "95th percentile time to first token of streamed calls. Orange at 2.56 s, the default TTFT objective's bound; open the Latency dashboard when it stays above.", "s",
                 target(ttft_q("0.95")), thresholds=thresholds((2.56, "orange")), links=[link("latency")]),
        ]),
        ("Traffic and errors", [
            ts("Calls per second by model", "Call rate per request model. A model disappearing or a new one appearing is a deploy or routing change; check the Drift dashboard if it was not intended.", "reqps",
               target(rate("llmwatch_llm_calls_total", GENAI, "gen_ai_request_model"), "{{gen_ai_request_model}}"), w=12),
            ts("Error ratio by service", "Share of failed calls per service. Orange line: 1 % (availability objective). A single service rising points at its prompts or quota; every service rising points at the provider.", "percentunit",
               target("(" + rate("llmwatch_llm_calls_total", GENAI + ', error_type!=""', "service_name") + " or 0 * " + rate("llmwatch_llm_calls_total", GENAI, "service_name") + ") / " + rate("llmwatch_llm_calls_total", GENAI, "service_name"), "{{service_name}}"),
               w=12, min=0, thresholds=thresholds((0.01, "orange"))),
            ts("Errors per second by type", "Failed calls per second by error type (as the instrumentation reports it: RateLimitError, timeout, 500, ...). Rate limits: quota or traffic; timeouts: latency or prompt length; 5xx: provider.", "reqps",
               target(rate("llmwatch_llm_calls_total", GENAI + ', error_type!=""', "error_type"), "{{error_type}}"), w=12, stack=True),
            ts("Finish-reason mix", "Share of choices by finish reason. `length` means the answer was cut at the token limit and `content_filter` that it was refused; alerts fire above 20 % and 5 % (see the Quality dashboard).", "percentunit",
               target(rate(finish, GENAI, "finish_reason") + " / ignoring (finish_reason) group_left () " + rate(finish, GENAI), "{{finish_reason}}"),
               w=12, stack=True, min=0, max=1),
        ]),
        ("Top models and alerts", [
            table("Top models by calls", "Calls per request model over the dashboard's time range, with their share of errors. Unexpected models here are a routing or configuration change.", "short",
                  target("topk(10, " + increase("llmwatch_llm_calls_total", GENAI, "gen_ai_request_model") + ")", instant=True, fmt="table", ref="A"),
                  w=12, h=8),
            table("Firing llmwatch alerts", "Alerts of alert-rules/ firing now in this Prometheus (the ALERTS series). Each has a runbook section in alert-rules/runbook.md named after it.", "none",
                  target('ALERTS{alertstate="firing", alertname=~"Llmwatch.+"}', instant=True, fmt="table"), w=12, h=8),
        ]),
    ]


def cost():
    c = "llmwatch_cost_usd_total"
    return [
        ("Spend", [
            stat("Spend in range", "Total spend over the dashboard's time range, in USD, from the price catalog.", "currencyUSD",
                 target(increase(c, GENAI)), w=4),
            stat("Spend per hour (last hour)", "Spend over the last hour, as USD per hour. Fixed 1 h window: the trend, not the last few minutes.", "currencyUSD",
                 target(rate(c, GENAI, window="1h") + " * 3600"), w=4),
            stat("Projected spend today", "The last hour's spend rate times 24 h. If this beats your daily budget, check the breakdowns below before the budget alert fires.", "currencyUSD",
                 target(rate(c, GENAI, window="1h") + " * 86400"), w=4),
            stat("Projected spend this month", "The last day's spend rate times 30 days (fixed 1 d window).", "currencyUSD",
                 target(rate(c, GENAI, window="1d") + " * 86400 * 30"), w=4),
            stat("Average cost per call", "Mean cost of a priced call over the selection. A jump means longer prompts or answers or a pricier model.", "currencyUSD",
                 target(rate("llmwatch_call_cost_usd_sum", GENAI) + " / " + rate("llmwatch_call_cost_usd_count", GENAI)), w=4, decimals=4),
            stat("Unpriced calls in range", "Calls to models no price catalog prices: their cost is missing from every figure here. Non-zero: add the model to a catalog (LlmwatchUnpricedModelTraffic runbook).", "short",
                 target(increase("llmwatch_unpriced_calls_total", GENAI) + " or vector(0)"), w=4, thresholds=thresholds((1, "orange"))),
            ts("Spend per hour by model", "USD per hour per request model. A step up on one model: more calls or more tokens per call there (see tokens below).", "currencyUSD",
               target(rate(c, GENAI, "gen_ai_request_model") + " * 3600", "{{gen_ai_request_model}}"), stack=True),
            ts("Spend per hour by service", "USD per hour per service. Compare with the same time last week (dashed): more than twice as much raises LlmwatchSpendAnomaly.", "currencyUSD",
               target(rate(c, GENAI, "service_name") + " * 3600", "{{service_name}}"),
               target("sum by (service_name) (rate(" + c + "{" + GENAI + "}[" + RI + "] offset 1w)) * 3600", "{{service_name}} last week", ref="B"),
               overrides=[{"matcher": {"id": "byRegexp", "options": ".* last week"}, "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}]),
            ts("Spend per hour by feature", "USD per hour per `feature` dimension (empty unless a `[[dimensions]]` label named feature is configured). Finds the product feature behind a spend change.", "currencyUSD",
               target(rate(c, GENAI, "feature") + " * 3600", "{{feature}}"), stack=True),
            ts("Spend per hour by cost component", "USD per hour by component: uncached input, cache reads, cache writes, output, reasoning, unattributed. Cache reads falling while input rises means the prompt prefix stopped being cached.", "currencyUSD",
               target(rate(c, GENAI, "cost_component") + " * 3600", "{{cost_component}}"), stack=True),
        ]),
        ("Tokens", [
            heatmap("Input tokens per call distribution", "How many input tokens single calls send (gen_ai.client.token.usage, input, cache included). A new band far up is a class of huge prompts: whole documents or untrimmed history.", "short",
                    "gen_ai_client_token_usage", GENAI + ', gen_ai_token_type="input"'),
            heatmap("Output tokens per call distribution", "How many output tokens single calls produce (reasoning included). A band at max_tokens means answers cut off (see truncation on the Quality dashboard).", "short",
                    "gen_ai_client_token_usage", GENAI + ', gen_ai_token_type="output"'),
            ts("Tokens per call by type", "Tokens per call by type. Input includes cache reads and writes, output includes reasoning; subsets are shown separately and never add to their totals. Input per call jumping is the usual cause of a spend spike.", "short",
               target(rate("llmwatch_tokens_total", GENAI, "token_type") + " / ignoring (token_type) group_left () " + rate("llmwatch_llm_calls_total", GENAI), "{{token_type}}")),
            ts("Cache-read share of input", "Share of input tokens read from the provider's prompt cache. A drop after a deploy means the cached prefix changed (timestamps or ids early in the prompt).", "percentunit",
               target(rate("llmwatch_tokens_total", GENAI + ', token_type="cache_read"') + " / " + rate("llmwatch_tokens_total", GENAI + ', token_type="input"')), min=0, max=1),
        ]),
        ("Budgets and spenders", [
            bargauge("Budget utilisation", "Share of each configured budget's limit spent in its current window, added up across llmwatch instances. Orange at 80 % (warning), red at 100 % (page). For a per-user budget this is the heaviest user's share.", "percentunit",
                     target("sum by (budget, scope) (llmwatch_budget_spend_usd{" + TARGET + "}) / max by (budget, scope) (llmwatch_budget_limit_usd{" + TARGET + "})", "{{budget}} ({{scope}})", instant=True),
                     thresholds=thresholds((0.8, "orange"), (1, "red")), min=0, max=1.2),
            table("Top spenders", "Heaviest users and sessions in the current top-spender window (estimates that over-count by at most the error bound; ids are salted hashes unless raw ids are configured). One spender far above the rest: contact them or set a per-user budget.", "currencyUSD",
                  target("max by (scope, rank, spender) (llmwatch_top_spender_cost_usd{" + TARGET + "})", instant=True, fmt="table"),
                  target("max by (scope) (llmwatch_top_spender_error_bound_usd{" + TARGET + "})", instant=True, fmt="table", ref="B")),
            table("Unpriced calls by model", "Calls over the time range to models without a price, by provider, request and response model. Add them to a catalog file or an alias (docs/pricing.md).", "short",
                  target(increase("llmwatch_unpriced_calls_total", GENAI, "service_name, gen_ai_provider_name, gen_ai_request_model, gen_ai_response_model") + " > 0", instant=True, fmt="table")),
            ts("Priced calls by what priced them", "Calls priced by the response model, the request model (fallback when the response model has no price) or the span's own cost. A growing request-model share means dated snapshots missing from the catalog.", "reqps",
               target(rate("llmwatch_priced_calls_total", GENAI, "priced_by"), "{{priced_by}}"), stack=True),
            ts("Unpriced tokens per second", "Tokens of calls whose model has no price, by type: the volume missing from every spend figure.", "short",
               target(rate("llmwatch_unpriced_tokens_total", GENAI, "token_type"), "{{token_type}}"), stack=True),
            table("Budget breaches in range", "Times each budget's spend reached its limit over the time range (per user for a per-user budget). Each raises LlmwatchBudgetLimitBreached.", "short",
                  target("sum by (budget, scope) (increase(llmwatch_budget_breaches_total{" + TARGET + "}[$__range])) > 0", instant=True, fmt="table")),
            ts("Cost disagreements per second", "Calls whose span-reported cost differs from the catalog's beyond the tolerance. Persistent: the catalog or the emitter's prices are stale.", "reqps",
               target(rate("llmwatch_cost_disagreements_total", GENAI, "gen_ai_request_model"), "{{gen_ai_request_model}}")),
        ]),
        ("Cost per call", [
            heatmap("Cost per call distribution", "How the cost of single calls is distributed (buckets from 0.0001 to 10 USD). A new band far right is a class of very expensive calls: find it with the feature and top-spender panels.", "currencyUSD",
                    "llmwatch_call_cost_usd", GENAI),
            ts("Cost per call percentiles", "p50, p95 and p99 of the cost of one call. The p99 rising alone means a few huge calls (documents pasted whole, runaway agents).", "currencyUSD",
               *quantiles("llmwatch_call_cost_usd", GENAI, "")),
        ]),
    ]


def latency():
    ttft = "gen_ai_client_operation_time_to_first_chunk_seconds"
    tpot = "gen_ai_client_operation_time_per_output_chunk_seconds"
    dur = "gen_ai_client_operation_duration_seconds"
    return [
        ("Time to first token (streamed calls)", [
            ts("TTFT percentiles", "p50, p95 and p99 time to first token of streamed calls. The TTFT objective (alert-rules/llmwatch-slo.rules.yml) is 95 % within 2.56 s for models that do not reason.", "s",
               *quantiles(ttft, GENAI, ""), thresholds=thresholds((2.56, "orange"))),
            heatmap("TTFT distribution", "Streamed calls per TTFT bucket over time. Two bands mean two populations (a reasoning model, a long-prompt feature): split with the model and feature variables.", "s", ttft, GENAI),
            ts("TTFT p95 by model", "p95 time to first token per request model. One model rising: provider side for that model; all rising: longer prompts or your network.", "s",
               *quantiles(ttft, GENAI, "gen_ai_request_model", qs=(0.95,))),
            ts("TTFT p95 by service", "p95 time to first token per service. One service rising alone: its prompts grew or it moved to a slower model; open Cost for its input tokens per call.", "s",
               *quantiles(ttft, GENAI, "service_name", qs=(0.95,))),
        ]),
        ("Time per output token (streamed calls)", [
            ts("Time per output token percentiles", "Seconds per output token after the first (decode speed). Rising with TTFT flat: the provider is slower at generating; check its status page.", "s",
               *quantiles(tpot, GENAI, "")),
            heatmap("Time per output token distribution", "Streamed calls per time-per-output-token bucket.", "s", tpot, GENAI),
        ]),
        ("Duration (all calls)", [
            ts("Duration percentiles by model", "p95 call duration per request model, streamed or not, failures included. Long tails near the client timeout mean timeouts are coming.", "s",
               *quantiles(dur, GENAI, "gen_ai_request_model", qs=(0.95,))),
            heatmap("Duration distribution", "Calls per duration bucket over time. A band at the client timeout is calls that timed out; a new band far up is a slow model or feature: split with the variables.", "s", dur, GENAI),
            ts("Duration p95 by error type", "p95 duration of failed calls by error type (empty = success). Failures at the timeout value are timeouts; instant failures are rejections (429, 400).", "s",
               *quantiles(dur, GENAI, "error_type", qs=(0.95,))),
            ts("Duration p50 and p95, streamed vs not", "Call duration split by gen_ai_request_stream: true (streamed), false, unknown (the instrumentation does not say). A streamed call's duration includes the whole answer, so compare each line with itself; a rise in one only points at that path (a proxy buffering streams, a non-streaming batch feature).", "s",
               *quantiles(dur, GENAI, "gen_ai_request_stream", qs=(0.5, 0.95))),
            ts("Calls by stream mode", "Share of calls that streamed, did not, or whose instrumentation does not say. A drop in the streamed share means a client stopped streaming, so TTFT panels cover fewer calls.", "percentunit",
               target(rate(dur + "_count", GENAI, by="gen_ai_request_stream") + " / ignoring(gen_ai_request_stream) group_left " + rate(dur + "_count", GENAI), "{{gen_ai_request_stream}}"), min=0, max=1),
        ]),
        ("Service-level objectives", [
            ts("Availability burn rate", "How fast each service burns its availability error budget (1 = exactly the budget over 30 days), over 1 h and 6 h. Above 14.4 (1 h) or 6 (6 h) pages together with the short window.", "none",
               target("service_name:llmwatch_llm_calls:burnrate1h{service_name=~\"$service\"}", "{{service_name}} 1h"),
               target("service_name:llmwatch_llm_calls:burnrate6h{service_name=~\"$service\"}", "{{service_name}} 6h", ref="B"),
               thresholds=thresholds((6, "orange"), (14.4, "red"))),
            ts("TTFT burn rate", "How fast each service burns its TTFT error budget, over 1 h and 6 h (same thresholds).", "none",
               target("service_name:gen_ai_client_operation_time_to_first_chunk_seconds:burnrate1h{service_name=~\"$service\"}", "{{service_name}} 1h"),
               target("service_name:gen_ai_client_operation_time_to_first_chunk_seconds:burnrate6h{service_name=~\"$service\"}", "{{service_name}} 6h", ref="B"),
               thresholds=thresholds((6, "orange"), (14.4, "red"))),
        ]),
    ]


def quality():
    score = "llmwatch_evaluation_score"
    finish = "llmwatch_finish_reasons_total"
    spc_sel = DRIFT + ', signal=~"$spc_signal"'
    return [
        ("Evaluation scores", [
            ts("Mean score by evaluation", "Mean evaluation score per evaluation name (judge and plugin scores normalized to 0..1, higher is better). The red line is the 0.6 floor of LlmwatchEvaluationScoreLow.", "none",
               target(rate(score + "_sum", QUALITY, "evaluation_name, source") + " / " + rate(score + "_count", QUALITY, "evaluation_name, source"), "{{evaluation_name}} ({{source}})"),
               thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 0.6}]}, min=0),
            ts("Mean score by model", "Mean judge score per request model, all evaluations. One model lower than the others after a change: pin it or compare snapshots.", "none",
               target(rate(score + "_sum", QUALITY + ', source=~"judge|plugin"', "gen_ai_request_model") + " / " + rate(score + "_count", QUALITY + ', source=~"judge|plugin"', "gen_ai_request_model"), "{{gen_ai_request_model}}"), min=0, max=1),
            heatmap("Score distribution", "Evaluations per score bucket (0.1 steps on 0..1, then 1..10 for tools reporting that scale). A growing low band is a class of bad answers: read them in the review queue.", "none",
                    score, QUALITY),
            ts("Flagged share by evaluation", "Share of evaluations that flagged their call (score under the configured floor, a failing label or a safety verdict). Flagged calls are in the review queue (GET /api/v1/review).", "percentunit",
               target(rate("llmwatch_evaluations_flagged_total", QUALITY, "evaluation_name") + " / " + rate(score + "_count", QUALITY, "evaluation_name"), "{{evaluation_name}}"), min=0),
            ts("Evaluations per second by source", "Evaluations arriving per second: judge (llmwatch's own), plugin, external (evaluation events from the app) and user. A drop to zero means the judge or the app's evaluator stopped.", "reqps",
               target(rate(score + "_count", QUALITY, "source"), "{{source}}"), stack=True),
            stat("Review queue", "Flagged calls waiting in the review queue. Growing without anyone reading it: assign an owner.", "short",
                 target("sum(llmwatch_review_queue_entries{" + TARGET + "})"), w=4, h=8),
        ]),
        ("SPC charts", [
            ts("Control chart", "EWMA of the chosen chart (SPC chart variable: evaluation scores, error, `length` and refusal ratios) with its control limits. Outside the limits is an alarm: a change beyond normal variation.", "none",
               target("max by (signal) (llmwatch_spc_value{" + spc_sel + "})", "{{signal}} EWMA"),
               target("max by (signal) (llmwatch_spc_upper_limit{" + spc_sel + "})", "{{signal}} upper limit", ref="B"),
               target("max by (signal) (llmwatch_spc_lower_limit{" + spc_sel + "})", "{{signal}} lower limit", ref="C"),
               w=16, overrides=[{"matcher": {"id": "byRegexp", "options": ".* limit"}, "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}, {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}}]}]),
            table("Charts in alarm", "Charts whose value is outside their control limits at the last interval. Evaluation scores below their lower limit raise LlmwatchEvaluationScoreSpcAlarm.", "none",
                  target("llmwatch_spc_alarm{" + DRIFT + "} == 1", instant=True, fmt="table"), w=8),
            ts("Truncation ratio by model", "Share of choices ending with finish reason `length` (cut at the token limit). Orange at 20 %: LlmwatchTruncationRatioHigh.", "percentunit",
               target(rate(finish, GENAI + ', finish_reason="length"', "gen_ai_request_model") + " / " + rate(finish, GENAI, "gen_ai_request_model"), "{{gen_ai_request_model}}"),
               thresholds=thresholds((0.2, "orange")), min=0),
            ts("Refusal ratio by model", "Share of choices ending with finish reason `content_filter`. Orange at 5 %: LlmwatchRefusalRatioHigh.", "percentunit",
               target(rate(finish, GENAI + ', finish_reason="content_filter"', "gen_ai_request_model") + " / " + rate(finish, GENAI, "gen_ai_request_model"), "{{gen_ai_request_model}}"),
               thresholds=thresholds((0.05, "orange")), min=0),
        ]),
        ("Canary probes", [
            table("Canary status", "Whether each probe's last run met its expectation (1) or not (0). Red on every probe of a model pages (LlmwatchCanaryFailing).", "none",
                  target("max by (probe, gen_ai_request_model) (llmwatch_canary_passing{" + MODEL + "})", instant=True, fmt="table"),
                  thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}, w=8),
            ts("Canary runs by outcome", "Probe runs per second by outcome: pass, fail (wrong answer), slow (over its latency limit), error (endpoint failed).", "reqps",
               target(rate("llmwatch_canary_runs_total", MODEL, "outcome"), "{{outcome}}"), w=8, stack=True),
            ts("Time since last passing run", "Seconds since each probe last passed. Growing steadily: the probe has been failing since then.", "s",
               target("time() - max by (probe, gen_ai_request_model) (llmwatch_canary_last_success_timestamp_seconds{" + MODEL + "})", "{{probe}} {{gen_ai_request_model}}"), w=8),
            ts("Canary latency p95", "p95 latency of probe requests per model: a fixed prompt, so changes are the provider's.", "s",
               *quantiles("llmwatch_canary_latency_seconds", MODEL, "gen_ai_request_model", qs=(0.95,)), w=24),
        ]),
        ("Feedback and implicit signals", [
            ts("Feedback per second by signal", "Explicit user feedback per second: thumbs up and down, ratings, corrections, reports.", "reqps",
               target(rate("llmwatch_feedback_total", QUALITY, "signal"), "{{signal}}"), stack=True),
            ts("Positive feedback and coverage", "Share of explicit feedback that was positive, and share of calls that got any feedback, over the trailing feedback window. Low coverage makes the positive ratio unreliable.", "percentunit",
               target("max by (service_name) (llmwatch_feedback_positive_ratio{" + SERVICE + "})", "{{service_name}} positive"),
               target("max by (service_name) (llmwatch_feedback_coverage_ratio{" + SERVICE + "})", "{{service_name}} coverage", ref="B"), min=0, max=1),
            ts("Implicit signal ratios", "Follow-ups, retries and corrections per turn, abandonment per ended session. Retries and corrections rising: answers got worse even if nobody clicks thumbs down.", "percentunit",
               target("max by (service_name, signal) (llmwatch_session_signal_ratio{" + SERVICE + "})", "{{service_name}} {{signal}}"), min=0),
            ts("Implicit signals per second", "Follow-ups, retries, corrections and abandonments per second, by signal.", "reqps",
               target(rate("llmwatch_session_signals_total", SERVICE, "signal"), "{{signal}}"), stack=True),
            ts("Sessions ended and evicted per second", "Sessions that ended (the denominator of abandonment) and those evicted early because the session limit was reached. Evictions overstate abandonment: raise sessions.max_sessions.", "reqps",
               target(rate("llmwatch_sessions_total", SERVICE, "service_name"), "{{service_name}} ended"),
               target(rate("llmwatch_sessions_evicted_total", SERVICE, "service_name"), "{{service_name}} evicted", ref="B")),
            ts("Feedback refused per second", "Feedback items and requests refused, by channel and reason. invalid_trace_id / invalid_span_id: the app sends feedback without the ids of the call it rates, so it cannot be matched.", "reqps",
               target(rate("llmwatch_feedback_rejected_total", TARGET, "channel, reason"), "{{channel}} {{reason}}"), w=24),
            table("Survivorship-bias indicator", "1 when explicit feedback looks good while abandonment is high: the users who leave do not vote (LlmwatchSurvivorshipBias). Do not report the positive ratio as quality for those services.", "none",
                  target("max by (service_name) (llmwatch_survivorship_bias{" + SERVICE + "})", instant=True, fmt="table"),
                  thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}]}, w=24, h=6),
        ]),
        ("Judge", [
            ts("Judge requests by outcome", "Evaluations of sampled calls per second by evaluator and outcome. parse_failure: the rubric or judge model changed; rate_limited/timeout: the judge endpoint's limits; spend_cap: the hourly judge budget is used up.", "reqps",
               target(rate("llmwatch_judge_requests_total", TARGET, "evaluator, outcome"), "{{evaluator}} {{outcome}}"), w=8, stack=True),
            ts("Sampled calls by result", "Calls the judge sampler chose: queued, no_content (the app does not capture content, so nothing to judge) or queue_full (dropped: LlmwatchJudgeQueueDropping).", "reqps",
               target(rate("llmwatch_judge_sampled_calls_total", SERVICE, "result"), "{{result}}"), w=8, stack=True),
            ts("Judge spend per hour", "What the LLM judge costs, in USD per hour, by evaluator.", "currencyUSD",
               target(rate("llmwatch_judge_cost_usd_total", TARGET, "evaluator") + " * 3600", "{{evaluator}}"), w=8),
            ts("Judge tokens per second", "Tokens the LLM judge uses, by evaluator and type. Input per evaluation rising: longer answers or a longer rubric.", "short",
               target(rate("llmwatch_judge_tokens_total", TARGET, "evaluator, token_type"), "{{evaluator}} {{token_type}}"), w=24),
        ]),
    ]


def drift():
    sel = DRIFT + ', signal=~"$signal"'
    return [
        ("Drift per signal", [
            table("Detected drift", "Signals whose test crossed its threshold in consecutive evaluations (1). Each raises LlmwatchDriftDetected; five or more on one key page.", "none",
                  target("max by (service_name, gen_ai_provider_name, gen_ai_request_model, signal) (llmwatch_drift_detected{" + sel + "}) == 1", instant=True, fmt="table"), w=24, h=7),
            ts("PSI of numeric signals", "Population stability index of numeric signals (tokens, latencies, cost, length) between reference and current window. Above 0.2 (red line) counts toward detection.", "none",
               target("max by (service_name, gen_ai_request_model, signal) (llmwatch_drift_score{" + sel + ', test="psi"})', "{{service_name}} {{gen_ai_request_model}} {{signal}}"),
               thresholds=thresholds((0.2, "red")), min=0),
            ts("Jensen–Shannon distance of categorical signals", "JS distance (base 2) of categorical signals (finish reason, response model, fingerprint, error type, output type). Above 0.1 (red line) with a small chi-square p-value counts toward detection.", "none",
               target("max by (service_name, gen_ai_request_model, signal) (llmwatch_drift_score{" + sel + ', test="js"})', "{{service_name}} {{gen_ai_request_model}} {{signal}}"),
               thresholds=thresholds((0.1, "red")), min=0),
            ts("p-values", "p-value beside each statistic (KS for numeric, chi-square for categorical, permutation test for embeddings). Below 0.01 (red line) is significant; with thousands of samples tiny shifts are significant too, so read it with the score.", "none",
               target("min by (service_name, gen_ai_request_model, signal, test) (llmwatch_drift_p_value{" + sel + "})", "{{service_name}} {{gen_ai_request_model}} {{signal}} ({{test}})"),
               thresholds=thresholds((0.01, "red")), min=0, max=1),
            ts("Embedding MMD²", "Unbiased MMD² of prompt and response embeddings between windows (a topic or answer-style shift). Decided by its permutation p-value.", "none",
               target("max by (service_name, gen_ai_request_model, signal) (llmwatch_drift_score{" + sel + ', test="mmd"})', "{{service_name}} {{gen_ai_request_model}} {{signal}}")),
            ts("Window samples", "Samples in the reference and current windows. Under `min_samples` (100) no verdict is given: low-traffic keys stay grey.", "short",
               target("min by (service_name, gen_ai_request_model, window) (llmwatch_drift_window_samples{" + sel + "})", "{{service_name}} {{gen_ai_request_model}} {{window}}"), w=24),
        ]),
        ("Model and fingerprint changes", [
            table("Response models and fingerprints the reference never saw", "Each row is a silent model change: a response model or system fingerprint that appeared behind a stable request model (LlmwatchSilentModelChange). Check the provider's changelog and compare quality before and after.", "none",
                  target("max by (service_name, gen_ai_provider_name, gen_ai_request_model, kind, value) (llmwatch_model_changes_total{" + DRIFT + "})", instant=True, fmt="table"), w=12),
            ts("New values over time", "Count of new response models and fingerprints per kind: a step is a change, the time of the step is when it happened.", "short",
               target("count by (kind) (max by (service_name, gen_ai_provider_name, gen_ai_request_model, kind, value) (llmwatch_model_changes_total{" + DRIFT + "}))", "{{kind}}"), w=12),
            ts("Calls per second by response model", "Which concrete model answered each request model. A new line behind the same request model is the change; two lines at once is a gradual rollout.", "reqps",
               target(rate("llmwatch_llm_calls_total", GENAI, "gen_ai_request_model, gen_ai_response_model"), "{{gen_ai_request_model}} → {{gen_ai_response_model}}"), w=24, stack=True),
        ]),
    ]


def safety():
    flags = "llmwatch_safety_flags_total"
    scanned = "llmwatch_safety_scanned_calls_total"
    return [
        ("Safety flags", [
            stat("Output flag ratio", "Share of scanned answers matching a safety category on the output side (refusals excluded). Red at 0.5 %: the LlmwatchSafetyFlagRateHigh page threshold.", "percentunit",
                 target("(" + rate(flags, QUALITY + ', source="output", category!="refusal"') + " or vector(0)) / " + rate(scanned, QUALITY)),
                 thresholds=thresholds((0.005, "red")), w=6, h=5),
            stat("Input flag ratio", "Share of scanned prompts matching a safety category on the input side (what users send: PII, prompt injection). Not paged on; a rise in prompt_injection is an attack to look at.", "percentunit",
                 target("(" + rate(flags, QUALITY + ', source="input"') + " or vector(0)) / " + rate(scanned, QUALITY)), w=6, h=5),
            stat("Scanned calls per second", "Calls whose captured content the safety monitor scanned. Zero: the app does not capture content (prompts and responses), so nothing can be flagged.", "reqps",
                 target(rate(scanned, QUALITY)), w=6, h=5),
            stat("Refusal ratio", "Share of choices ending with finish reason `content_filter` (the provider refused). Orange at 5 %.", "percentunit",
                 target(rate("llmwatch_finish_reasons_total", GENAI + ', finish_reason="content_filter"') + " / " + rate("llmwatch_finish_reasons_total", GENAI)),
                 thresholds=thresholds((0.05, "orange")), w=6, h=5, links=[link("quality")]),
            ts("Flags per second by category and source", "Safety flags per second, by category (pii_email, pii_phone, pii_credit_card, secret_api_key, prompt_injection, refusal, the safety judge's harmful_content, personal_data, jailbreak_compliance, hate_harassment, your own) and source: input or output (a pattern matched on that side of every scanned call) or judge (the LLM safety judge, on sampled calls only).", "reqps",
               target(rate(flags, QUALITY, "category, source"), "{{category}} ({{source}})"), stack=True),
            ts("Output flag ratio by category", "Share of scanned answers flagged per category on the output side. Red line 0.5 %: above it, with at least 3 flags in 15 minutes, pages.", "percentunit",
               target(rate(flags, QUALITY + ', source="output"', "category") + " / ignoring (category) group_left () " + rate(scanned, QUALITY), "{{category}}"),
               thresholds=thresholds((0.005, "red")), min=0),
            table("Flags in range by service, model and category", "Where the flags come from over the time range. Read the flagged calls in the review queue before acting.", "short",
                  target(increase(flags, QUALITY, "service_name, gen_ai_request_model, category, source") + " > 0", instant=True, fmt="table"), w=24),
        ]),
    ]


def self_():
    t = TARGET
    return [
        ("Ingest", [
            ts("Spans and log records received per second", "OTLP spans and log records accepted per second, by transport. Flat zero with apps running: exporters point elsewhere or cannot reach llmwatch.", "reqps",
               target(rate("llmwatch_received_spans_total", t, "transport"), "spans {{transport}}"),
               target(rate("llmwatch_received_log_records_total", t, "transport"), "log records {{transport}}", ref="B")),
            ts("Records by what normalization made of them", "Accepted spans and log records by result: llm_call, evaluation, content_event, ignored. Mostly `ignored`: the app sends non-GenAI spans too (fine), or its GenAI attributes are not recognized (check the emitter).", "reqps",
               target(rate("llmwatch_normalized_records_total", t, "signal, record"), "{{signal}} {{record}}"), stack=True),
            ts("Rejections by reason", "Rejected spans and log records (inside accepted requests) and whole requests, by reason. Sustained rejections raise LlmwatchRejectingSpans / LlmwatchRejectingRequests.", "reqps",
               target(rate("llmwatch_rejected_spans_total", t, "reason"), "spans {{reason}}"),
               target(rate("llmwatch_rejected_log_records_total", t, "reason"), "log records {{reason}}", ref="B"),
               target(rate("llmwatch_rejected_requests_total", t, "signal, reason"), "requests {{signal}} {{reason}}", ref="C"), w=24),
        ]),
        ("Series and overflow", [
            ts("Label sets and limit", "Active GenAI label sets against the per-metric limit. Above 80 % of the limit is an info alert; past it, new label sets fold into the overflow series.", "short",
               target("max by (instance) (llmwatch_label_sets{" + t + "})", "label sets {{instance}}"),
               target("max by (instance) (llmwatch_series_limit{" + t + "})", "limit {{instance}}", ref="B")),
            ts("Series per metric", "Series each GenAI metric exposes. The metric growing fastest shows which label explodes (usually a dimension with ids).", "short",
               target("max by (metric) (llmwatch_series{" + t + "})", "{{metric}}")),
            ts("Overflowing and expired records", "Calls folded into the otel_metric_overflow=\"true\" series (a warning alert), quality records folded likewise, and label sets expired after being idle.", "reqps",
               target(rate("llmwatch_series_overflow_records_total", t), "overflow records"),
               target(rate("llmwatch_quality_overflow_records_total", t, "metric"), "quality overflow {{metric}}", ref="B"),
               target(rate("llmwatch_series_expired_total", t), "expired label sets", ref="C")),
            ts("Drift keys", "Drift keys monitored, and calls of keys past `drift.max_keys` that are not monitored. Unmonitored calls: raise max_keys or reduce dimensions.", "short",
               target("max by (instance) (llmwatch_drift_keys{" + t + "})", "keys {{instance}}"),
               target(rate("llmwatch_drift_unmonitored_calls_total", t), "unmonitored calls/s", ref="B")),
        ]),
        ("Judge queue and background work", [
            ts("Judge queue depth and capacity", "Sampled calls waiting for an evaluator, against the queue's capacity. At capacity, sampled calls are dropped (never blocking ingest).", "short",
               target("max by (instance) (llmwatch_judge_queue_depth{" + t + "})", "depth {{instance}}"),
               target("max by (instance) (llmwatch_judge_queue_capacity{" + t + "})", "capacity {{instance}}", ref="B")),
            ts("Judge sampling by result", "Sampled calls queued, without content, or dropped because the queue was full (LlmwatchJudgeQueueDropping).", "reqps",
               target(rate("llmwatch_judge_sampled_calls_total", t, "result"), "{{result}}"), stack=True),
            ts("Drift evaluation duration", "How long the last drift evaluation of every key took. Approaching the evaluation interval (1 m): fewer keys or signals, or more CPU.", "s",
               target("max by (instance) (llmwatch_drift_evaluation_duration_seconds{" + t + "})", "{{instance}}")),
            ts("Embeddings and evaluation exports", "Remote embedding requests by outcome, texts by result (dropped ones lose embedding drift coverage), and evaluation events sent downstream by result.", "reqps",
               target(rate("llmwatch_embedding_requests_total", t, "outcome"), "embedding requests {{outcome}}"),
               target(rate("llmwatch_embedding_texts_total", t, "result"), "embedding texts {{result}}", ref="B"),
               target(rate("llmwatch_evaluation_events_exported_total", t, "result"), "evaluation events {{result}}", ref="C")),
            ts("Sessions tracked", "Sessions held for implicit signals, bounded by configuration. Flat at the limit: sessions are evicted early (see the Quality dashboard).", "short",
               target("max by (instance) (llmwatch_sessions_active{" + t + "})", "{{instance}}")),
            ts("Given up while waiting for the other half", "Content events whose span never came (content expired: check that spans reach llmwatch, or raise sampling.content_wait; content full: raise sampling.content_wait_max_calls), span records that made room before their events came (span full), feedback that matched no call within feedback.call_wait (feedback expired: feedback names ids of calls llmwatch never saw) or made room (feedback full). Dropped content is never scanned nor judged.", "reqps",
               target(rate("llmwatch_quality_join_dropped_total", t, "item, reason"), "{{item}} {{reason}}"), stack=True),
        ]),
        ("Process and scrape", [
            stat("Up", "Whether Prometheus scraped each llmwatch target successfully (1). 0 for 5 minutes pages (LlmwatchDown).", "none",
                 target("min(up{" + t + "})"), thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}, w=6, h=5),
            stat("Version", "The llmwatch build running on each target.", "none",
                 target("count by (version) (llmwatch_build_info{" + t + "})", "{{version}}"), w=6, h=5),
            stat("Resident memory", "Resident memory of llmwatch. It is bounded by configuration (series limits, windows, queues); steady growth over days at constant traffic is a bug to report.", "bytes",
                 target("max(process_resident_memory_bytes{" + t + "})"), w=6, h=5),
            stat("Open file descriptors", "Open file descriptors over the limit. Near the limit: too many client connections.", "percentunit",
                 target("max(process_open_fds{" + t + "} / process_max_fds{" + t + "})"), thresholds=thresholds((0.8, "orange")), w=6, h=5),
            ts("Scrape duration", "How long Prometheus takes to scrape /metrics. Growing with series count; above the scrape timeout the target goes down.", "s",
               target("max by (instance) (scrape_duration_seconds{" + t + "})", "{{instance}}")),
            ts("Samples per scrape", "Samples Prometheus ingests per scrape of each target: the series cost of llmwatch in Prometheus.", "short",
               target("max by (instance) (scrape_samples_scraped{" + t + "})", "{{instance}}")),
            ts("CPU", "CPU seconds per second used by llmwatch.", "percentunit",
               target(rate("process_cpu_seconds_total", t, "instance"), "{{instance}}")),
            ts("Uptime and threads", "Seconds since each llmwatch process started (a drop is a restart: counters restart too, rate() copes) and its OS threads.", "s",
               target("time() - max by (instance) (process_start_time_seconds{" + t + "})", "uptime {{instance}}"),
               target("max by (instance) (process_threads{" + t + "})", "threads {{instance}}", ref="B"),
               overrides=[{"matcher": {"id": "byRegexp", "options": "threads .*"}, "properties": [{"id": "unit", "value": "short"}]}]),
            ts("Resident memory over time", "Resident memory per instance. Bounded by configuration: it should level off after start; a steady climb at constant traffic is a leak to report.", "bytes",
               target("max by (instance) (process_resident_memory_bytes{" + t + "})", "{{instance}}")),
        ]),
    ]


BUILDERS = {
    "overview": (overview, "Calls, errors, tokens, spend, time to first token, finish reasons, top models and firing alerts of the GenAI calls llmwatch derives from OpenTelemetry traces."),
    "cost": (cost, "Spend by model, service, feature and cost component; budgets, top spenders, unpriced models, cost per call and projected spend."),
    "latency": (latency, "Time to first token, time per output token and call duration as percentiles and heatmaps per model and service, streamed vs not, and SLO burn rates."),
    "quality": (quality, "Evaluation and judge scores, SPC charts with their limits, truncation and refusal ratios, canary probes, user feedback, implicit session signals and the survivorship-bias indicator."),
    "drift": (drift, "Drift statistics and p-values per signal and key, detected flags, and response-model and fingerprint changes over time."),
    "safety": (safety, "Safety pattern flags on prompts and answers by category and source, with the refusal ratio."),
    "self": (self_, "llmwatch's own health: ingest and rejections, series and overflow, judge queue, drift evaluation, scrape time and memory."),
}


def dashboard(name):
    build, description = BUILDERS[name]
    panels, y, pid = [], 0, 1
    for row_title, row_panels in build():
        panels.append({"type": "row", "id": pid, "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        x, row_h = 0, 0
        for p in row_panels:
            if x + p.w > 24:
                x, y = 0, y + row_h
                row_h = 0
            panels.append(p.json(pid, x, y))
            pid += 1
            x += p.w
            row_h = max(row_h, p.h)
        y += row_h
    return {
        "uid": "llmwatch-" + name,
        "title": "llmwatch / " + DASHBOARDS[name],
        "description": description,
        "tags": [TAG, name],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "1h"]},
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "weekStart": "",
        "links": [{"type": "dashboards", "title": "llmwatch", "tags": [TAG], "icon": "external link", "tooltip": "Other llmwatch dashboards",
                   "asDropdown": True, "includeVars": True, "keepTime": True, "targetBlank": False, "url": ""}],
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
             "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"},
            {"datasource": DS, "enable": True, "hide": False, "iconColor": "red", "name": "Firing llmwatch alerts",
             "expr": 'ALERTS{alertstate="firing", alertname=~"Llmwatch.+", severity=~"critical|warning"}',
             "step": "1m", "titleFormat": "{{alertname}}", "textFormat": "{{severity}} {{service_name}}", "useValueForTime": False},
        ]},
        "templating": {"list": variables(name)},
        "panels": panels,
    }


def render(name):
    return json.dumps(dashboard(name), indent=2, ensure_ascii=False) + "\n"


def main(argv):
    check = "--check" in argv
    stale = []
    for name in DASHBOARDS:
        path = HERE / ("llmwatch-" + name + ".json")
        text = render(name)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python3 dashboards/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
