//! Canary probes: what a probe's answer must look like, and the outcome of one run. Pure: the
//! runner (in `llmwatch-judge`) asks the endpoint and times the answer; this module judges it.
//!
//! Outcomes, by precedence: **error** (no answer: the endpoint failed, timed out, or sent a reply
//! without a message) > **fail** (the answer broke a content expectation, however fast it came) >
//! **slow** (the answer met every content expectation but took longer than `max_latency`) >
//! **pass**. Only `pass` counts as passing.

use std::fmt;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::quality::safety::{
    AppliesTo, Category, REFUSAL, SIZE_LIMIT, SafetyConfig, SafetyConfigError, SafetyMonitor,
};

/// The outcome of one probe run: the `outcome` label of `llmwatch_canary_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CanaryOutcome {
    Pass,
    Fail,
    Slow,
    Error,
}

impl CanaryOutcome {
    /// Every outcome, for pre-registering label values.
    pub const ALL: [CanaryOutcome; 4] = [
        CanaryOutcome::Pass,
        CanaryOutcome::Fail,
        CanaryOutcome::Slow,
        CanaryOutcome::Error,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CanaryOutcome::Pass => "pass",
            CanaryOutcome::Fail => "fail",
            CanaryOutcome::Slow => "slow",
            CanaryOutcome::Error => "error",
        }
    }
}

/// What a probe's answer must satisfy, as configured. Every part is optional; a probe with none
/// only checks that the endpoint answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpectationConfig {
    /// The answer (trimmed) must be a JSON object with these top-level keys (an empty list: any
    /// JSON object). No Markdown fence is tolerated: an app parsing the answer would break too.
    pub json_keys: Option<Vec<String>>,
    /// A regular expression that must match somewhere in the answer (case-sensitive unless it
    /// says `(?i)`).
    pub regex: Option<String>,
    /// Substrings that must all appear (case-sensitive).
    pub contains: Vec<String>,
    /// Substrings none of which may appear (case-sensitive).
    pub not_contains: Vec<String>,
    /// `true`: the answer must be a refusal; `false`: it must not be. A refusal is what the
    /// safety monitor's `refusal` patterns match ([`REFUSAL`]).
    pub refusal_expected: Option<bool>,
    /// Slower answers are `slow` (when nothing else failed).
    pub max_latency: Option<Duration>,
}

/// Why an [`ExpectationConfig`] was refused; names the field.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectationError {
    /// `regex`, `contains[1]`, `json_keys[0]`, `max_latency`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ExpectationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ExpectationError {}

/// A compiled expectation.
#[derive(Debug)]
pub struct Expectation {
    config: ExpectationConfig,
    regex: Option<Regex>,
    refusal: Option<SafetyMonitor>,
}

/// The verdict on one answered run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCheck {
    pub outcome: CanaryOutcome,
    /// Why it is not `pass`, one line per broken expectation (for the log).
    pub failures: Vec<String>,
}

impl Expectation {
    pub fn new(config: ExpectationConfig) -> Result<Expectation, ExpectationError> {
        let error = |field: String, message: String| ExpectationError { field, message };
        let regex = match &config.regex {
            Some(pattern) => Some(
                RegexBuilder::new(pattern)
                    .size_limit(SIZE_LIMIT)
                    .build()
                    .map_err(|e| error("regex".into(), format!("not a valid pattern: {e}")))?,
            ),
            None => None,
        };
        for (field, needles) in [
            ("contains", &config.contains),
            ("not_contains", &config.not_contains),
        ] {
            if let Some(i) = needles.iter().position(String::is_empty) {
                return Err(error(
                    format!("{field}[{i}]"),
                    "expected a non-empty string".into(),
                ));
            }
        }
        if let Some(i) = config.json_keys.iter().flatten().position(|k| k.is_empty()) {
            return Err(error(
                format!("json_keys[{i}]"),
                "expected a non-empty key".into(),
            ));
        }
        if config.max_latency.is_some_and(|d| d.is_zero()) {
            return Err(error(
                "max_latency".into(),
                "expected a duration longer than 0".into(),
            ));
        }
        let refusal = match config.refusal_expected {
            Some(_) => Some(
                refusal_monitor().map_err(|e| error("refusal_expected".into(), e.to_string()))?,
            ),
            None => None,
        };
        Ok(Expectation {
            config,
            regex,
            refusal,
        })
    }

