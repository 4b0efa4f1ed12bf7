//! The `[feedback]` and `[sessions]` sections: how explicit user feedback is read, matched and
//! summarized, and how implicit signals are read from sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use llmwatch_core::quality::{FeedbackConfig, SessionConfig, SurvivorshipConfig};
use llmwatch_semconv::{FeedbackKind, FeedbackRules, RatingScale};
use serde::Deserialize;

use super::duration;

/// A key and what was wrong with it.
type Invalid = (String, String);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackSection {
    /// The rating scale of items that give none.
    pub rating_min: f64,
    pub rating_max: f64,
    /// A rating normalized to 0..1 at or above this counts as positive.
    pub positive_score: f64,
    /// Calls remembered for matching feedback to them; 0 turns matching off.
    pub max_recent_calls: usize,
    /// How long after a call its feedback can still be matched to it.
    #[serde(deserialize_with = "duration")]
    pub match_window: Duration,
    /// How long feedback that matches no call waits for its call's span (exporters batch spans
    /// for seconds; apps often send feedback at once); `0s` counts it unmatched at once.
    #[serde(deserialize_with = "duration")]
    pub call_wait: Duration,
    /// Feedback items waiting at once; the oldest is counted unmatched to make room.
    pub call_wait_max_items: usize,
    /// The trailing window of every feedback and session ratio, in `ratio_buckets` buckets.
    #[serde(deserialize_with = "duration")]
    pub ratio_window: Duration,
    pub ratio_buckets: usize,
    /// `gen_ai.evaluation.result` names that are user feedback → `thumbs`, `rating` or `score`.
    pub evaluation_names: BTreeMap<String, String>,
    pub survivorship: SurvivorshipSection,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SurvivorshipSection {
    pub positive_ratio_above: f64,
    pub abandonment_ratio_above: f64,
    pub min_feedback: u64,
    pub min_sessions: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsSection {
    pub enabled: bool,
    /// A turn starting this soon after the previous turn ended is a follow-up.
    #[serde(deserialize_with = "duration")]
    pub follow_up_window: Duration,
    /// A session without a call for this long has ended.
    #[serde(deserialize_with = "duration")]
    pub inactivity_timeout: Duration,
    pub max_sessions: usize,
    /// How often ended sessions are looked for.
    #[serde(deserialize_with = "duration")]
    pub sweep_interval: Duration,
    /// Openings of a user message that correct the previous answer (case-insensitive).
    pub correction_phrases: Vec<String>,
}

impl Default for FeedbackSection {
    fn default() -> Self {
        let core = FeedbackConfig::default();
        FeedbackSection {
            rating_min: core.rules.rating_scale.min,
            rating_max: core.rules.rating_scale.max,
            positive_score: core.positive_score,
            max_recent_calls: core.max_recent_calls,
            match_window: Duration::from_secs(core.match_window),
            call_wait: Duration::from_secs(core.call_wait),
            call_wait_max_items: core.call_wait_max_items,
            ratio_window: Duration::from_secs(core.ratio_window),
            ratio_buckets: core.ratio_buckets,
            evaluation_names: core
                .rules
                .evaluation_names
                .iter()
                .map(|(name, kind)| (name.clone(), kind_name(*kind).to_owned()))
                .collect(),
            survivorship: SurvivorshipSection::default(),
        }
    }
}

impl Default for SurvivorshipSection {
    fn default() -> Self {
        let core = SurvivorshipConfig::default();
        SurvivorshipSection {
            positive_ratio_above: core.positive_ratio_above,
            abandonment_ratio_above: core.abandonment_ratio_above,
            min_feedback: core.min_feedback,
            min_sessions: core.min_sessions,
        }
    }
}

impl Default for SessionsSection {
    fn default() -> Self {
        let core = SessionConfig::default();
        SessionsSection {
            enabled: core.enabled,
            follow_up_window: Duration::from_secs(core.follow_up_window),
            inactivity_timeout: Duration::from_secs(core.inactivity_timeout),
            max_sessions: core.max_sessions,
            sweep_interval: llmwatch_server::ServerConfig::default().session_sweep_interval,
            correction_phrases: core.correction_phrases,
        }
    }
}

fn kind_name(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Thumbs => "thumbs",
        FeedbackKind::Rating => "rating",
        FeedbackKind::Score => "score",
    }
}

fn fraction(key: &str, value: f64, zero_ok: bool) -> Result<(), Invalid> {
    let ok = value.is_finite() && value <= 1.0 && (value > 0.0 || (zero_ok && value == 0.0));
    let range = if zero_ok { "[0, 1]" } else { "(0, 1]" };
    ok.then_some(()).ok_or_else(|| {
        (
            key.to_owned(),
            format!("expected a number in {range}, got {value}"),
        )
    })
}

fn at_least_a_second(key: &str, value: Duration) -> Result<(), Invalid> {
    (value >= Duration::from_secs(1))
        .then_some(())
        .ok_or_else(|| {
            (
                key.to_owned(),
                format!("expected a duration of at least 1s, got {value:?}"),
            )
        })
}

impl FeedbackSection {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if RatingScale::new(self.rating_min, self.rating_max).is_none() {
            return Err((
                "feedback.rating_max".to_owned(),
                format!(
                    "expected a finite number above rating_min ({}), got {}",
                    self.rating_min, self.rating_max
                ),
            ));
        }
        fraction("feedback.positive_score", self.positive_score, false)?;
        at_least_a_second("feedback.match_window", self.match_window)?;
        if self.call_wait > self.match_window {
            return Err((
                "feedback.call_wait".to_owned(),
                format!(
                    "expected at most match_window ({:?}), got {:?}",
                    self.match_window, self.call_wait
                ),
            ));
        }
        if self.ratio_buckets == 0 {
            return Err((
                "feedback.ratio_buckets".to_owned(),
                "expected at least 1, got 0".to_owned(),
            ));
        }
        if self.ratio_window.as_secs() < self.ratio_buckets as u64 {
            return Err((
                "feedback.ratio_window".to_owned(),
                format!(
                    "expected at least one second per bucket ({} buckets), got {:?}",
                    self.ratio_buckets, self.ratio_window
                ),
            ));
        }
        for (name, kind) in &self.evaluation_names {
            if FeedbackKind::parse(kind).is_none() {
                return Err((
                    format!("feedback.evaluation_names.{name}"),
                    format!("expected thumbs, rating or score, got {kind:?}"),
                ));
            }
        }
        let survivorship = &self.survivorship;
        fraction(
            "feedback.survivorship.positive_ratio_above",
            survivorship.positive_ratio_above,
            true,
        )?;
        fraction(
            "feedback.survivorship.abandonment_ratio_above",
            survivorship.abandonment_ratio_above,
            true,
        )?;
        Ok(())
    }

    pub fn core(&self) -> FeedbackConfig {
        FeedbackConfig {
            rules: FeedbackRules {
                rating_scale: RatingScale::new(self.rating_min, self.rating_max)
                    .unwrap_or(RatingScale::STARS),
                evaluation_names: self
                    .evaluation_names
                    .iter()
                    .filter_map(|(name, kind)| Some((name.clone(), FeedbackKind::parse(kind)?)))
                    .collect(),
            },
            positive_score: self.positive_score,
            max_recent_calls: self.max_recent_calls,
            match_window: self.match_window.as_secs(),
            // Whole seconds, the feedback clock's; a wait under a second still waits one.
            call_wait: self.call_wait.as_secs_f64().ceil() as u64,
            call_wait_max_items: self.call_wait_max_items,
            ratio_window: self.ratio_window.as_secs(),
            ratio_buckets: self.ratio_buckets,
            survivorship: SurvivorshipConfig {
                positive_ratio_above: self.survivorship.positive_ratio_above,
                abandonment_ratio_above: self.survivorship.abandonment_ratio_above,
                min_feedback: self.survivorship.min_feedback,
                min_sessions: self.survivorship.min_sessions,
            },
        }
    }
}

