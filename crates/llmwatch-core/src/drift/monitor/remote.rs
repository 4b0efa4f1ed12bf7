//! Remote embeddings for the `prompt_embedding` and `response_embedding` signals. With an
//! embeddings client connected ([`DriftMonitors::set_embedding_sink`]), ingest offers these
//! texts to the client's bounded queue instead of keeping them for the built-in embedder, and the
//! client hands each vector back ([`DriftMonitors::deliver_embedding`]) to the key, signal and
//! bucket the text came from.
//!
//! - **Never waits**: [`EmbeddingSink::offer`] must not block; a full queue refuses the text and
//!   the sink counts it as dropped.
//! - **Bounded spend**: per key, signal and bucket at most `text_capacity` texts are offered (the
//!   first of the bucket, rather than a uniform sample: every text offered costs a remote call),
//!   plus the texts filling a first-N reference (at most `text_capacity × buckets`, the bound of
//!   the built-in reference). A refused text does not use up a place.
//! - **Never mixed**: with a sink connected these two signals hold remote vectors only. A text
//!   that is dropped or whose embedding fails leaves a gap; it is not embedded with the built-in
//!   embedder instead, whose vectors are not comparable. State restored from a run with the
//!   other embedder is cleared for these two signals, and a vector whose dimension differs from
//!   those kept (another model) restarts the signal.
//!
//! The `embedding_vector` signal (vectors that spans carry) is not affected.

use std::fmt;
use std::sync::Arc;

use llmwatch_stats::summary::Reservoir;

use super::{DriftMonitors, KeyMonitor, KeyState, Sample, TEXT_SIGNALS, Text, TextState};
use crate::drift::config::{DriftConfig, ReferenceMode};
use crate::drift::window::Ring;

/// The text signals embedded remotely: `prompt_embedding` and `response_embedding`.
const REMOTE_SIGNALS: usize = 2;

/// Where ingest hands texts for remote embedding. Implementations never wait.
pub trait EmbeddingSink: Send + Sync + fmt::Debug {
    /// Queues a text; false when the queue is full (the text is dropped; the sink counts it).
    fn offer(&self, job: EmbeddingJob) -> bool;
}

/// A text to embed, and where its vector goes.
#[derive(Debug)]
pub struct EmbeddingJob {
    text: String,
    target: EmbeddingTarget,
}

impl EmbeddingJob {
    /// The text (a prompt or response as rendered for the built-in embedder, at most 2,000
    /// characters).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_parts(self) -> (String, EmbeddingTarget) {
        (self.text, self.target)
    }
}

/// The key, signal and time a text came from; hand it back with the vector.
pub struct EmbeddingTarget {
    key: Arc<KeyMonitor>,
    signal: usize,
    /// The call's end time (seconds): the bucket the vector belongs to.
    t: i64,
    /// The text fills the key's first-N reference.
    reference: bool,
    /// The text has a place in its current bucket.
    current: bool,
}

impl EmbeddingTarget {
    /// `prompt_embedding` or `response_embedding`.
    pub fn signal(&self) -> &'static str {
        TEXT_SIGNALS[self.signal]
    }
}

impl fmt::Debug for EmbeddingTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingTarget")
            .field("key", &self.key.labels)
            .field("signal", &self.signal())
            .field("t", &self.t)
            .field("reference", &self.reference)
            .field("current", &self.current)
            .finish()
    }
}

/// Per key: texts offered in each remote signal's newest bucket, and reference texts in flight.
#[derive(Debug, Clone, Default)]
pub(super) struct Admission {
    /// (bucket number, texts offered in it) per signal.
    offered: [(i64, usize); REMOTE_SIGNALS],
    reference_in_flight: [usize; REMOTE_SIGNALS],
}

impl DriftMonitors {
    /// Connects the remote embeddings client; set once, before any ingest and before saved
    /// state is restored. From then on prompts and responses are embedded remotely only.
    pub fn set_embedding_sink(
        &self,
        sink: Box<dyn EmbeddingSink>,
    ) -> Result<(), Box<dyn EmbeddingSink>> {
        self.embedding_sink.set(sink)
    }

