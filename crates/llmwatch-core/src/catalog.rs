//! The metric catalog: the one place where metric names, types, units, labels, help and buckets
//! are defined. Exposition registers from it; docs, dashboards and alert rules are checked
//! against it.

/// What kind of series a metric has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric of the public contract.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The Prometheus name, with unit suffix and `_total` on counters.
    pub name: &'static str,
    pub kind: MetricKind,
    /// UCUM-style unit (`s`, `{token}`, `{call}`, `USD`, `1`).
    pub unit: &'static str,
    pub help: &'static str,
    /// Which label prefix comes before the metric's own labels.
    pub prefix: LabelPrefix,
    /// Labels specific to this metric (after the GenAI labels when those apply).
    pub labels: &'static [&'static str],
    /// Upper bounds of histogram buckets (empty for counters and gauges).
    pub buckets: &'static [f64],
}

/// The labels a metric carries before its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPrefix {
    None,
    /// [`GENAI_LABELS`] and the configured dimensions.
    GenAi,
    /// [`DRIFT_KEY_LABELS`] and the configured dimensions: the key drift is monitored per.
    DriftKey,
}

/// Labels of a drift key (service × provider × request model), before the configured dimensions.
pub const DRIFT_KEY_LABELS: [&str; 3] = [
    "service_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
];

/// Labels on every GenAI metric, in this order, before the configured dimensions.
pub const GENAI_LABELS: [&str; 5] = [
    "service_name",
    "gen_ai_provider_name",
    "gen_ai_operation_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
];

/// The label a folded series carries instead of its real labels when a series limit is hit.
pub const OVERFLOW_LABEL: &str = "otel_metric_overflow";

/// `gen_ai.client.token.usage` advised bucket boundaries.
pub const TOKEN_BUCKETS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Cost of one call in USD, from a hundredth of a cent to ten dollars.
pub const COST_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `gen_ai.client.operation.duration` advised bucket boundaries (also TTFT and time per chunk).
pub const DURATION_BUCKETS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Evaluation scores: fine steps on 0..1 (normalized judge scores, most tools), then the 1..10
/// scales some tools report as they are.
pub const SCORE_BUCKETS: &[f64] = &[
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
];

