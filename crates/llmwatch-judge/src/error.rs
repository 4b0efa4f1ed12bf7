//! How an evaluation ends: the verdict's usage, the errors, and the bounded outcome label.

use std::time::Duration;

/// Tokens the judge endpoint reported, summed over every attempt that got a reply (a reply
/// that failed to parse was still billed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
    /// `usage.prompt_tokens_details.cached_tokens`, a part of `prompt_tokens`.
    pub cached_tokens: u64,
}

impl Usage {
    /// Prompt and completion tokens together.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    pub(crate) fn add(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(other.cached_tokens);
    }
}

/// The outcome of one evaluation, as a bounded metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A verdict was parsed.
    Ok,
    /// Two replies in a row could not be parsed as a verdict.
    ParseFailure,
    /// The endpoint still answered 429 after every attempt.
    RateLimited,
    /// The endpoint still answered 5xx after every attempt.
    ServerError,
    /// The last attempt timed out.
    Timeout,
    /// The endpoint refused the request with a 4xx other than 429.
    Rejected,
    /// The last attempt failed to connect or broke off.
    TransportError,
    /// No rubric dimension applies to the request (all need context, none was given); no
    /// request was made.
    Skipped,
}

impl Outcome {
    /// Every outcome, for pre-registering label values.
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::ParseFailure,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::Rejected,
        Outcome::TransportError,
        Outcome::Skipped,
    ];

    /// The label value: `ok`, `parse_failure`, `rate_limited`, `server_error`, `timeout`,
    /// `rejected`, `transport_error` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ParseFailure => "parse_failure",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError => "server_error",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
            Outcome::TransportError => "transport_error",
            Outcome::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an evaluation produced no verdict. Each variant carries the requests made
/// (`attempts`) and the tokens billed by those that got a reply (`usage`), so that spend is
/// accounted for failures too.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// The reply was not a valid verdict, twice in a row: not JSON, a dimension missing, not
    /// a finite number, outside its scale, a refusal. Never replaced by a default score.
    #[error("judge reply not parsed after {attempts} attempts: {reason} (reply: {raw_excerpt:?})")]
    Parse {
        reason: String,
        /// The start of the last reply's content (or body), for diagnosis.
        raw_excerpt: String,
        attempts: u32,
        usage: Usage,
    },
    /// Still 429 after `attempts` requests.
    #[error("judge rate limited (429) after {attempts} attempts")]
    RateLimited {
        /// The last `Retry-After`, when the endpoint sent one.
        retry_after: Option<Duration>,
        body_excerpt: String,
        attempts: u32,
        usage: Usage,
    },
    /// Still 5xx after `attempts` requests.
    #[error("judge server error {status} after {attempts} attempts: {body_excerpt:?}")]
    Server {
        status: u16,
        body_excerpt: String,
        attempts: u32,
        usage: Usage,
    },
    /// The last of `attempts` requests timed out.
    #[error("judge request timed out after {attempts} attempts")]
    Timeout { attempts: u32, usage: Usage },
    /// A 4xx other than 429: the request itself is wrong (bad key, unknown model, schema not
    /// supported), so it is not retried.
    #[error("judge rejected the request with {status}: {body_excerpt:?}")]
    Rejected {
        status: u16,
        body_excerpt: String,
        attempts: u32,
        usage: Usage,
    },
    /// The last of `attempts` requests failed below HTTP (connect, reset, bad framing).
    #[error("judge transport error after {attempts} attempts: {message}")]
    Transport {
        message: String,
        attempts: u32,
        usage: Usage,
    },
    /// Every rubric dimension needs context and the request has none; nothing was sent.
    #[error("no rubric dimension applies: every one needs context and none was given")]
    NoApplicableDimension,
}

impl JudgeError {
    /// The outcome label of this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            JudgeError::Parse { .. } => Outcome::ParseFailure,
            JudgeError::RateLimited { .. } => Outcome::RateLimited,
            JudgeError::Server { .. } => Outcome::ServerError,
            JudgeError::Timeout { .. } => Outcome::Timeout,
            JudgeError::Rejected { .. } => Outcome::Rejected,
            JudgeError::Transport { .. } => Outcome::TransportError,
            JudgeError::NoApplicableDimension => Outcome::Skipped,
        }
    }

    /// The requests made.
    pub fn attempts(&self) -> u32 {
        match self {
            JudgeError::Parse { attempts, .. }
            | JudgeError::RateLimited { attempts, .. }
            | JudgeError::Server { attempts, .. }
            | JudgeError::Timeout { attempts, .. }
            | JudgeError::Rejected { attempts, .. }
            | JudgeError::Transport { attempts, .. } => *attempts,
            JudgeError::NoApplicableDimension => 0,
        }
    }

    /// The tokens billed by the attempts that got a reply.
    pub fn usage(&self) -> Usage {
        match self {
            JudgeError::Parse { usage, .. }
            | JudgeError::RateLimited { usage, .. }
            | JudgeError::Server { usage, .. }
            | JudgeError::Timeout { usage, .. }
            | JudgeError::Rejected { usage, .. }
            | JudgeError::Transport { usage, .. } => *usage,
            JudgeError::NoApplicableDimension => Usage::default(),
        }
    }
}

/// The first `max` characters of `text`, with `...` when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_snake_case() {
        let labels: std::collections::BTreeSet<_> =
            Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), Outcome::ALL.len());
        assert!(
            labels
                .iter()
                .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
    }

    #[test]
    fn excerpt_cuts_on_characters() {
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("äbcd", 2), "äb...");
    }
}
