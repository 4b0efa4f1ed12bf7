//! The quality sections of the config file: `[sampling]`, `[safety]`, `[judge]`,
//! `[[evaluators]]`, `[review]` and `[downstream]`.

use std::time::Duration;

use llmwatch_core::quality::{
    AppliesTo, Category, MatchCheck, PendingConfig, QualityConfig, ReviewConfig, Rule,
    SafetyConfig, SamplingConfig,
};
use llmwatch_judge::{DownstreamConfig, JUDGE_EVALUATOR, JudgeConfig, PluginConfig, Protocol};
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

/// The safety pattern monitor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetySection {
    pub enabled: bool,
    /// Keep the built-in categories (pii_email, pii_phone, pii_credit_card, secret_api_key,
    /// prompt_injection, refusal); a category below with the same name replaces one.
    pub default_categories: bool,
    pub categories: Vec<CategorySection>,
}

impl Default for SafetySection {
    fn default() -> Self {
        SafetySection {
            enabled: true,
            default_categories: true,
            categories: Vec::new(),
        }
    }
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
        if let Some(judge) = self.judge {
            if let Some(key) = judge.unknown.keys().next() {
                return Err((
                    format!("judge.{key}"),
                    "unknown key; expected one of base_url, model, api_key_env, extra_headers, extra_body, timeout, max_attempts, backoff, json_schema, max_content_chars, rubric, queue_capacity, concurrency, max_usd_per_hour, max_tokens_per_hour, flag_below".into(),
                ));
            }
            judge.client.validate().map_err(|e| match e {
                llmwatch_judge::ConfigError::Invalid { key, reason } => {
                    (format!("judge.{key}"), format!("expected {reason}"))
                }
                other => ("judge".to_owned(), other.to_string()),
            })?;
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
                || self.evaluators[..i].iter().any(|p| p.name == plugin.name)
            {
                return Err((
                    key("name"),
                    format!(
                        "expected a unique name of 1 to 64 ASCII letters, digits, '_' or '-', other than \"judge\", got {:?}",
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
