//! Remote embeddings: an OpenAI-compatible `/embeddings` client that the drift monitors use
//! instead of the built-in embedder for the prompt and response signals.
//!
//! **Flow.** Ingest offers texts to a bounded queue ([`EmbeddingQueue`], the drift monitors'
//! [`EmbeddingSink`]) and never waits: a full queue drops the text (`dropped_queue_full`). One
//! worker takes texts off the queue, serves repeats from an LRU cache keyed by the text's 64-bit
//! hash (`cache_hit`), reserves each new text's estimated tokens (4 bytes to a token) from an
//! hourly token budget (`dropped_budget` when it does not fit), and sends up to `batch_size`
//! new texts in one request, waiting at most `max_batch_delay` after the first for the batch to
//! fill. Each vector goes back to the drift monitor of the key and signal its text came from
//! (`embedded`); a text whose request failed is `failed`. A repeated text within one batch is
//! sent once and counted `cache_hit` for its repeats. Dropped and failed texts leave a gap in
//! their signal: they are never embedded with the built-in embedder instead.
//!
//! **Requests.** `POST {base_url}/embeddings` with `{"model", "input": [texts],
//! "encoding_format": "float"}` (and `dimensions` when configured). 429, 5xx, timeouts and
//! transport errors are retried as the judge's are (backoff, `Retry-After`, `max_attempts`);
//! other statuses and replies that are not one finite vector per input, all of one dimension,
//! fail the batch. Each HTTP request is counted in `llmwatch_embedding_requests_total{outcome}`
//! (the judge's outcome labels). The budget is charged with the reply's `usage.prompt_tokens`
//! (else the estimate); a failed request is not charged.
//!
//! **Memory** is bounded by configuration: the queue holds at most `queue_capacity` texts of at
//! most 2,000 characters, the cache `cache_capacity` vectors kept as `f32` (4 bytes per
//! dimension).

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use llmwatch_core::Processor;
use llmwatch_core::drift::monitor::{EmbeddingJob, EmbeddingSink, EmbeddingTarget};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cache::LruCache;
use crate::config::Backoff;
use crate::endpoint::{Access, Endpoint, Exchange, SetupError, endpoint_url};
use crate::error::{Outcome, excerpt};
use crate::spend::{Reservation, SpendCap, SpendGuard};

/// Reply bytes allowed per input text (a 3,072-dimension float vector is about 60 KB of JSON).
const REPLY_BYTES_PER_TEXT: usize = 96 << 10;
/// The `result` label values of `llmwatch_embedding_texts_total`.
const TEXT_RESULTS: [&str; 5] = [
    "embedded",
    "cache_hit",
    "dropped_queue_full",
    "dropped_budget",
    "failed",
];

/// The embeddings endpoint and the client's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingsConfig {
    /// The OpenAI-compatible API root; requests go to `{base_url}/embeddings`.
    pub base_url: String,
    pub model: String,
    /// The variable holding the API key; `None` sends no `Authorization`.
    pub api_key_env: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// Sent as `dimensions` when set (models that can shorten their vectors).
    pub dimensions: Option<u32>,
    /// Most texts per request.
    pub batch_size: usize,
    /// Longest wait after a batch's first text for more to join it.
    pub max_batch_delay: Duration,
    /// Vectors remembered (LRU); 0 turns the cache off.
    pub cache_capacity: usize,
    /// Estimated input tokens sent per hour, at most.
    pub max_tokens_per_hour: u64,
    /// Texts waiting, at most; more are dropped.
    pub queue_capacity: usize,
    /// The limit on one request, from sending to the last byte.
    pub timeout: Duration,
    /// Requests per batch for 429, 5xx, timeouts and transport errors, the first included.
    pub max_attempts: u32,
    pub backoff: Backoff,
}

