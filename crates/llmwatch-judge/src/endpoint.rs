//! One OpenAI-compatible endpoint, shared by the judge, the canary probes and the embeddings
//! client: the URL, an HTTP client carrying the API key and extra headers, and one bounded POST
//! sorted into a reply, a failure worth retrying, or a refusal.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::config::Backoff;
use crate::error::{Outcome, excerpt};

/// How much of an error body is kept, in characters.
const BODY_EXCERPT_CHARS: usize = 300;

/// Where an endpoint is and how to authenticate to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Access<'a> {
    /// The API root, e.g. `https://api.openai.com/v1`.
    pub base_url: &'a str,
    /// The variable holding the API key; `None` sends no `Authorization`.
    pub api_key_env: Option<&'a str>,
    pub extra_headers: &'a BTreeMap<String, String>,
}

/// Why an endpoint cannot be set up. Messages never show the API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointError {
    MissingApiKey { var: String },
    EmptyApiKey { var: String },
    InvalidApiKey { var: String },
    InvalidBaseUrl { url: String, reason: String },
    InvalidHeader { name: String, reason: String },
    Client(String),
}

impl EndpointError {
    /// The setting at fault (`api_key_env`, `base_url`, `extra_headers`) and what is wrong.
    fn key_and_reason(&self) -> (&'static str, String) {
        match self {
            EndpointError::MissingApiKey { var } => {
                ("api_key_env", format!("the variable {var} is not set"))
            }
            EndpointError::EmptyApiKey { var } => {
                ("api_key_env", format!("the variable {var} is empty"))
            }
            EndpointError::InvalidApiKey { var } => (
                "api_key_env",
                format!("the key in {var} has characters not allowed in a header"),
            ),
            EndpointError::InvalidBaseUrl { url, reason } => {
                ("base_url", format!("{url:?}: {reason}"))
            }
            EndpointError::InvalidHeader { name, reason } => {
                ("extra_headers", format!("{name:?}: {reason}"))
            }
            EndpointError::Client(reason) => (
                "base_url",
                format!("cannot build the HTTP client: {reason}"),
            ),
        }
    }
}

/// Why a canary probe or the embeddings client cannot be set up: the setting at fault (as
/// named in its config section) and what was expected. Never shows an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SetupError {
    pub key: String,
    pub reason: String,
}

