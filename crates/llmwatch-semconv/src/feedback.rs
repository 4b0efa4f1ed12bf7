//! Explicit user feedback (thumbs, ratings, corrections, reports), checked the same way whatever
//! carried it: a `gen_ai.user.feedback` log event, a `gen_ai.evaluation.result` event whose name
//! is configured as user feedback, or llmwatch's own feedback APIs (HTTP JSON, gRPC), which fill
//! [`FeedbackFields`] and call [`FeedbackRules::check`].

use crate::error::{RecordError, RejectReason};

/// The `gen_ai.user.feedback` event this crate defines (no convention names user feedback yet).
pub const FEEDBACK_EVENT: &str = "gen_ai.user.feedback";

/// Evaluation name under which thumbs become scores (1 up, 0 down).
pub const THUMBS_EVALUATION: &str = "user_feedback";
/// Evaluation name under which ratings become scores (normalized to 0..1).
pub const RATING_EVALUATION: &str = "user_rating";
/// Evaluation name of corrections (no score; flagged).
pub const CORRECTION_EVALUATION: &str = "user_correction";
/// Evaluation name of reports (no score; flagged).
pub const REPORT_EVALUATION: &str = "user_report";

/// What the user said about an answer: the `signal` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackSignal {
    ThumbsUp,
    ThumbsDown,
    /// A number on a scale (stars, 1–10).
    Rating,
    /// The user supplied the right answer or edited the response.
    Correction,
    /// The user reported the answer (harmful, wrong, off-topic).
    Report,
}

impl FeedbackSignal {
    pub const ALL: [FeedbackSignal; 5] = [
        FeedbackSignal::ThumbsUp,
        FeedbackSignal::ThumbsDown,
        FeedbackSignal::Rating,
        FeedbackSignal::Correction,
        FeedbackSignal::Report,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FeedbackSignal::ThumbsUp => "thumbs_up",
            FeedbackSignal::ThumbsDown => "thumbs_down",
            FeedbackSignal::Rating => "rating",
            FeedbackSignal::Correction => "correction",
            FeedbackSignal::Report => "report",
        }
    }

    /// The canonical names and the spellings UIs and tools commonly use, case-insensitively.
    pub fn parse(text: &str) -> Option<FeedbackSignal> {
        let text = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Some(match text.as_str() {
            "thumbs_up" | "thumbsup" | "up" | "positive" | "like" | "good" | "helpful" | "👍" => {
                FeedbackSignal::ThumbsUp
            }
            "thumbs_down" | "thumbsdown" | "down" | "negative" | "dislike" | "bad"
            | "not_helpful" | "unhelpful" | "👎" => FeedbackSignal::ThumbsDown,
            "rating" | "stars" | "score" => FeedbackSignal::Rating,
            "correction" | "corrected" | "edit" => FeedbackSignal::Correction,
            "report" | "flag" | "reported" => FeedbackSignal::Report,
            _ => return None,
        })
    }

    /// The evaluation name the signal is recorded under when no event names it.
    pub const fn evaluation_name(self) -> &'static str {
        match self {
            FeedbackSignal::ThumbsUp | FeedbackSignal::ThumbsDown => THUMBS_EVALUATION,
            FeedbackSignal::Rating => RATING_EVALUATION,
            FeedbackSignal::Correction => CORRECTION_EVALUATION,
            FeedbackSignal::Report => REPORT_EVALUATION,
        }
    }
}

/// The range a rating is given on; ratings are normalized to 0..1 on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatingScale {
    pub min: f64,
    pub max: f64,
}

impl RatingScale {
    /// Five stars: 1 → 0.0, 3 → 0.5, 5 → 1.0.
    pub const STARS: RatingScale = RatingScale { min: 1.0, max: 5.0 };
    /// A score already on 0..1.
    pub const UNIT: RatingScale = RatingScale { min: 0.0, max: 1.0 };

    /// A scale with finite bounds, `min < max`.
    pub fn new(min: f64, max: f64) -> Option<RatingScale> {
        (min.is_finite() && max.is_finite() && min < max).then_some(RatingScale { min, max })
    }

    /// `rating` on 0..1, or `None` outside the scale.
    pub fn normalize(&self, rating: f64) -> Option<f64> {
        (rating.is_finite() && (self.min..=self.max).contains(&rating))
            .then(|| (rating - self.min) / (self.max - self.min))
    }
}

/// How an evaluation event with a configured user-feedback name is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    /// Score 1 is thumbs up and 0 thumbs down; or a label such as `thumbs_up`.
    Thumbs,
    /// The score is a rating on the event's `gen_ai.feedback.rating.min`/`.max`, else on the
    /// configured default scale.
    Rating,
    /// The score is a rating on 0..1.
    Score,
}

