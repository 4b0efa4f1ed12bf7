//! Joins sampled spans with content that arrived as log events.
//!
//! Instrumentations such as openai-v2 put prompts and answers in `gen_ai.{role}.message` and
//! `gen_ai.choice` events instead of span attributes, and export logs and traces separately, so a
//! sampled span may arrive before or after its content. This buffer holds either side by
//! (trace id, span id) until the other arrives, then releases the joined call for judging.
//!
//! Bounded by construction: at most `max_entries` keys and `max_bytes` of text, oldest evicted
//! first, and nothing kept longer than `ttl_millis`. Content is only kept for traces that some
//! sampling rate could choose (see [`PendingContent::could_sample`]), so the buffer's traffic is
//! proportional to the sampled share, not to all traffic. Pure bookkeeping: the caller passes the
//! time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::quality::monitor::SampledCall;
use crate::quality::sampler::{rejection_threshold, trace_id_randomness};

/// Bytes an entry costs beyond its text (key, bookkeeping, the held call's strings).
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Limits of the join buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingConfig {
    /// Spans and content fragments waiting for their other half; 0 turns the join off.
    pub max_entries: usize,
    /// Text held in all entries together.
    pub max_bytes: usize,
    /// How long either half waits for the other.
    pub ttl_millis: u64,
}

impl Default for PendingConfig {
    fn default() -> Self {
        PendingConfig {
            max_entries: 10_000,
            max_bytes: 64 << 20,
            ttl_millis: 60_000,
        }
    }
}

/// Content of one call from its events, as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContentText {
    pub input: Option<String>,
    pub output: Option<String>,
    pub system_instructions: Option<String>,
}

impl ContentText {
    fn bytes(&self) -> usize {
        [&self.input, &self.output, &self.system_instructions]
            .iter()
            .map(|t| t.as_ref().map_or(0, String::len))
            .sum()
    }

    /// Appends `more`, event by event (several message events make one input).
    fn merge(&mut self, more: ContentText) {
        fn append(into: &mut Option<String>, more: Option<String>) {
            match (into.as_mut(), more) {
                (Some(text), Some(more)) => {
                    text.push('\n');
                    text.push_str(&more);
                }
                (None, more) => *into = more,
                (Some(_), None) => {}
            }
        }
        append(&mut self.input, more.input);
        append(&mut self.output, more.output);
        append(&mut self.system_instructions, more.system_instructions);
    }
}

/// What left the buffer: calls ready for judging, and sampled calls whose content never came.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    /// Sampled calls joined with their content (output present).
    pub ready: Vec<SampledCall>,
    /// Service names of sampled calls evicted or expired without output.
    pub without_content: Vec<String>,
}

type Key = [u8; 24];

fn key(trace_id: &[u8], span_id: &[u8]) -> Option<Key> {
    if trace_id.len() != 16 || span_id.len() != 8 {
        return None;
    }
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(trace_id);
    key[16..].copy_from_slice(span_id);
    Some(key)
}

#[derive(Debug)]
struct Entry {
    /// The sampled span, once it arrived.
    call: Option<SampledCall>,
    content: ContentText,
    since: u64,
    generation: u64,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: FxHashMap<Key, Entry>,
    /// Insertion order for eviction and expiry; may hold stale keys (removed entries).
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    generation: u64,
    /// Keys whose span and output are both here, released at the next [`PendingContent::release`].
    ready: Vec<Key>,
    released: Released,
}

impl Inner {
    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= entry.bytes;
        Some(entry)
    }

    /// Drops an entry without its other half; a held span counts as without content.
    fn drop_entry(&mut self, key: &Key) {
        if let Some(entry) = self.remove(key)
            && let Some(call) = entry.call
        {
            self.released.without_content.push(call.service_name);
        }
    }

    fn evict(&mut self, config: &PendingConfig, now: u64) {
        let expired_before = now.saturating_sub(config.ttl_millis);
        while let Some(&(key, generation)) = self.order.front() {
            let live = self
                .entries
                .get(&key)
                .filter(|e| e.generation == generation);
            let Some(entry) = live else {
                self.order.pop_front();
                continue;
            };
            let over = self.entries.len() > config.max_entries || self.bytes > config.max_bytes;
            if !over && entry.since >= expired_before {
                break;
            }
            self.order.pop_front();
            self.drop_entry(&key);
        }
        // Stale keys of entries removed out of order are dropped when they pile up.
        if self.order.len() > 2 * config.max_entries.max(16) {
            let entries = &self.entries;
            self.order
                .retain(|(key, g)| entries.get(key).is_some_and(|e| e.generation == *g));
        }
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        self.bytes += entry.bytes;
        self.order.push_back((key, entry.generation));
        self.entries.insert(key, entry);
    }
}

/// The join buffer. Shared by the ingest workers; its lock is taken only for sampled spans
/// without output and for content events of traces that could be sampled.
#[derive(Debug)]
pub struct PendingContent {
    config: PendingConfig,
    /// Traces whose randomness is below this are sampled at no configured rate.
    could_sample_from: u64,
    inner: Mutex<Inner>,
    len: AtomicUsize,
}