impl EmbeddingsConfig {
    /// The defaults for `model` at `base_url`.
    pub fn new(base_url: &str, model: &str) -> EmbeddingsConfig {
        EmbeddingsConfig {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_key_env: None,
            extra_headers: BTreeMap::new(),
            dimensions: None,
            batch_size: 64,
            max_batch_delay: Duration::from_millis(200),
            cache_capacity: 1_000,
            max_tokens_per_hour: 1_000_000,
            queue_capacity: 1_000,
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff: Backoff::default(),
        }
    }

    /// Checks every setting but the API key; errors name the field.
    pub fn validate(&self) -> Result<(), SetupError> {
        let at_least = |key: &str, value: u64, minimum: u64| {
            if value < minimum {
                Err(SetupError::new(
                    key,
                    format!("expected at least {minimum}, got {value}"),
                ))
            } else {
                Ok(())
            }
        };
        endpoint_url(&self.base_url, "embeddings")?;
        if self.model.trim().is_empty() {
            return Err(SetupError::new("model", "expected a model name"));
        }
        if self.api_key_env.as_deref().is_some_and(str::is_empty) {
            return Err(SetupError::new("api_key_env", "expected a variable name"));
        }
        at_least("batch_size", self.batch_size as u64, 1)?;
        at_least("queue_capacity", self.queue_capacity as u64, 1)?;
        at_least("max_tokens_per_hour", self.max_tokens_per_hour, 1)?;
        at_least("max_attempts", u64::from(self.max_attempts), 1)?;
        if let Some(dimensions) = self.dimensions {
            at_least("dimensions", u64::from(dimensions), 1)?;
        }
        if self.timeout.is_zero() {
            return Err(SetupError::new(
                "timeout",
                "expected a duration longer than 0",
            ));
        }
        if self.backoff.initial > self.backoff.max {
            return Err(SetupError::new(
                "backoff",
                format!(
                    "expected initial ({:?}) at most max ({:?})",
                    self.backoff.initial, self.backoff.max
                ),
            ));
        }
        Ok(())
    }
}

/// The drift monitors' sink: a bounded queue that never waits.
#[derive(Debug)]
pub struct EmbeddingQueue {
    tx: mpsc::Sender<EmbeddingJob>,
    /// Counts what the queue refuses; weak, since the processor holds the queue.
    processor: Weak<Processor>,
}

impl EmbeddingSink for EmbeddingQueue {
    fn offer(&self, job: EmbeddingJob) -> bool {
        if self.tx.try_send(job).is_ok() {
            return true;
        }
        if let Some(processor) = self.processor.upgrade() {
            processor
                .quality()
                .metrics()
                .embedding_texts
                .add(&["dropped_queue_full"], 1.0);
        }
        false
    }
}