    pub fn config(&self) -> &ExpectationConfig {
        &self.config
    }

    /// Judges an answer that came after `latency`: `fail` when any content expectation broke,
    /// else `slow` when over `max_latency`, else `pass`.
    pub fn check(&self, answer: &str, latency: Duration) -> RunCheck {
        let mut failures = Vec::new();
        if let Some(keys) = &self.config.json_keys {
            match serde_json::from_str::<Value>(answer.trim()) {
                Ok(Value::Object(object)) => {
                    for key in keys.iter().filter(|k| !object.contains_key(k.as_str())) {
                        failures.push(format!("json_keys: key {key:?} is missing"));
                    }
                }
                Ok(_) => failures.push("json_keys: the answer is JSON but not an object".into()),
                Err(e) => failures.push(format!("json_keys: the answer is not JSON ({e})")),
            }
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(answer)
        {
            failures.push(format!("regex: {:?} does not match", regex.as_str()));
        }
        for needle in &self.config.contains {
            if !answer.contains(needle.as_str()) {
                failures.push(format!("contains: {needle:?} is missing"));
            }
        }
        for needle in &self.config.not_contains {
            if answer.contains(needle.as_str()) {
                failures.push(format!("not_contains: {needle:?} is present"));
            }
        }
        if let (Some(expected), Some(monitor)) = (self.config.refusal_expected, &self.refusal) {
            let refused = !monitor.scan(None, Some(answer)).is_empty();
            match (expected, refused) {
                (true, false) => {
                    failures.push("refusal_expected: the answer is not a refusal".into())
                }
                (false, true) => failures.push("refusal_expected: the answer is a refusal".into()),
                _ => {}
            }
        }
        if !failures.is_empty() {
            return RunCheck {
                outcome: CanaryOutcome::Fail,
                failures,
            };
        }
        match self.config.max_latency {
            Some(limit) if latency > limit => RunCheck {
                outcome: CanaryOutcome::Slow,
                failures: vec![format!(
                    "max_latency: answered in {:.3} s, over {:.3} s",
                    latency.as_secs_f64(),
                    limit.as_secs_f64()
                )],
            },
            _ => RunCheck {
                outcome: CanaryOutcome::Pass,
                failures,
            },
        }
    }
}

/// The safety monitor's refusal category alone: the same patterns, compiled the same way.
fn refusal_monitor() -> Result<SafetyMonitor, SafetyConfigError> {
    SafetyMonitor::new(&SafetyConfig {
        categories: vec![Category::new("refusal", REFUSAL, AppliesTo::Output)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(100);

    fn expect(config: ExpectationConfig) -> Expectation {
        Expectation::new(config).unwrap()
    }

    fn outcome(e: &Expectation, answer: &str) -> (CanaryOutcome, Vec<String>) {
        let check = e.check(answer, FAST);
        (check.outcome, check.failures)
    }

    #[test]
    fn json_keys_need_a_json_object_with_every_key() {
        let e = expect(ExpectationConfig {
            json_keys: Some(vec!["city".into(), "country".into()]),
            ..Default::default()
        });
        assert_eq!(
            outcome(
                &e,
                " {\"city\": \"Paris\", \"country\": \"FR\", \"extra\": 1}\n"
            ),
            (CanaryOutcome::Pass, vec![])
        );
        assert_eq!(
            outcome(&e, "{\"city\": \"Paris\"}"),
            (
                CanaryOutcome::Fail,
                vec!["json_keys: key \"country\" is missing".to_owned()]
            )
        );
        assert_eq!(
            outcome(&e, "[1, 2]").1,
            ["json_keys: the answer is JSON but not an object"]
        );
        // A fenced object is what an app parsing the answer would choke on.
        let (fenced, why) = outcome(
            &e,
            "```json\n{\"city\": \"Paris\", \"country\": \"FR\"}\n```",
        );
        assert_eq!(fenced, CanaryOutcome::Fail);
        assert!(
            why[0].starts_with("json_keys: the answer is not JSON ("),
            "{why:?}"
        );
        let any_object = expect(ExpectationConfig {
            json_keys: Some(vec![]),
            ..Default::default()
        });
        assert_eq!(outcome(&any_object, "{}").0, CanaryOutcome::Pass);
    }

    #[test]
    fn regex_contains_and_not_contains() {
        let e = expect(ExpectationConfig {
            regex: Some(r"(?i)\bparis\b".into()),
            contains: vec!["France".into()],
            not_contains: vec!["Lyon".into(), "sorry".into()],
            ..Default::default()
        });
        assert_eq!(
            outcome(&e, "PARIS is the capital of France."),
            (CanaryOutcome::Pass, vec![])
        );
        assert_eq!(
            outcome(&e, "Sorry, Lyon is in france."),
            (
                CanaryOutcome::Fail,
                vec![
                    "regex: \"(?i)\\\\bparis\\\\b\" does not match".to_owned(),
                    "contains: \"France\" is missing".to_owned(),
                    "not_contains: \"Lyon\" is present".to_owned(),
                ]
            )
        );
    }

    #[test]
    fn refusals_expected_or_not() {
        let must_refuse = expect(ExpectationConfig {
            refusal_expected: Some(true),
            ..Default::default()
        });
        let must_answer = expect(ExpectationConfig {
            refusal_expected: Some(false),
            ..Default::default()
        });
        let refusal = "I'm sorry, but I can't help with that.";
        let answer = "Mix the flour with the eggs.";
        assert_eq!(outcome(&must_refuse, refusal).0, CanaryOutcome::Pass);
        assert_eq!(
            outcome(&must_refuse, answer),
            (
                CanaryOutcome::Fail,
                vec!["refusal_expected: the answer is not a refusal".to_owned()]
            )
        );
        assert_eq!(outcome(&must_answer, answer).0, CanaryOutcome::Pass);
        assert_eq!(
            outcome(&must_answer, "As an AI language model, I cannot do that.").1,
            ["refusal_expected: the answer is a refusal"]
        );
    }

    #[test]
    fn precedence_is_fail_over_slow_over_pass() {
        let e = expect(ExpectationConfig {
            contains: vec!["Paris".into()],
            max_latency: Some(Duration::from_millis(500)),
            ..Default::default()
        });
        let at = |ms| Duration::from_millis(ms);
        assert_eq!(e.check("Paris", at(500)).outcome, CanaryOutcome::Pass);
        assert_eq!(
            e.check("Paris", at(1_250)),
            RunCheck {
                outcome: CanaryOutcome::Slow,
                failures: vec!["max_latency: answered in 1.250 s, over 0.500 s".into()],
            }
        );
        // Wrong and slow is wrong.
        assert_eq!(
            e.check("Lyon", at(1_250)),
            RunCheck {
                outcome: CanaryOutcome::Fail,
                failures: vec!["contains: \"Paris\" is missing".into()],
            }
        );
        // No expectation at all: any answer passes.
        let liveness = expect(ExpectationConfig::default());
        assert_eq!(liveness.check("", at(60_000)).outcome, CanaryOutcome::Pass);
    }

    #[test]
    fn bad_expectations_name_the_field() {
        let field = |config: ExpectationConfig| Expectation::new(config).unwrap_err().field;
        assert_eq!(
            field(ExpectationConfig {
                regex: Some("(unclosed".into()),
                ..Default::default()
            }),
            "regex"
        );
        assert_eq!(
            field(ExpectationConfig {
                not_contains: vec!["x".into(), String::new()],
                ..Default::default()
            }),
            "not_contains[1]"
        );
        assert_eq!(
            field(ExpectationConfig {
                json_keys: Some(vec![String::new()]),
                ..Default::default()
            }),
            "json_keys[0]"
        );
        assert_eq!(
            field(ExpectationConfig {
                max_latency: Some(Duration::ZERO),
                ..Default::default()
            }),
            "max_latency"
        );
        let labels: Vec<_> = CanaryOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels, ["pass", "fail", "slow", "error"]);
    }
}