pub mod names {
    pub const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
    pub const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
    pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai_client_operation_time_to_first_chunk_seconds";
    pub const TIME_PER_OUTPUT_CHUNK: &str = "gen_ai_client_operation_time_per_output_chunk_seconds";
    pub const LLM_CALLS: &str = "llmwatch_llm_calls_total";
    pub const FINISH_REASONS: &str = "llmwatch_finish_reasons_total";
    pub const TOKENS: &str = "llmwatch_tokens_total";
    pub const COST: &str = "llmwatch_cost_usd_total";
    pub const CALL_COST: &str = "llmwatch_call_cost_usd";
    pub const PRICED_CALLS: &str = "llmwatch_priced_calls_total";
    pub const UNPRICED_CALLS: &str = "llmwatch_unpriced_calls_total";
    pub const UNPRICED_TOKENS: &str = "llmwatch_unpriced_tokens_total";
    pub const COST_DISAGREEMENTS: &str = "llmwatch_cost_disagreements_total";
    pub const BUDGET_SPEND: &str = "llmwatch_budget_spend_usd";
    pub const BUDGET_LIMIT: &str = "llmwatch_budget_limit_usd";
    pub const BUDGET_BREACHES: &str = "llmwatch_budget_breaches_total";
    pub const TOP_SPENDER_COST: &str = "llmwatch_top_spender_cost_usd";
    pub const TOP_SPENDER_ERROR_BOUND: &str = "llmwatch_top_spender_error_bound_usd";
    pub const DRIFT_SCORE: &str = "llmwatch_drift_score";
    pub const DRIFT_P_VALUE: &str = "llmwatch_drift_p_value";
    pub const DRIFT_DETECTED: &str = "llmwatch_drift_detected";
    pub const DRIFT_WINDOW_SAMPLES: &str = "llmwatch_drift_window_samples";
    pub const SPC_VALUE: &str = "llmwatch_spc_value";
    pub const SPC_UPPER: &str = "llmwatch_spc_upper_limit";
    pub const SPC_LOWER: &str = "llmwatch_spc_lower_limit";
    pub const SPC_ALARM: &str = "llmwatch_spc_alarm";
    pub const MODEL_CHANGES: &str = "llmwatch_model_changes_total";
    pub const DRIFT_KEYS: &str = "llmwatch_drift_keys";
    pub const DRIFT_UNMONITORED_CALLS: &str = "llmwatch_drift_unmonitored_calls_total";
    pub const DRIFT_EVALUATION_SECONDS: &str = "llmwatch_drift_evaluation_duration_seconds";
    pub const EVALUATION_SCORE: &str = "llmwatch_evaluation_score";
    pub const EVALUATIONS_FLAGGED: &str = "llmwatch_evaluations_flagged_total";
    pub const JUDGE_SAMPLED_CALLS: &str = "llmwatch_judge_sampled_calls_total";
    pub const JUDGE_REQUESTS: &str = "llmwatch_judge_requests_total";
    pub const JUDGE_QUEUE_DEPTH: &str = "llmwatch_judge_queue_depth";
    pub const JUDGE_QUEUE_CAPACITY: &str = "llmwatch_judge_queue_capacity";
    pub const JUDGE_COST: &str = "llmwatch_judge_cost_usd_total";
    pub const JUDGE_TOKENS: &str = "llmwatch_judge_tokens_total";
    pub const EVALUATION_EVENTS_EXPORTED: &str = "llmwatch_evaluation_events_exported_total";
    pub const REVIEW_QUEUE_ENTRIES: &str = "llmwatch_review_queue_entries";
    pub const SAFETY_FLAGS: &str = "llmwatch_safety_flags_total";
    pub const SAFETY_SCANNED_CALLS: &str = "llmwatch_safety_scanned_calls_total";
    pub const CANARY_PASSING: &str = "llmwatch_canary_passing";
    pub const CANARY_RUNS: &str = "llmwatch_canary_runs_total";
    pub const CANARY_LATENCY: &str = "llmwatch_canary_latency_seconds";
    pub const CANARY_LAST_SUCCESS: &str = "llmwatch_canary_last_success_timestamp_seconds";
    pub const FEEDBACK: &str = "llmwatch_feedback_total";
    pub const FEEDBACK_REJECTED: &str = "llmwatch_feedback_rejected_total";
    pub const SESSION_SIGNALS: &str = "llmwatch_session_signals_total";
    pub const SESSIONS: &str = "llmwatch_sessions_total";
    pub const SESSIONS_ACTIVE: &str = "llmwatch_sessions_active";
    pub const SESSIONS_EVICTED: &str = "llmwatch_sessions_evicted_total";
    pub const FEEDBACK_POSITIVE_RATIO: &str = "llmwatch_feedback_positive_ratio";
    pub const FEEDBACK_COVERAGE_RATIO: &str = "llmwatch_feedback_coverage_ratio";
    pub const SESSION_SIGNAL_RATIO: &str = "llmwatch_session_signal_ratio";
    pub const SURVIVORSHIP_BIAS: &str = "llmwatch_survivorship_bias";
    pub const EMBEDDING_REQUESTS: &str = "llmwatch_embedding_requests_total";
    pub const EMBEDDING_TEXTS: &str = "llmwatch_embedding_texts_total";
    pub const QUALITY_OVERFLOW: &str = "llmwatch_quality_overflow_records_total";
    pub const QUALITY_JOIN_DROPPED: &str = "llmwatch_quality_join_dropped_total";
    pub const RECEIVED_SPANS: &str = "llmwatch_received_spans_total";
    pub const RECEIVED_LOG_RECORDS: &str = "llmwatch_received_log_records_total";
    pub const REJECTED_SPANS: &str = "llmwatch_rejected_spans_total";
    pub const REJECTED_LOG_RECORDS: &str = "llmwatch_rejected_log_records_total";
    pub const REJECTED_REQUESTS: &str = "llmwatch_rejected_requests_total";
    pub const NORMALIZED_RECORDS: &str = "llmwatch_normalized_records_total";
    pub const SERIES: &str = "llmwatch_series";
    pub const LABEL_SETS: &str = "llmwatch_label_sets";
    pub const SERIES_LIMIT: &str = "llmwatch_series_limit";
    pub const SERIES_OVERFLOW: &str = "llmwatch_series_overflow_records_total";
    pub const SERIES_EXPIRED: &str = "llmwatch_series_expired_total";
    pub const BUILD_INFO: &str = "llmwatch_build_info";
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric llmwatch exposes.
pub const CATALOG: &[MetricDef] = &[
    MetricDef {
        name: names::TOKEN_USAGE,
        kind: Histogram,
        unit: "{token}",
        help: "Tokens per model call, by token type (input includes cached tokens, output includes reasoning).",
        prefix: LabelPrefix::GenAi,
        labels: &["gen_ai_token_type"],
        buckets: TOKEN_BUCKETS,
    },
    MetricDef {
        name: names::OPERATION_DURATION,
        kind: Histogram,
        unit: "s",
        help: "Duration of model calls as the client saw them, by error type and whether the call streamed (true, false, unknown).",
        prefix: LabelPrefix::GenAi,
        labels: &["error_type", "gen_ai_request_stream"],
        buckets: DURATION_BUCKETS,
    },
    MetricDef {
        name: names::TIME_TO_FIRST_CHUNK,
        kind: Histogram,
        unit: "s",
        help: "Time from request to the first streamed chunk (time to first token), streamed calls only.",
        prefix: LabelPrefix::GenAi,
        labels: &[],
        buckets: DURATION_BUCKETS,
    },
    MetricDef {
        name: names::TIME_PER_OUTPUT_CHUNK,
        kind: Histogram,
        unit: "s",
        help: "Time per output token after the first, (duration - time to first token) / (output tokens - 1), streamed calls only.",
        prefix: LabelPrefix::GenAi,
        labels: &[],
        buckets: DURATION_BUCKETS,
    },
    MetricDef {
        name: names::LLM_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Model calls, by error type (empty on success).",
        prefix: LabelPrefix::GenAi,
        labels: &["error_type"],
        buckets: &[],
    },
    MetricDef {
        name: names::FINISH_REASONS,
        kind: Counter,
        unit: "{choice}",
        help: "Choices by finish reason, mapped to stop, length, content_filter, tool_call, error, other.",
        prefix: LabelPrefix::GenAi,
        labels: &["finish_reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::TOKENS,
        kind: Counter,
        unit: "{token}",
        help: "Tokens by type: input (includes cache_read and cache_write), output (includes reasoning), cache_read, cache_write, reasoning. Never add subsets to their totals.",
        prefix: LabelPrefix::GenAi,
        labels: &["token_type"],
        buckets: &[],
    },
    MetricDef {
        name: names::COST,
        kind: Counter,
        unit: "USD",
        help: "Cost in USD by component: input (uncached), cache_read, cache_write, output (not reasoning), reasoning, and unattributed (span-reported cost trusted without a split). Components add up to the total.",
        prefix: LabelPrefix::GenAi,
        labels: &["cost_component"],
        buckets: &[],
    },
    MetricDef {
        name: names::CALL_COST,
        kind: Histogram,
        unit: "USD",
        help: "Cost of one priced call in USD.",
        prefix: LabelPrefix::GenAi,
        labels: &[],
        buckets: COST_BUCKETS,
    },
    MetricDef {
        name: names::PRICED_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Priced calls by what priced them: the response model, the request model (fallback) or the span's own cost (when trusted).",
        prefix: LabelPrefix::GenAi,
        labels: &["priced_by"],
        buckets: &[],
    },
    MetricDef {
        name: names::UNPRICED_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Calls whose model has no price in any catalog: not costed (never as zero). Add the model to a catalog file.",
        prefix: LabelPrefix::GenAi,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::UNPRICED_TOKENS,
        kind: Counter,
        unit: "{token}",
        help: "Tokens of unpriced calls, by token type (same accounting as llmwatch_tokens_total).",
        prefix: LabelPrefix::GenAi,
        labels: &["token_type"],
        buckets: &[],
    },
    MetricDef {
        name: names::COST_DISAGREEMENTS,
        kind: Counter,
        unit: "{call}",
        help: "Calls whose span-reported cost differs from the catalog's beyond the tolerance: a stale catalog, or an emitter's.",
        prefix: LabelPrefix::GenAi,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::BUDGET_SPEND,
        kind: Gauge,
        unit: "USD",
        help: "Spend in the budget's current window (for a per-user budget: the highest-spending user's, an upper bound).",
        prefix: LabelPrefix::None,
        labels: &["budget", "scope"],
        buckets: &[],
    },
    MetricDef {
        name: names::BUDGET_LIMIT,
        kind: Gauge,
        unit: "USD",
        help: "The budget's configured limit per window (per user for a per-user budget).",
        prefix: LabelPrefix::None,
        labels: &["budget", "scope"],
        buckets: &[],
    },
    MetricDef {
        name: names::BUDGET_BREACHES,
        kind: Counter,
        unit: "{breach}",
        help: "Times spend reached the limit (per user for a per-user budget, counted once per user and window).",
        prefix: LabelPrefix::None,
        labels: &["budget", "scope"],
        buckets: &[],
    },
    MetricDef {
        name: names::TOP_SPENDER_COST,
        kind: Gauge,
        unit: "USD",
        help: "Estimated spend of the heaviest users and sessions in the current window (Space-Saving upper bound; see the error bound). `spender` is a salted hash unless raw ids are allowed.",
        prefix: LabelPrefix::None,
        labels: &["scope", "rank", "spender"],
        buckets: &[],
    },
    MetricDef {
        name: names::TOP_SPENDER_ERROR_BOUND,
        kind: Gauge,
        unit: "USD",
        help: "Most a top-spender estimate can exceed the true spend: the window's total spend / the summary's capacity.",
        prefix: LabelPrefix::None,
        labels: &["scope"],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_SCORE,
        kind: Gauge,
        unit: "1",
        help: "The drift statistic of a signal between its reference and current windows: PSI for numeric signals, Jensen–Shannon distance (base 2, categories with an expected count under 5 pooled) for categorical ones, unbiased MMD² for embeddings.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "test"],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_P_VALUE,
        kind: Gauge,
        unit: "1",
        help: "The p-value beside the drift statistic: two-sample KS (asymptotic) for numeric signals, chi-square contingency for categorical ones, permutation test for embeddings.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "test"],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_DETECTED,
        kind: Gauge,
        unit: "1",
        help: "1 when the signal crossed its drift threshold in the configured number of consecutive evaluations, else 0.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal"],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_WINDOW_SAMPLES,
        kind: Gauge,
        unit: "{sample}",
        help: "Samples in the reference and current windows at the last evaluation.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "window"],
        buckets: &[],
    },
    MetricDef {
        name: names::SPC_VALUE,
        kind: Gauge,
        unit: "1",
        help: "The EWMA of a chart. Ratio charts (`signal` error_ratio, length_ratio, refusal_ratio; `chart=\"binomial_ewma\"`): the EWMA of the interval's standardized ratio (r − p0)/sqrt(p0(1 − p0)/n), in standard deviations (0 = the warm-up's pooled ratio p0). Evaluation score charts (`signal=\"evaluation_score:<name>\"`, `chart=\"ewma\"`): the EWMA of the interval's mean score.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "chart"],
        buckets: &[],
    },
    MetricDef {
        name: names::SPC_UPPER,
        kind: Gauge,
        unit: "1",
        help: "The chart's upper control limit, in the units of llmwatch_spc_value (exact, time-varying).",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "chart"],
        buckets: &[],
    },
    MetricDef {
        name: names::SPC_LOWER,
        kind: Gauge,
        unit: "1",
        help: "The chart's lower control limit, in the units of llmwatch_spc_value (exact, time-varying).",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "chart"],
        buckets: &[],
    },
    MetricDef {
        name: names::SPC_ALARM,
        kind: Gauge,
        unit: "1",
        help: "1 when the chart's value is outside its control limits at the last interval, else 0.",
        prefix: LabelPrefix::DriftKey,
        labels: &["signal", "chart"],
        buckets: &[],
    },
    MetricDef {
        name: names::MODEL_CHANGES,
        kind: Counter,
        unit: "{change}",
        help: "A response model or system fingerprint not in the reference appeared behind this request model: a silent model change (1 per new value).",
        prefix: LabelPrefix::DriftKey,
        labels: &["kind", "value"],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_KEYS,
        kind: Gauge,
        unit: "{key}",
        help: "Keys (service × provider × request model × dimensions) drift is monitored for.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_UNMONITORED_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Calls of keys past the drift key limit, not monitored.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::DRIFT_EVALUATION_SECONDS,
        kind: Gauge,
        unit: "s",
        help: "How long the last drift evaluation of every key took.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::EVALUATION_SCORE,
        kind: Histogram,
        unit: "1",
        help: "Evaluation scores by evaluation name and source (judge, plugin: normalized to 0..1 over the rubric scale; external, user: as reported).",
        prefix: LabelPrefix::None,
        labels: &[
            "service_name",
            "gen_ai_request_model",
            "evaluation_name",
            "source",
        ],
        buckets: SCORE_BUCKETS,
    },
    MetricDef {
        name: names::EVALUATIONS_FLAGGED,
        kind: Counter,
        unit: "{evaluation}",
        help: "Evaluations that flagged their call (score under the configured floor, a failing label, or a safety verdict); flagged calls go to the review queue.",
        prefix: LabelPrefix::None,
        labels: &[
            "service_name",
            "gen_ai_request_model",
            "evaluation_name",
            "source",
        ],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_SAMPLED_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Calls the judge samplers (quality, safety judge, or both: counted once) chose, by what became of them: queued, no_content (the app did not capture content), queue_full (dropped, never blocks ingest).",
        prefix: LabelPrefix::None,
        labels: &["service_name", "result"],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_REQUESTS,
        kind: Counter,
        unit: "{request}",
        help: "Evaluations of sampled calls by evaluator (judge: the LLM judge's rubric, safety_judge: the LLM safety judge, or a plugin's name) and outcome: ok, parse_failure, rate_limited, server_error, timeout, rejected, transport_error, skipped, spend_cap.",
        prefix: LabelPrefix::None,
        labels: &["evaluator", "outcome"],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_QUEUE_DEPTH,
        kind: Gauge,
        unit: "{call}",
        help: "Sampled calls waiting for an evaluator.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_QUEUE_CAPACITY,
        kind: Gauge,
        unit: "{call}",
        help: "Capacity of the judge queue; sampled calls beyond it are dropped and counted.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_COST,
        kind: Counter,
        unit: "USD",
        help: "What the LLM judge cost, priced with the price catalog (evaluator judge or safety_judge).",
        prefix: LabelPrefix::None,
        labels: &["evaluator"],
        buckets: &[],
    },
    MetricDef {
        name: names::JUDGE_TOKENS,
        kind: Counter,
        unit: "{token}",
        help: "Tokens the LLM judge used, input and output (evaluator judge or safety_judge).",
        prefix: LabelPrefix::None,
        labels: &["evaluator", "token_type"],
        buckets: &[],
    },
    MetricDef {
        name: names::EVALUATION_EVENTS_EXPORTED,
        kind: Counter,
        unit: "{event}",
        help: "gen_ai.evaluation.result log events sent to the downstream OTLP endpoint, by result: exported, failed, dropped.",
        prefix: LabelPrefix::None,
        labels: &["result"],
        buckets: &[],
    },
    MetricDef {
        name: names::REVIEW_QUEUE_ENTRIES,
        kind: Gauge,
        unit: "{call}",
        help: "Flagged calls kept in the review queue (GET /api/v1/review on the admin listener).",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::SAFETY_FLAGS,
        kind: Counter,
        unit: "{flag}",
        help: "Safety flags by category and source: input or output (a pattern of the safety monitor matched on that side of the captured content), or judge (the sampled LLM safety judge flagged the call).",
        prefix: LabelPrefix::None,
        labels: &["service_name", "gen_ai_request_model", "category", "source"],
        buckets: &[],
    },
    MetricDef {
        name: names::SAFETY_SCANNED_CALLS,
        kind: Counter,
        unit: "{call}",
        help: "Calls whose captured content the safety monitor scanned (the denominator of the flag rate).",
        prefix: LabelPrefix::None,
        labels: &["service_name", "gen_ai_request_model"],
        buckets: &[],
    },
    MetricDef {
        name: names::CANARY_PASSING,
        kind: Gauge,
        unit: "1",
        help: "Whether the last run of a canary probe met its expectation (1) or not (0).",
        prefix: LabelPrefix::None,
        labels: &["probe", "gen_ai_request_model"],
        buckets: &[],
    },
    MetricDef {
        name: names::CANARY_RUNS,
        kind: Counter,
        unit: "{run}",
        help: "Canary probe runs by outcome: pass, fail (answer broke the expectation), slow (met it, over its latency limit), error (no answer from the endpoint); a wrong and slow answer is fail.",
        prefix: LabelPrefix::None,
        labels: &["probe", "gen_ai_request_model", "outcome"],
        buckets: &[],
    },
    MetricDef {
        name: names::CANARY_LATENCY,
        kind: Histogram,
        unit: "s",
        help: "Latency of canary probe runs that got an answer (pass, fail, slow), from sending the request to the last byte of the reply.",
        prefix: LabelPrefix::None,
        labels: &["probe", "gen_ai_request_model"],
        buckets: DURATION_BUCKETS,
    },
    MetricDef {
        name: names::CANARY_LAST_SUCCESS,
        kind: Gauge,
        unit: "s",
        help: "Unix time of the last passing run of a canary probe.",
        prefix: LabelPrefix::None,
        labels: &["probe", "gen_ai_request_model"],
        buckets: &[],
    },
    MetricDef {
        name: names::FEEDBACK,
        kind: Counter,
        unit: "{feedback}",
        help: "Explicit user feedback by signal (thumbs_up, thumbs_down, rating, correction, report) and channel (otlp, http, grpc); the model is empty when the feedback matched no recent call.",
        prefix: LabelPrefix::None,
        labels: &["service_name", "gen_ai_request_model", "signal", "channel"],
        buckets: &[],
    },
    MetricDef {
        name: names::FEEDBACK_REJECTED,
        kind: Counter,
        unit: "{feedback}",
        help: "Feedback items and requests refused, by channel (otlp, http, grpc) and reason (invalid_feedback, invalid_trace_id, invalid_span_id, or for a whole request undecodable, too_large, too_many_items, unsupported_media_type, unsupported_encoding, overloaded, unavailable, timeout).",
        prefix: LabelPrefix::None,
        labels: &["channel", "reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::SESSION_SIGNALS,
        kind: Counter,
        unit: "{signal}",
        help: "Implicit signals from sessions: follow_up (another turn within the follow-up window), retry (the same prompt again), correction (the user corrects the answer), abandonment (no turn after the first answer within the inactivity timeout).",
        prefix: LabelPrefix::None,
        labels: &["service_name", "signal"],
        buckets: &[],
    },
    MetricDef {
        name: names::SESSIONS,
        kind: Counter,
        unit: "{session}",
        help: "Sessions that ended (inactive past the timeout or evicted), the denominator of abandonment.",
        prefix: LabelPrefix::None,
        labels: &["service_name"],
        buckets: &[],
    },
    MetricDef {
        name: names::SESSIONS_ACTIVE,
        kind: Gauge,
        unit: "{session}",
        help: "Sessions tracked for implicit signals (bounded by configuration).",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::SESSIONS_EVICTED,
        kind: Counter,
        unit: "{session}",
        help: "Sessions ended early to make room (sessions.max_sessions reached); part of llmwatch_sessions_total. When this grows, abandonment is overstated: raise the limit.",
        prefix: LabelPrefix::None,
        labels: &["service_name"],
        buckets: &[],
    },
    MetricDef {
        name: names::FEEDBACK_POSITIVE_RATIO,
        kind: Gauge,
        unit: "1",
        help: "Share of explicit feedback that was positive over the trailing feedback window.",
        prefix: LabelPrefix::None,
        labels: &["service_name"],
        buckets: &[],
    },
    MetricDef {
        name: names::FEEDBACK_COVERAGE_RATIO,
        kind: Gauge,
        unit: "1",
        help: "Share of calls that received explicit feedback over the trailing feedback window.",
        prefix: LabelPrefix::None,
        labels: &["service_name"],
        buckets: &[],
    },
    MetricDef {
        name: names::SESSION_SIGNAL_RATIO,
        kind: Gauge,
        unit: "1",
        help: "Implicit signal ratio over the trailing window: follow_up, retry and correction per turn; abandonment per ended session.",
        prefix: LabelPrefix::None,
        labels: &["service_name", "signal"],
        buckets: &[],
    },
    MetricDef {
        name: names::SURVIVORSHIP_BIAS,
        kind: Gauge,
        unit: "1",
        help: "1 when explicit feedback looks good while abandonment is high (thresholds in config): the users who leave do not vote.",
        prefix: LabelPrefix::None,
        labels: &["service_name"],
        buckets: &[],
    },
    MetricDef {
        name: names::EMBEDDING_REQUESTS,
        kind: Counter,
        unit: "{request}",
        help: "Requests to the remote embeddings endpoint by outcome.",
        prefix: LabelPrefix::None,
        labels: &["outcome"],
        buckets: &[],
    },
    MetricDef {
        name: names::EMBEDDING_TEXTS,
        kind: Counter,
        unit: "{text}",
        help: "Texts for remote embedding by result: embedded, cache_hit, dropped_queue_full, dropped_budget, failed.",
        prefix: LabelPrefix::None,
        labels: &["result"],
        buckets: &[],
    },
    MetricDef {
        name: names::QUALITY_OVERFLOW,
        kind: Counter,
        unit: "{record}",
        help: "Quality records (evaluations, feedback, safety flags, sessions) folded into the overflow series because a quality metric reached its label-set limit.",
        prefix: LabelPrefix::None,
        labels: &["metric"],
        buckets: &[],
    },
    MetricDef {
        name: names::QUALITY_JOIN_DROPPED,
        kind: Counter,
        unit: "{item}",
        help: "Items held to be joined with a call whose other half arrives later, given up: content events whose span never came (item content: never scanned nor judged), span records evicted before their content events could come (span), feedback that matched no call (feedback: counted unmatched); reason expired (waited the whole time) or full (made room).",
        prefix: LabelPrefix::None,
        labels: &["item", "reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::RECEIVED_SPANS,
        kind: Counter,
        unit: "{span}",
        help: "Spans received, by transport.",
        prefix: LabelPrefix::None,
        labels: &["transport"],
        buckets: &[],
    },
    MetricDef {
        name: names::RECEIVED_LOG_RECORDS,
        kind: Counter,
        unit: "{log_record}",
        help: "Log records received, by transport.",
        prefix: LabelPrefix::None,
        labels: &["transport"],
        buckets: &[],
    },
    MetricDef {
        name: names::REJECTED_SPANS,
        kind: Counter,
        unit: "{span}",
        help: "Spans rejected inside accepted requests (partial success), by transport and reason.",
        prefix: LabelPrefix::None,
        labels: &["transport", "reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::REJECTED_LOG_RECORDS,
        kind: Counter,
        unit: "{log_record}",
        help: "Log records rejected inside accepted requests (partial success), by transport and reason.",
        prefix: LabelPrefix::None,
        labels: &["transport", "reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::REJECTED_REQUESTS,
        kind: Counter,
        unit: "{request}",
        help: "Whole export requests rejected, by signal, transport and reason.",
        prefix: LabelPrefix::None,
        labels: &["signal", "transport", "reason"],
        buckets: &[],
    },
    MetricDef {
        name: names::NORMALIZED_RECORDS,
        kind: Counter,
        unit: "{record}",
        help: "Accepted spans and log records by what normalization made of them (llm_call, evaluation, content_event, feedback, ignored).",
        prefix: LabelPrefix::None,
        labels: &["signal", "record"],
        buckets: &[],
    },
    MetricDef {
        name: names::SERIES,
        kind: Gauge,
        unit: "{series}",
        help: "Series each GenAI metric exposes (a histogram's label set counts once).",
        prefix: LabelPrefix::None,
        labels: &["metric"],
        buckets: &[],
    },
    MetricDef {
        name: names::LABEL_SETS,
        kind: Gauge,
        unit: "{label_set}",
        help: "Active GenAI label sets (standard labels and dimensions), the overflow label set included; the series limit applies to these.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::SERIES_LIMIT,
        kind: Gauge,
        unit: "{series}",
        help: "Configured limit of GenAI label sets per metric; label sets past it fold into the overflow series.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::SERIES_OVERFLOW,
        kind: Counter,
        unit: "{record}",
        help: "Model calls folded into the otel_metric_overflow=\"true\" series because the series limit was reached.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::SERIES_EXPIRED,
        kind: Counter,
        unit: "{series}",
        help: "GenAI label sets removed after being idle for longer than the configured expiry.",
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    },
    MetricDef {
        name: names::BUILD_INFO,
        kind: Gauge,
        unit: "1",
        help: "Always 1; labels say which llmwatch build is running.",
        prefix: LabelPrefix::None,
        labels: &["version"],
        buckets: &[],
    },
    // Process metrics, written by the `prometheus` crate's process collector on Linux.
    process_metric(
        "process_cpu_seconds_total",
        Counter,
        "s",
        "Total user and system CPU time spent in seconds.",
    ),
    process_metric(
        "process_open_fds",
        Gauge,
        "{file}",
        "Number of open file descriptors.",
    ),
    process_metric(
        "process_max_fds",
        Gauge,
        "{file}",
        "Maximum number of open file descriptors.",
    ),
    process_metric(
        "process_virtual_memory_bytes",
        Gauge,
        "By",
        "Virtual memory size in bytes.",
    ),
    process_metric(
        "process_resident_memory_bytes",
        Gauge,
        "By",
        "Resident memory size in bytes.",
    ),
    process_metric(
        "process_start_time_seconds",
        Gauge,
        "s",
        "Start time of the process since unix epoch in seconds.",
    ),
    process_metric(
        "process_threads",
        Gauge,
        "{thread}",
        "Number of OS threads in the process.",
    ),
];

const fn process_metric(
    name: &'static str,
    kind: MetricKind,
    unit: &'static str,
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind,
        unit,
        help,
        prefix: LabelPrefix::None,
        labels: &[],
        buckets: &[],
    }
}

/// The catalog entry of a metric.
///
/// # Panics
/// When the name is not in the catalog: a programming error caught by every test run.
pub fn def(name: &str) -> &'static MetricDef {
    lookup(name).unwrap_or_else(|| panic!("metric {name} is not in the catalog"))
}

pub fn lookup(name: &str) -> Option<&'static MetricDef> {
    CATALOG.iter().find(|def| def.name == name)
}

