//! The quality sections of the config file: `[sampling]`, `[safety]` (with `[safety.judge]`),
//! `[judge]`, `[[evaluators]]`, `[review]` and `[downstream]`.

use std::time::Duration;

use llmwatch_core::quality::{
    AppliesTo, Category, MatchCheck, PendingConfig, QualityConfig, ReviewConfig, Rule,
    SafetyConfig, SafetySampling, SamplingConfig,
};
use llmwatch_judge::{
    DownstreamConfig, JUDGE_EVALUATOR, JudgeConfig, PluginConfig, Protocol, SAFETY_EVALUATOR,
    SafetyCategory, default_safety_categories, valid_category_name,
};
use llmwatch_semconv::FinishReason;
use serde::Deserialize;

use super::{DimensionSection, duration};

/// Which calls are judged. Off (rate 0, no rules) by default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingSection {
    /// Share of calls judged when no rule matches, in [0, 1].
    pub default_rate: f64,
    /// Rates for the calls that meet every condition a rule sets; the rule with the most
    /// conditions wins, then the first.
    pub rules: Vec<SamplingRuleSection>,
    /// How long a sampled span waits for content that arrives as log events (and content for
    /// its span).
    #[serde(deserialize_with = "duration")]
    pub content_wait: Duration,
    /// Spans and content fragments waiting at once; 0 judges only content on spans.
    pub content_wait_max_calls: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingRuleSection {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    /// `{ label = "feature", value = "checkout" }`: a configured dimension's value.
    #[serde(default)]
    pub dimension: Option<DimensionMatch>,
    /// `stop`, `length`, `content_filter`, `tool_call` or `error`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub safety_flagged: Option<bool>,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionMatch {
    pub label: String,
    pub value: String,
}

impl Default for SamplingSection {
    fn default() -> Self {
        let pending = PendingConfig::default();
        SamplingSection {
            default_rate: 0.0,
            rules: Vec::new(),
            content_wait: Duration::from_millis(pending.ttl_millis),
            content_wait_max_calls: pending.max_entries,
        }
    }
}

/// The safety pattern monitor, and the optional LLM safety judge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetySection {
    /// The pattern monitor (the safety judge has its own `enabled`).
    pub enabled: bool,
    /// Keep the built-in categories (pii_email, pii_phone, pii_credit_card, secret_api_key,
    /// prompt_injection, refusal); a category below with the same name replaces one.
    pub default_categories: bool,
    pub categories: Vec<CategorySection>,
    /// `[safety.judge]`: the sampled LLM safety judge (none by default).
    pub judge: Option<SafetyJudgeSection>,
}

impl Default for SafetySection {
    fn default() -> Self {
        SafetySection {
            enabled: true,
            default_categories: true,
            categories: Vec::new(),
            judge: None,
        }
    }
}

/// `[safety.judge]`: asks the `[judge]` model, for a deterministic sample of calls, whether each
/// safety category applies. It has no endpoint of its own: requests go through the `[judge]`
/// client (endpoint, model, key, timeout, retries), queue, concurrency limit and hourly spend
/// cap, so a `[judge]` section is required.
///
/// The defaults judge every call the pattern monitor flagged and nothing else (`rate = 0`,
/// `flagged_rate = 1`): the judge reads the flagged answers in full and says which categories
/// really apply; a `rate` above 0 also samples the calls no pattern caught.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyJudgeSection {
    pub enabled: bool,
    /// Share of calls without a pattern flag judged, in [0, 1].
    pub rate: f64,
    /// Share of pattern-flagged calls judged, in [0, 1]; replaces `rate` for them.
    pub flagged_rate: f64,
    /// Keep the built-in categories (harmful_content, personal_data, jailbreak_compliance,
    /// hate_harassment); a category below with the same name replaces one.
    pub default_categories: bool,
    pub categories: Vec<SafetyJudgeCategorySection>,
}

impl Default for SafetyJudgeSection {
    fn default() -> Self {
        let rates = SafetySampling::default();
        SafetyJudgeSection {
            enabled: true,
            rate: rates.rate,
            flagged_rate: rates.flagged_rate,
            default_categories: true,
            categories: Vec::new(),
        }
    }
}

