//! The content join: content that instrumentations send as log events, joined with its span.
//!
//! Instrumentations such as openai-v2 put prompts and answers in `gen_ai.{role}.message`,
//! `gen_ai.choice` or `gen_ai.client.inference.operation.details` events instead of span
//! attributes, and export logs and traces separately, so a span may arrive before or after its
//! content. This buffer holds either side by (trace id, span id):
//!
//! - content that came first waits for its span, which takes it when it arrives
//!   ([`PendingContent::take`]) and treats it as its own: one safety scan, its session turn, the
//!   judge;
//! - a span that came first is recorded when content may still come for it: any call of a service
//!   that sends content events ([`PendingContent::register`]), and a sampled call without output
//!   ([`PendingContent::hold`]). Content that comes later is handed back joined to the record
//!   ([`Joined`]) once per export request, so that the events of one call are scanned together.
//!   The record stays until it expires: a side the span carried itself is never scanned again,
//!   and a category found on a side is counted once however the call's events are split
//!   ([`PendingContent::commit`]).
//!
//! Bounded by construction: at most `max_entries` keys and `max_bytes` of text, oldest evicted
//! first, nothing kept longer than `ttl_millis`; what is given up is counted ([`Dropped`]). Only
//! services that sent content events within the last hour get their spans recorded, so services
//! that capture no content, or capture it on spans, cost nothing here. When only the judge needs
//! content, it is kept only for traces some sampling rate could choose (see
//! [`PendingContent::could_sample`]). Pure bookkeeping: the caller passes the time and scans.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use crate::quality::feedback::HeldTurn;
use crate::quality::monitor::SampledCall;
use crate::quality::recent::text_key;
use crate::quality::safety::Source;
use crate::quality::sampler::{rejection_threshold, trace_id_randomness};

/// Bytes an entry costs beyond its text: the map slot and its key, its place in the order, the
/// record's label strings (a held sampled call is boxed, and its strings are mostly the text).
const ENTRY_OVERHEAD_BYTES: usize = 640;

/// How long a service counts as sending content events after its last one.
pub const SENDER_TTL_MILLIS: u64 = 3_600_000;

/// Services remembered as sending content events.
const MAX_SENDERS: usize = 1_024;

/// Limits of the join buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingConfig {
    /// Spans and content waiting for their other half; 0 turns the join off.
    pub max_entries: usize,
    /// Text held in all entries together (with a fixed cost per entry).
    pub max_bytes: usize,
    /// How long either half waits for the other.
    pub ttl_millis: u64,
}

impl Default for PendingConfig {
    fn default() -> Self {
        PendingConfig {
            max_entries: 50_000,
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
    /// The last user message among the input (for session turns).
    pub user_text: Option<String>,
}

impl ContentText {
    fn bytes(&self) -> usize {
        [
            &self.input,
            &self.output,
            &self.system_instructions,
            &self.user_text,
        ]
        .iter()
        .map(|t| t.as_ref().map_or(0, String::len))
        .sum()
    }

    fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.system_instructions.is_none()
    }

    /// Appends `more`, event by event (several message events make one input); the last user
    /// message is the latest one.
    pub fn merge(&mut self, more: ContentText) {
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
        if more.user_text.is_some() {
            self.user_text = more.user_text;
        }
    }
}

/// What is known of a span whose content may still come as events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanRecord {
    pub service_name: String,
    pub request_model: String,
    pub response_id: Option<String>,
    pub end_unix_nano: u64,
    /// The input and the output the span had itself (with the content that came before it):
    /// content that comes later for such a side is not scanned again.
    pub covered: [bool; 2],
    /// The call's session turn, waiting for its user message.
    pub turn: Option<HeldTurn>,
}

fn side(source: Source) -> usize {
    match source {
        Source::Input => 0,
        Source::Output => 1,
    }
}

/// Content that came after its span, with what the span left to do.
#[derive(Debug, PartialEq)]
pub struct Joined {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The span's labels (its held turn is in `turn`).
    pub record: SpanRecord,
    /// The content that came since the last join.
    pub content: ContentText,
    /// The session turn to complete, when the content has the input.
    pub turn: Option<HeldTurn>,
    /// A sampled call complete with its output: to be judged.
    pub sampled: Option<SampledCall>,
    /// A sampled call of the span still waits for its output: it carries the flags raised now
    /// to the review queue.
    pub sampled_waiting: bool,
}