impl PendingContent {
    /// A buffer for calls sampled at rates up to `max_rate` (the highest configured rate).
    pub fn new(config: PendingConfig, max_rate: f64) -> PendingContent {
        PendingContent {
            could_sample_from: rejection_threshold(max_rate.clamp(0.0, 1.0)).unwrap_or(0),
            config,
            inner: Mutex::new(Inner::default()),
            len: AtomicUsize::new(0),
        }
    }

    /// Whether a trace could be sampled at the highest configured rate, by its trace id (log
    /// records carry no tracestate, so an explicit `rv` there cannot be seen).
    pub fn could_sample(&self, trace_id: &[u8]) -> bool {
        trace_id_randomness(trace_id) >= self.could_sample_from
    }

    /// Entries waiting (spans and content fragments).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds a sampled call that has no output; joined at once when its content came first.
    /// Returns what left the buffer (this call when joined, evicted calls).
    pub fn hold(&self, mut call: SampledCall, now: u64) -> Released {
        if self.config.max_entries == 0 {
            return Released {
                without_content: vec![call.service_name],
                ..Released::default()
            };
        }
        let Some(key) = key(&call.trace_id, &call.span_id) else {
            return Released {
                without_content: vec![call.service_name],
                ..Released::default()
            };
        };
        let mut inner = self.inner.lock();
        match inner.remove(&key) {
            Some(entry) if entry.content.output.is_some() => {
                join(&mut call, entry.content);
                inner.released.ready.push(call);
            }
            earlier => {
                let content = earlier.map(|e| e.content).unwrap_or_default();
                inner.generation += 1;
                let entry = Entry {
                    bytes: ENTRY_OVERHEAD_BYTES + content.bytes(),
                    call: Some(call),
                    content,
                    since: now,
                    generation: inner.generation,
                };
                inner.insert(key, entry);
            }
        }
        self.finish(&mut inner, now)
    }

    /// Adds content from an event of (trace id, span id). A held span that now has output is
    /// released by the next [`PendingContent::release`], so that the events of one export
    /// request are all merged first.
    pub fn add_content(&self, trace_id: &[u8], span_id: &[u8], content: ContentText, now: u64) {
        if self.config.max_entries == 0 || content.bytes() == 0 || !self.could_sample(trace_id) {
            return;
        }
        let Some(key) = key(trace_id, span_id) else {
            return;
        };
        let mut inner = self.inner.lock();
        let added = content.bytes();
        if let Some(entry) = inner.entries.get_mut(&key) {
            entry.content.merge(content);
            entry.bytes += added;
            let ready = entry.call.is_some() && entry.content.output.is_some();
            inner.bytes += added;
            if ready && !inner.ready.contains(&key) {
                inner.ready.push(key);
            }
        } else {
            inner.generation += 1;
            let entry = Entry {
                bytes: ENTRY_OVERHEAD_BYTES + added,
                call: None,
                content,
                since: now,
                generation: inner.generation,
            };
            inner.insert(key, entry);
        }
        inner.evict(&self.config, now);
        self.len.store(inner.entries.len(), Ordering::Relaxed);
    }

    /// Forgets content kept for a call that turned out not to be sampled.
    pub fn discard(&self, trace_id: &[u8], span_id: &[u8]) {
        if self.is_empty() {
            return;
        }
        if let Some(key) = key(trace_id, span_id) {
            let mut inner = self.inner.lock();
            inner.remove(&key);
            self.len.store(inner.entries.len(), Ordering::Relaxed);
        }
    }

    /// Releases joined calls and expires what waited too long.
    pub fn release(&self, now: u64) -> Released {
        if self.is_empty() {
            return Released::default();
        }
        let mut inner = self.inner.lock();
        self.finish(&mut inner, now)
    }

    fn finish(&self, inner: &mut Inner, now: u64) -> Released {
        for key in std::mem::take(&mut inner.ready) {
            if let Some(entry) = inner.remove(&key)
                && let Some(mut call) = entry.call
            {
                join(&mut call, entry.content);
                inner.released.ready.push(call);
            }
        }
        inner.evict(&self.config, now);
        self.len.store(inner.entries.len(), Ordering::Relaxed);
        std::mem::take(&mut inner.released)
    }
}

