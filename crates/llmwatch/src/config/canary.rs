//! The `[[canaries]]` and `[embeddings]` sections: scheduled canary probes, and the remote
//! embeddings client the drift monitors use instead of the built-in embedder.

use std::collections::BTreeMap;
use std::time::Duration;

use llmwatch_core::drift::monitor::ProbeWindows;
use llmwatch_core::quality::ExpectationConfig;
use llmwatch_judge::{Backoff, CanaryConfig, EmbeddingsConfig};
use serde::Deserialize;

use super::{Config, duration, optional_duration};

/// One canary probe. Only `name`, `base_url`, `model` and `prompt` are required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySection {
    /// The `probe` label: 1 to 64 ASCII letters, digits, `_`, `-` or `.`; unique.
    pub name: String,
    /// The OpenAI-compatible API root, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (none sent when absent).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Merged into the request body, e.g. `{ temperature = 0, max_tokens = 200 }`.
    #[serde(default)]
    pub extra_body: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub system: Option<String>,
    pub prompt: String,
    /// How often the probe runs (it also runs at start).
    #[serde(default = "default_interval", deserialize_with = "duration")]
    pub interval: Duration,
    /// The limit on one run (a run that overruns `interval` delays the next one).
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// The answer must be a JSON object with these top-level keys (`[]`: any JSON object).
    #[serde(default)]
    pub json_keys: Option<Vec<String>>,
    /// A regular expression the answer must match.
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// `true`: the answer must be a refusal; `false`: it must not be.
    #[serde(default)]
    pub refusal_expected: Option<bool>,
    /// Slower answers are `slow`; less than `timeout`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_latency: Option<Duration>,
    /// The first answers that form the probe's drift baseline.
    #[serde(default = "default_baseline_answers")]
    pub baseline_answers: usize,
    /// The last answers compared with the baseline.
    #[serde(default = "default_window_answers")]
    pub window_answers: usize,
}

/// The remote embeddings client. `base_url` and `model` are required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsSection {
    pub base_url: String,
    pub model: String,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    /// Sent as `dimensions` (models that can shorten their vectors).
    #[serde(default)]
    pub dimensions: Option<u32>,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::max_batch_delay", deserialize_with = "duration")]
    pub max_batch_delay: Duration,
    #[serde(default = "defaults::cache_capacity")]
    pub cache_capacity: usize,
    #[serde(default = "defaults::max_tokens_per_hour")]
    pub max_tokens_per_hour: u64,
    #[serde(default = "defaults::queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "defaults::timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_baseline_answers() -> usize {
    ProbeWindows::default().baseline
}

fn default_window_answers() -> usize {
    ProbeWindows::default().window
}

/// The client's own defaults, so the file and the crate never disagree.
mod defaults {
    use std::time::Duration;

    use llmwatch_judge::EmbeddingsConfig;

    fn client() -> EmbeddingsConfig {
        EmbeddingsConfig::new("", "")
    }

    pub fn batch_size() -> usize {
        client().batch_size
    }

    pub fn max_batch_delay() -> Duration {
        client().max_batch_delay
    }

    pub fn cache_capacity() -> usize {
        client().cache_capacity
    }

    pub fn max_tokens_per_hour() -> u64 {
        client().max_tokens_per_hour
    }

    pub fn queue_capacity() -> usize {
        client().queue_capacity
    }

    pub fn timeout() -> Duration {
        client().timeout
    }

    pub fn max_attempts() -> u32 {
        client().max_attempts
    }
}

impl CanarySection {
    pub fn client(&self) -> CanaryConfig {
        CanaryConfig {
            name: self.name.clone(),
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key_env: self.api_key_env.clone(),
            extra_headers: self.extra_headers.clone(),
            extra_body: self.extra_body.clone(),
            system: self.system.clone(),
            prompt: self.prompt.clone(),
            interval: self.interval,
            timeout: self.timeout,
            expectation: ExpectationConfig {
                json_keys: self.json_keys.clone(),
                regex: self.regex.clone(),
                contains: self.contains.clone(),
                not_contains: self.not_contains.clone(),
                refusal_expected: self.refusal_expected,
                max_latency: self.max_latency,
            },
            drift: ProbeWindows {
                baseline: self.baseline_answers,
                window: self.window_answers,
            },
        }
    }
}

impl EmbeddingsSection {
    pub fn client(&self) -> EmbeddingsConfig {
        EmbeddingsConfig {
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key_env: self.api_key_env.clone(),
            extra_headers: self.extra_headers.clone(),
            dimensions: self.dimensions,
            batch_size: self.batch_size,
            max_batch_delay: self.max_batch_delay,
            cache_capacity: self.cache_capacity,
            max_tokens_per_hour: self.max_tokens_per_hour,
            queue_capacity: self.queue_capacity,
            timeout: self.timeout,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
        }
    }
}