impl Joined {
    /// The text of a side to scan: present, and not carried by the span itself.
    pub fn to_scan(&self, source: Source) -> Option<&str> {
        if self.record.covered[side(source)] {
            return None;
        }
        match source {
            Source::Input => self.content.input.as_deref(),
            Source::Output => self.content.output.as_deref(),
        }
    }
}

/// What left the buffer.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    /// Content joined to its span.
    pub joined: Vec<Joined>,
    /// Sampled calls evicted or expired without output.
    pub without_content: Vec<SampledCall>,
    /// Session turns whose user message never came (evicted or expired).
    pub turns: Vec<HeldTurn>,
}

impl Released {
    fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.without_content.is_empty() && self.turns.is_empty()
    }
}

/// What a scan of joined content newly raised ([`PendingContent::commit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// For each flag given, whether the call had not raised it yet.
    pub fresh: Vec<bool>,
    /// No content of the call had been scanned before (the scanned-calls count).
    pub first_scan: bool,
}

/// Items given up, by what and why: the `item` and `reason` labels of
/// `llmwatch_quality_join_dropped_total`.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Content whose span never came in time (per call).
    pub content_expired: AtomicU64,
    /// Content evicted to make room before its span came.
    pub content_full: AtomicU64,
    /// Span records evicted to make room before their time was up.
    pub span_full: AtomicU64,
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
    /// The span, once it arrived.
    record: Option<SpanRecord>,
    /// A sampled call waiting for its output, and the content gathered for it.
    sampled: Option<Box<SampledCall>>,
    sampled_content: ContentText,
    /// Some content of the call was scanned.
    scanned: bool,
    /// Categories raised by content scanned after the span.
    flagged: Vec<(String, Source)>,
    /// Content not yet joined to the span.
    content: ContentText,
    /// In `Inner::ready`, to be joined by the next release.
    queued: bool,
    since: u64,
    generation: u64,
    bytes: usize,
}

impl Entry {
    fn new(since: u64, generation: u64) -> Entry {
        Entry {
            record: None,
            sampled: None,
            sampled_content: ContentText::default(),
            scanned: false,
            flagged: Vec::new(),
            content: ContentText::default(),
            queued: false,
            since,
            generation,
            bytes: ENTRY_OVERHEAD_BYTES,
        }
    }

    fn has_span(&self) -> bool {
        self.record.is_some() || self.sampled.is_some()
    }

    fn text_bytes(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.content.bytes() + self.sampled_content.bytes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Expired,
    Full,
}

#[derive(Debug, Default)]
struct Inner {
    entries: FxHashMap<Key, Entry>,
    /// Insertion order for eviction and expiry; may hold stale keys (removed entries).
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    generation: u64,
    /// Keys whose span has content to join, handled at the next [`PendingContent::release`].
    ready: Vec<Key>,
    released: Released,
}

impl Inner {
    /// Queues `key`'s entry for the next join, once.
    fn mark_ready(&mut self, key: Key) {
        if let Some(entry) = self.entries.get_mut(&key)
            && !entry.queued
        {
            entry.queued = true;
            self.ready.push(key);
        }
    }

    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes -= entry.bytes;
        Some(entry)
    }

    /// Recounts an entry's bytes after its text changed.
    fn rebytes(&mut self, key: &Key) {
        if let Some(entry) = self.entries.get_mut(key) {
            let bytes = entry.text_bytes();
            self.bytes = self.bytes + bytes - entry.bytes;
            entry.bytes = bytes;
        }
    }

    fn insert(&mut self, key: Key, entry: Entry) {
        self.bytes += entry.bytes;
        self.order.push_back((key, entry.generation));
        self.entries.insert(key, entry);
    }