impl SessionsSection {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        at_least_a_second("sessions.inactivity_timeout", self.inactivity_timeout)?;
        if self.follow_up_window > self.inactivity_timeout {
            return Err((
                "sessions.follow_up_window".to_owned(),
                format!(
                    "expected at most inactivity_timeout ({:?}): the session has ended by then, got {:?}",
                    self.inactivity_timeout, self.follow_up_window
                ),
            ));
        }
        if self.sweep_interval < Duration::from_millis(100) {
            return Err((
                "sessions.sweep_interval".to_owned(),
                format!(
                    "expected a duration of at least 100ms, got {:?}",
                    self.sweep_interval
                ),
            ));
        }
        for (index, phrase) in self.correction_phrases.iter().enumerate() {
            if phrase.trim().is_empty() {
                return Err((
                    format!("sessions.correction_phrases[{index}]"),
                    "expected a non-empty phrase".to_owned(),
                ));
            }
        }
        Ok(())
    }

    pub fn core(&self) -> SessionConfig {
        SessionConfig {
            enabled: self.enabled,
            follow_up_window: self.follow_up_window.as_secs(),
            inactivity_timeout: self.inactivity_timeout.as_secs(),
            max_sessions: self.max_sessions,
            correction_phrases: self.correction_phrases.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    #[test]
    fn sections_parse_into_the_core_configuration() {
        let text = r#"
[feedback]
rating_min = 0
rating_max = 10
positive_score = 0.7
match_window = "2h"
call_wait = "10s"
call_wait_max_items = 500
[feedback.evaluation_names]
csat = "score"
[feedback.survivorship]
min_feedback = 5
[sessions]
follow_up_window = "2m"
correction_phrases = ["nope", "wrong"]
"#;
        let config = Config::parse(text, "f.toml").unwrap();
        let feedback = config.feedback.core();
        assert_eq!(
            feedback.rules.rating_scale,
            RatingScale {
                min: 0.0,
                max: 10.0
            }
        );
        assert_eq!(
            feedback.rules.evaluation_names,
            vec![("csat".to_owned(), FeedbackKind::Score)]
        );
        assert_eq!(
            (feedback.positive_score, feedback.match_window),
            (0.7, 7_200)
        );
        assert_eq!(
            (feedback.call_wait, feedback.call_wait_max_items),
            (10, 500)
        );
        assert_eq!(feedback.survivorship.min_feedback, 5);
        assert_eq!(feedback.survivorship.min_sessions, 20);
        let sessions = config.sessions.core();
        assert_eq!(
            (sessions.follow_up_window, sessions.inactivity_timeout),
            (120, 1_800)
        );
        assert_eq!(sessions.correction_phrases, ["nope", "wrong"]);
        let processor = config.processor_config().unwrap();
        assert_eq!(processor.quality.feedback, feedback);
        assert_eq!(processor.quality.sessions, sessions);
        assert_eq!(
            config.server_config().session_sweep_interval,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_expectation() {
        let error = |text: &str| Config::parse(text, "f.toml").unwrap_err().to_string();
        assert_eq!(
            error("[feedback]\nrating_min = 5\nrating_max = 1\n"),
            "f.toml: key `feedback.rating_max`: expected a finite number above rating_min (5), got 1"
        );
        assert_eq!(
            error("[feedback.evaluation_names]\nvote = \"stars\"\n"),
            "f.toml: key `feedback.evaluation_names.vote`: expected thumbs, rating or score, got \"stars\""
        );
        assert_eq!(
            error("[feedback]\ncall_wait = \"2h\"\n"),
            "f.toml: key `feedback.call_wait`: expected at most match_window (3600s), got 7200s"
        );
        assert_eq!(
            error("[feedback]\npositive_score = 1.5\n"),
            "f.toml: key `feedback.positive_score`: expected a number in (0, 1], got 1.5"
        );
        assert_eq!(
            error("[feedback.survivorship]\nabandonment_ratio_above = -0.1\n"),
            "f.toml: key `feedback.survivorship.abandonment_ratio_above`: expected a number in [0, 1], got -0.1"
        );
        assert_eq!(
            error("[sessions]\nfollow_up_window = \"1h\"\ninactivity_timeout = \"10m\"\n"),
            "f.toml: key `sessions.follow_up_window`: expected at most inactivity_timeout (600s): the session has ended by then, got 3600s"
        );
        assert_eq!(
            error("[sessions]\ncorrection_phrases = [\"no,\", \" \"]\n"),
            "f.toml: key `sessions.correction_phrases[1]`: expected a non-empty phrase"
        );
        assert!(
            error("[sessions]\ninactivity_timeout = \"soon\"\n")
                .starts_with("f.toml: key `sessions.inactivity_timeout`: expected a duration"),
        );
        assert!(
            error("[feedback]\nratio_windw = \"1h\"\n").contains("unknown field `ratio_windw`"),
        );
    }
}