impl Config {
    /// Checks the canary and embeddings sections (everything but the API keys, read at start).
    pub(super) fn validate_canaries(&self) -> Result<(), (String, String)> {
        for (index, canary) in self.canaries.iter().enumerate() {
            let key = |field: &str| format!("canaries[{index}].{field}");
            canary
                .client()
                .validate()
                .map_err(|e| (key(&e.key), e.reason))?;
            if self.canaries[..index].iter().any(|c| c.name == canary.name) {
                return Err((
                    key("name"),
                    format!("expected a unique name, {:?} is used twice", canary.name),
                ));
            }
        }
        if let Some(embeddings) = &self.embeddings {
            embeddings
                .client()
                .validate()
                .map_err(|e| (format!("embeddings.{}", e.key), e.reason))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = r#"
[[canaries]]
name = "capital"
base_url = "http://127.0.0.1:8000/v1"
model = "gpt-4o-mini"
prompt = "What is the capital of France?"
"#;

    #[test]
    fn a_probe_needs_four_keys_and_takes_defaults() {
        let config = Config::parse(PROBE, "c.toml").unwrap();
        let probe = config.canaries[0].client();
        assert_eq!(probe.interval, Duration::from_secs(300));
        assert_eq!(probe.timeout, Duration::from_secs(30));
        assert_eq!(probe.expectation, ExpectationConfig::default());
        assert_eq!(probe.drift, ProbeWindows::default());
        assert_eq!(config.embeddings, None);
    }

    #[test]
    fn errors_name_the_probe_key_and_the_expectation() {
        let check = |extra: &str| Config::parse(&format!("{PROBE}{extra}"), "c.toml").unwrap_err();
        let e = check("regex = \"(unclosed\"\n");
        assert_eq!(e.key, "canaries[0].regex");
        assert!(e.message.starts_with("not a valid pattern"), "{e}");
        let e = Config::parse(
            &PROBE.replace("http://127.0.0.1:8000/v1", "127.0.0.1:8000"),
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(e.key, "canaries[0].base_url");
        assert!(e.message.contains("not a URL"), "{e}");
        let e = check("timeout = \"0s\"\n");
        assert_eq!(e.key, "canaries[0].timeout");
        let e = check("max_latency = \"30s\"\n");
        assert_eq!(e.key, "canaries[0].max_latency");
        let e = check("contains = [\"\"]\n");
        assert_eq!(e.key, "canaries[0].contains[0]");
        let e = check("interval = \"often\"\n");
        assert_eq!(e.key, "canaries[0].interval");
        assert!(e.message.contains("expected a duration"), "{e}");
        let e = check("colour = \"red\"\n");
        assert!(e.message.contains("unknown field `colour`"), "{e}");
        let e = check(PROBE);
        assert_eq!(e.key, "canaries[1].name");
        assert_eq!(
            e.to_string(),
            "c.toml: key `canaries[1].name`: expected a unique name, \"capital\" is used twice"
        );
        let e = Config::parse(
            "[embeddings]\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\nbatch_size = 0\n",
            "e.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "e.toml: key `embeddings.batch_size`: expected at least 1, got 0"
        );
    }

    /// The commented-out examples in llmwatch.example.toml, uncommented, are valid.
    #[test]
    fn the_examples_in_the_example_file_parse() {
        let text = include_str!("../../../../llmwatch.example.toml");
        let mut uncommented = String::new();
        let mut inside = false;
        for line in text.lines() {
            if line.starts_with("# [[canaries]]") || line.starts_with("# [embeddings]") {
                inside = true;
            } else if !line.starts_with('#') {
                inside = false;
            }
            if inside && let Some(rest) = line.strip_prefix("# ") {
                uncommented.push_str(rest);
                uncommented.push('\n');
            }
        }
        let config = Config::parse(&uncommented, "example").unwrap();
        assert_eq!(config.canaries.len(), 2, "{uncommented}");
        let json = config.canaries[0].client();
        assert_eq!(
            json.expectation.json_keys,
            Some(vec!["city".to_owned(), "country".to_owned()])
        );
        assert_eq!(config.canaries[1].refusal_expected, Some(true));
        let embeddings = config.embeddings.unwrap().client();
        assert_eq!(
            embeddings,
            EmbeddingsConfig {
                api_key_env: Some("OPENAI_API_KEY".into()),
                dimensions: Some(256),
                ..EmbeddingsConfig::new("https://api.openai.com/v1", "text-embedding-3-small")
            }
        );
    }
}