/// One category of the safety judge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyJudgeCategorySection {
    /// The verdict's key and the `category` label: 1 to 64 ASCII letters, digits, `_` or `-`.
    pub name: String,
    /// What counts as showing the category, shown to the judge.
    pub instructions: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySection {
    pub name: String,
    /// Regular expressions (Rust `regex` syntax), matched case-insensitively.
    pub patterns: Vec<String>,
    /// `input`, `output` or `both`.
    #[serde(default = "both")]
    pub applies_to: String,
    /// `none`, or `luhn` (the match's digits must pass the card-number checksum).
    #[serde(default = "no_check")]
    pub check: String,
}

fn both() -> String {
    "both".to_owned()
}

fn no_check() -> String {
    "none".to_owned()
}

/// The LLM judge: the client settings of [`JudgeConfig`] plus the worker's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JudgeSection {
    /// Sampled calls waiting for the judge; more are dropped (`queue_full`), never waited for.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Sampled calls evaluated at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Hourly cap in dollars, priced with the price catalog (the judge model must be in it).
    #[serde(default)]
    pub max_usd_per_hour: Option<f64>,
    /// Hourly cap in prompt plus completion tokens: applies when no dollar cap is set, or when
    /// the judge model has no price.
    #[serde(default)]
    pub max_tokens_per_hour: Option<u64>,
    /// Scores (normalized to 0..1 over each dimension's scale) below this flag their call for
    /// review; also the floor for scores from other tools.
    #[serde(default = "default_flag_below")]
    pub flag_below: f64,
    /// Endpoint, model, key variable, retries and rubric.
    #[serde(flatten)]
    pub client: JudgeConfig,
    /// Keys neither part takes: refused by validation (serde cannot deny unknown keys across a
    /// flattened struct).
    #[serde(flatten)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
}

fn default_queue_capacity() -> usize {
    256
}

fn default_concurrency() -> usize {
    4
}

fn default_flag_below() -> f64 {
    0.5
}

/// An evaluator plugin (`proto/llmwatch/v1/evaluator.proto`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluatorSection {
    pub name: String,
    /// `http://host:port` of its gRPC server.
    pub endpoint: String,
    #[serde(default = "default_plugin_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
}

fn default_plugin_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The review queue of flagged calls (`GET /api/v1/review` on the metrics listener).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewSection {
    pub enabled: bool,
    /// Entries kept and listed.
    pub max_entries: usize,
    /// Keep prompts and answers in entries (they may hold personal data).
    pub include_content: bool,
    /// Longest prompt or answer kept, in characters.
    pub max_content_chars: usize,
    /// `data_dir/review.jsonl` is rotated to `review.jsonl.1` past this size.
    pub max_file_bytes: u64,
}

impl Default for ReviewSection {
    fn default() -> Self {
        let core = ReviewConfig::default();
        ReviewSection {
            enabled: true,
            max_entries: core.max_entries,
            include_content: core.include_content,
            max_content_chars: core.max_content_chars,
            max_file_bytes: 16 << 20,
        }
    }
}

/// Where evaluation results go as `gen_ai.evaluation.result` OTLP log events.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownstreamSection {
    /// `http://collector:4317` (grpc) or `http://collector:4318` (http).
    pub endpoint: String,
    /// `grpc` or `http` (OTLP/HTTP protobuf).
    #[serde(default = "grpc")]
    pub protocol: String,
    #[serde(default = "default_downstream_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_buffer_capacity")]
    pub buffer_capacity: usize,
}

fn grpc() -> String {
    "grpc".to_owned()
}

fn default_downstream_timeout() -> Duration {
    DownstreamConfig::default().timeout
}

fn default_batch_size() -> usize {
    DownstreamConfig::default().batch_size
}

fn default_buffer_capacity() -> usize {
    DownstreamConfig::default().buffer_capacity
}