    /// A new, empty entry for `key` (the caller fills it).
    fn entry(&mut self, key: Key, now: u64) -> &mut Entry {
        if !self.entries.contains_key(&key) {
            self.generation += 1;
            let entry = Entry::new(now, self.generation);
            self.insert(key, entry);
        }
        self.entries
            .get_mut(&key)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Gives an entry up: what it held is released or counted.
    fn drop_entry(&mut self, key: &Key, reason: Reason, dropped: &Dropped) {
        let Some(entry) = self.remove(key) else {
            return;
        };
        if let Some(mut call) = entry.sampled {
            // What came for it is kept for its review entry.
            join(&mut call, entry.sampled_content);
            self.released.without_content.push(*call);
        }
        let had_span = entry.record.is_some();
        if let Some(turn) = entry.record.and_then(|r| r.turn) {
            self.released.turns.push(turn);
        }
        if !entry.content.is_empty() {
            let counter = match reason {
                Reason::Expired => &dropped.content_expired,
                Reason::Full => &dropped.content_full,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        } else if had_span && reason == Reason::Full {
            dropped.span_full.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn evict(&mut self, config: &PendingConfig, now: u64, dropped: &Dropped) {
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
            let reason = if over { Reason::Full } else { Reason::Expired };
            self.drop_entry(&key, reason, dropped);
        }
        // Stale keys of entries removed out of order are dropped when they pile up.
        if self.order.len() > 2 * config.max_entries.max(16) {
            let entries = &self.entries;
            self.order
                .retain(|(key, g)| entries.get(key).is_some_and(|e| e.generation == *g));
        }
    }

    /// Joins the content of a ready key to its span.
    fn join(&mut self, key: &Key) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if !entry.has_span() || entry.content.is_empty() {
            return;
        }
        let content = std::mem::take(&mut entry.content);
        // A sampled call gathers content until it has an output, as the judge needs one.
        let mut sampled = None;
        if entry.sampled.is_some() {
            entry.sampled_content.merge(content.clone());
            let complete = entry.sampled_content.output.is_some()
                || entry.sampled.as_ref().is_some_and(|c| c.output.is_some());
            if complete && let Some(mut call) = entry.sampled.take() {
                join(&mut call, std::mem::take(&mut entry.sampled_content));
                sampled = Some(*call);
            }
        }
        let mut record = entry.record.clone().unwrap_or_default();
        let turn = if content.input.is_some() {
            entry.record.as_mut().and_then(|r| r.turn.take())
        } else {
            None
        };
        record.turn = None;
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        trace_id.copy_from_slice(&key[..16]);
        span_id.copy_from_slice(&key[16..]);
        let sampled_waiting = entry.sampled.is_some();
        self.released.joined.push(Joined {
            trace_id,
            span_id,
            record,
            content,
            turn,
            sampled,
            sampled_waiting,
        });
        self.rebytes(key);
    }
}

/// The join buffer. Shared by the ingest workers; its lock is taken for content events, for
/// spans of services that send content events and for sampled spans without output.
#[derive(Debug)]
pub struct PendingContent {
    config: PendingConfig,
    /// Content is kept for every trace (the safety monitor or sessions need it), not only for
    /// those the judge could sample.
    keep_all: bool,
    /// Traces whose randomness is below this are sampled at no configured rate.
    could_sample_from: u64,
    inner: Mutex<Inner>,
    len: AtomicUsize,
    /// Joins or releases wait for the next [`PendingContent::release`].
    unreleased: AtomicBool,
    /// Services that sent content events: key hash → when last (ms).
    senders: RwLock<FxHashMap<u64, AtomicU64>>,
    any_sender: AtomicBool,
    dropped: Dropped,
}

impl PendingContent {
    /// A buffer for calls sampled at rates up to `max_rate` (the highest configured rate); with
    /// `keep_all`, content of every trace is kept (for the safety monitor and sessions).
    pub fn new(config: PendingConfig, max_rate: f64, keep_all: bool) -> PendingContent {
        PendingContent {
            could_sample_from: rejection_threshold(max_rate.clamp(0.0, 1.0)).unwrap_or(0),
            keep_all,
            config,
            inner: Mutex::new(Inner::default()),
            len: AtomicUsize::new(0),
            unreleased: AtomicBool::new(false),
            senders: RwLock::new(FxHashMap::default()),
            any_sender: AtomicBool::new(false),
            dropped: Dropped::default(),
        }
    }

    pub fn config(&self) -> &PendingConfig {
        &self.config
    }

    /// Whether a trace could be sampled at the highest configured rate, by its trace id (log
    /// records carry no tracestate, so an explicit `rv` there cannot be seen).
    pub fn could_sample(&self, trace_id: &[u8]) -> bool {
        trace_id_randomness(trace_id) >= self.could_sample_from
    }

    /// Whether content of every trace is kept (the safety monitor or sessions need it).
    pub fn keeps_all(&self) -> bool {
        self.keep_all
    }

    /// Whether some service sent content events.
    pub fn has_senders(&self) -> bool {
        self.any_sender.load(Ordering::Relaxed)
    }

    /// Whether content of this trace is kept.
    pub fn keeps(&self, trace_id: &[u8]) -> bool {
        self.keep_all || self.could_sample(trace_id)
    }

    /// Entries waiting (spans and content).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was given up so far.
    pub fn dropped(&self) -> &Dropped {
        &self.dropped
    }

    /// Whether `service` sent content events within the last hour (as of `now`, ms): its spans
    /// wait for theirs.
    pub fn is_sender(&self, service: &str, now: u64) -> bool {
        if !self.any_sender.load(Ordering::Relaxed) || self.config.max_entries == 0 {
            return false;
        }
        self.senders
            .read()
            .get(&text_key(service))
            .is_some_and(|last| {
                now.saturating_sub(last.load(Ordering::Relaxed)) <= SENDER_TTL_MILLIS
            })
    }

    fn note_sender(&self, service: &str, now: u64) {
        let key = text_key(service);
        if let Some(last) = self.senders.read().get(&key) {
            last.fetch_max(now, Ordering::Relaxed);
            return;
        }
        let mut senders = self.senders.write();
        if senders.len() >= MAX_SENDERS {
            senders.retain(|_, last| {
                now.saturating_sub(last.load(Ordering::Relaxed)) <= SENDER_TTL_MILLIS
            });
        }
        if senders.len() < MAX_SENDERS {
            senders.entry(key).or_insert_with(|| AtomicU64::new(now));
            self.any_sender.store(true, Ordering::Relaxed);
        }
    }

    /// Content that came before its span, taken by the span (which then scans it as its own).
    /// `None` when none waits, or when the span was already recorded (a repeated export).
    pub fn take(&self, trace_id: &[u8], span_id: &[u8]) -> Option<ContentText> {
        if self.is_empty() {
            return None;
        }
        let key = key(trace_id, span_id)?;
        let mut inner = self.inner.lock();
        if inner.entries.get(&key)?.has_span() {
            return None;
        }
        let entry = inner.remove(&key)?;
        self.len.store(inner.entries.len(), Ordering::Relaxed);
        Some(entry.content)
    }

    /// Records a span whose content may still come as events: when its service sends content
    /// events (`sender`), or when content for it is here. Returns what left the buffer (content
    /// joined, evicted entries).
    pub fn register(
        &self,
        trace_id: &[u8],
        span_id: &[u8],
        record: SpanRecord,
        sender: bool,
        now: u64,
    ) -> Released {
        if self.config.max_entries == 0 || (!sender && self.is_empty()) {
            return Released::default();
        }
        let Some(key) = key(trace_id, span_id) else {
            return Released::default();
        };
        let mut inner = self.inner.lock();
        if !sender && !inner.entries.contains_key(&key) {
            return Released::default();
        }
        let scanned = record.covered.iter().any(|c| *c);
        let entry = inner.entry(key, now);
        if entry.record.is_none() {
            entry.record = Some(record);
            entry.scanned |= scanned;
        }
        if !entry.content.is_empty() {
            inner.mark_ready(key);
        }
        self.finish(&mut inner, now)
    }

    /// Holds a sampled call that has no output until its content comes. Returns what left the
    /// buffer (this call when content came meanwhile, evicted entries).
    pub fn hold(&self, call: SampledCall, now: u64) -> Released {
        if self.config.max_entries == 0 {
            return Released {
                without_content: vec![call],
                ..Released::default()
            };
        }
        let Some(key) = key(&call.trace_id, &call.span_id) else {
            return Released {
                without_content: vec![call],
                ..Released::default()
            };
        };
        let mut inner = self.inner.lock();
        let entry = inner.entry(key, now);
        if entry.record.is_none() {
            entry.record = Some(SpanRecord {
                service_name: call.service_name.clone(),
                request_model: call.request_model.clone(),
                response_id: call.response_id.clone(),
                end_unix_nano: call.end_unix_nano,
                covered: [call.input.is_some(), call.output.is_some()],
                turn: None,
            });
            entry.scanned |= call.input.is_some() || call.output.is_some();
        }
        entry.sampled = Some(Box::new(call));
        if !entry.content.is_empty() {
            inner.mark_ready(key);
        }
        inner.rebytes(&key);
        self.finish(&mut inner, now)
    }

    /// Adds content from an event of (trace id, span id), sent by `service`. Content for a span
    /// already here is joined by the next [`PendingContent::release`], so that the events of one
    /// export request are all merged first.
    pub fn add_content(
        &self,
        trace_id: &[u8],
        span_id: &[u8],
        service: &str,
        content: ContentText,
        now: u64,
    ) {
        if self.config.max_entries == 0 || content.is_empty() || !self.keeps(trace_id) {
            return;
        }
        let Some(key) = key(trace_id, span_id) else {
            return;
        };
        self.note_sender(service, now);
        let mut inner = self.inner.lock();
        let entry = inner.entry(key, now);
        entry.content.merge(content);
        let ready = entry.has_span();
        inner.rebytes(&key);
        if ready {
            inner.mark_ready(key);
        }
        inner.evict(&self.config, now, &self.dropped);
        self.settled(&inner);
    }

    /// Records what a scan of joined content raised: which flags the call had not raised before
    /// (they go into a held sampled call too), and whether it is the call's first scan.
    pub fn commit(&self, trace_id: &[u8], span_id: &[u8], flags: &[(&str, Source)]) -> Commit {
        let all = Commit {
            fresh: vec![true; flags.len()],
            first_scan: true,
        };
        let Some(key) = key(trace_id, span_id) else {
            return all;
        };
        let mut inner = self.inner.lock();
        let Some(entry) = inner.entries.get_mut(&key) else {
            return all;
        };
        let first_scan = !entry.scanned;
        entry.scanned = true;
        let fresh = flags
            .iter()
            .map(|&(category, source)| {
                if entry
                    .flagged
                    .iter()
                    .any(|(c, s)| c == category && *s == source)
                {
                    return false;
                }
                entry.flagged.push((category.to_owned(), source));
                if let Some(call) = &mut entry.sampled
                    && !call.safety_flags.iter().any(|c| c == category)
                {
                    call.safety_flags.push(category.to_owned());
                }
                true
            })
            .collect();
        Commit { fresh, first_scan }
    }

    /// Joins the content that came for recorded spans and expires what waited too long.
    pub fn release(&self, now: u64) -> Released {
        if self.is_empty() && !self.unreleased.load(Ordering::Relaxed) {
            return Released::default();
        }
        let mut inner = self.inner.lock();
        self.finish(&mut inner, now)
    }

    fn finish(&self, inner: &mut Inner, now: u64) -> Released {
        for key in std::mem::take(&mut inner.ready) {
            if let Some(entry) = inner.entries.get_mut(&key) {
                entry.queued = false;
            }
            inner.join(&key);
        }
        inner.evict(&self.config, now, &self.dropped);
        let released = std::mem::take(&mut inner.released);
        self.settled(inner);
        released
    }

    fn settled(&self, inner: &Inner) {
        self.len.store(inner.entries.len(), Ordering::Relaxed);
        self.unreleased.store(
            !inner.ready.is_empty() || !inner.released.is_empty(),
            Ordering::Relaxed,
        );
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

    const TRACE: [u8; 16] = [0xff; 16];

    fn call(span: u8, service: &str) -> SampledCall {
        SampledCall {
            trace_id: TRACE.to_vec(),
            span_id: vec![span; 8],
            service_name: service.into(),
            request_model: "m".into(),
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
            user_text: Some(text.into()),
            ..ContentText::default()
        }
    }

    fn record(service: &str, covered: [bool; 2]) -> SpanRecord {
        SpanRecord {
            service_name: service.into(),
            request_model: "gpt-4o".into(),
            covered,
            ..SpanRecord::default()
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
            false,
        )
    }

    fn dropped(pending: &PendingContent) -> [u64; 3] {
        let d = pending.dropped();
        [
            d.content_expired.load(Ordering::Relaxed),
            d.content_full.load(Ordering::Relaxed),
            d.span_full.load(Ordering::Relaxed),
        ]
    }

    #[test]
    fn span_first_then_events_joins_once_the_batch_is_released() {
        let pending = buffer(10);
        assert_eq!(pending.hold(call(1, "svc"), 0), Released::default());
        pending.add_content(&TRACE, &[1; 8], "svc", input("Q1"), 5);
        pending.add_content(&TRACE, &[1; 8], "svc", output("A1"), 5);
        pending.add_content(&TRACE, &[1; 8], "svc", output("A2"), 5);
        let released = pending.release(6);
        assert_eq!(released.joined.len(), 1);
        let joined = &released.joined[0];
        // The span's own input wins for the judge and is not scanned again; both choices are kept.
        let sampled = joined.sampled.as_ref().unwrap();
        assert_eq!(sampled.input.as_deref(), Some("span input"));
        assert_eq!(sampled.output.as_deref(), Some("A1\nA2"));
        assert_eq!(joined.to_scan(Source::Input), None);
        assert_eq!(joined.to_scan(Source::Output), Some("A1\nA2"));
        assert!(!joined.sampled_waiting);
        assert_eq!(joined.record.service_name, "svc");
        // The record stays for content that comes later, until it expires.
        assert_eq!(pending.len(), 1);
        assert_eq!(pending.release(7), Released::default());
        assert_eq!(pending.release(1_001), Released::default());
        assert!(pending.is_empty());
        assert_eq!(dropped(&pending), [0, 0, 0]);
    }

    #[test]
    fn events_first_are_taken_by_their_span() {
        let pending = buffer(10);
        pending.add_content(&TRACE, &[2; 8], "svc", input("Q"), 0);
        pending.add_content(&TRACE, &[2; 8], "svc", output("A"), 0);
        assert_eq!(pending.release(0), Released::default());
        let content = pending.take(&TRACE, &[2; 8]).unwrap();
        assert_eq!(
            content,
            ContentText {
                input: Some("Q".into()),
                output: Some("A".into()),
                user_text: Some("Q".into()),
                ..ContentText::default()
            }
        );
        assert!(pending.is_empty());
        assert_eq!(pending.take(&TRACE, &[2; 8]), None);
        // Content that came between the take and the span's record joins at once.
        pending.add_content(&TRACE, &[3; 8], "svc", output("late"), 0);
        let released = pending.register(&TRACE, &[3; 8], record("svc", [true, false]), false, 1);
        assert_eq!(released.joined.len(), 1);
        assert_eq!(released.joined[0].to_scan(Source::Output), Some("late"));
    }

    #[test]
    fn input_alone_does_not_complete_a_sampled_call() {
        let pending = buffer(10);
        let mut span = call(3, "svc");
        span.input = None;
        let _ = pending.hold(span, 0);
        pending.add_content(&TRACE, &[3; 8], "svc", input("Q"), 1);
        let released = pending.release(1);
        // The input is scanned, the call waits for its output (and carries the flags).
        assert_eq!(released.joined.len(), 1);
        assert!(released.joined[0].sampled.is_none() && released.joined[0].sampled_waiting);
        assert_eq!(released.joined[0].to_scan(Source::Input), Some("Q"));
        pending.add_content(&TRACE, &[3; 8], "svc", output("A"), 2);
        let released = pending.release(2);
        let sampled = released.joined[0].sampled.as_ref().unwrap();
        assert_eq!(
            (sampled.input.as_deref(), sampled.output.as_deref()),
            (Some("Q"), Some("A"))
        );
        // One whose output never comes is given up with the input it gathered (for review).
        let mut span = call(4, "svc");
        span.input = None;
        let _ = pending.hold(span, 10);
        pending.add_content(&TRACE, &[4; 8], "svc", input("Q4"), 11);
        assert!(pending.release(11).joined[0].sampled_waiting);
        let released = pending.release(2_000);
        assert_eq!(released.without_content.len(), 1);
        assert_eq!(released.without_content[0].input.as_deref(), Some("Q4"));
    }

    #[test]
    fn spans_expire_and_are_counted_without_content() {
        let pending = buffer(10);
        let _ = pending.hold(call(1, "a"), 0);
        let _ = pending.hold(call(2, "b"), 600);
        // At 1,500 ms the first (since 0) is past the 1 s ttl, the second is not.
        let released = pending.release(1_500);
        let services = |r: &Released| -> Vec<String> {
            r.without_content
                .iter()
                .map(|c| c.service_name.clone())
                .collect()
        };
        assert_eq!(services(&released), ["a"]);
        assert_eq!(pending.len(), 1);
        // Late content for the expired span is kept alone, and expires in turn: counted.
        pending.add_content(&TRACE, &[1; 8], "a", output("late"), 1_500);
        assert_eq!(pending.release(1_501).joined, []);
        assert_eq!(services(&pending.release(3_000)), ["b"]);
        assert!(pending.is_empty());
        assert_eq!(dropped(&pending), [1, 0, 0]);
    }

    #[test]
    fn capacity_evicts_oldest_first_and_counts_what_it_gives_up() {
        let pending = buffer(2);
        let _ = pending.hold(call(1, "first"), 0);
        pending.add_content(&TRACE, &[9; 8], "svc", output("orphan"), 1);
        let released = pending.hold(call(3, "third"), 2);
        assert_eq!(released.without_content[0].service_name, "first");
        assert_eq!(pending.len(), 2);
        let released = pending.hold(call(4, "fourth"), 3);
        // The orphan content went next: no call to count, content dropped.
        assert!(released.without_content.is_empty());
        assert_eq!(pending.len(), 2);
        assert_eq!(dropped(&pending), [0, 1, 1]);
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
            true,
        );
        for span in 0..10u8 {
            pending.add_content(&TRACE, &[span; 8], "svc", output(&"x".repeat(60)), 0);
        }
        assert_eq!(pending.len(), 1);
        assert!(pending.inner.lock().bytes <= 2 * ENTRY_OVERHEAD_BYTES + 100);
        assert_eq!(dropped(&pending), [0, 9, 0]);
        // Merging content into an entry counts its bytes too: past the limit it goes as well.
        let more = "y".repeat(ENTRY_OVERHEAD_BYTES + 100);
        pending.add_content(&TRACE, &[9; 8], "svc", output(&more), 0);
        assert_eq!(pending.len(), 0);
        assert_eq!(pending.inner.lock().bytes, 0);
        assert_eq!(dropped(&pending), [0, 10, 0]);
    }

    #[test]
    fn content_of_traces_no_rate_could_sample_is_kept_only_for_the_other_stages() {
        let pending = buffer(10);
        // Rate 0.5 samples R >= 2^55: a trace id ending in zeros never is.
        pending.add_content(&[0; 16], &[1; 8], "svc", output("A"), 0);
        assert!(pending.is_empty());
        assert!(pending.could_sample(&TRACE));
        // Records without trace context cannot be joined.
        pending.add_content(&[], &[], "svc", output("A"), 0);
        assert!(pending.is_empty());
        // With the safety monitor or sessions on, every trace's content is kept.
        let all = PendingContent::new(PendingConfig::default(), 0.5, true);
        all.add_content(&[0; 16], &[1; 8], "svc", output("A"), 0);
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn stale_order_keys_do_not_pile_up() {
        let pending = buffer(4);
        for i in 0..1_000u32 {
            let span = i.to_be_bytes().repeat(2);
            pending.add_content(&TRACE, &span, "svc", output("A"), 0);
            assert!(pending.take(&TRACE, &span).is_some());
        }
        assert!(pending.is_empty());
        assert!(pending.inner.lock().order.len() <= 32);
    }

    #[test]
    fn services_that_send_content_events_are_remembered_for_an_hour() {
        let pending = buffer(10);
        assert!(!pending.has_senders() && !pending.is_sender("svc", 0));
        // Events without content (capture off) do not count.
        pending.add_content(&TRACE, &[1; 8], "svc", ContentText::default(), 0);
        assert!(!pending.has_senders());
        pending.add_content(&TRACE, &[1; 8], "svc", output("A"), 10);
        assert!(pending.is_sender("svc", 10) && !pending.is_sender("other", 10));
        assert!(pending.is_sender("svc", 10 + SENDER_TTL_MILLIS));
        assert!(!pending.is_sender("svc", 11 + SENDER_TTL_MILLIS));
        // A span of a service that is no sender is not recorded.
        let released = pending.register(&TRACE, &[7; 8], record("other", [false; 2]), false, 20);
        assert_eq!(released, Released::default());
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn late_fragments_of_a_call_raise_each_category_and_side_once() {
        let pending = buffer(10);
        let span = [5; 8];
        let _ = pending.register(&TRACE, &span, record("svc", [false, false]), true, 0);
        pending.add_content(&TRACE, &span, "svc", input("mail a@b.c"), 1);
        pending.add_content(&TRACE, &span, "svc", input("again a@b.c"), 1);
        let released = pending.release(1);
        assert_eq!(released.joined.len(), 1);
        // Both user messages of the request are scanned together.
        assert_eq!(
            released.joined[0].to_scan(Source::Input),
            Some("mail a@b.c\nagain a@b.c")
        );
        let first = pending.commit(&TRACE, &span, &[("pii_email", Source::Input)]);
        assert_eq!(
            first,
            Commit {
                fresh: vec![true],
                first_scan: true
            }
        );
        // The next export request repeats the category on the input and adds the output.
        pending.add_content(&TRACE, &span, "svc", output("reply to a@b.c"), 2);
        let released = pending.release(2);
        assert_eq!(released.joined.len(), 1);
        let again = pending.commit(
            &TRACE,
            &span,
            &[("pii_email", Source::Input), ("pii_email", Source::Output)],
        );
        assert_eq!(
            again,
            Commit {
                fresh: vec![false, true],
                first_scan: false
            }
        );
        // A span that carried content was scanned already.
        let _ = pending.register(&TRACE, &[6; 8], record("svc", [true, false]), true, 3);
        assert!(!pending.commit(&TRACE, &[6; 8], &[]).first_scan);
    }

    #[test]
    fn a_held_turn_is_handed_back_with_the_input_or_released_without_it() {
        let turn = HeldTurn::for_test;
        let pending = buffer(10);
        let mut with_turn = record("svc", [false, false]);
        with_turn.turn = Some(turn(1));
        let _ = pending.register(&TRACE, &[1; 8], with_turn.clone(), true, 0);
        with_turn.turn = Some(turn(2));
        let _ = pending.register(&TRACE, &[2; 8], with_turn, true, 0);
        // An output alone does not complete the turn; the input does.
        pending.add_content(&TRACE, &[1; 8], "svc", output("A"), 1);
        assert_eq!(pending.release(1).joined[0].turn, None);
        pending.add_content(&TRACE, &[1; 8], "svc", input("Q"), 2);
        let released = pending.release(2);
        assert_eq!(released.joined[0].turn, Some(turn(1)));
        assert_eq!(released.joined[0].record.turn, None);
        // The other never gets its input: released when it expires.
        let released = pending.release(1_001);
        assert_eq!(released.turns, [turn(2)]);
        assert_eq!(dropped(&pending), [0, 0, 0]);
    }
}

#[cfg(test)]
mod size {
    use super::*;

    #[test]
    fn an_entry_costs_no_more_than_it_is_accounted_for() {
        // The map slot (key and entry), the order's item, three label strings' allocations.
        let slot = std::mem::size_of::<Key>() + std::mem::size_of::<Entry>() + 1;
        let order = std::mem::size_of::<(Key, u64)>();
        assert!(
            slot + order + 3 * 48 <= ENTRY_OVERHEAD_BYTES,
            "{slot} + {order} + 144 > {ENTRY_OVERHEAD_BYTES}"
        );
    }
}
