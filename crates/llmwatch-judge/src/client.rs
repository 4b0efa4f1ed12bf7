//! The HTTP client: one evaluation is one or more chat-completions requests, retried by the
//! rules in the crate docs.

use reqwest::Url;
use serde_json::Value;

use crate::config::JudgeConfig;
use crate::endpoint::{Access, Endpoint, Exchange, SetupError, Transient};
use crate::error::{JudgeError, Outcome, Usage, excerpt};
use crate::parse::{ParseFailure, Reply, parse_reply, parse_verdict};
use crate::prompt::{JudgeRequest, applicable_dimensions, request_body};
use crate::safety::{SafetyCategory, SafetyVerdict, parse_safety_verdict, safety_request_body};

/// The largest reply body read; a longer one is a parse failure.
const MAX_REPLY_BYTES: usize = 4 << 20;

/// How much of a cut reply is kept, in characters.
const BODY_EXCERPT_CHARS: usize = 300;

/// A judge's scores for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// One score per applicable dimension, in rubric order, each finite and within its scale.
    pub scores: Vec<(String, f64)>,
    /// The judge's reason for each score, in the same order.
    pub reasons: Vec<(String, String)>,
    /// Tokens billed, summed over every attempt that got a reply.
    pub usage: Usage,
    /// The model that answered (the reply's `model`, or the configured one when the reply
    /// names none).
    pub model: String,
    /// The requests made, the successful one included.
    pub attempts: u32,
}

impl Verdict {
    /// The score of `dimension`, when it was judged.
    pub fn score(&self, dimension: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|(name, _)| name == dimension)
            .map(|(_, s)| *s)
    }

    /// Always [`Outcome::Ok`]; for symmetry with [`JudgeError::outcome`].
    pub fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

/// The outcome label of an evaluation's result.
pub fn outcome_of(result: &Result<Verdict, JudgeError>) -> Outcome {
    match result {
        Ok(v) => v.outcome(),
        Err(e) => e.outcome(),
    }
}

/// A reply that parsed, with what it took.
struct Exchanged<T> {
    value: T,
    usage: Usage,
    model: String,
    attempts: u32,
}

/// A client for one judge endpoint and rubric. Cheap to share (`Arc<Judge>`): evaluations may
/// run concurrently, and dropping an evaluation's future cancels its request.
pub struct Judge {
    config: JudgeConfig,
    endpoint: Endpoint,
}

impl std::fmt::Debug for Judge {
    /// Never shows the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("url", &self.endpoint.url().as_str())
            .field("model", &self.config.model)
            .field("api_key_env", &self.config.api_key_env)
            .finish_non_exhaustive()
    }
}

/// What one request came to.
enum Attempt<T> {
    /// A 2xx reply, parsed or not.
    Reply(Reply<T>),
    /// A failure worth retrying.
    Retry(Transient),
    /// A 4xx other than 429 (or another status that is neither success nor retryable).
    Rejected { status: u16, body_excerpt: String },
}

impl Transient {
    fn into_error(self, attempts: u32, usage: Usage) -> JudgeError {
        match self {
            Transient::RateLimited {
                retry_after,
                body_excerpt,
            } => JudgeError::RateLimited {
                retry_after,
                body_excerpt,
                attempts,
                usage,
            },
            Transient::Server {
                status,
                body_excerpt,
                ..
            } => JudgeError::Server {
                status,
                body_excerpt,
                attempts,
                usage,
            },
            Transient::Timeout => JudgeError::Timeout { attempts, usage },
            Transient::Transport(message) => JudgeError::Transport {
                message,
                attempts,
                usage,
            },
        }
    }
}

