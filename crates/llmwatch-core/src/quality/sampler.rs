//! Which calls are judged: deterministic sampling consistent with OpenTelemetry probability
//! sampling.
//!
//! A call is sampled at rate p iff its randomness value R satisfies R ≥ T, where T is the
//! rejection threshold of p (see [`rejection_threshold`]) and R is the `rv` sub-key of the `ot`
//! tracestate entry when present, else the least-significant 56 bits of the trace id (see
//! [`randomness`]). The decision depends only on the trace and the rate, so the same traces are
//! judged after a restart, on every instance, and by any upstream sampler at the same rate; and a
//! trace sampled at p is sampled at every p' > p.
//!
//! Rates are set per service, operation, dimension value, finish reason and safety flag by
//! [`Rule`]s, so calls that already look bad (truncated by `length`, flagged by the safety
//! monitor) can be judged more often than the rest.

use std::fmt;

use llmwatch_semconv::{FinishReason, LlmCall, MAX_DIMENSIONS};

/// 2^56: the number of randomness values, and the rejection threshold that keeps nothing.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;

/// The rejection threshold of a sampling rate: T = 2^56 − round(p × 2^56).
///
/// This is the full-precision conversion of the OpenTelemetry specification
/// (`ProbabilityToThreshold` of the collector's `pkg/sampling`, which the specification points
/// to): p × 2^56 is exact in binary floating point (a power-of-two scaling), and it is rounded to
/// the nearest integer with ties away from zero (Go's `math.Round`, Rust's [`f64::round`]).
/// p = 1 gives T = 0 (every R is kept) and p = 0 gives T = 2^56 (no 56-bit R is kept), as does
/// any p below 2^-57, which rounds to nothing kept.
///
/// An upstream SDK that encodes its threshold with fewer hex digits (the specification recommends
/// 4 by default) rounds T to that precision; its decisions can then differ from these only for the
/// traces whose R falls between the two thresholds (less than 2^-17 of all traces at 4 digits).
///
/// `None` when the rate is not in [0, 1] (or is NaN).
pub fn rejection_threshold(rate: f64) -> Option<u64> {
    if !(0.0..=1.0).contains(&rate) {
        return None;
    }
    let kept = (rate * MAX_ADJUSTED_COUNT as f64).round() as u64;
    Some(MAX_ADJUSTED_COUNT - kept.min(MAX_ADJUSTED_COUNT))
}

/// The call's 56-bit randomness value: the explicit `rv` from its tracestate when present, else
/// the trace id's least-significant 56 bits (see [`trace_id_randomness`]).
pub fn randomness(call: &LlmCall<'_>) -> u64 {
    match call.sampling.randomness {
        Some(rv) => rv & (MAX_ADJUSTED_COUNT - 1),
        None => trace_id_randomness(call.trace_id),
    }
}

/// The least-significant 56 bits of a trace id: its last 7 bytes, big-endian (bytes 9..16 of a
/// 16-byte id). An id shorter than 7 bytes has randomness 0, so it is sampled only at rate 1
/// (spans always carry 16-byte ids; normalization rejects others).
pub fn trace_id_randomness(trace_id: &[u8]) -> u64 {
    if trace_id.len() < 7 {
        return 0;
    }
    trace_id[trace_id.len() - 7..]
        .iter()
        .fold(0, |acc, &byte| acc << 8 | u64::from(byte))
}

/// A rate for the calls that meet every condition it sets (`None` conditions are not checked).
///
/// At least one condition must be set: a rule without any would only repeat
/// [`SamplingConfig::default_rate`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// `service.name` equals this.
    pub service: Option<String>,
    /// `gen_ai.operation.name` equals this (`chat`, `embeddings`, …).
    pub operation: Option<String>,
    /// The configured dimension at this index (configuration order, below
    /// [`MAX_DIMENSIONS`]) has this value.
    pub dimension: Option<(usize, String)>,
    /// At least one of the call's choices ended for this reason.
    pub finish_reason: Option<FinishReason>,
    /// The safety monitor flagged the call (`Some(true)`) or did not (`Some(false)`).
    pub safety_flagged: Option<bool>,
    /// Sampling rate in [0, 1] for the calls the rule matches.
    pub rate: f64,
}

impl Rule {
    /// How many conditions the rule sets: its specificity.
    pub fn conditions(&self) -> usize {
        usize::from(self.service.is_some())
            + usize::from(self.operation.is_some())
            + usize::from(self.dimension.is_some())
            + usize::from(self.finish_reason.is_some())
            + usize::from(self.safety_flagged.is_some())
    }