impl FeedbackKind {
    pub fn parse(text: &str) -> Option<FeedbackKind> {
        match text {
            "thumbs" => Some(FeedbackKind::Thumbs),
            "rating" => Some(FeedbackKind::Rating),
            "score" => Some(FeedbackKind::Score),
            _ => None,
        }
    }
}

/// How feedback is read: the default rating scale and which evaluation names are user feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRules {
    pub rating_scale: RatingScale,
    /// `gen_ai.evaluation.result` names that are user feedback, and how to read their score.
    pub evaluation_names: Vec<(String, FeedbackKind)>,
}

impl Default for FeedbackRules {
    fn default() -> Self {
        FeedbackRules {
            rating_scale: RatingScale::STARS,
            evaluation_names: vec![
                (THUMBS_EVALUATION.to_owned(), FeedbackKind::Thumbs),
                (RATING_EVALUATION.to_owned(), FeedbackKind::Rating),
            ],
        }
    }
}

/// One feedback item as a channel received it, before any check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FeedbackFields<'a> {
    /// The call's trace id (16 bytes) or empty.
    pub trace_id: &'a [u8],
    /// The call's span id (8 bytes) or empty.
    pub span_id: &'a [u8],
    pub response_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    /// The service the feedback is about when no recent call matches.
    pub service_name: Option<&'a str>,
    /// A [`FeedbackSignal`] spelling; when absent, a rating means `rating`.
    pub signal: Option<&'a str>,
    pub rating: Option<f64>,
    pub rating_min: Option<f64>,
    pub rating_max: Option<f64>,
    /// Free text; never a label, never kept.
    pub comment: Option<&'a str>,
    /// Recorded under this evaluation name instead of the signal's own.
    pub evaluation_name: Option<&'a str>,
}

/// Feedback that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feedback<'a> {
    /// Empty, or 16 bytes that are not all zero.
    pub trace_id: &'a [u8],
    /// Empty, or 8 bytes that are not all zero.
    pub span_id: &'a [u8],
    pub response_id: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    /// Empty when not given.
    pub service_name: &'a str,
    pub signal: FeedbackSignal,
    /// The rating as given (with `signal == Rating`).
    pub rating: Option<f64>,
    /// On 0..1: thumbs 1 or 0, a rating normalized on its scale; `None` for corrections and
    /// reports.
    pub score: Option<f64>,
    pub evaluation_name: &'a str,
    pub has_comment: bool,
}

impl Feedback<'_> {
    /// Whether the feedback counts as positive in the explicit positive ratio: thumbs up, or a
    /// rating whose score is at least `positive_score`. Corrections and reports are negative.
    pub fn is_positive(&self, positive_score: f64) -> bool {
        match self.signal {
            FeedbackSignal::ThumbsUp => true,
            FeedbackSignal::Rating => self.score.is_some_and(|s| s >= positive_score),
            FeedbackSignal::ThumbsDown | FeedbackSignal::Correction | FeedbackSignal::Report => {
                false
            }
        }
    }
}

fn invalid(detail: impl Into<String>) -> RecordError {
    RecordError::new(RejectReason::InvalidFeedback, detail)
}