/// The worker's task; [`EmbeddingTasks::stop`] ends it.
#[derive(Debug)]
pub struct EmbeddingTasks {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EmbeddingTasks {
    /// Stops the worker (a request in flight is abandoned; queued texts are dropped).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Connects the embeddings client to `processor`'s drift monitors and starts its worker. Call
/// before any ingest and before saved drift state is restored. Must be called inside a tokio
/// runtime.
pub fn start_embeddings(
    config: EmbeddingsConfig,
    processor: &Arc<Processor>,
) -> Result<EmbeddingTasks, SetupError> {
    start_embeddings_with_env(config, processor, |name| std::env::var(name).ok())
}

/// [`start_embeddings`] with the environment read through `lookup`.
pub fn start_embeddings_with_env(
    config: EmbeddingsConfig,
    processor: &Arc<Processor>,
    lookup: impl FnOnce(&str) -> Option<String>,
) -> Result<EmbeddingTasks, SetupError> {
    config.validate()?;
    let access = Access {
        base_url: &config.base_url,
        api_key_env: config.api_key_env.as_deref(),
        extra_headers: &config.extra_headers,
    };
    let endpoint = Endpoint::new(access, "embeddings", lookup)?;
    let (tx, rx) = mpsc::channel(config.queue_capacity);
    let queue = EmbeddingQueue {
        tx,
        processor: Arc::downgrade(processor),
    };
    if processor
        .drift()
        .set_embedding_sink(Box::new(queue))
        .is_err()
    {
        return Err(SetupError::new(
            "base_url",
            "an embeddings client is already connected to this processor",
        ));
    }
    let metrics = processor.quality().metrics();
    for result in TEXT_RESULTS {
        metrics.embedding_texts.add(&[result], 0.0);
    }
    for outcome in Outcome::ALL {
        if outcome != Outcome::Skipped {
            metrics.embedding_requests.add(&[outcome.as_str()], 0.0);
        }
    }
    let worker = Worker {
        guard: SpendGuard::hourly(SpendCap::Tokens(config.max_tokens_per_hour)),
        cache: LruCache::new(config.cache_capacity),
        config,
        endpoint,
        processor: processor.clone(),
    };
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(worker.run(rx, async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    Ok(EmbeddingTasks { stop, task })
}

/// A new text waiting for the batch's request.
struct Pending {
    hash: u64,
    text: String,
    /// Where its vector goes: the first offer, then repeats of the same text.
    targets: Vec<EmbeddingTarget>,
    reservation: Reservation,
}

struct Worker {
    config: EmbeddingsConfig,
    endpoint: Endpoint,
    processor: Arc<Processor>,
    cache: LruCache<Arc<[f32]>>,
    guard: SpendGuard,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<EmbeddingJob>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let first = tokio::select! {
                _ = &mut stop => return,
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let mut batch = Vec::new();
            self.take(first, &mut batch);
            let deadline = tokio::time::Instant::now() + self.config.max_batch_delay;
            while batch.len() < self.config.batch_size {
                let job = tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep_until(deadline) => break,
                    job = rx.recv() => match job {
                        Some(job) => job,
                        None => break,
                    },
                };
                self.take(job, &mut batch);
            }
            if batch.is_empty() {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.send(batch) => {}
            }
        }
    }

    /// Serves a text from the cache, joins it to the same text in the batch, or reserves its
    /// tokens and adds it to the batch (dropping it when the budget is spent).
    fn take(&mut self, job: EmbeddingJob, batch: &mut Vec<Pending>) {
        let (text, target) = job.into_parts();
        let hash = text_hash(&text);
        if let Some(vector) = self.cache.get(hash) {
            let vector = widen(vector);
            self.count_text("cache_hit");
            self.processor
                .drift()
                .deliver_embedding(target, Some(vector));
            return;
        }
        if let Some(pending) = batch.iter_mut().find(|p| p.hash == hash) {
            pending.targets.push(target);
            return;
        }
        let estimate = text.len().div_ceil(4) as f64;
        match self.guard.try_reserve(Instant::now(), estimate) {
            Some(reservation) => batch.push(Pending {
                hash,
                text,
                targets: vec![target],
                reservation,
            }),
            None => {
                self.count_text("dropped_budget");
                self.processor.drift().deliver_embedding(target, None);
            }
        }
    }

    /// Embeds the batch and hands every vector back.
    async fn send(&mut self, batch: Vec<Pending>) {
        let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
        let result = self.request(&texts).await;
        let now = Instant::now();
        let drift = self.processor.drift();
        let Some((vectors, billed)) = result else {
            for pending in batch {
                self.guard.release(pending.reservation);
                for target in pending.targets {
                    self.count_text("failed");
                    drift.deliver_embedding(target, None);
                }
            }
            return;
        };
        let estimated: f64 = batch.iter().map(|p| p.reservation.amount()).sum();
        // The reply's usage covers the whole batch: charged once, on the first reservation.
        let mut charge = billed.map_or(estimated, |tokens| tokens as f64);
        for (pending, vector) in batch.into_iter().zip(vectors) {
            self.guard
                .record(now, pending.reservation, std::mem::take(&mut charge));
            let vector: Arc<[f32]> = vector.into();
            self.cache.insert(pending.hash, vector.clone());
            for (i, target) in pending.targets.into_iter().enumerate() {
                self.count_text(if i == 0 { "embedded" } else { "cache_hit" });
                drift.deliver_embedding(target, Some(widen(&vector)));
            }
        }
    }

    /// One batch's request, retried on transient failures. The vectors in input order and the
    /// billed tokens, or `None` when it failed.
    async fn request(&self, texts: &[&str]) -> Option<(Vec<Vec<f32>>, Option<u64>)> {
        let mut body = json!({
            "model": self.config.model,
            "input": texts,
            "encoding_format": "float",
        });
        if let Some(dimensions) = self.config.dimensions {
            body["dimensions"] = json!(dimensions);
        }
        let body = body.to_string();
        let max_reply = REPLY_BYTES_PER_TEXT * texts.len().max(16);
        let mut failures = 0u32;
        loop {
            let exchange = self
                .endpoint
                .post(body.clone(), self.config.timeout, max_reply)
                .await;
            let failure = match exchange {
                Exchange::Success {
                    body,
                    complete: true,
                } => match parse_reply(&body, texts.len()) {
                    Ok(reply) => {
                        self.count_request(Outcome::Ok);
                        return Some(reply);
                    }
                    Err(reason) => {
                        self.count_request(Outcome::ParseFailure);
                        tracing::warn!(%reason, "embeddings reply not usable; the batch failed");
                        return None;
                    }
                },
                Exchange::Success { .. } => {
                    self.count_request(Outcome::ParseFailure);
                    tracing::warn!(max_reply, "embeddings reply too large; the batch failed");
                    return None;
                }
                Exchange::Rejected {
                    status,
                    body_excerpt,
                } => {
                    self.count_request(Outcome::Rejected);
                    tracing::warn!(status, body = %body_excerpt, "embeddings request rejected; the batch failed");
                    return None;
                }
                Exchange::Retry(failure) => failure,
            };
            self.count_request(failure.outcome());
            failures += 1;
            if failures >= self.config.max_attempts {
                tracing::warn!(
                    outcome = failure.outcome().as_str(),
                    attempts = failures,
                    "embeddings request failed; the batch failed"
                );
                return None;
            }
            tokio::time::sleep(failure.wait(&self.config.backoff, failures)).await;
        }
    }

    fn count_text(&self, result: &str) {
        let metrics = self.processor.quality().metrics();
        metrics.embedding_texts.add(&[result], 1.0);
    }

    fn count_request(&self, outcome: Outcome) {
        let metrics = self.processor.quality().metrics();
        metrics.embedding_requests.add(&[outcome.as_str()], 1.0);
    }
}

/// The cache key of a text: SipHash with fixed keys, the same in every run.
fn text_hash(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

fn widen(vector: &[f32]) -> Vec<f64> {
    vector.iter().map(|&x| f64::from(x)).collect()
}

/// One vector per input, in input order (by `index` when given), as `f32` (what embedding
/// models produce), all finite and of one dimension; and `usage.prompt_tokens` (or
/// `total_tokens`) when reported.
fn parse_reply(body: &[u8], inputs: usize) -> Result<(Vec<Vec<f32>>, Option<u64>), String> {
    let reply: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not JSON ({e}): {:?}",
            excerpt(&String::from_utf8_lossy(body), 200)
        )
    })?;
    let Some(data) = reply["data"].as_array() else {
        return Err("no \"data\" array".into());
    };
    if data.len() != inputs {
        return Err(format!("{} vectors for {inputs} inputs", data.len()));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, item) in data.iter().enumerate() {
        let index = match &item["index"] {
            Value::Null => position,
            index => index
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < inputs)
                .ok_or_else(|| format!("data[{position}].index {index} is not an input index"))?,
        };
        let Some(numbers) = item["embedding"].as_array() else {
            return Err(format!(
                "data[{position}].embedding is not an array of numbers"
            ));
        };
        let vector = numbers
            .iter()
            .map(|n| n.as_f64().map(|x| x as f32).filter(|x| x.is_finite()))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| {
                format!("data[{position}].embedding has a value that is not a finite number")
            })?;
        if vector.is_empty() {
            return Err(format!("data[{position}].embedding is empty"));
        }
        if vectors[index].replace(vector).is_some() {
            return Err(format!("index {index} appears twice"));
        }
    }
    let vectors: Vec<Vec<f32>> = vectors
        .into_iter()
        .map(|v| v.expect("every index once"))
        .collect();
    if vectors.iter().any(|v| v.len() != vectors[0].len()) {
        return Err("vectors of different dimensions".into());
    }
    let usage = &reply["usage"];
    let tokens = usage["prompt_tokens"]
        .as_u64()
        .or_else(|| usage["total_tokens"].as_u64());
    Ok((vectors, tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_one_finite_vector_per_input_in_index_order() {
        let reply = json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.5, -0.25]},
                {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 12, "total_tokens": 12},
        });
        assert_eq!(
            parse_reply(reply.to_string().as_bytes(), 2),
            Ok((vec![vec![1.0, 0.0], vec![0.5, -0.25]], Some(12)))
        );
        let bad =
            |reply: Value, inputs| parse_reply(reply.to_string().as_bytes(), inputs).unwrap_err();
        assert_eq!(
            bad(json!({"data": [{"embedding": [1.0]}]}), 2),
            "1 vectors for 2 inputs"
        );
        assert_eq!(
            bad(
                json!({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]}),
                2
            ),
            "vectors of different dimensions"
        );
        assert_eq!(
            bad(
                json!({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]}),
                2
            ),
            "index 0 appears twice"
        );
        assert_eq!(
            bad(json!({"data": [{"index": 5, "embedding": [1.0]}]}), 1),
            "data[0].index 5 is not an input index"
        );
        assert_eq!(
            bad(json!({"data": [{"embedding": [1e300]}]}), 1),
            "data[0].embedding has a value that is not a finite number"
        );
        assert_eq!(bad(json!({"error": "x"}), 1), "no \"data\" array");
        // No usage: the estimate is charged instead.
        assert_eq!(
            parse_reply(
                json!({"data": [{"embedding": [1.0]}]})
                    .to_string()
                    .as_bytes(),
                1
            ),
            Ok((vec![vec![1.0]], None))
        );
    }

    #[test]
    fn settings_are_checked_and_errors_name_the_field() {
        let ok = EmbeddingsConfig::new("http://127.0.0.1:1/v1", "text-embedding-3-small");
        assert_eq!(ok.validate(), Ok(()));
        type Mutation = Box<dyn Fn(&mut EmbeddingsConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.base_url = "ftp://h/v1".into()), "base_url"),
            (Box::new(|c| c.model = String::new()), "model"),
            (Box::new(|c| c.batch_size = 0), "batch_size"),
            (Box::new(|c| c.queue_capacity = 0), "queue_capacity"),
            (
                Box::new(|c| c.max_tokens_per_hour = 0),
                "max_tokens_per_hour",
            ),
            (Box::new(|c| c.max_attempts = 0), "max_attempts"),
            (Box::new(|c| c.dimensions = Some(0)), "dimensions"),
            (Box::new(|c| c.timeout = Duration::ZERO), "timeout"),
            (
                Box::new(|c| c.backoff.initial = Duration::from_secs(60)),
                "backoff",
            ),
        ];
        for (mutate, want) in cases {
            let mut c = ok.clone();
            mutate(&mut c);
            assert_eq!(c.validate().unwrap_err().key, want);
        }
        assert_eq!(text_hash("same"), text_hash("same"));
        assert_ne!(text_hash("same"), text_hash("other"));
    }
}
