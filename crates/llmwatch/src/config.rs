//! The configuration file (TOML). Everything has a default, so no file is needed; a file
//! overrides what it names, and command-line flags override the file.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use llmwatch_core::ProcessorConfig;
use llmwatch_core::catalog::{CATALOG, GENAI_LABELS, OVERFLOW_LABEL};
use llmwatch_semconv::{Dimension, MAX_DIMENSIONS};
use llmwatch_server::ServerConfig;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where state that must survive a restart lives.
    pub data_dir: PathBuf,
    pub server: ServerSection,
    pub limits: LimitsSection,
    /// Extra labels on every GenAI metric, read from span or resource attributes.
    pub dimensions: Vec<DimensionSection>,
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
        Config::parse(&text, &file)
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
        Ok(config)
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
        Ok(())
    }

    pub fn processor_config(&self) -> ProcessorConfig {
        ProcessorConfig {
            dimensions: self
                .dimensions
                .iter()
                .map(|d| Dimension {
                    label: d.label.clone(),
                    attributes: d.attributes.clone(),
                })
                .collect(),
            max_series: self.limits.max_series_per_metric,
        }
    }

    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            otlp_grpc: self.server.otlp_grpc,
            otlp_http: self.server.otlp_http,
            metrics: self.server.metrics,
            max_request_bytes: self.server.max_request_bytes,
            max_inflight_requests: self.server.max_inflight_requests,
            retry_after: self.server.retry_after,
            series_idle_timeout: self.limits.series_idle_timeout,
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

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(Config::parse("", "empty.toml").unwrap(), Config::default());
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
        let defaults = Config { dimensions: config.dimensions.clone(), ..Config::default() };
        assert_eq!(config, defaults, "the example must show the defaults");
        assert_eq!(config.dimensions[0].label, "feature");
    }

    #[test]
    fn durations_and_dimensions_parse() {
        let text = "data_dir = \"/tmp/x\"\n[limits]\nseries_idle_timeout = \"15m\"\n\
                    [[dimensions]]\nlabel = \"feature\"\nattributes = [\"app.feature\", \"feature\"]\n";
        let config = Config::parse(text, "ok.toml").unwrap();
        assert_eq!(config.limits.series_idle_timeout, Duration::from_secs(900));
        assert_eq!(
            config.processor_config().dimensions[0].attributes,
            vec!["app.feature", "feature"]
        );
    }
}
