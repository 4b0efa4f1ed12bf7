//! The HTTP client: one evaluation is one or more chat-completions requests, retried by the
//! rules in the crate docs.

use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::config::{ConfigError, Dimension, JudgeConfig};
use crate::error::{JudgeError, Outcome, Usage, excerpt};
use crate::parse::{ParseFailure, Parsed, Reply, parse_reply};
use crate::prompt::{JudgeRequest, applicable_dimensions, request_body};

/// The largest reply body read; a longer one is a parse failure.
const MAX_REPLY_BYTES: usize = 4 << 20;

/// How much of an error body is kept, in characters.
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

/// A client for one judge endpoint and rubric. Cheap to share (`Arc<Judge>`): evaluations may
/// run concurrently, and dropping an evaluation's future cancels its request.
pub struct Judge {
    config: JudgeConfig,
    url: Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for Judge {
    /// Never shows the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("url", &self.url.as_str())
            .field("model", &self.config.model)
            .field("api_key_env", &self.config.api_key_env)
            .finish_non_exhaustive()
    }
}

/// What one request came to.
enum Attempt {
    /// A 2xx reply, parsed or not.
    Reply(Reply),
    /// A failure worth retrying.
    Retry(Transient),
    /// A 4xx other than 429 (or another status that is neither success nor retryable).
    Rejected { status: u16, body_excerpt: String },
}

enum Transient {
    RateLimited {
        retry_after: Option<Duration>,
        body_excerpt: String,
    },
    Server {
        status: u16,
        retry_after: Option<Duration>,
        body_excerpt: String,
    },
    Timeout,
    Transport(String),
}

impl Transient {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Transient::RateLimited { retry_after, .. } | Transient::Server { retry_after, .. } => {
                *retry_after
            }
            Transient::Timeout | Transient::Transport(_) => None,
        }
    }

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

    fn outcome(&self) -> Outcome {
        match self {
            Transient::RateLimited { .. } => Outcome::RateLimited,
            Transient::Server { .. } => Outcome::ServerError,
            Transient::Timeout => Outcome::Timeout,
            Transient::Transport(_) => Outcome::TransportError,
        }
    }
}

impl Judge {
    /// Builds the judge, reading the API key from the environment variable named by
    /// `config.api_key_env`. Fails, naming the variable, when it is unset or empty; fails on
    /// any invalid setting (see [`JudgeConfig::validate`]).
    pub fn new(config: JudgeConfig) -> Result<Judge, ConfigError> {
        Judge::with_env(config, |name| std::env::var(name).ok())
    }

