//! The configuration file (TOML). Everything has a default, so no file is needed; a file
//! overrides what it names, and command-line flags override the file.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use llmwatch_core::catalog::{CATALOG, GENAI_LABELS, OVERFLOW_LABEL};
use llmwatch_core::drift::{DriftConfig, ReferenceMode, SpcConfig};
use llmwatch_core::spend::{BudgetConfig, BudgetScope, SpendConfig, TopSpendersConfig, Window};
use llmwatch_core::{PricingConfig, ProcessorConfig};
use llmwatch_pricing::{Catalog, Format, builtin_entries, parse_catalog};
use llmwatch_semconv::{Dimension, MAX_DIMENSIONS};
use llmwatch_server::ServerConfig;
use serde::{Deserialize, Deserializer};

mod feedback;

pub use feedback::{FeedbackSection, SessionsSection, SurvivorshipSection};

mod canary;

pub use canary::{CanarySection, EmbeddingsSection};
mod quality;

pub use quality::{
    CategorySection, DimensionMatch, DownstreamSection, EvaluatorSection, JudgeSection,
    ReviewSection, SafetyJudgeCategorySection, SafetyJudgeSection, SafetySection,
    SamplingRuleSection, SamplingSection,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where state that must survive a restart lives.
    pub data_dir: PathBuf,
    pub server: ServerSection,
    pub limits: LimitsSection,
    /// Extra labels on every GenAI metric, read from span or resource attributes.
    pub dimensions: Vec<DimensionSection>,
    pub pricing: PricingSection,
    pub budgets: Vec<BudgetSection>,
    pub top_spenders: TopSpendersSection,
    pub drift: DriftSection,
    /// Explicit user feedback: reading, matching to calls, ratios.
    pub feedback: FeedbackSection,
    /// Implicit signals from sessions (follow-up, retry, correction, abandonment).
    pub sessions: SessionsSection,
    /// Canary probes run on a schedule (none by default).
    pub canaries: Vec<CanarySection>,
    /// The remote embeddings client for drift (none by default: the built-in embedder).
    pub embeddings: Option<EmbeddingsSection>,
    /// Which calls the judge and evaluator plugins see.
    pub sampling: SamplingSection,
    pub safety: SafetySection,
    /// The LLM judge (none by default).
    pub judge: Option<JudgeSection>,
    /// Evaluator plugins called over gRPC for sampled calls.
    pub evaluators: Vec<EvaluatorSection>,
    pub review: ReviewSection,
    /// Where evaluation results are sent as OTLP log events (nowhere by default).
    pub downstream: Option<DownstreamSection>,
    /// The directory relative paths in the file are resolved against (the file's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file as errors name it (see [`Config::error`]).
    #[serde(skip)]
    pub file: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingSection {
    /// Catalog files, before the built-in catalog in precedence (earlier files win).
    pub catalogs: Vec<CatalogFile>,
    /// Model names as apps call them → catalog model names (e.g. Azure deployment names).
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Use the cost spans report (OpenLIT, OpenInference, Langfuse) instead of the catalog's.
    pub trust_span_cost: bool,
    /// Relative difference between span-reported and catalog cost counted as a disagreement.
    pub disagreement_tolerance: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub path: PathBuf,
    /// `native`, `litellm` or `genai-prices`; detected when absent.
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    pub name: String,
    /// `hour`, `day`, `month` (UTC calendar) or a duration such as `"30m"` (rolling).
    pub window: String,
    pub limit_usd: f64,
    /// `global`, `service`, `dimension` or `user` (each user separately).
    #[serde(default = "global_scope")]
    pub scope: String,
    /// With `scope = "service"`: the service name.
    #[serde(default)]
    pub service: Option<String>,
    /// With `scope = "dimension"`: a configured dimension's label and the value to limit.
    #[serde(default)]
    pub dimension: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

fn global_scope() -> String {
    "global".to_owned()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopSpendersSection {
    /// Ranks exported per scope (users, sessions); 0 turns the feature off.
    pub count: usize,
    /// Counters kept per scope; estimates over-count by at most total spend / capacity.
    pub capacity: usize,
    /// `hour`, `day`, `month`, or a duration (tumbling).
    pub window: String,
    /// Export user and session ids as they are instead of salted hashes.
    pub raw_ids: bool,
    /// Salt of the hashes; by default a random one kept in `data_dir/spender-salt`.
    pub salt: Option<String>,
}

impl Default for PricingSection {
    fn default() -> Self {
        PricingSection {
            catalogs: Vec::new(),
            aliases: Default::default(),
            trust_span_cost: false,
            disagreement_tolerance: 0.05,
        }
    }
}

impl Default for TopSpendersSection {
    fn default() -> Self {
        TopSpendersSection {
            count: 10,
            capacity: 1_000,
            window: "day".to_owned(),
            raw_ids: false,
            salt: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSection {
    pub enabled: bool,
    /// How often drift is evaluated.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// The sliding current window.
    #[serde(deserialize_with = "duration")]
    pub current_window: Duration,
    /// Buckets the current window slides by.
    pub buckets: usize,
    /// `first_n`, `pinned` or `trailing`.
    pub reference: String,
    /// With `first_n`: the first calls of each key that form its reference.
    pub reference_size: usize,
    /// With `trailing`: how far back the reference window is (e.g. "1d", "7d").
    #[serde(deserialize_with = "duration")]
    pub trailing_offset: Duration,
    pub min_samples: usize,
    pub consecutive: u32,
    pub max_keys: usize,
    pub sample_capacity: usize,
    pub text_capacity: usize,
    pub psi_threshold: f64,
    pub js_threshold: f64,
    pub p_value_threshold: f64,
    /// Embedding signals: the unbiased MMD² must reach this and the permutation p-value be below
    /// `mmd_p_value_threshold`.
    pub mmd_threshold: f64,
    pub mmd_p_value_threshold: f64,
    pub mmd_permutations: usize,
    /// How often baselines and chart state are written to the data directory.
    #[serde(deserialize_with = "duration")]
    pub state_interval: Duration,
    /// Pin the current windows as references once the service has run this long (a scheduled
    /// pin, for `reference = "pinned"`); unset: only on demand.
    #[serde(deserialize_with = "optional_duration")]
    pub pin_after: Option<Duration>,
    pub spc: SpcSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpcSection {
    pub lambda: f64,
    #[serde(rename = "L")]
    pub l: f64,
    pub warmup_intervals: usize,
    pub min_per_interval: u64,
}

impl Default for DriftSection {
    fn default() -> Self {
        let core = DriftConfig::default();
        let server = ServerConfig::default();
        DriftSection {
            enabled: core.enabled,
            interval: server.drift_interval,
            current_window: Duration::from_secs(core.current_window),
            buckets: core.buckets,
            reference: "first_n".to_owned(),
            reference_size: match core.reference {
                ReferenceMode::FirstN(n) => n,
                _ => 1_000,
            },
            trailing_offset: Duration::from_secs(86_400),
            min_samples: core.min_samples,
            consecutive: core.consecutive,
            max_keys: core.max_keys,
            sample_capacity: core.sample_capacity,
            text_capacity: core.text_capacity,
            psi_threshold: core.psi_threshold,
            js_threshold: core.js_threshold,
            p_value_threshold: core.p_value_threshold,
            mmd_threshold: core.mmd_threshold,
            mmd_p_value_threshold: core.mmd_p_value_threshold,
            mmd_permutations: core.mmd_permutations,
            state_interval: server.drift_state_interval,
            pin_after: None,
            spc: SpcSection::default(),
        }
    }
}

impl Default for SpcSection {
    fn default() -> Self {
        let core = SpcConfig::default();
        SpcSection {
            lambda: core.lambda,
            l: core.l,
            warmup_intervals: core.warmup_intervals,
            min_per_interval: core.min_per_interval,
        }
    }
}

impl DriftSection {
    fn validate(&self) -> Result<(), (String, String)> {
        let key = |field: &str| format!("drift.{field}");
        let reference = ["first_n", "pinned", "trailing"];
        if !reference.contains(&self.reference.as_str()) {
            return Err((
                key("reference"),
                format!(
                    "expected first_n, pinned or trailing, got {:?}",
                    self.reference
                ),
            ));
        }
        let at_least = |field: &str, value: usize, minimum: usize| {
            (value >= minimum).then_some(()).ok_or((
                key(field),
                format!("expected at least {minimum}, got {value}"),
            ))
        };
        at_least("buckets", self.buckets, 1)?;
        at_least("reference_size", self.reference_size, 2)?;
        at_least("min_samples", self.min_samples, 2)?;
        at_least("consecutive", self.consecutive as usize, 1)?;
        at_least("sample_capacity", self.sample_capacity, 1)?;
        at_least("text_capacity", self.text_capacity, 1)?;
        at_least("mmd_permutations", self.mmd_permutations, 1)?;
        // The permutation p-value is at least 1 / (permutations + 1): fewer permutations than
        // that could never reach the threshold, and embedding drift would never be detected.
        if 1.0 / (self.mmd_permutations as f64 + 1.0) >= self.mmd_p_value_threshold {
            return Err((
                key("mmd_permutations"),
                format!(
                    "expected more than {} permutations for mmd_p_value_threshold = {} (the smallest p-value is 1 / (permutations + 1)), got {}",
                    (1.0 / self.mmd_p_value_threshold - 1.0).floor(),
                    self.mmd_p_value_threshold,
                    self.mmd_permutations
                ),
            ));
        }
        at_least("spc.warmup_intervals", self.spc.warmup_intervals, 2)?;
        if self.current_window.as_secs() < self.buckets as u64 {
            return Err((
                key("current_window"),
                format!(
                    "expected at least one second per bucket ({} buckets)",
                    self.buckets
                ),
            ));
        }
        let fraction = |field: &str, value: f64| {
            (value.is_finite() && value > 0.0 && value <= 1.0)
                .then_some(())
                .ok_or((
                    key(field),
                    format!("expected a number in (0, 1], got {value}"),
                ))
        };
        fraction("js_threshold", self.js_threshold)?;
        fraction("p_value_threshold", self.p_value_threshold)?;
        fraction("mmd_p_value_threshold", self.mmd_p_value_threshold)?;
        fraction("spc.lambda", self.spc.lambda)?;
        if !(self.mmd_threshold.is_finite() && self.mmd_threshold >= 0.0) {
            return Err((
                key("mmd_threshold"),
                format!("expected a number ≥ 0, got {}", self.mmd_threshold),
            ));
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold > 0.0) {
            return Err((
                key("psi_threshold"),
                format!("expected a positive number, got {}", self.psi_threshold),
            ));
        }
        if !(self.spc.l.is_finite() && self.spc.l > 0.0) {
            return Err((
                key("spc.L"),
                format!("expected a positive number, got {}", self.spc.l),
            ));
        }
        Ok(())
    }

    pub fn core(&self) -> DriftConfig {
        DriftConfig {
            enabled: self.enabled,
            current_window: self.current_window.as_secs(),
            buckets: self.buckets,
            reference: match self.reference.as_str() {
                "pinned" => ReferenceMode::Pinned,
                "trailing" => ReferenceMode::Trailing(self.trailing_offset.as_secs()),
                _ => ReferenceMode::FirstN(self.reference_size),
            },
            sample_capacity: self.sample_capacity,
            text_capacity: self.text_capacity,
            min_samples: self.min_samples,
            consecutive: self.consecutive,
            max_keys: self.max_keys,
            psi_threshold: self.psi_threshold,
            js_threshold: self.js_threshold,
            p_value_threshold: self.p_value_threshold,
            mmd_threshold: self.mmd_threshold,
            mmd_p_value_threshold: self.mmd_p_value_threshold,
            mmd_permutations: self.mmd_permutations,
            spc: SpcConfig {
                lambda: self.spc.lambda,
                l: self.spc.l,
                warmup_intervals: self.spc.warmup_intervals,
                min_per_interval: self.spc.min_per_interval,
            },
        }
    }
}

/// Parses a window: a UTC calendar unit or a duration.
pub fn parse_window(text: &str) -> Result<Window, String> {
    match text.trim() {
        "hour" => Ok(Window::Hour),
        "day" => Ok(Window::Day),
        "month" => Ok(Window::Month),
        other => match humantime::parse_duration(other) {
            Ok(d) if d.as_secs() >= 60 => Ok(Window::Every(d.as_secs())),
            _ => Err(format!(
                "expected hour, day, month or a duration of at least 1m such as \"30m\", got {other:?}"
            )),
        },
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub metrics: SocketAddr,
    pub max_request_bytes: usize,
    pub max_inflight_requests: usize,
    #[serde(deserialize_with = "duration")]
    pub retry_after: Duration,
    #[serde(deserialize_with = "duration")]
    pub body_read_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_series_per_metric: usize,
    #[serde(deserialize_with = "duration")]
    pub series_idle_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionSection {
    pub label: String,
    pub attributes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("llmwatch-data"),
            server: ServerSection::default(),
            limits: LimitsSection::default(),
            dimensions: Vec::new(),
            pricing: PricingSection::default(),
            budgets: Vec::new(),
            top_spenders: TopSpendersSection::default(),
            drift: DriftSection::default(),
            feedback: FeedbackSection::default(),
            sessions: SessionsSection::default(),
            canaries: Vec::new(),
            embeddings: None,
            sampling: SamplingSection::default(),
            safety: SafetySection::default(),
            judge: None,
            evaluators: Vec::new(),
            review: ReviewSection::default(),
            downstream: None,
            base_dir: PathBuf::new(),
            file: BUILT_IN.to_owned(),
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        let defaults = ServerConfig::default();
        ServerSection {
            otlp_grpc: defaults.otlp_grpc,
            otlp_http: defaults.otlp_http,
            metrics: defaults.metrics,
            max_request_bytes: defaults.max_request_bytes,
            max_inflight_requests: defaults.max_inflight_requests,
            retry_after: defaults.retry_after,
            body_read_timeout: defaults.body_read_timeout,
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_series_per_metric: ProcessorConfig::default().max_series,
            series_idle_timeout: ServerConfig::default().series_idle_timeout,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "expected a duration such as \"30s\" or \"15m\", got {text:?} ({e})"
        ))
    })
}

fn optional_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

/// How errors name the configuration when llmwatch runs without a file.
pub const BUILT_IN: &str = "(built-in defaults)";

/// A configuration problem, naming the file, the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.file, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let mut config = Config::parse(&text, &file)?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let error = |key: String, message: String| ConfigError {
            file: file.to_owned(),
            key,
            message,
        };
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| error(String::new(), located(text, e.span(), e.message())))?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            error(
                if key == "." { String::new() } else { key },
                located(text, inner.span(), inner.message()),
            )
        })?;
        config
            .validate()
            .map_err(|(key, message)| error(key, message))?;
        Ok(Config {
            file: file.to_owned(),
            ..config
        })
    }

    /// A problem found after parsing (an API key variable that is not set when a client
    /// starts), naming this config's file and the key at fault.
    pub fn error(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Checks what types alone cannot: label names, limits, collisions.
    fn validate(&self) -> Result<(), (String, String)> {
        let positive = |key: &str, value: usize, minimum: usize| {
            if value < minimum {
                Err((
                    key.to_owned(),
                    format!("expected at least {minimum}, got {value}"),
                ))
            } else {
                Ok(())
            }
        };
        positive(
            "server.max_request_bytes",
            self.server.max_request_bytes,
            1024,
        )?;
        positive(
            "server.max_inflight_requests",
            self.server.max_inflight_requests,
            1,
        )?;
        positive(
            "limits.max_series_per_metric",
            self.limits.max_series_per_metric,
            1,
        )?;
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Err((
                "dimensions".to_owned(),
                format!(
                    "expected at most {MAX_DIMENSIONS} dimensions, got {}",
                    self.dimensions.len()
                ),
            ));
        }
        let reserved: Vec<&str> = GENAI_LABELS
            .iter()
            .copied()
            .chain(CATALOG.iter().flat_map(|def| def.labels.iter().copied()))
            .chain([OVERFLOW_LABEL, "le", "job", "instance"])
            .collect();
        let mut seen_attributes = Vec::new();
        for (index, dimension) in self.dimensions.iter().enumerate() {
            let key = |field: &str| format!("dimensions[{index}].{field}");
            if !is_label_name(&dimension.label) {
                return Err((
                    key("label"),
                    format!(
                        "expected a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), got {:?}",
                        dimension.label
                    ),
                ));
            }
            if reserved.contains(&dimension.label.as_str())
                || self.dimensions[..index]
                    .iter()
                    .any(|d| d.label == dimension.label)
            {
                return Err((
                    key("label"),
                    format!("label {:?} is already in use", dimension.label),
                ));
            }
            if dimension.attributes.is_empty() || dimension.attributes.iter().any(String::is_empty)
            {
                return Err((
                    key("attributes"),
                    "expected a non-empty list of attribute keys".to_owned(),
                ));
            }
            for attribute in &dimension.attributes {
                if seen_attributes.contains(&attribute) {
                    return Err((
                        key("attributes"),
                        format!("attribute {attribute:?} feeds two dimensions"),
                    ));
                }
                seen_attributes.push(attribute);
            }
        }
        self.validate_cost()?;
        self.feedback.validate()?;
        self.sessions.validate()?;
        self.validate_canaries()?;
        self.drift.validate()?;
        self.quality().validate()
    }

    /// The quality sections together.
    pub(crate) fn quality(&self) -> quality::QualitySections<'_> {
        quality::QualitySections {
            sampling: &self.sampling,
            safety: &self.safety,
            judge: self.judge.as_ref(),
            evaluators: &self.evaluators,
            review: &self.review,
            downstream: self.downstream.as_ref(),
            dimensions: &self.dimensions,
        }
    }

    fn validate_cost(&self) -> Result<(), (String, String)> {
        let pricing = &self.pricing;
        for (index, catalog) in pricing.catalogs.iter().enumerate() {
            if let Some(format) = &catalog.format
                && Format::parse_name(format).is_none()
            {
                return Err((
                    format!("pricing.catalogs[{index}].format"),
                    format!("expected native, litellm or genai-prices, got {format:?}"),
                ));
            }
        }
        if !(pricing.disagreement_tolerance.is_finite() && pricing.disagreement_tolerance >= 0.0) {
            return Err((
                "pricing.disagreement_tolerance".to_owned(),
                format!(
                    "expected a non-negative fraction such as 0.05, got {}",
                    pricing.disagreement_tolerance
                ),
            ));
        }
        for (index, budget) in self.budgets.iter().enumerate() {
            let key = |field: &str| format!("budgets[{index}].{field}");
            if budget.name.trim().is_empty()
                || self.budgets[..index].iter().any(|b| b.name == budget.name)
            {
                return Err((
                    key("name"),
                    format!("expected a unique, non-empty name, got {:?}", budget.name),
                ));
            }
            parse_window(&budget.window).map_err(|message| (key("window"), message))?;
            if !(budget.limit_usd.is_finite() && budget.limit_usd > 0.0) {
                return Err((
                    key("limit_usd"),
                    format!(
                        "expected a positive amount in USD, got {}",
                        budget.limit_usd
                    ),
                ));
            }
            self.budget_scope(budget)
                .map_err(|(field, message)| (key(field), message))?;
        }
        let top = &self.top_spenders;
        parse_window(&top.window).map_err(|message| ("top_spenders.window".to_owned(), message))?;
        if top.count > top.capacity {
            return Err((
                "top_spenders.capacity".to_owned(),
                format!(
                    "expected at least count ({}), got {}",
                    top.count, top.capacity
                ),
            ));
        }
        Ok(())
    }

    /// A budget's scope, or the field that is wrong and why.
    fn budget_scope(&self, budget: &BudgetSection) -> Result<BudgetScope, (&'static str, String)> {
        let needs = |field: &'static str, value: &Option<String>| {
            value.clone().filter(|v| !v.is_empty()).ok_or((
                field,
                format!("expected a value with scope = {:?}", budget.scope),
            ))
        };
        match budget.scope.as_str() {
            "global" => Ok(BudgetScope::Global),
            "user" => Ok(BudgetScope::PerUser),
            "service" => Ok(BudgetScope::Service(needs("service", &budget.service)?)),
            "dimension" => {
                let label = needs("dimension", &budget.dimension)?;
                let index = self
                    .dimensions
                    .iter()
                    .position(|d| d.label == label)
                    .ok_or((
                        "dimension",
                        format!(
                            "expected the label of a configured [[dimensions]] entry, got {label:?}"
                        ),
                    ))?;
                Ok(BudgetScope::Dimension {
                    index,
                    value: needs("value", &budget.value)?,
                })
            }
            other => Err((
                "scope",
                format!("expected global, service, dimension or user, got {other:?}"),
            )),
        }
    }

    /// The processor's configuration, reading the price catalog files (errors name the file,
    /// the model entry and the field).
    pub fn processor_config(&self) -> anyhow::Result<ProcessorConfig> {
        let mut layers = Vec::new();
        for catalog in &self.pricing.catalogs {
            let path = self.base_dir.join(&catalog.path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("cannot read price catalog {}: {e}", path.display())
            })?;
            let format = catalog.format.as_deref().and_then(Format::parse_name);
            layers.push(parse_catalog(&text, &path.display().to_string(), format)?);
        }
        layers.push(builtin_entries());
        let pricing = PricingConfig {
            catalog: Arc::new(
                Catalog::from_layers(layers).with_aliases(self.pricing.aliases.clone()),
            ),
            trust_span_cost: self.pricing.trust_span_cost,
            disagreement_tolerance: self.pricing.disagreement_tolerance,
        };
        let budgets = self
            .budgets
            .iter()
            .map(|b| BudgetConfig {
                name: b.name.clone(),
                window: parse_window(&b.window).expect("validated"),
                limit_usd: b.limit_usd,
                scope: self.budget_scope(b).expect("validated"),
            })
            .collect();
        let top = &self.top_spenders;
        let spend = SpendConfig {
            budgets,
            top_spenders: TopSpendersConfig {
                count: top.count,
                capacity: top.capacity,
                window: parse_window(&top.window).expect("validated"),
                salt: top.salt.clone().unwrap_or_default(),
                raw_ids: top.raw_ids,
            },
        };
        Ok(ProcessorConfig {
            pricing,
            spend,
            drift: self.drift.core(),
            dimensions: self
                .dimensions
                .iter()
                .map(|d| Dimension {
                    label: d.label.clone(),
                    attributes: d.attributes.clone(),
                })
                .collect(),
            max_series: self.limits.max_series_per_metric,
            quality: llmwatch_core::quality::QualityConfig {
                feedback: self.feedback.core(),
                sessions: self.sessions.core(),
                ..self
                    .quality()
                    .core()
                    .map_err(|(key, message)| anyhow::anyhow!("key `{key}`: {message}"))?
            },
        })
    }

    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            otlp_grpc: self.server.otlp_grpc,
            otlp_http: self.server.otlp_http,
            metrics: self.server.metrics,
            max_request_bytes: self.server.max_request_bytes,
            max_inflight_requests: self.server.max_inflight_requests,
            retry_after: self.server.retry_after,
            body_read_timeout: self.server.body_read_timeout,
            series_idle_timeout: self.limits.series_idle_timeout,
            drift_interval: self.drift.interval,
            drift_state_file: Some(self.data_dir.join("drift-state.json")),
            drift_state_interval: self.drift.state_interval,
            drift_pin_after: self.drift.pin_after,
            session_sweep_interval: self.sessions.sweep_interval,
            review_file: self
                .review
                .enabled
                .then(|| self.data_dir.join("review.jsonl")),
            review_max_file_bytes: self.review.max_file_bytes,
        }
    }
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Appends "(line L, column C)" to a parser message when the span is known.
fn located(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let message = message.trim();
    match span {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmwatch_core::spend::{BudgetScope, Window};

    #[test]
    fn empty_file_means_defaults() {
        let config = Config::parse("", "empty.toml").unwrap();
        assert_eq!(config.file, "empty.toml");
        assert_eq!(
            config,
            Config {
                file: "empty.toml".into(),
                ..Config::default()
            }
        );
        assert_eq!(Config::default().file, BUILT_IN);
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let error =
            Config::parse("[limits]\nmax_series_per_metric = \"lots\"\n", "a.toml").unwrap_err();
        assert_eq!(error.file, "a.toml");
        assert_eq!(error.key, "limits.max_series_per_metric");
        assert!(error.message.contains("expected"), "{error}");
        assert!(error.message.contains("line 2"), "{error}");

        let error = Config::parse("[server]\notlp_grpc = \"nowhere\"\n", "b.toml").unwrap_err();
        assert_eq!(error.key, "server.otlp_grpc");

        let error =
            Config::parse("[limits]\nseries_idle_timeout = \"soon\"\n", "c.toml").unwrap_err();
        assert_eq!(error.key, "limits.series_idle_timeout");
        assert!(error.message.contains("duration"), "{error}");

        let error = Config::parse("[sever]\n", "d.toml").unwrap_err();
        assert!(error.message.contains("unknown field `sever`"), "{error}");

        let text = "[[dimensions]]\nlabel = \"app-feature\"\nattributes = [\"app.feature\"]\n";
        let error = Config::parse(text, "e.toml").unwrap_err();
        assert_eq!(error.key, "dimensions[0].label");
        assert_eq!(
            error.to_string(),
            "e.toml: key `dimensions[0].label`: expected a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __), got \"app-feature\""
        );

        let text = "[[dimensions]]\nlabel = \"error_type\"\nattributes = [\"x\"]\n";
        assert_eq!(
            Config::parse(text, "f.toml").unwrap_err().key,
            "dimensions[0].label"
        );
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../../llmwatch.example.toml");
        let config = Config::parse(text, "llmwatch.example.toml").unwrap();
        let defaults = Config {
            dimensions: config.dimensions.clone(),
            budgets: config.budgets.clone(),
            judge: config.judge.clone(),
            file: "llmwatch.example.toml".into(),
            ..Config::default()
        };
        assert_eq!(config, defaults, "the example must show the defaults");
        let judge = config.judge.as_ref().unwrap();
        assert_eq!(judge.client.rubric.len(), 2);
        assert_eq!(judge.max_tokens_per_hour, Some(2_000_000));
        assert_eq!(config.dimensions[0].label, "feature");
        assert_eq!(config.budgets.len(), 2);
        let processor = config.processor_config().unwrap();
        assert_eq!(processor.spend.budgets[1].window, Window::Every(3_600));
        assert_eq!(processor.spend.budgets[1].scope, BudgetScope::PerUser);
    }

    #[test]
    fn cost_sections_name_their_keys_in_errors() {
        let check = |text: &str| Config::parse(text, "c.toml").unwrap_err();
        let e = check("[[budgets]]\nname = \"b\"\nwindow = \"fortnight\"\nlimit_usd = 1.0\n");
        assert_eq!(e.key, "budgets[0].window");
        assert!(
            e.message
                .contains("expected hour, day, month or a duration"),
            "{e}"
        );
        let e = check("[[budgets]]\nname = \"b\"\nwindow = \"day\"\nlimit_usd = 0.0\n");
        assert_eq!(e.key, "budgets[0].limit_usd");
        let e = check(
            "[[budgets]]\nname = \"b\"\nwindow = \"day\"\nlimit_usd = 1.0\nscope = \"dimension\"\ndimension = \"team\"\nvalue = \"x\"\n",
        );
        assert_eq!(e.key, "budgets[0].dimension");
        let e = check(
            "[[budgets]]\nname = \"b\"\nwindow = \"day\"\nlimit_usd = 1.0\nscope = \"service\"\n",
        );
        assert_eq!(e.key, "budgets[0].service");
        let e = check("[pricing]\ncatalogs = [{ path = \"p.json\", format = \"csv\" }]\n");
        assert_eq!(e.key, "pricing.catalogs[0].format");
        let e = check("[top_spenders]\ncount = 20\ncapacity = 10\n");
        assert_eq!(e.key, "top_spenders.capacity");
        let e = check("[drift]\nmmd_permutations = 50\n");
        assert_eq!(e.key, "drift.mmd_permutations");
        assert!(
            e.message.contains("expected more than 99 permutations"),
            "{e}"
        );
        let e = check("[drift]\nmmd_threshold = -0.1\n");
        assert_eq!(e.key, "drift.mmd_threshold");
    }

    #[test]
    fn durations_and_dimensions_parse() {
        let text = "data_dir = \"/tmp/x\"\n[limits]\nseries_idle_timeout = \"15m\"\n\
                    [[dimensions]]\nlabel = \"feature\"\nattributes = [\"app.feature\", \"feature\"]\n";
        let config = Config::parse(text, "ok.toml").unwrap();
        assert_eq!(config.limits.series_idle_timeout, Duration::from_secs(900));
        assert_eq!(
            config.processor_config().unwrap().dimensions[0].attributes,
            vec!["app.feature", "feature"]
        );
    }
}