/// The metric reference (`docs/metrics.md`), rendered from the catalog.
pub fn markdown_reference() -> String {
    let mut out = String::from(
        "# Metric reference\n\n\
         Generated from the metric catalog (`crates/llmwatch-core/src/catalog.rs`); a test fails when\n\
         this file and the catalog differ. Regenerate with\n\
         `UPDATE_DOCS=1 cargo test -p llmwatch-core --test docs`.\n\n\
         GenAI metrics carry the standard labels ",
    );
    let standard: Vec<String> = GENAI_LABELS.iter().map(|l| format!("`{l}`")).collect();
    out.push_str(&standard.join(", "));
    out.push_str(
        ", then the dimensions configured under `[[dimensions]]`, then their own labels; drift metrics carry the drift key (`service_name`, `gen_ai_provider_name`, `gen_ai_request_model`) and the dimensions. \
         An empty label value means the attribute was absent. A label set past the series limit \
         is counted in one series that carries only `otel_metric_overflow=\"true\"` (and the \
         metric's own labels).\n\n",
    );
    out.push_str("| Metric | Type | Unit | Labels | Description |\n|---|---|---|---|---|\n");
    for def in CATALOG {
        let mut labels: Vec<String> = Vec::new();
        match def.prefix {
            LabelPrefix::None => {}
            LabelPrefix::GenAi => labels.push("standard".to_owned()),
            LabelPrefix::DriftKey => labels.push("drift key".to_owned()),
        }
        labels.extend(def.labels.iter().map(|l| format!("`{l}`")));
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} | {} |\n",
            def.name,
            def.kind.as_str(),
            def.unit,
            if labels.is_empty() {
                "—".to_owned()
            } else {
                labels.join(", ")
            },
            def.help.replace('|', "\\|"),
        ));
    }
    out.push_str("\n## Histogram buckets\n\n");
    for def in CATALOG.iter().filter(|d| !d.buckets.is_empty()) {
        let bounds: Vec<String> = def.buckets.iter().map(|b| b.to_string()).collect();
        out.push_str(&format!("- `{}`: {}\n", def.name, bounds.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for def in CATALOG {
            assert!(
                def.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                def.name
            );
            assert_eq!(
                def.kind == Counter,
                def.name.ends_with("_total"),
                "{}",
                def.name
            );
            if def.unit == "s" && def.kind != Counter {
                assert!(def.name.ends_with("_seconds"), "{}", def.name);
            }
            assert_eq!(
                def.kind == Histogram,
                !def.buckets.is_empty(),
                "{}",
                def.name
            );
            assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
            assert!(!def.help.is_empty());
        }
        let mut names: Vec<_> = CATALOG.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOG.len(), "duplicate metric names");
    }
}
