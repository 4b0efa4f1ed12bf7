//! Evaluator plugins: a team's own evaluator behind llmwatch's gRPC `Evaluator` service
//! (`proto/llmwatch/v1/evaluator.proto`), called for each sampled call.

use std::time::Duration;

use llmwatch_core::quality::SampledCall;
use llmwatch_proto::{EvaluateRequest, EvaluatorClient};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::error::Outcome;

/// Most scores one answer may carry; each becomes a label value, so a plugin cannot flood the
/// metrics.
pub const MAX_SCORES: usize = 32;

/// Longest evaluation name accepted from a plugin.
pub const MAX_NAME_BYTES: usize = 64;

/// One configured plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The `evaluator` label of its outcomes; unique, not `judge`.
    pub name: String,
    /// `http://host:port` of its gRPC server.
    pub endpoint: String,
    /// The limit on one call, connecting included.
    pub timeout: Duration,
}

/// One score a plugin returned, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginScore {
    pub name: String,
    /// In 0..1.
    pub value: Option<f64>,
    pub label: Option<String>,
    pub explanation: Option<String>,
    pub flagged: bool,
}

/// A connected (lazily) plugin client.
#[derive(Debug, Clone)]
pub struct Plugin {
    name: String,
    timeout: Duration,
    client: EvaluatorClient<Channel>,
}

impl Plugin {
    /// Builds the client; it connects on first use, so a plugin that is down at start only
    /// fails its calls. Must be called inside a tokio runtime.
    pub fn new(config: &PluginConfig) -> Result<Plugin, String> {
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| format!("endpoint {:?}: {e}", config.endpoint))?
            .connect_timeout(config.timeout)
            .timeout(config.timeout);
        Ok(Plugin {
            name: config.name.clone(),
            timeout: config.timeout,
            client: EvaluatorClient::new(endpoint.connect_lazy()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls the plugin for one sampled call. The error is the outcome label: `timeout`,
    /// `transport_error`, `server_error`, `rejected`, or `parse_failure` when an answer breaks
    /// the contract (a score without a name, a value outside 0..1, too many scores); such an
    /// answer is dropped whole, never repaired.
    pub async fn evaluate(&self, call: &SampledCall) -> Result<Vec<PluginScore>, Outcome> {
        let request = EvaluateRequest {
            trace_id: call.trace_id.clone(),
            span_id: call.span_id.clone(),
            service_name: call.service_name.clone(),
            operation: call.operation.clone(),
            provider: call.provider.clone(),
            request_model: call.request_model.clone(),
            response_model: call.response_model.clone(),
            response_id: call.response_id.clone().unwrap_or_default(),
            conversation_id: call.conversation_id.clone().unwrap_or_default(),
            input: call.input.clone().unwrap_or_default(),
            output: call.output.clone().unwrap_or_default(),
            system_instructions: call.system_instructions.clone().unwrap_or_default(),
            context: String::new(),
            safety_flags: call.safety_flags.clone(),
        };
        let mut client = self.client.clone();
        let answer = match tokio::time::timeout(self.timeout, client.evaluate(request)).await {
            Err(_) => return Err(Outcome::Timeout),
            Ok(Err(status)) => return Err(status_outcome(status.code())),
            Ok(Ok(answer)) => answer.into_inner(),
        };
        check(answer.scores)
    }
}

fn status_outcome(code: Code) -> Outcome {
    match code {
        Code::DeadlineExceeded | Code::Cancelled => Outcome::Timeout,
        Code::Unavailable => Outcome::TransportError,
        Code::ResourceExhausted => Outcome::RateLimited,
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Aborted => Outcome::ServerError,
        _ => Outcome::Rejected,
    }
}

fn check(scores: Vec<llmwatch_proto::Score>) -> Result<Vec<PluginScore>, Outcome> {
    if scores.len() > MAX_SCORES {
        return Err(Outcome::ParseFailure);
    }
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    scores
        .into_iter()
        .map(|s| {
            let name_ok = !s.name.is_empty()
                && s.name.len() <= MAX_NAME_BYTES
                && !s.name.chars().any(char::is_control);
            let value_ok = s.value.is_none_or(|v| (0.0..=1.0).contains(&v));
            if !name_ok || !value_ok {
                return Err(Outcome::ParseFailure);
            }
            Ok(PluginScore {
                name: s.name,
                value: s.value,
                label: non_empty(s.label),
                explanation: non_empty(s.explanation),
                flagged: s.flagged,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmwatch_proto::Score;

    fn score(name: &str, value: Option<f64>) -> Score {
        Score {
            name: name.into(),
            value,
            ..Score::default()
        }
    }

    #[test]
    fn answers_breaking_the_contract_are_dropped_whole() {
        let ok = check(vec![score("a", Some(0.5)), score("b", None)]).unwrap();
        assert_eq!(ok[0].value, Some(0.5));
        assert_eq!(ok[1].label, None);
        for bad in [
            vec![score("a", Some(0.5)), score("b", Some(1.5))],
            vec![score("", Some(0.5))],
            vec![score("a", Some(f64::NAN))],
            vec![score(&"x".repeat(65), None)],
            vec![score("a", None); MAX_SCORES + 1],
        ] {
            assert_eq!(check(bad), Err(Outcome::ParseFailure));
        }
    }

    #[test]
    fn grpc_codes_map_to_outcomes() {
        assert_eq!(status_outcome(Code::Unavailable), Outcome::TransportError);
        assert_eq!(status_outcome(Code::DeadlineExceeded), Outcome::Timeout);
        assert_eq!(status_outcome(Code::Internal), Outcome::ServerError);
        assert_eq!(status_outcome(Code::Unimplemented), Outcome::Rejected);
        assert_eq!(
            status_outcome(Code::ResourceExhausted),
            Outcome::RateLimited
        );
    }
}
