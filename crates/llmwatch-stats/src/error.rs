//! Errors for inputs a statistic cannot be computed on: said plainly, never a panic or a NaN.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// A sample that must not be empty is.
    EmptySample(&'static str),
    /// A value is NaN or infinite.
    NotFinite(&'static str),
    /// Vectors of different dimensions were mixed.
    DimensionMismatch { expected: usize, found: usize },
    /// A parameter is outside its domain (e.g. λ not in (0, 1]).
    InvalidParameter(String),
    /// The statistic is undefined for these inputs (e.g. every expected count zero).
    Undefined(String),
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::EmptySample(which) => write!(f, "the {which} sample is empty"),
            StatsError::NotFinite(which) => {
                write!(f, "the {which} sample contains NaN or an infinite value")
            }
            StatsError::DimensionMismatch { expected, found } => {
                write!(
                    f,
                    "vectors must all have {expected} dimensions, found one with {found}"
                )
            }
            StatsError::InvalidParameter(message) | StatsError::Undefined(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for StatsError {}