/// A W3C id: all zeros means "no id".
fn id<'a>(bytes: &'a [u8], len: usize, what: &str) -> Result<&'a [u8], RecordError> {
    if bytes.is_empty() || bytes.iter().all(|&b| b == 0) {
        return Ok(&[]);
    }
    if bytes.len() != len {
        let reason = if len == 16 {
            RejectReason::InvalidTraceId
        } else {
            RejectReason::InvalidSpanId
        };
        return Err(RecordError::new(
            reason,
            format!(
                "{what} must be empty or {len} bytes ({} hex digits), got {} bytes",
                len * 2,
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|s| !s.is_empty())
}

impl FeedbackRules {
    /// How an evaluation with this name is user feedback, if it is.
    pub fn kind_of(&self, evaluation_name: &str) -> Option<FeedbackKind> {
        self.evaluation_names
            .iter()
            .find(|(name, _)| name == evaluation_name)
            .map(|&(_, kind)| kind)
    }

    /// Checks one item: a known signal, a rating inside its scale, well-formed ids.
    pub fn check<'a>(&self, fields: &FeedbackFields<'a>) -> Result<Feedback<'a>, RecordError> {
        let trace_id = id(fields.trace_id, 16, "trace_id")?;
        let span_id = id(fields.span_id, 8, "span_id")?;
        if !span_id.is_empty() && trace_id.is_empty() {
            return Err(RecordError::new(
                RejectReason::InvalidTraceId,
                "span_id given without trace_id",
            ));
        }
        let signal = match (non_empty(fields.signal), fields.rating) {
            (Some(text), _) => FeedbackSignal::parse(text).ok_or_else(|| {
                let shown: String = text.chars().take(40).collect();
                invalid(format!(
                    "unknown signal {shown:?}: expected thumbs_up, thumbs_down, rating, correction or report"
                ))
            })?,
            (None, Some(_)) => FeedbackSignal::Rating,
            (None, None) => {
                return Err(invalid(
                    "no signal: expected thumbs_up, thumbs_down, rating, correction or report",
                ));
            }
        };
        let (rating, score) = match signal {
            FeedbackSignal::ThumbsUp => (None, Some(1.0)),
            FeedbackSignal::ThumbsDown => (None, Some(0.0)),
            FeedbackSignal::Correction | FeedbackSignal::Report => (None, None),
            FeedbackSignal::Rating => {
                let rating = fields
                    .rating
                    .ok_or_else(|| invalid("signal rating without a rating"))?;
                let (min, max) = (
                    fields.rating_min.unwrap_or(self.rating_scale.min),
                    fields.rating_max.unwrap_or(self.rating_scale.max),
                );
                let scale = RatingScale::new(min, max).ok_or_else(|| {
                    invalid(format!(
                        "rating scale {min}..{max}: expected finite bounds with min < max"
                    ))
                })?;
                let score = scale.normalize(rating).ok_or_else(|| {
                    invalid(format!(
                        "rating {rating} is outside the scale {}..{}",
                        scale.min, scale.max
                    ))
                })?;
                (Some(rating), Some(score))
            }
        };
        Ok(Feedback {
            trace_id,
            span_id,
            response_id: non_empty(fields.response_id),
            conversation_id: non_empty(fields.conversation_id),
            service_name: non_empty(fields.service_name).unwrap_or(""),
            signal,
            rating,
            score,
            evaluation_name: non_empty(fields.evaluation_name)
                .unwrap_or_else(|| signal.evaluation_name()),
            has_comment: non_empty(fields.comment).is_some(),
        })
    }

    /// Reads a `gen_ai.evaluation.result` with a configured user-feedback name: the signal from
    /// its label or score as `kind` says, the evaluation name kept.
    pub fn from_evaluation<'a>(
        &self,
        kind: FeedbackKind,
        score: Option<f64>,
        label: Option<&'a str>,
        mut fields: FeedbackFields<'a>,
    ) -> Result<Feedback<'a>, RecordError> {
        let name = fields.evaluation_name.unwrap_or("");
        let from_label = label.and_then(FeedbackSignal::parse);
        match kind {
            FeedbackKind::Thumbs => {
                fields.signal = Some(match (from_label, score) {
                    (Some(signal), _) => signal.as_str(),
                    (None, Some(1.0)) => FeedbackSignal::ThumbsUp.as_str(),
                    (None, Some(0.0)) => FeedbackSignal::ThumbsDown.as_str(),
                    _ => {
                        return Err(invalid(format!(
                            "evaluation {name:?} is thumbs feedback: expected score 1 or 0 or a label such as thumbs_up, got score {score:?} label {label:?}"
                        )));
                    }
                });
            }
            FeedbackKind::Rating | FeedbackKind::Score => {
                if let Some(signal) = from_label.filter(|s| *s != FeedbackSignal::Rating)
                    && score.is_none()
                {
                    fields.signal = Some(signal.as_str());
                } else {
                    let score = score.ok_or_else(|| {
                        invalid(format!(
                            "evaluation {name:?} is a user rating: expected gen_ai.evaluation.score.value"
                        ))
                    })?;
                    fields.signal = Some(FeedbackSignal::Rating.as_str());
                    fields.rating = Some(score);
                    if kind == FeedbackKind::Score {
                        fields.rating_min = Some(RatingScale::UNIT.min);
                        fields.rating_max = Some(RatingScale::UNIT.max);
                    }
                }
            }
        }
        self.check(&fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_common_spellings_and_round_trip() {
        for signal in FeedbackSignal::ALL {
            assert_eq!(FeedbackSignal::parse(signal.as_str()), Some(signal));
        }
        assert_eq!(
            FeedbackSignal::parse(" Thumbs-Up "),
            Some(FeedbackSignal::ThumbsUp)
        );
        assert_eq!(
            FeedbackSignal::parse("not helpful"),
            Some(FeedbackSignal::ThumbsDown)
        );
        assert_eq!(FeedbackSignal::parse("meh"), None);
    }

    #[test]
    fn ratings_normalize_on_their_scale() {
        let rules = FeedbackRules::default();
        let check = |rating, min, max| {
            rules.check(&FeedbackFields {
                rating: Some(rating),
                rating_min: min,
                rating_max: max,
                ..FeedbackFields::default()
            })
        };
        let four = check(4.0, None, None).unwrap();
        assert_eq!(four.signal, FeedbackSignal::Rating);
        assert_eq!((four.rating, four.score), (Some(4.0), Some(0.75)));
        assert_eq!(four.evaluation_name, RATING_EVALUATION);
        assert_eq!(check(7.0, Some(0.0), Some(10.0)).unwrap().score, Some(0.7));
        let error = check(6.0, None, None).unwrap_err();
        assert_eq!(error.reason, RejectReason::InvalidFeedback);
        assert_eq!(error.detail, "rating 6 is outside the scale 1..5");
        let error = check(3.0, Some(5.0), Some(1.0)).unwrap_err();
        assert_eq!(
            error.detail,
            "rating scale 5..1: expected finite bounds with min < max"
        );
    }

    #[test]
    fn ids_must_be_w3c_sized_and_zeros_mean_none() {
        let rules = FeedbackRules::default();
        let with = |trace: &[u8], span: &[u8]| {
            let fields = FeedbackFields {
                trace_id: trace,
                span_id: span,
                signal: Some("thumbs_down"),
                ..FeedbackFields::default()
            };
            rules
                .check(&fields)
                .map(|f| (f.trace_id.len(), f.span_id.len()))
        };
        assert_eq!(with(&[7; 16], &[8; 8]), Ok((16, 8)));
        assert_eq!(with(&[0; 16], &[]), Ok((0, 0)));
        assert_eq!(
            with(&[7; 8], &[]).unwrap_err().reason,
            RejectReason::InvalidTraceId
        );
        assert_eq!(
            with(&[7; 16], &[8; 4]).unwrap_err().reason,
            RejectReason::InvalidSpanId
        );
        assert_eq!(
            with(&[], &[8; 8]).unwrap_err().detail,
            "span_id given without trace_id"
        );
    }

    #[test]
    fn evaluation_names_read_thumbs_ratings_and_scores() {
        let rules = FeedbackRules {
            evaluation_names: vec![
                ("vote".to_owned(), FeedbackKind::Thumbs),
                ("stars".to_owned(), FeedbackKind::Rating),
                ("csat".to_owned(), FeedbackKind::Score),
            ],
            ..FeedbackRules::default()
        };
        let fields = |name| FeedbackFields {
            evaluation_name: Some(name),
            ..FeedbackFields::default()
        };
        let read = |name, score, label| {
            let kind = rules.kind_of(name).unwrap();
            rules.from_evaluation(kind, score, label, fields(name))
        };
        let up = read("vote", Some(1.0), None).unwrap();
        assert_eq!((up.signal, up.score), (FeedbackSignal::ThumbsUp, Some(1.0)));
        assert_eq!(up.evaluation_name, "vote");
        let down = read("vote", None, Some("thumbs_down")).unwrap();
        assert_eq!(down.signal, FeedbackSignal::ThumbsDown);
        assert!(read("vote", Some(0.5), None).is_err());
        let stars = read("stars", Some(2.0), None).unwrap();
        assert_eq!(stars.score, Some(0.25));
        let csat = read("csat", Some(0.8), None).unwrap();
        assert_eq!(csat.score, Some(0.8));
        assert!(read("csat", Some(4.0), None).is_err());
        let report = read("stars", None, Some("report")).unwrap();
        assert_eq!(
            (report.signal, report.score),
            (FeedbackSignal::Report, None)
        );
        assert_eq!(rules.kind_of("relevance"), None);
    }

    #[test]
    fn positive_means_thumbs_up_or_a_high_rating() {
        let rules = FeedbackRules::default();
        let positive = |signal: &str, rating| {
            rules
                .check(&FeedbackFields {
                    signal: Some(signal),
                    rating,
                    ..FeedbackFields::default()
                })
                .unwrap()
                .is_positive(0.75)
        };
        assert!(positive("thumbs_up", None));
        assert!(!positive("thumbs_down", None));
        assert!(positive("rating", Some(4.0)));
        assert!(!positive("rating", Some(3.0)));
        assert!(!positive("correction", None));
        assert!(!positive("report", None));
    }
}