/// Fills what the span lacked from its events; what the span captured itself wins.
fn join(call: &mut SampledCall, content: ContentText) {
    if call.input.is_none() {
        call.input = content.input;
    }
    if call.output.is_none() {
        call.output = content.output;
    }
    if call.system_instructions.is_none() {
        call.system_instructions = content.system_instructions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(span: u8, service: &str) -> SampledCall {
        SampledCall {
            trace_id: vec![0xff; 16],
            span_id: vec![span; 8],
            service_name: service.into(),
            input: Some("span input".into()),
            ..SampledCall::default()
        }
    }

    fn output(text: &str) -> ContentText {
        ContentText {
            output: Some(text.into()),
            ..ContentText::default()
        }
    }

    fn input(text: &str) -> ContentText {
        ContentText {
            input: Some(text.into()),
            ..ContentText::default()
        }
    }

    fn buffer(max_entries: usize) -> PendingContent {
        PendingContent::new(
            PendingConfig {
                max_entries,
                max_bytes: 1 << 20,
                ttl_millis: 1_000,
            },
            0.5,
        )
    }

    #[test]
    fn span_first_then_events_joins_once_the_batch_is_released() {
        let pending = buffer(10);
        assert_eq!(pending.hold(call(1, "svc"), 0), Released::default());
        pending.add_content(&[0xff; 16], &[1; 8], input("Q1"), 5);
        pending.add_content(&[0xff; 16], &[1; 8], output("A1"), 5);
        pending.add_content(&[0xff; 16], &[1; 8], output("A2"), 5);
        let released = pending.release(6);
        assert_eq!(released.ready.len(), 1);
        let joined = &released.ready[0];
        // The span's own input wins; both choices are kept.
        assert_eq!(joined.input.as_deref(), Some("span input"));
        assert_eq!(joined.output.as_deref(), Some("A1\nA2"));
        assert!(pending.is_empty());
        assert_eq!(pending.release(7), Released::default());
    }

    #[test]
    fn events_first_then_span_joins_at_once() {
        let pending = buffer(10);
        let mut span = call(2, "svc");
        span.input = None;
        pending.add_content(&[0xff; 16], &[2; 8], input("Q"), 0);
        pending.add_content(&[0xff; 16], &[2; 8], output("A"), 0);
        assert_eq!(pending.release(0), Released::default());
        let released = pending.hold(span, 10);
        assert_eq!(released.ready[0].input.as_deref(), Some("Q"));
        assert_eq!(released.ready[0].output.as_deref(), Some("A"));
        assert!(pending.is_empty());
    }

    #[test]
    fn input_alone_does_not_release_a_span() {
        let pending = buffer(10);
        pending.add_content(&[0xff; 16], &[3; 8], input("Q"), 0);
        let released = pending.hold(call(3, "svc"), 1);
        assert!(released.ready.is_empty());
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn spans_expire_and_are_counted_without_content() {
        let pending = buffer(10);
        let _ = pending.hold(call(1, "a"), 0);
        let _ = pending.hold(call(2, "b"), 600);
        // At 1,500 ms the first (since 0) is past the 1 s ttl, the second is not.
        let released = pending.release(1_500);
        assert_eq!(released.without_content, ["a"]);
        assert_eq!(pending.len(), 1);
        // Late content for the expired span is kept alone (and expires in turn).
        pending.add_content(&[0xff; 16], &[1; 8], output("late"), 1_500);
        assert_eq!(pending.release(1_501).ready, []);
        assert_eq!(pending.release(3_000).without_content, ["b"]);
        assert!(pending.is_empty());
    }

    #[test]
    fn capacity_evicts_oldest_first() {
        let pending = buffer(2);
        let _ = pending.hold(call(1, "first"), 0);
        pending.add_content(&[0xff; 16], &[9; 8], output("orphan"), 1);
        let released = pending.hold(call(3, "third"), 2);
        assert_eq!(released.without_content, ["first"]);
        assert_eq!(pending.len(), 2);
        let released = pending.hold(call(4, "fourth"), 3);
        // The orphan content went next; no call to count.
        assert!(released.without_content.is_empty());
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn bytes_are_bounded() {
        let pending = PendingContent::new(
            PendingConfig {
                max_entries: 100,
                max_bytes: 2 * ENTRY_OVERHEAD_BYTES + 100,
                ttl_millis: 1_000,
            },
            1.0,
        );
        for span in 0..10u8 {
            pending.add_content(&[0xff; 16], &[span; 8], output(&"x".repeat(60)), 0);
        }
        assert_eq!(pending.len(), 1);
        assert!(pending.inner.lock().bytes <= 2 * ENTRY_OVERHEAD_BYTES + 100);
    }

    #[test]
    fn content_of_traces_no_rate_could_sample_is_not_kept() {
        let pending = buffer(10);
        // Rate 0.5 samples R >= 2^55: a trace id ending in zeros never is.
        pending.add_content(&[0; 16], &[1; 8], output("A"), 0);
        assert!(pending.is_empty());
        assert!(pending.could_sample(&[0xff; 16]));
        // Content of a call the sampler skipped is forgotten.
        pending.add_content(&[0xff; 16], &[1; 8], output("A"), 0);
        pending.discard(&[0xff; 16], &[1; 8]);
        assert!(pending.is_empty());
        // Records without trace context cannot be joined.
        pending.add_content(&[], &[], output("A"), 0);
        assert!(pending.is_empty());
    }

    #[test]
    fn stale_order_keys_do_not_pile_up() {
        let pending = buffer(4);
        for i in 0..1_000u32 {
            let mut span = call(0, "svc");
            span.span_id = i.to_be_bytes().repeat(2);
            pending.add_content(&[0xff; 16], &span.span_id, output("A"), 0);
            let _ = pending.hold(span, 0);
        }
        assert!(pending.is_empty());
        assert!(pending.inner.lock().order.len() <= 32);
    }
}