impl Judge {
    /// Builds the judge, reading the API key from the environment variable named by
    /// `config.api_key_env`. Fails, naming the variable, when it is unset or empty; fails on
    /// any invalid setting (see [`JudgeConfig::validate`]).
    pub fn new(config: JudgeConfig) -> Result<Judge, SetupError> {
        Judge::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`Judge::new`] with the environment read through `lookup` (for tests and for callers
    /// that keep their own environment).
    pub fn with_env(
        config: JudgeConfig,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Judge, SetupError> {
        config.validate()?;
        let access = Access {
            base_url: &config.base_url,
            api_key_env: config.api_key_env.as_deref(),
            extra_headers: &config.extra_headers,
        };
        let endpoint = Endpoint::new(access, "chat/completions", lookup)?;
        Ok(Judge { config, endpoint })
    }

    /// The configuration the judge was built from.
    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    /// The URL requests go to: `{base_url}/chat/completions`.
    pub fn url(&self) -> &Url {
        self.endpoint.url()
    }

    /// Whether any dimension applies to `request`; when none does, [`Judge::evaluate`]
    /// returns [`JudgeError::NoApplicableDimension`] without a request.
    pub fn applies_to(&self, request: &JudgeRequest) -> bool {
        !applicable_dimensions(&self.config.rubric, request).is_empty()
    }

    /// The chat-completions body sent for `request` (see [`request_body`]).
    pub fn request_body(&self, request: &JudgeRequest) -> Value {
        request_body(&self.config, request)
    }

    /// A rough count of the prompt tokens `request` costs per attempt, four bytes of the body
    /// to a token, for reserving spend before the call (see
    /// [`SpendGuard`](crate::SpendGuard)).
    pub fn estimate_prompt_tokens(&self, request: &JudgeRequest) -> u64 {
        let bytes = self.request_body(request).to_string().len() as u64;
        bytes.div_ceil(4)
    }

    /// Judges one call. See the crate docs for the retry rules; the error says how it failed
    /// and carries the attempts made and the tokens billed.
    pub async fn evaluate(&self, request: &JudgeRequest) -> Result<Verdict, JudgeError> {
        let dimensions = applicable_dimensions(&self.config.rubric, request);
        if dimensions.is_empty() {
            return Err(JudgeError::NoApplicableDimension);
        }
        let body = request_body(&self.config, request).to_string();
        let done = self
            .exchange(&body, |content| parse_verdict(content, &dimensions))
            .await?;
        Ok(Verdict {
            scores: done.value.scores,
            reasons: done.value.reasons,
            usage: done.usage,
            model: done.model,
            attempts: done.attempts,
        })
    }

    /// The chat-completions body the safety judge sends for `request` (see
    /// [`safety_request_body`]).
    pub fn safety_request_body(
        &self,
        categories: &[SafetyCategory],
        request: &JudgeRequest,
    ) -> Value {
        safety_request_body(&self.config, categories, request)
    }

    /// [`Judge::estimate_prompt_tokens`] of the safety judge's body.
    pub fn estimate_safety_prompt_tokens(
        &self,
        categories: &[SafetyCategory],
        request: &JudgeRequest,
    ) -> u64 {
        let bytes = self
            .safety_request_body(categories, request)
            .to_string()
            .len() as u64;
        bytes.div_ceil(4)
    }

    /// Asks the judge model whether the call shows each of `categories` (the LLM safety judge;
    /// see the `safety` module). Same endpoint, retries and strictness as [`Judge::evaluate`]:
    /// a reply without a boolean and a reason for every category is a parse failure, retried
    /// once, never a verdict. No category: [`JudgeError::NoApplicableDimension`], nothing sent.
    pub async fn evaluate_safety(
        &self,
        categories: &[SafetyCategory],
        request: &JudgeRequest,
    ) -> Result<SafetyVerdict, JudgeError> {
        if categories.is_empty() {
            return Err(JudgeError::NoApplicableDimension);
        }
        let body = self.safety_request_body(categories, request).to_string();
        let done = self
            .exchange(&body, |content| parse_safety_verdict(content, categories))
            .await?;
        Ok(SafetyVerdict {
            categories: done.value,
            usage: done.usage,
            model: done.model,
            attempts: done.attempts,
        })
    }

    /// Sends `body` until a reply parses by `parse` (the content of `choices[0].message`), by
    /// the retry rules of the crate docs.
    async fn exchange<T>(
        &self,
        body: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Exchanged<T>, JudgeError> {
        let mut attempts = 0u32;
        let mut transient_failures = 0u32;
        let mut usage = Usage::default();
        let mut parse_failed = false;
        loop {
            attempts += 1;
            match self.attempt(body, &parse).await {
                Attempt::Reply(reply) => {
                    usage.add(reply.usage);
                    match reply.verdict {
                        Ok(value) => {
                            return Ok(Exchanged {
                                value,
                                usage,
                                model: reply.model.unwrap_or_else(|| self.config.model.clone()),
                                attempts,
                            });
                        }
                        Err(ParseFailure {
                            reason,
                            raw_excerpt,
                        }) => {
                            if parse_failed {
                                return Err(JudgeError::Parse {
                                    reason,
                                    raw_excerpt,
                                    attempts,
                                    usage,
                                });
                            }
                            parse_failed = true;
                            tracing::debug!(attempts, %reason, "judge reply not parsed; retrying once");
                        }
                    }
                }
                Attempt::Rejected {
                    status,
                    body_excerpt,
                } => {
                    return Err(JudgeError::Rejected {
                        status,
                        body_excerpt,
                        attempts,
                        usage,
                    });
                }
                Attempt::Retry(failure) => {
                    transient_failures += 1;
                    if transient_failures >= self.config.max_attempts {
                        return Err(failure.into_error(attempts, usage));
                    }
                    let wait = failure.wait(&self.config.backoff, transient_failures);
                    tracing::debug!(
                        attempts,
                        outcome = failure.outcome().as_str(),
                        wait_ms = wait.as_millis() as u64,
                        "judge request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One request, bounded by the timeout from sending to the last byte of the reply.
    async fn attempt<T>(
        &self,
        body: &str,
        parse: &impl Fn(&str) -> Result<T, String>,
    ) -> Attempt<T> {
        match self
            .endpoint
            .post(body.to_owned(), self.config.timeout, MAX_REPLY_BYTES)
            .await
        {
            Exchange::Success {
                body,
                complete: false,
            } => Attempt::Reply(Reply {
                usage: Usage::default(),
                model: None,
                verdict: Err(ParseFailure {
                    reason: format!("reply body larger than {MAX_REPLY_BYTES} bytes"),
                    raw_excerpt: excerpt(&String::from_utf8_lossy(&body), BODY_EXCERPT_CHARS),
                }),
            }),
            Exchange::Success { body, .. } => Attempt::Reply(parse_reply(&body, parse)),
            Exchange::Retry(failure) => Attempt::Retry(failure),
            Exchange::Rejected {
                status,
                body_excerpt,
            } => Attempt::Rejected {
                status,
                body_excerpt,
            },
        }
    }
}