    fn matches(&self, call: &LlmCall<'_>, safety_flagged: bool) -> bool {
        self.service
            .as_deref()
            .is_none_or(|s| s == call.service_name)
            && self
                .operation
                .as_deref()
                .is_none_or(|o| o == call.operation)
            && self.dimension.as_ref().is_none_or(|(index, value)| {
                call.dimensions
                    .get(*index)
                    .and_then(Option::as_deref)
                    .is_some_and(|v| v == value)
            })
            && self
                .finish_reason
                .is_none_or(|reason| call.finish_reasons.count(reason) > 0)
            && self.safety_flagged.is_none_or(|f| f == safety_flagged)
    }
}

/// Sampling rates: a default and rules.
///
/// Precedence: the matching rule with the most conditions wins; among matching rules with as many
/// conditions, the first in `rules` wins; when no rule matches, `default_rate` applies. So
/// `{service: "checkout", finish_reason: length}` beats both `{service: "checkout"}` and
/// `{finish_reason: length}`, and those two are settled by their order.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingConfig {
    /// Rate in [0, 1] for calls no rule matches.
    pub default_rate: f64,
    pub rules: Vec<Rule>,
}

impl SamplingConfig {
    /// One rate for every call.
    pub fn uniform(rate: f64) -> SamplingConfig {
        SamplingConfig {
            default_rate: rate,
            rules: Vec::new(),
        }
    }
}

/// Why a [`SamplingConfig`] was refused. Rules are numbered from 0 in configuration order.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplingConfigError {
    /// `default_rate` is not in [0, 1].
    DefaultRate(f64),
    /// A rule's rate is not in [0, 1].
    RuleRate { rule: usize, rate: f64 },
    /// A rule sets no condition.
    NoConditions { rule: usize },
    /// A rule names a dimension index beyond [`MAX_DIMENSIONS`].
    DimensionIndex { rule: usize, index: usize },
}

impl fmt::Display for SamplingConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplingConfigError::DefaultRate(rate) => {
                write!(f, "sampling default_rate {rate} is not in [0, 1]")
            }
            SamplingConfigError::RuleRate { rule, rate } => {
                write!(f, "sampling rule {rule}: rate {rate} is not in [0, 1]")
            }
            SamplingConfigError::NoConditions { rule } => write!(
                f,
                "sampling rule {rule} sets no condition (service, operation, dimension, \
                 finish_reason, safety_flagged); use default_rate instead"
            ),
            SamplingConfigError::DimensionIndex { rule, index } => write!(
                f,
                "sampling rule {rule}: dimension index {index} is not below {MAX_DIMENSIONS}"
            ),
        }
    }
}

impl std::error::Error for SamplingConfigError {}

/// The rates of the LLM safety judge: one for every call, one (usually higher) for the calls the
/// safety pattern monitor already flagged.
///
/// The decision is the quality sampler's rule, R ≥ T (see the module docs), with its own rates:
/// it is as deterministic and OpenTelemetry-consistent, and because both samplers read the same
/// R, the calls the lower of the two rates picks are among those the higher one picks (at a
/// safety rate of 0.01 and a quality rate of 0.05, every safety-judged call without a pattern
/// flag is quality-judged too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetySampling {
    /// Rate in [0, 1] for calls without a pattern flag.
    pub rate: f64,
    /// Rate in [0, 1] for calls the pattern monitor flagged (input or output); it replaces
    /// `rate` for them.
    pub flagged_rate: f64,
}

impl Default for SafetySampling {
    /// Only the pattern-flagged calls, all of them: the judge confirms or explains what the
    /// patterns caught.
    fn default() -> Self {
        SafetySampling {
            rate: 0.0,
            flagged_rate: 1.0,
        }
    }
}

impl SafetySampling {
    /// The same rates as a quality [`SamplingConfig`]: `rate` by default, `flagged_rate` for the
    /// rule `safety_flagged = true`; a [`Sampler`] built from it decides.
    pub fn sampling_config(&self) -> SamplingConfig {
        SamplingConfig {
            default_rate: self.rate,
            rules: vec![Rule {
                safety_flagged: Some(true),
                rate: self.flagged_rate,
                ..Rule::default()
            }],
        }
    }

    /// The highest of the two rates (what the content join buffer must be ready for).
    pub fn max_rate(&self) -> f64 {
        self.rate.max(self.flagged_rate)
    }
}