    /// Whether prompts and responses are embedded remotely.
    pub fn remote_embeddings(&self) -> bool {
        self.embedding_sink.get().is_some()
    }

    /// Offers a call's prompt and response to the sink when they have a place (see the module
    /// docs); called under the key's lock, before the call is added (so `reference_calls` still
    /// says whether this call fills the reference).
    pub(super) fn offer_texts(
        &self,
        sink: &dyn EmbeddingSink,
        key: &Arc<KeyMonitor>,
        state: &mut KeyState,
        t: i64,
        texts: &mut [Option<Text<'_>>; 3],
    ) {
        let config = &self.config;
        let filling = matches!(config.reference, ReferenceMode::FirstN(n) if state.reference_calls < n as u64);
        let bucket = t.div_euclid(config.bucket_seconds() as i64);
        for (signal, text) in texts.iter_mut().take(REMOTE_SIGNALS).enumerate() {
            let Some(text) = text else { continue };
            let (newest, offered) = &mut state.admission.offered[signal];
            if bucket > *newest {
                *newest = bucket;
                *offered = 0;
            }
            let current = bucket == *newest && *offered < config.text_capacity;
            let reference = filling
                && state.texts[signal].reference.len()
                    + state.admission.reference_in_flight[signal]
                    < reference_capacity(config);
            if !current && !reference {
                continue;
            }
            let text = text.render();
            if text.trim().is_empty() {
                continue;
            }
            let job = EmbeddingJob {
                text: text.to_owned(),
                target: EmbeddingTarget {
                    key: key.clone(),
                    signal,
                    t,
                    reference,
                    current,
                },
            };
            if sink.offer(job) {
                state.admission.offered[signal].1 += usize::from(current);
                state.admission.reference_in_flight[signal] += usize::from(reference);
            }
        }
    }

    /// Hands back the vector of an offered text (`None` when it could not be embedded): it joins
    /// the reference and the bucket it had a place in.
    pub fn deliver_embedding(&self, target: EmbeddingTarget, vector: Option<Vec<f64>>) {
        let config = &self.config;
        let mut state = target.key.state.lock();
        let signal = target.signal;
        if target.reference {
            let in_flight = &mut state.admission.reference_in_flight[signal];
            *in_flight = in_flight.saturating_sub(1);
        }
        let Some(vector) = vector.filter(|v| !v.is_empty() && v.iter().all(|x| x.is_finite()))
        else {
            return;
        };
        let text = &mut state.texts[signal];
        // Another dimension means another model: what is kept cannot be compared with it.
        if kept(text).any(|s| !matches!(s, Sample::Vector(v) if v.len() == vector.len())) {
            tracing::warn!(
                signal = TEXT_SIGNALS[signal],
                dimensions = vector.len(),
                "remote embeddings changed dimension: the signal's reference and window restart"
            );
            clear(config, signal, text);
        }
        if target.reference && text.reference.len() < reference_capacity(config) {
            text.reference.push(Sample::Vector(vector.clone()));
            text.reference_embeddings = None;
        }
        if target.current
            && let Some(bucket) = text.current.at(target.t, Reservoir::clear)
        {
            bucket.push(Sample::Vector(vector));
        }
    }

    /// Clears the remote signals of restored state kept with the other embedder (texts when
    /// remote, vectors when built-in).
    pub(super) fn align_restored(&self, state: &mut KeyState) {
        let remote = self.remote_embeddings();
        for (signal, text) in state.texts.iter_mut().take(REMOTE_SIGNALS).enumerate() {
            let foreign = kept(text).any(|s| matches!(s, Sample::Vector(_)) != remote);
            if foreign {
                clear(&self.config, signal, text);
            }
        }
    }
}

/// Every sample a text signal keeps: reference and buckets.
fn kept(text: &TextState) -> impl Iterator<Item = &Sample> {
    text.reference.iter().chain(
        text.current
            .range(i64::MIN, i64::MAX)
            .flat_map(|r| r.items().iter()),
    )
}

fn clear(config: &DriftConfig, signal: usize, text: &mut TextState) {
    text.reference.clear();
    text.reference_embeddings = None;
    text.verdict = Default::default();
    text.current = Ring::new(config.ring_buckets(), config.bucket_seconds(), || {
        Reservoir::new(config.text_capacity, 0x7E47 + signal as u64).expect("capacity ≥ 1")
    });
}

/// The most texts a reference keeps (as the built-in reference).
fn reference_capacity(config: &DriftConfig) -> usize {
    config.text_capacity * config.buckets
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use llmwatch_semconv::{Normalizer, ResourceInfo};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::Span;

    use super::*;
    use crate::pricer::CallPrice;

    /// A queue of fixed capacity that keeps the jobs it accepts.
    #[derive(Debug, Clone)]
    struct Queue(Arc<Mutex<(usize, Vec<EmbeddingJob>)>>);

    impl Queue {
        fn new(capacity: usize) -> Queue {
            Queue(Arc::new(Mutex::new((capacity, Vec::new()))))
        }

        fn take(&self) -> Vec<EmbeddingJob> {
            std::mem::take(&mut self.0.lock().unwrap().1)
        }
    }

    impl EmbeddingSink for Queue {
        fn offer(&self, job: EmbeddingJob) -> bool {
            let mut queue = self.0.lock().unwrap();
            if queue.1.len() >= queue.0 {
                return false;
            }
            queue.1.push(job);
            true
        }
    }

    fn config() -> DriftConfig {
        DriftConfig {
            reference: ReferenceMode::FirstN(4),
            current_window: 600,
            buckets: 2,
            text_capacity: 2,
            min_samples: 2,
            consecutive: 1,
            ..DriftConfig::default()
        }
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    /// Call `i` at second `t`, with its prompt and response captured.
    fn observe(drift: &DriftMonitors, i: u64, t: u64) {
        let span = Span {
            trace_id: vec![1; 16],
            span_id: (i + 1).to_be_bytes().to_vec(),
            start_time_unix_nano: t * 1_000_000_000,
            end_time_unix_nano: t * 1_000_000_000,
            attributes: vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.request.model", "gpt-4o"),
                kv("gen_ai.prompt.0.role", "user"),
                kv("gen_ai.prompt.0.content", &format!("question {i}")),
                kv("gen_ai.completion.0.content", &format!("answer {i}")),
            ],
            ..Default::default()
        };
        let call = Normalizer::default()
            .span(&ResourceInfo::default(), &span)
            .unwrap()
            .unwrap();
        drift.observe(&call, &CallPrice::Unpriced);
    }

    fn text_counts(drift: &DriftMonitors, signal: usize) -> (usize, usize) {
        let key = drift.all_keys().pop().unwrap();
        let state = key.state.lock();
        let text = &state.texts[signal];
        let current = text
            .current
            .range(i64::MIN, i64::MAX)
            .map(|r| r.items().len())
            .sum();
        (text.reference.len(), current)
    }

    #[test]
    fn texts_are_offered_where_they_have_a_place_and_vectors_come_back() {
        let drift = DriftMonitors::new(config(), &[]);
        let queue = Queue::new(6);
        drift.set_embedding_sink(Box::new(queue.clone())).unwrap();
        assert!(drift.remote_embeddings());
        // Six calls in one bucket: the first four fill the reference (room for 2 × 2 texts per
        // signal), the first two also have a place in the bucket (text_capacity 2). The queue
        // takes six texts: call 4's prompt and response are refused.
        for i in 0..6 {
            observe(&drift, i, 1_000);
        }
        let jobs = queue.take();
        let seen: Vec<_> = jobs
            .iter()
            .map(|j| {
                let t = &j.target;
                (j.text().to_owned(), t.signal(), t.reference, t.current)
            })
            .collect();
        let row =
            |text: &str, signal, reference, current| (text.to_owned(), signal, reference, current);
        assert_eq!(
            seen,
            [
                row("question 0", "prompt_embedding", true, true),
                row("answer 0", "response_embedding", true, true),
                row("question 1", "prompt_embedding", true, true),
                row("answer 1", "response_embedding", true, true),
                row("question 2", "prompt_embedding", true, false),
                row("answer 2", "response_embedding", true, false),
            ]
        );
        // Nothing kept for the built-in embedder; the response length is still measured.
        assert_eq!(text_counts(&drift, 0), (0, 0));
        let lengths = drift.baselines()[0]
            .reference_samples
            .iter()
            .find(|(s, _)| *s == "response_length_chars")
            .unwrap()
            .1;
        assert_eq!(lengths, 4);

        for job in jobs {
            let (text, target) = job.into_parts();
            let vector = if text.starts_with("question") {
                vec![1.0, 0.0]
            } else {
                vec![0.0, 1.0]
            };
            drift.deliver_embedding(target, Some(vector));
        }
        assert_eq!(text_counts(&drift, 0), (3, 2));
        assert_eq!(text_counts(&drift, 1), (3, 2));
        // A later call in the next bucket has a place there again.
        observe(&drift, 6, 1_300);
        let jobs = queue.take();
        assert_eq!(jobs.len(), 2);
        assert!(jobs.iter().all(|j| !j.target.reference && j.target.current));
    }

    #[test]
    fn failures_free_their_reference_place_and_a_new_dimension_restarts_the_signal() {
        let drift = DriftMonitors::new(config(), &[]);
        let queue = Queue::new(100);
        drift.set_embedding_sink(Box::new(queue.clone())).unwrap();
        observe(&drift, 0, 1_000);
        let mut jobs = queue.take().into_iter();
        let (_, prompt) = jobs.next().unwrap().into_parts();
        let (_, response) = jobs.next().unwrap().into_parts();
        drift.deliver_embedding(prompt, None);
        drift.deliver_embedding(response, Some(vec![0.5, 0.5]));
        assert_eq!(text_counts(&drift, 0), (0, 0));
        assert_eq!(text_counts(&drift, 1), (1, 1));
        {
            let key = drift.all_keys().pop().unwrap();
            assert_eq!(key.state.lock().admission.reference_in_flight, [0, 0]);
        }
        observe(&drift, 1, 1_000);
        let (_, response) = queue.take().pop().unwrap().into_parts();
        drift.deliver_embedding(response, Some(vec![0.1, 0.2, 0.3]));
        assert_eq!(text_counts(&drift, 1), (1, 1));
        // Not finite: dropped.
        observe(&drift, 2, 1_000);
        let (_, response) = queue.take().pop().unwrap().into_parts();
        drift.deliver_embedding(response, Some(vec![f64::NAN, 0.0, 0.0]));
        assert_eq!(text_counts(&drift, 1), (1, 1));
    }

    #[test]
    fn restored_state_of_the_other_embedder_is_cleared() {
        // Built-in: texts are kept.
        let local = DriftMonitors::new(config(), &[]);
        observe(&local, 0, 1_000);
        observe(&local, 1, 1_000);
        assert_eq!(text_counts(&local, 0), (2, 2));
        let saved = local.export_state();

        let remote = DriftMonitors::new(config(), &[]);
        let queue = Queue::new(100);
        remote.set_embedding_sink(Box::new(queue.clone())).unwrap();
        assert_eq!(remote.restore(saved), 1);
        assert_eq!(text_counts(&remote, 0), (0, 0));
        // The rest of the key's state is kept.
        assert_eq!(remote.baselines()[0].reference_calls, 2);
        observe(&remote, 2, 1_000);
        for job in queue.take() {
            let (_, target) = job.into_parts();
            remote.deliver_embedding(target, Some(vec![1.0, 0.0]));
        }
        assert_eq!(text_counts(&remote, 0), (1, 1));

        // And back: vectors are dropped when restored without a sink.
        let again = DriftMonitors::new(config(), &[]);
        assert_eq!(again.restore(remote.export_state()), 1);
        assert_eq!(text_counts(&again, 0), (0, 0));
    }
}