impl SetupError {
    pub(crate) fn new(key: &str, reason: impl Into<String>) -> SetupError {
        SetupError {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<EndpointError> for SetupError {
    fn from(error: EndpointError) -> SetupError {
        let (key, reason) = error.key_and_reason();
        SetupError::new(key, reason)
    }
}

/// An endpoint: `{base_url}/{path}` and a client that sends the key and headers with each
/// request. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Endpoint {
    url: Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for Endpoint {
    /// Never shows the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// What one POST came to.
#[derive(Debug)]
pub(crate) enum Exchange {
    /// A 2xx reply; `complete` is false when it was cut at the size limit.
    Success { body: Vec<u8>, complete: bool },
    /// A failure worth retrying.
    Retry(Transient),
    /// A 4xx other than 429, or another status that is neither success nor retryable.
    Rejected { status: u16, body_excerpt: String },
}

/// A failure worth retrying.
#[derive(Debug)]
pub(crate) enum Transient {
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
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Transient::RateLimited { retry_after, .. } | Transient::Server { retry_after, .. } => {
                *retry_after
            }
            Transient::Timeout | Transient::Transport(_) => None,
        }
    }

    /// The wait before retry number `retry` (1 for the first): `Retry-After` when the endpoint
    /// sent one, else the backoff; never more than `backoff.max`.
    pub(crate) fn wait(&self, backoff: &Backoff, retry: u32) -> Duration {
        match self.retry_after() {
            Some(asked) => asked.min(backoff.max),
            None => backoff.delay(retry),
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Transient::RateLimited { .. } => Outcome::RateLimited,
            Transient::Server { .. } => Outcome::ServerError,
            Transient::Timeout => Outcome::Timeout,
            Transient::Transport(_) => Outcome::TransportError,
        }
    }
}

impl Endpoint {
    /// Builds the client, reading the API key once through `lookup`.
    pub(crate) fn new(
        access: Access<'_>,
        path: &str,
        lookup: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Endpoint, EndpointError> {
        let url = endpoint_url(access.base_url, path)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(var) = access.api_key_env {
            let var = var.to_owned();
            let key =
                lookup(&var).ok_or_else(|| EndpointError::MissingApiKey { var: var.clone() })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(EndpointError::EmptyApiKey { var });
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| EndpointError::InvalidApiKey { var: var.clone() })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in access.extra_headers {
            let invalid = |reason: &str| EndpointError::InvalidHeader {
                name: name.clone(),
                reason: reason.to_owned(),
            };
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a valid header name"))?;
            if header == CONTENT_TYPE {
                return Err(invalid("Content-Type is set by llmwatch"));
            }
            if header == AUTHORIZATION && access.api_key_env.is_some() {
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
            .map_err(|e| EndpointError::Client(e.to_string()))?;
        Ok(Endpoint { url, client })
    }

    /// `{base_url}/{path}`.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// One POST of `body`, bounded by `timeout` from sending to the last byte read; a 2xx body
    /// is read up to `max_reply_bytes`.
    pub(crate) async fn post(
        &self,
        body: String,
        timeout: Duration,
        max_reply_bytes: usize,
    ) -> Exchange {
        let exchange = async {
            let response = self.client.post(self.url.clone()).body(body).send().await?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let (bytes, complete) = read_limited(response, max_reply_bytes).await?;
            Ok::<_, reqwest::Error>((status, retry_after, bytes, complete))
        };
        let (status, retry_after, bytes, complete) =
            match tokio::time::timeout(timeout, exchange).await {
                Err(_) => return Exchange::Retry(Transient::Timeout),
                Ok(Err(e)) => return Exchange::Retry(Transient::Transport(error_chain(&e))),
                Ok(Ok(parts)) => parts,
            };
        if status.is_success() {
            return Exchange::Success {
                body: bytes,
                complete,
            };
        }
        let body_excerpt = excerpt(&String::from_utf8_lossy(&bytes), BODY_EXCERPT_CHARS);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Exchange::Retry(Transient::RateLimited {
                retry_after,
                body_excerpt,
            });
        }
        if status.is_server_error() {
            return Exchange::Retry(Transient::Server {
                status: status.as_u16(),
                retry_after,
                body_excerpt,
            });
        }
        Exchange::Rejected {
            status: status.as_u16(),
            body_excerpt,
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

/// `{base_url}/{path}`, for an http(s) base URL.
pub(crate) fn endpoint_url(base_url: &str, path: &str) -> Result<Url, EndpointError> {
    let invalid = |reason: String| EndpointError::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason,
    };
    let url = Url::parse(&format!("{}/{path}", base_url.trim().trim_end_matches('/')))
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
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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
    fn url_is_the_api_root_plus_the_path() {
        let url = |base: &str| endpoint_url(base, "chat/completions").map(|u| u.to_string());
        assert_eq!(
            url("http://localhost:8000/v1/").unwrap(),
            "http://localhost:8000/v1/chat/completions"
        );
        assert_eq!(
            url("http://h/openai/v1").unwrap(),
            "http://h/openai/v1/chat/completions"
        );
        assert_eq!(
            endpoint_url("http://h/v1", "embeddings").unwrap().as_str(),
            "http://h/v1/embeddings"
        );
        assert!(url("localhost:8000").is_err());
        assert!(url("ftp://h/v1").is_err());
        assert!(url("http://h/v1?x=1").is_err());
        assert_eq!(url("https://h/v1").is_ok(), cfg!(feature = "rustls"));
    }

    #[test]
    fn transient_waits_follow_retry_after_up_to_the_cap() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let limited = |after: Option<u64>| Transient::RateLimited {
            retry_after: after.map(Duration::from_secs),
            body_excerpt: String::new(),
        };
        assert_eq!(limited(Some(1)).wait(&backoff, 1), Duration::from_secs(1));
        assert_eq!(limited(Some(60)).wait(&backoff, 1), Duration::from_secs(2));
        assert_eq!(limited(None).wait(&backoff, 3), Duration::from_millis(400));
        assert_eq!(Transient::Timeout.outcome(), Outcome::Timeout);
    }

    #[test]
    fn setup_errors_name_the_setting_and_never_the_key() {
        let headers = BTreeMap::new();
        let access = Access {
            base_url: "http://127.0.0.1:1/v1",
            api_key_env: Some("LLMWATCH_TEST_KEY"),
            extra_headers: &headers,
        };
        let error = SetupError::from(Endpoint::new(access, "embeddings", |_| None).unwrap_err());
        assert_eq!(
            error.to_string(),
            "api_key_env: the variable LLMWATCH_TEST_KEY is not set"
        );
        let error =
            Endpoint::new(access, "embeddings", |_| Some("sk-\nsecret".into())).unwrap_err();
        let error = SetupError::from(error);
        assert_eq!(error.key, "api_key_env");
        assert!(!error.reason.contains("secret"), "{error}");
        let endpoint = Endpoint::new(access, "embeddings", |_| Some("sk-1".into())).unwrap();
        assert_eq!(endpoint.url().as_str(), "http://127.0.0.1:1/v1/embeddings");
        assert!(!format!("{endpoint:?}").contains("sk-1"));
    }
}