/// The quality sections together, as `Config` holds them.
pub(crate) struct QualitySections<'a> {
    pub sampling: &'a SamplingSection,
    pub safety: &'a SafetySection,
    pub judge: Option<&'a JudgeSection>,
    pub evaluators: &'a [EvaluatorSection],
    pub review: &'a ReviewSection,
    pub downstream: Option<&'a DownstreamSection>,
    pub dimensions: &'a [DimensionSection],
}

type Invalid = (String, String);

fn rate(key: String, value: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err((key, format!("expected a rate in [0, 1], got {value}")))
    }
}

impl QualitySections<'_> {
    /// Checks what types alone cannot, naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        rate("sampling.default_rate".into(), self.sampling.default_rate)?;
        for (i, rule) in self.sampling.rules.iter().enumerate() {
            self.rule(i, rule)?;
        }
        let sampling_on = self.sampling.default_rate > 0.0 || !self.sampling.rules.is_empty();
        if sampling_on && self.judge.is_none() && self.evaluators.is_empty() {
            return Err((
                "sampling".into(),
                "sampled calls need an evaluator: add a [judge] section or [[evaluators]]".into(),
            ));
        }
        self.safety_config()?;
        self.safety_judge_categories()?;
        if let Some(judge) = self.judge {
            if let Some(key) = judge.unknown.keys().next() {
                return Err((
                    format!("judge.{key}"),
                    "unknown key; expected one of base_url, model, api_key_env, extra_headers, extra_body, timeout, max_attempts, backoff, json_schema, max_content_chars, rubric, queue_capacity, concurrency, max_usd_per_hour, max_tokens_per_hour, flag_below".into(),
                ));
            }
            judge
                .client
                .validate()
                .map_err(|e| (format!("judge.{}", e.key), format!("expected {}", e.reason)))?;
            if judge.queue_capacity == 0 {
                return Err(("judge.queue_capacity".into(), "expected at least 1".into()));
            }
            if judge.concurrency == 0 {
                return Err(("judge.concurrency".into(), "expected at least 1".into()));
            }
            rate("judge.flag_below".into(), judge.flag_below)?;
            if let Some(usd) = judge.max_usd_per_hour
                && !(usd.is_finite() && usd > 0.0)
            {
                return Err((
                    "judge.max_usd_per_hour".into(),
                    format!("expected a positive amount in USD, got {usd}"),
                ));
            }
            if judge.max_tokens_per_hour == Some(0) {
                return Err((
                    "judge.max_tokens_per_hour".into(),
                    "expected at least 1".into(),
                ));
            }
        }
        for (i, plugin) in self.evaluators.iter().enumerate() {
            let key = |field: &str| format!("evaluators[{i}].{field}");
            let name_ok = !plugin.name.is_empty()
                && plugin.name.len() <= 64
                && plugin
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok
                || plugin.name == JUDGE_EVALUATOR
                || plugin.name == SAFETY_EVALUATOR
                || self.evaluators[..i].iter().any(|p| p.name == plugin.name)
            {
                return Err((
                    key("name"),
                    format!(
                        "expected a unique name of 1 to 64 ASCII letters, digits, '_' or '-', other than \"judge\" and \"safety_judge\", got {:?}",
                        plugin.name
                    ),
                ));
            }
            if !(plugin.endpoint.starts_with("http://") || plugin.endpoint.starts_with("https://"))
            {
                return Err((
                    key("endpoint"),
                    format!(
                        "expected an http:// URL such as \"http://127.0.0.1:50051\", got {:?}",
                        plugin.endpoint
                    ),
                ));
            }
            if plugin.timeout.is_zero() {
                return Err((key("timeout"), "expected a duration longer than 0".into()));
            }
        }
        if self.review.enabled && self.review.max_entries == 0 {
            return Err((
                "review.max_entries".into(),
                "expected at least 1 (or enabled = false)".into(),
            ));
        }
        if let Some(downstream) = self.downstream {
            self.downstream_config(downstream)?;
        }
        Ok(())
    }

    fn rule(&self, i: usize, rule: &SamplingRuleSection) -> Result<Rule, Invalid> {
        let key = |field: &str| format!("sampling.rules[{i}].{field}");
        rate(key("rate"), rule.rate)?;
        let dimension = match &rule.dimension {
            None => None,
            Some(m) => {
                let index = self
                    .dimensions
                    .iter()
                    .position(|d| d.label == m.label)
                    .ok_or_else(|| {
                        (
                            key("dimension"),
                            format!(
                                "expected the label of a configured [[dimensions]] entry, got {:?}",
                                m.label
                            ),
                        )
                    })?;
                Some((index, m.value.clone()))
            }
        };
        let finish_reason = match rule.finish_reason.as_deref() {
            None => None,
            Some(text) => {
                let reason = FinishReason::parse(text);
                if reason == FinishReason::Other {
                    return Err((
                        key("finish_reason"),
                        format!(
                            "expected stop, length, content_filter, tool_call or error, got {text:?}"
                        ),
                    ));
                }
                Some(reason)
            }
        };
        let rule = Rule {
            service: rule.service.clone(),
            operation: rule.operation.clone(),
            dimension,
            finish_reason,
            safety_flagged: rule.safety_flagged,
            rate: rule.rate,
        };
        if rule.conditions() == 0 {
            return Err((
                format!("sampling.rules[{i}]"),
                "expected at least one condition (service, operation, dimension, finish_reason, safety_flagged); use default_rate for all calls".into(),
            ));
        }
        Ok(rule)
    }

    fn safety_config(&self) -> Result<Option<SafetyConfig>, Invalid> {
        if !self.safety.enabled {
            return Ok(None);
        }
        let mut categories = if self.safety.default_categories {
            SafetyConfig::defaults().categories
        } else {
            Vec::new()
        };
        let defaults = categories.len();
        for (i, c) in self.safety.categories.iter().enumerate() {
            let key = |field: &str| format!("safety.categories[{i}].{field}");
            let applies_to = match c.applies_to.as_str() {
                "input" => AppliesTo::Input,
                "output" => AppliesTo::Output,
                "both" => AppliesTo::Both,
                other => {
                    return Err((
                        key("applies_to"),
                        format!("expected input, output or both, got {other:?}"),
                    ));
                }
            };
            let check = match c.check.as_str() {
                "none" => MatchCheck::None,
                "luhn" => MatchCheck::Luhn,
                other => {
                    return Err((
                        key("check"),
                        format!("expected none or luhn, got {other:?}"),
                    ));
                }
            };
            let category = Category {
                name: c.name.clone(),
                patterns: c.patterns.clone(),
                applies_to,
                check,
            };
            if self.safety.categories[..i].iter().any(|o| o.name == c.name) {
                return Err((key("name"), format!("{:?} appears twice", c.name)));
            }
            match categories[..defaults].iter_mut().find(|d| d.name == c.name) {
                Some(default) => *default = category,
                None => categories.push(category),
            }
        }
        let config = SafetyConfig { categories };
        // Compiles every pattern now, so a bad one is reported with its key at load time.
        llmwatch_core::quality::SafetyMonitor::new(&config)
            .map_err(|e| ("safety.categories".to_owned(), e.to_string()))?;
        Ok(Some(config))
    }

    /// The enabled `[safety.judge]` section.
    fn safety_judge(&self) -> Option<&SafetyJudgeSection> {
        self.safety.judge.as_ref().filter(|j| j.enabled)
    }

    /// The safety judge's categories, checked (empty when it is off): the defaults unless
    /// turned off, a configured category of a default's name replacing it, the others after.
    pub fn safety_judge_categories(&self) -> Result<Vec<SafetyCategory>, Invalid> {
        let Some(section) = self.safety_judge() else {
            return Ok(Vec::new());
        };
        if self.judge.is_none() {
            return Err((
                "safety.judge".into(),
                "expected a [judge] section as well: the safety judge sends its requests through the judge's endpoint, model, queue and spend cap (or set safety.judge.enabled = false)".into(),
            ));
        }
        rate("safety.judge.rate".into(), section.rate)?;
        rate("safety.judge.flagged_rate".into(), section.flagged_rate)?;
        let mut categories = if section.default_categories {
            default_safety_categories()
        } else {
            Vec::new()
        };
        let defaults = categories.len();
        for (i, c) in section.categories.iter().enumerate() {
            let key = |field: &str| format!("safety.judge.categories[{i}].{field}");
            if !valid_category_name(&c.name) {
                return Err((
                    key("name"),
                    format!(
                        "expected 1 to 64 ASCII letters, digits, '_' or '-', got {:?}",
                        c.name
                    ),
                ));
            }
            if section.categories[..i].iter().any(|o| o.name == c.name) {
                return Err((key("name"), format!("{:?} appears twice", c.name)));
            }
            if c.instructions.trim().is_empty() {
                return Err((
                    key("instructions"),
                    "expected what counts as showing the category, got an empty text".into(),
                ));
            }
            let category = SafetyCategory::new(&c.name, &c.instructions);
            match categories[..defaults].iter_mut().find(|d| d.name == c.name) {
                Some(default) => *default = category,
                None => categories.push(category),
            }
        }
        if categories.is_empty() {
            return Err((
                "safety.judge.categories".into(),
                "expected at least one category (default_categories = false and none configured)"
                    .into(),
            ));
        }
        Ok(categories)
    }

    fn downstream_config(&self, d: &DownstreamSection) -> Result<DownstreamConfig, Invalid> {
        let protocol = match d.protocol.as_str() {
            "grpc" => Protocol::Grpc,
            "http" | "http/protobuf" => Protocol::HttpProtobuf,
            other => {
                return Err((
                    "downstream.protocol".into(),
                    format!("expected grpc or http, got {other:?}"),
                ));
            }
        };
        if !(d.endpoint.starts_with("http://") || d.endpoint.starts_with("https://")) {
            return Err((
                "downstream.endpoint".into(),
                format!(
                    "expected an http:// URL such as \"http://127.0.0.1:4317\", got {:?}",
                    d.endpoint
                ),
            ));
        }
        for (field, value) in [
            ("batch_size", d.batch_size),
            ("buffer_capacity", d.buffer_capacity),
        ] {
            if value == 0 {
                return Err((format!("downstream.{field}"), "expected at least 1".into()));
            }
        }
        Ok(DownstreamConfig {
            endpoint: d.endpoint.clone(),
            protocol,
            timeout: d.timeout,
            buffer_capacity: d.buffer_capacity,
            batch_size: d.batch_size,
        })
    }

    /// The processor's quality stage (validated first).
    pub fn core(&self) -> Result<QualityConfig, Invalid> {
        let rules = self
            .sampling
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(QualityConfig {
            sampling: SamplingConfig {
                default_rate: self.sampling.default_rate,
                rules,
            },
            safety: self.safety_config()?,
            safety_judge: self.safety_judge().map(|j| SafetySampling {
                rate: j.rate,
                flagged_rate: j.flagged_rate,
            }),
            flag_below: self.judge.map_or_else(default_flag_below, |j| j.flag_below),
            pending: PendingConfig {
                max_entries: self.sampling.content_wait_max_calls,
                ttl_millis: self.sampling.content_wait.as_millis() as u64,
                ..PendingConfig::default()
            },
            review: ReviewConfig {
                max_entries: if self.review.enabled {
                    self.review.max_entries
                } else {
                    0
                },
                include_content: self.review.include_content,
                max_content_chars: self.review.max_content_chars,
            },
            ..QualityConfig::default()
        })
    }

    /// The plugins' client settings.
    pub fn plugins(&self) -> Vec<PluginConfig> {
        self.evaluators
            .iter()
            .map(|e| PluginConfig {
                name: e.name.clone(),
                endpoint: e.endpoint.clone(),
                timeout: e.timeout,
            })
            .collect()
    }

    pub fn downstream(&self) -> Option<DownstreamConfig> {
        self.downstream
            .map(|d| self.downstream_config(d).expect("validated"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    /// A judge section; `{}` is where more `[judge]` keys go (before the rubric table).
    const JUDGE_WITH: &str = "[judge]\nbase_url = \"http://127.0.0.1:8000/v1\"\nmodel = \"m\"\n{}\n\
                              [[judge.rubric]]\nname = \"correctness\"\nscale_min = 1\nscale_max = 5\n\
                              instructions = \"Correct?\"\n";

    fn judge(extra: &str) -> String {
        JUDGE_WITH.replace("{}", extra)
    }

    fn error(text: &str) -> ConfigError {
        Config::parse(text, "q.toml").unwrap_err()
    }

    #[test]
    fn a_full_quality_config_becomes_the_processor_and_pipeline_settings() {
        let text = format!(
            "[[dimensions]]\nlabel = \"feature\"\nattributes = [\"app.feature\"]\n\
             [sampling]\ndefault_rate = 0.1\ncontent_wait = \"30s\"\n\
             [[sampling.rules]]\nfinish_reason = \"length\"\nrate = 1.0\n\
             [[sampling.rules]]\ndimension = {{ label = \"feature\", value = \"search\" }}\nsafety_flagged = true\nrate = 0.5\n\
             [safety]\ncategories = [{{ name = \"refusal\", patterns = [\"nope\"] }}, {{ name = \"hostname\", patterns = ['corp\\.example'], applies_to = \"output\" }}]\n\
             {judge}\
             [[evaluators]]\nname = \"house-style\"\nendpoint = \"http://127.0.0.1:50051\"\n\
             [review]\ninclude_content = true\n\
             [downstream]\nendpoint = \"http://127.0.0.1:4318\"\nprotocol = \"http\"\n",
            judge = judge("max_usd_per_hour = 2.5\nflag_below = 0.4")
        );
        let config = Config::parse(&text, "q.toml").unwrap();
        let quality = config.processor_config().unwrap().quality;
        assert_eq!(quality.sampling.default_rate, 0.1);
        let rules = &quality.sampling.rules;
        assert_eq!(
            rules[0].finish_reason,
            Some(llmwatch_semconv::FinishReason::Length)
        );
        assert_eq!(rules[1].dimension, Some((0, "search".to_owned())));
        assert_eq!(rules[1].safety_flagged, Some(true));
        assert_eq!(quality.pending.ttl_millis, 30_000);
        assert_eq!(quality.flag_below, 0.4);
        assert!(quality.review.include_content);
        let safety = quality.safety.unwrap();
        let names: Vec<&str> = safety.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "pii_email",
                "pii_phone",
                "pii_credit_card",
                "secret_api_key",
                "prompt_injection",
                "refusal",
                "hostname"
            ]
        );
        // The default refusal category was replaced, and applies to both sides as configured.
        assert_eq!(safety.categories[5].patterns, ["nope"]);
        let judge = config.judge.as_ref().unwrap();
        assert_eq!(judge.max_usd_per_hour, Some(2.5));
        assert_eq!((judge.queue_capacity, judge.concurrency), (256, 4));
        assert_eq!(config.quality().plugins()[0].timeout.as_secs(), 5);
        let downstream = config.quality().downstream().unwrap();
        assert_eq!(downstream.protocol, llmwatch_judge::Protocol::HttpProtobuf);
        let server = config.server_config();
        assert_eq!(
            server.review_file,
            Some(std::path::PathBuf::from("llmwatch-data/review.jsonl"))
        );
    }

    #[test]
    fn the_safety_judge_section_becomes_its_rates_and_categories() {
        let text = format!(
            "[safety.judge]\nrate = 0.1\n\
             categories = [{{ name = \"personal_data\", instructions = \"Leaks a customer's data.\" }}, \
             {{ name = \"medical_advice\", instructions = \"Gives a diagnosis.\" }}]\n{}",
            judge("")
        );
        let config = Config::parse(&text, "q.toml").unwrap();
        let quality = config.processor_config().unwrap().quality;
        assert_eq!(
            quality.safety_judge,
            Some(llmwatch_core::quality::SafetySampling {
                rate: 0.1,
                flagged_rate: 1.0
            })
        );
        let categories = config.quality().safety_judge_categories().unwrap();
        let names: Vec<&str> = categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "harmful_content",
                "personal_data",
                "jailbreak_compliance",
                "hate_harassment",
                "medical_advice"
            ]
        );
        assert_eq!(categories[1].instructions, "Leaks a customer's data.");
        // Only the configured ones; and a disabled judge needs no [judge] and samples nothing.
        let text = format!(
            "[safety.judge]\nflagged_rate = 0.5\ndefault_categories = false\n\
             categories = [{{ name = \"medical_advice\", instructions = \"Gives a diagnosis.\" }}]\n{}",
            judge("")
        );
        let config = Config::parse(&text, "q.toml").unwrap();
        let categories = config.quality().safety_judge_categories().unwrap();
        assert_eq!(categories.len(), 1);
        assert_eq!(
            config.processor_config().unwrap().quality.safety_judge,
            Some(llmwatch_core::quality::SafetySampling {
                rate: 0.0,
                flagged_rate: 0.5
            })
        );
        let off = Config::parse("[safety.judge]\nenabled = false\n", "q.toml").unwrap();
        assert_eq!(off.processor_config().unwrap().quality.safety_judge, None);
        assert!(off.quality().safety_judge_categories().unwrap().is_empty());
        // Without the section there is no safety judge.
        let none = Config::parse(&judge(""), "q.toml").unwrap();
        assert_eq!(none.processor_config().unwrap().quality.safety_judge, None);
    }

    /// The commented-out `[safety.judge]` example in llmwatch.example.toml, uncommented, is valid.
    #[test]
    fn the_safety_judge_example_parses() {
        let text = include_str!("../../../../llmwatch.example.toml");
        let mut uncommented = String::new();
        let mut inside = false;
        for line in text.lines() {
            inside = line.starts_with("# [safety.judge]") || (inside && line.starts_with("# "));
            if inside {
                uncommented.push_str(&line[2..]);
                uncommented.push('\n');
            }
        }
        let config = Config::parse(&format!("{uncommented}{}", judge("")), "example").unwrap();
        assert_eq!(
            config.processor_config().unwrap().quality.safety_judge,
            Some(llmwatch_core::quality::SafetySampling {
                rate: 0.01,
                flagged_rate: 1.0
            }),
            "{uncommented}"
        );
        let categories = config.quality().safety_judge_categories().unwrap();
        assert_eq!(categories.len(), 5);
        assert_eq!(categories[4].name, "medical_advice");
    }

    #[test]
    fn safety_judge_errors_name_the_file_the_key_and_what_was_expected() {
        let cases = [
            (
                "[safety.judge]\nrate = 0.1\n".to_owned(),
                "safety.judge",
                "expected a [judge] section as well",
            ),
            (
                format!("[safety.judge]\nrate = 1.5\n{}", judge("")),
                "safety.judge.rate",
                "expected a rate in [0, 1], got 1.5",
            ),
            (
                format!("[safety.judge]\nflagged_rate = -0.5\n{}", judge("")),
                "safety.judge.flagged_rate",
                "expected a rate in [0, 1], got -0.5",
            ),
            (
                format!(
                    "[safety.judge]\ncategories = [{{ name = \"self harm\", instructions = \"x\" }}]\n{}",
                    judge("")
                ),
                "safety.judge.categories[0].name",
                "expected 1 to 64 ASCII letters, digits, '_' or '-', got \"self harm\"",
            ),
            (
                format!(
                    "[safety.judge]\ncategories = [{{ name = \"a\", instructions = \"x\" }}, {{ name = \"a\", instructions = \"y\" }}]\n{}",
                    judge("")
                ),
                "safety.judge.categories[1].name",
                "\"a\" appears twice",
            ),
            (
                format!(
                    "[safety.judge]\ncategories = [{{ name = \"a\", instructions = \" \" }}]\n{}",
                    judge("")
                ),
                "safety.judge.categories[0].instructions",
                "expected what counts as showing the category",
            ),
            (
                format!("[safety.judge]\ndefault_categories = false\n{}", judge("")),
                "safety.judge.categories",
                "expected at least one category",
            ),
            (
                format!("[safety.judge]\nrat = 0.1\n{}", judge("")),
                "safety.judge.rat",
                "unknown field `rat`, expected one of `enabled`, `rate`, `flagged_rate`, `default_categories`, `categories`",
            ),
            (
                format!(
                    "[safety.judge]\ncategories = [{{ name = \"a\" }}]\n{}",
                    judge("")
                ),
                "safety.judge.categories[0]",
                "missing field `instructions`",
            ),
            (
                "[[evaluators]]\nname = \"safety_judge\"\nendpoint = \"http://127.0.0.1:1\"\n"
                    .to_owned(),
                "evaluators[0].name",
                "other than \"judge\" and \"safety_judge\"",
            ),
        ];
        for (text, key, message) in cases {
            let e = error(&text);
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(message), "{e}");
            assert_eq!(e.file, "q.toml");
            assert!(
                e.to_string().starts_with(&format!("q.toml: key `{key}`: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn quality_errors_name_the_key_and_what_was_expected() {
        let cases = [
            ("[sampling]\ndefault_rate = 1.5\n".to_owned(), "sampling.default_rate", "expected a rate in [0, 1], got 1.5"),
            (
                format!("[sampling]\n[[sampling.rules]]\nfinish_reason = \"done\"\nrate = 1.0\n{}", judge("")),
                "sampling.rules[0].finish_reason",
                "expected stop, length, content_filter, tool_call or error, got \"done\"",
            ),
            (
                format!("[sampling]\n[[sampling.rules]]\nrate = 1.0\n{}", judge("")),
                "sampling.rules[0]",
                "expected at least one condition",
            ),
            (
                format!("[sampling]\n[[sampling.rules]]\ndimension = {{ label = \"team\", value = \"x\" }}\nrate = 1.0\n{}", judge("")),
                "sampling.rules[0].dimension",
                "expected the label of a configured [[dimensions]] entry, got \"team\"",
            ),
            (
                "[sampling]\ndefault_rate = 0.5\n".to_owned(),
                "sampling",
                "sampled calls need an evaluator",
            ),
            (
                "[safety]\ncategories = [{ name = \"x\", patterns = [\"a\"], applies_to = \"middle\" }]\n".to_owned(),
                "safety.categories[0].applies_to",
                "expected input, output or both, got \"middle\"",
            ),
            (
                "[safety]\ncategories = [{ name = \"x\", patterns = [\"(unclosed\"] }]\n".to_owned(),
                "safety.categories",
                "x",
            ),
            (
                judge("").replace("scale_max = 5", "scale_max = 1"),
                "judge.rubric[0]",
                "expected scale_min (1) must be below scale_max (1)",
            ),
            (judge("concurrency = 0"), "judge.concurrency", "expected at least 1"),
            (
                judge("max_usd_per_hour = -1.0"),
                "judge.max_usd_per_hour",
                "expected a positive amount in USD, got -1",
            ),
            (
                "[[evaluators]]\nname = \"judge\"\nendpoint = \"http://127.0.0.1:1\"\n".to_owned(),
                "evaluators[0].name",
                "other than \"judge\"",
            ),
            (
                "[[evaluators]]\nname = \"p\"\nendpoint = \"127.0.0.1:1\"\n".to_owned(),
                "evaluators[0].endpoint",
                "expected an http:// URL",
            ),
            (
                "[downstream]\nendpoint = \"http://127.0.0.1:4317\"\nprotocol = \"udp\"\n".to_owned(),
                "downstream.protocol",
                "expected grpc or http, got \"udp\"",
            ),
            (
                "[review]\nmax_entries = 0\n".to_owned(),
                "review.max_entries",
                "expected at least 1",
            ),
        ];
        for (text, key, message) in cases {
            let e = error(&text);
            assert_eq!(e.key, key, "{e}");
            assert!(e.message.contains(message), "{e}");
            assert_eq!(e.file, "q.toml");
        }
        // Unknown keys in the judge's section are refused, naming the key.
        let e = error(&judge("timout = \"3s\""));
        assert_eq!(e.key, "judge.timout");
        assert!(e.message.starts_with("unknown key; expected one of"), "{e}");
        let e = error("[judge]\nbase_url = \"http://x\"\n");
        assert!(e.to_string().contains("model"), "{e}");
    }
}