    /// [`Judge::new`] with the environment read through `lookup` (for tests and for callers
    /// that keep their own environment).
    pub fn with_env(
        config: JudgeConfig,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Judge, ConfigError> {
        config.validate()?;
        let url = chat_completions_url(&config.base_url)?;

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(var) = &config.api_key_env {
            let key = lookup(var).ok_or_else(|| ConfigError::MissingApiKey { var: var.clone() })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(ConfigError::EmptyApiKey { var: var.clone() });
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| ConfigError::InvalidApiKey { var: var.clone() })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &config.extra_headers {
            let invalid = |reason: &str| ConfigError::InvalidHeader {
                name: name.clone(),
                reason: reason.to_owned(),
            };
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid header name"))?;
            if header == CONTENT_TYPE {
                return Err(invalid("Content-Type is set by the judge"));
            }
            if header == AUTHORIZATION && config.api_key_env.is_some() {
                return Err(invalid(
                    "Authorization is set from api_key_env; set one or the other",
                ));
            }
            let mut value =
                HeaderValue::from_str(value).map_err(|_| invalid("not a valid header value"))?;
            if header == AUTHORIZATION {
                value.set_sensitive(true);
            }
            headers.insert(header, value);
        }

        let client = reqwest::Client::builder()
            .user_agent(concat!("llmwatch-judge/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            // A redirected POST would turn into a GET: report the 3xx instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "judge".into(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Judge {
            config,
            url,
            client,
        })
    }

    /// The configuration the judge was built from.
    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    /// The URL requests go to: `{base_url}/chat/completions`.
    pub fn url(&self) -> &Url {
        &self.url
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
        let mut attempts = 0u32;
        let mut transient_failures = 0u32;
        let mut usage = Usage::default();
        let mut parse_failed = false;
        loop {
            attempts += 1;
            match self.attempt(&body, &dimensions).await {
                Attempt::Reply(reply) => {
                    usage.add(reply.usage);
                    match reply.verdict {
                        Ok(Parsed { scores, reasons }) => {
                            return Ok(Verdict {
                                scores,
                                reasons,
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
                    let backoff = self.config.backoff;
                    let wait = match failure.retry_after() {
                        Some(asked) => asked.min(backoff.max),
                        None => backoff.delay(transient_failures),
                    };
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
    async fn attempt(&self, body: &str, dimensions: &[&Dimension]) -> Attempt {
        let exchange = async {
            let response = self
                .client
                .post(self.url.clone())
                .body(body.to_owned())
                .send()
                .await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let (bytes, complete) = read_limited(response, MAX_REPLY_BYTES).await?;
            Ok::<_, reqwest::Error>((status, retry_after, bytes, complete))
        };
        let (status, retry_after, bytes, complete) =
            match tokio::time::timeout(self.config.timeout, exchange).await {
                Err(_) => return Attempt::Retry(Transient::Timeout),
                Ok(Err(e)) => return Attempt::Retry(Transient::Transport(error_chain(&e))),
                Ok(Ok(parts)) => parts,
            };
        let body_excerpt = || excerpt(&String::from_utf8_lossy(&bytes), BODY_EXCERPT_CHARS);
        if status.is_success() {
            if !complete {
                return Attempt::Reply(Reply {
                    usage: Usage::default(),
                    model: None,
                    verdict: Err(ParseFailure {
                        reason: format!("reply body larger than {MAX_REPLY_BYTES} bytes"),
                        raw_excerpt: body_excerpt(),
                    }),
                });
            }
            return Attempt::Reply(parse_reply(&bytes, dimensions));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Retry(Transient::RateLimited {
                retry_after,
                body_excerpt: body_excerpt(),
            });
        }
        if status.is_server_error() {
            return Attempt::Retry(Transient::Server {
                status: status.as_u16(),
                retry_after,
                body_excerpt: body_excerpt(),
            });
        }
        Attempt::Rejected {
            status: status.as_u16(),
            body_excerpt: body_excerpt(),
        }
    }
}

/// Reads at most `limit` bytes of the body; `false` when more were left unread.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > limit {
            bytes.extend_from_slice(&chunk[..limit - bytes.len()]);
            return Ok((bytes, false));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, true))
}

/// The error and its sources, `: `-separated (reqwest's own message is often just "error
/// sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// `{base_url}/chat/completions`, for an http(s) base URL.
fn chat_completions_url(base_url: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason,
    };
    let url = Url::parse(&format!(
        "{}/chat/completions",
        base_url.trim().trim_end_matches('/')
    ))
    .map_err(|e| invalid(format!("not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" if cfg!(feature = "rustls") => {}
        "https" => {
            return Err(invalid(
                "https needs llmwatch-judge built with its `rustls` feature".into(),
            ));
        }
        other => return Err(invalid(format!("scheme {other:?} is not http or https"))),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must not have a query or fragment; put the API root only".into(),
        ));
    }
    Ok(url)
}

/// A `Retry-After` value (RFC 9110 section 10.2.3): whole seconds, or an HTTP date from which
/// the wait until then is taken (zero when it has passed). `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn url_is_the_api_root_plus_chat_completions() {
        let url = |base: &str| chat_completions_url(base).map(|u| u.to_string());
        assert_eq!(
            url("http://localhost:8000/v1/").unwrap(),
            "http://localhost:8000/v1/chat/completions"
        );
        assert_eq!(
            url("http://h/openai/v1").unwrap(),
            "http://h/openai/v1/chat/completions"
        );
        assert!(url("localhost:8000").is_err());
        assert!(url("ftp://h/v1").is_err());
        assert!(url("http://h/v1?x=1").is_err());
        assert_eq!(url("https://h/v1").is_ok(), cfg!(feature = "rustls"));
    }
}
