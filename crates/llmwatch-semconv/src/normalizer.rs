//! The configured normalizer: which extra dimensions to read, and where from.

use std::fmt;

use rustc_hash::FxHashMap;

use crate::call::MAX_DIMENSIONS;
use crate::feedback::FeedbackRules;

/// An extra label taken from span or resource attributes, e.g. `feature` from `app.feature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dimension {
    /// The label name (already a valid Prometheus label name).
    pub label: String,
    /// Attribute keys to read, first present wins; span attributes before resource attributes.
    pub attributes: Vec<String>,
}

/// Turns spans and log records into records; cheap to share across threads.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    pub(crate) dimensions: Vec<Dimension>,
    /// Attribute key → (dimension index, rank among that dimension's keys).
    pub(crate) dimension_keys: FxHashMap<String, (usize, usize)>,
    /// How user feedback events and feedback-named evaluations are read.
    pub(crate) feedback: FeedbackRules,
}

/// A dimension configuration the normalizer cannot honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizerError(pub String);

impl fmt::Display for NormalizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NormalizerError {}

impl Normalizer {
    pub fn new(dimensions: Vec<Dimension>) -> Result<Normalizer, NormalizerError> {
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(NormalizerError(format!(
                "at most {MAX_DIMENSIONS} dimensions are supported, {} configured",
                dimensions.len()
            )));
        }
        let mut dimension_keys = FxHashMap::default();
        for (index, dimension) in dimensions.iter().enumerate() {
            if dimension.attributes.is_empty() {
                return Err(NormalizerError(format!(
                    "dimension {:?} names no attribute to read",
                    dimension.label
                )));
            }
            for (rank, key) in dimension.attributes.iter().enumerate() {
                if dimension_keys.insert(key.clone(), (index, rank)).is_some() {
                    return Err(NormalizerError(format!(
                        "attribute {key:?} is used by more than one dimension"
                    )));
                }
            }
        }
        Ok(Normalizer {
            dimensions,
            dimension_keys,
            feedback: FeedbackRules::default(),
        })
    }

    /// Reads user feedback by these rules instead of the defaults.
    pub fn with_feedback_rules(mut self, rules: FeedbackRules) -> Normalizer {
        self.feedback = rules;
        self
    }

    pub fn feedback_rules(&self) -> &FeedbackRules {
        &self.feedback
    }

    pub fn dimensions(&self) -> &[Dimension] {
        &self.dimensions
    }
}