/// Whether a call is sampled, and at which rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub sampled: bool,
    /// The rate that applied (the winning rule's, else the default).
    pub rate: f64,
}

/// Decides which calls are sampled; built once from a validated [`SamplingConfig`].
#[derive(Debug, Clone)]
pub struct Sampler {
    default_rate: f64,
    default_threshold: u64,
    rules: Vec<Rule>,
    /// Rejection threshold of each rule, in configuration order.
    thresholds: Vec<u64>,
    /// Rule indices in precedence order: more conditions first, then configuration order.
    order: Vec<usize>,
}

impl Sampler {
    pub fn new(config: SamplingConfig) -> Result<Sampler, SamplingConfigError> {
        let default_threshold = rejection_threshold(config.default_rate)
            .ok_or(SamplingConfigError::DefaultRate(config.default_rate))?;
        let mut thresholds = Vec::with_capacity(config.rules.len());
        for (index, rule) in config.rules.iter().enumerate() {
            if rule.conditions() == 0 {
                return Err(SamplingConfigError::NoConditions { rule: index });
            }
            if let Some((dimension, _)) = rule.dimension
                && dimension >= MAX_DIMENSIONS
            {
                return Err(SamplingConfigError::DimensionIndex {
                    rule: index,
                    index: dimension,
                });
            }
            thresholds.push(rejection_threshold(rule.rate).ok_or(
                SamplingConfigError::RuleRate {
                    rule: index,
                    rate: rule.rate,
                },
            )?);
        }
        let mut order: Vec<usize> = (0..config.rules.len()).collect();
        // A stable sort keeps configuration order among rules with as many conditions.
        order.sort_by_key(|&index| std::cmp::Reverse(config.rules[index].conditions()));
        Ok(Sampler {
            default_rate: config.default_rate,
            default_threshold,
            rules: config.rules,
            thresholds,
            order,
        })
    }

    /// The index (configuration order) of the rule that sets this call's rate, if any.
    pub fn matching_rule(&self, call: &LlmCall<'_>, safety_flagged: bool) -> Option<usize> {
        self.order
            .iter()
            .copied()
            .find(|&index| self.rules[index].matches(call, safety_flagged))
    }

    /// Whether to sample this call: R ≥ T for the rate of the winning rule (or the default).
    pub fn decide(&self, call: &LlmCall<'_>, safety_flagged: bool) -> Decision {
        let (rate, threshold) = match self.matching_rule(call, safety_flagged) {
            Some(index) => (self.rules[index].rate, self.thresholds[index]),
            None => (self.default_rate, self.default_threshold),
        };
        Decision {
            sampled: randomness(call) >= threshold,
            rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_of_the_specification() {
        assert_eq!(rejection_threshold(1.0), Some(0));
        assert_eq!(rejection_threshold(0.0), Some(MAX_ADJUSTED_COUNT));
        assert_eq!(rejection_threshold(0.5), Some(0x80_0000_0000_0000));
        assert_eq!(rejection_threshold(0.25), Some(0xc0_0000_0000_0000));
        assert_eq!(rejection_threshold(0.0625), Some(0xf0_0000_0000_0000));
        // (1 − 0.01) × 2^56 ≈ 0xfd70a3d70a3d70…: the specification's `fd70a4` at 5 digits.
        let one_percent = rejection_threshold(0.01).unwrap();
        assert_eq!(one_percent >> 32, 0xfd70a3);
        assert_eq!((one_percent + (1 << 31)) >> 32, 0xfd70a4);
        // Below 2^-57 nothing is kept; at 2^-56 exactly one value of R is.
        assert_eq!(
            rejection_threshold(2f64.powi(-58)),
            Some(MAX_ADJUSTED_COUNT)
        );
        assert_eq!(
            rejection_threshold(2f64.powi(-56)),
            Some(MAX_ADJUSTED_COUNT - 1)
        );
        for bad in [-0.1, 1.000_001, f64::NAN, f64::INFINITY] {
            assert_eq!(rejection_threshold(bad), None, "{bad}");
        }
    }

    #[test]
    fn trace_id_randomness_is_the_last_seven_bytes() {
        let id = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89,
            0xab, 0xcd,
        ];
        assert_eq!(trace_id_randomness(&id), 0x01_2345_6789_abcd);
        assert_eq!(trace_id_randomness(&[]), 0);
    }
}
