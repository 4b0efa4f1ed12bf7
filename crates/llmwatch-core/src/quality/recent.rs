//! The recent-call index: which call a piece of feedback is about. A ring of the last N calls,
//! and for each key (trace, response id, conversation) a fixed-size 4-way set-associative table
//! of key hashes onto the ring, like a CPU cache: an insert touches one set, needs no removal
//! (a way whose call was overwritten is dead by its age) and replaces the oldest way when the set
//! is full. The calls of one trace are chained newest to oldest, so the exact span is found
//! without a table of its own. A call is 64 bytes without pointers (names are indices into a
//! bounded table of the shard), so remembering one writes one cache line. Calls older than the
//! match window no longer match; memory is fixed by the capacity whatever the traffic.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};

/// One remembered call: one cache line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct RecentCall {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    /// Key hash of the response id; 0 when none.
    response: u64,
    /// Key hash of the conversation id; 0 when none.
    conversation: u64,
    /// When llmwatch saw the call (Unix seconds); the match window counts from here.
    seen_at: u32,
    /// Insertion number (never 0).
    seq: u32,
    /// The previous call of the same trace: its slot and seq (seq 0: none).
    prev_slot: u32,
    prev_seq: u32,
    /// Indices into the shard's names.
    service: u32,
    /// The model's index; the top bit says feedback already matched the call.
    model: u32,
}

const FEEDBACK_BIT: u32 = 1 << 31;

impl RecentCall {
    /// The call's trace and span id.
    pub fn ids(&self) -> ([u8; 16], [u8; 8]) {
        (self.trace_id, self.span_id)
    }

    /// When llmwatch saw the call (Unix seconds).
    pub fn seen_at(&self) -> u64 {
        u64::from(self.seen_at)
    }

    /// Marks the call as having had feedback; returns whether it had none before (coverage
    /// counts a call once).
    pub fn mark_feedback(&mut self) -> bool {
        let first = self.model & FEEDBACK_BIT == 0;
        self.model |= FEEDBACK_BIT;
        first
    }
}

/// A call found, with the names it refers to.
#[derive(Debug)]
pub struct Found<'a> {
    pub call: &'a mut RecentCall,
    names: &'a [Arc<str>],
}

impl Found<'_> {
    pub fn service(&self) -> Arc<str> {
        self.names[self.call.service as usize].clone()
    }

    pub fn model(&self) -> Arc<str> {
        self.names[(self.call.model & !FEEDBACK_BIT) as usize].clone()
    }
}

/// Distinct service and model names a shard keeps; further ones are remembered as empty.
const MAX_NAMES: usize = 4_096;

/// The service and model names calls refer to by index; index 0 is the empty name.
#[derive(Debug)]
struct Names {
    names: Vec<Arc<str>>,
    index: FxHashMap<Arc<str>, u32>,
    /// The last names interned: calls come in runs of one service and model.
    last: [u32; 4],
    next: usize,
}

impl Names {
    fn new() -> Names {
        Names {
            names: vec![Arc::from("")],
            index: FxHashMap::default(),
            last: [0; 4],
            next: 0,
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        // Names end up as label values, which are cut there anyway.
        let mut end = name.len().min(crate::labeled::MAX_LABEL_VALUE_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let name = &name[..end];
        if let Some(&hit) = self
            .last
            .iter()
            .find(|&&i| &*self.names[i as usize] == name)
        {
            return hit;
        }
        let at = match self.index.get(name) {
            Some(&at) => at,
            None if self.names.len() >= MAX_NAMES => 0,
            None => {
                let shared: Arc<str> = Arc::from(name);
                self.names.push(shared.clone());
                let at = (self.names.len() - 1) as u32;
                self.index.insert(shared, at);
                at
            }
        };
        self.last[self.next] = at;
        self.next = (self.next + 1) % self.last.len();
        at
    }
}

/// How a piece of feedback found its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The exact span (trace and span id).
    Span,
    ResponseId,
    /// The latest call in the trace.
    Trace,
    /// The latest call in the conversation.
    Conversation,
}

/// Hash of a text key (response or conversation id); never 0, which means "none".
pub fn text_key(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish().max(1)
}

/// Hash of a byte key (a trace id).
pub fn bytes_key(bytes: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn trace_key(trace_id: &[u8]) -> u64 {
    bytes_key(trace_id)
}

/// Calls of one trace walked when looking for a span (agent traces rarely make more).
const MAX_CHAIN: usize = 256;

/// Ways per set.
const WAYS: usize = 4;

/// One entry of a [`Table`]: part of the key's hash and the call's place in the ring.
#[derive(Debug, Clone, Copy, Default)]
struct Way {
    tag: u32,
    slot: u32,
    /// The call's seq; 0 for an empty way.
    seq: u32,
}

/// A set-associative map from key hashes to ring slots, sized once.
#[derive(Debug)]
struct Table {
    sets: Box<[[Way; WAYS]]>,
}

impl Table {
    /// Room for about `entries` keys.
    fn new(entries: usize) -> Table {
        let sets = entries.div_ceil(WAYS).next_power_of_two();
        Table {
            sets: vec![[Way::default(); WAYS]; sets].into(),
        }
    }

    /// The key's set and tag; the set from mixed high bits, since the low bits chose the shard.
    fn place(&self, key: u64) -> (usize, u32) {
        let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let set = (mixed >> 32) as usize & (self.sets.len() - 1);
        (set, (key >> 16) as u32)
    }

    /// Points `key` at `slot`; returns the slot the key pointed at before, if still live.
    fn insert(
        &mut self,
        key: u64,
        slot: u32,
        seq: u32,
        live: impl Fn(&Way) -> bool,
    ) -> Option<u32> {
        let (set, tag) = self.place(key);
        let ways = &mut self.sets[set];
        let way = Way { tag, slot, seq };
        if let Some(same) = ways
            .iter_mut()
            .find(|w| w.seq != 0 && w.tag == tag && live(w))
        {
            return Some(std::mem::replace(same, way).slot);
        }
        // An empty or dead way, else the oldest.
        let at = ways
            .iter()
            .position(|w| w.seq == 0 || !live(w))
            .unwrap_or_else(|| {
                (0..WAYS)
                    .max_by_key(|&i| seq.wrapping_sub(ways[i].seq))
                    .unwrap_or(0)
            });
        ways[at] = way;
        None
    }

    /// The live slots whose key hash may be `key`.
    fn get(&self, key: u64, live: impl Fn(&Way) -> bool) -> impl Iterator<Item = usize> {
        let (set, tag) = self.place(key);
        let ways = self.sets[set];
        ways.into_iter()
            .filter(move |w| w.seq != 0 && w.tag == tag && live(w))
            .map(|w| w.slot as usize)
    }
}

/// Which shard of several a trace id belongs to.
pub fn shard_of(trace_id: &[u8], shards: usize) -> usize {
    (trace_key(trace_id) % shards as u64) as usize
}

/// The calls one shard remembers.
#[derive(Debug)]
pub struct RecentCalls {
    capacity: usize,
    match_window: u64,
    slots: Vec<RecentCall>,
    /// The slot the next call overwrites once the ring is full.
    next: usize,
    /// The last call's seq.
    seq: u32,
    names: Names,
    by_trace: Table,
    by_response: Table,
    by_conversation: Table,
}

/// The keys of one call to remember.
#[derive(Debug, Clone, Copy)]
pub struct CallKeys<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub response_id: Option<&'a str>,
    /// [`text_key`] of the conversation id.
    pub conversation: Option<u64>,
}

impl RecentCalls {
    /// At most `capacity` calls, matchable for `match_window` seconds after they were seen.
    pub fn new(capacity: usize, match_window: u64) -> RecentCalls {
        RecentCalls {
            capacity,
            match_window,
            slots: Vec::new(),
            next: 0,
            seq: 0,
            names: Names::new(),
            // Four ways per call for the ids feedback names: fewer than 1 in 100 keys is pushed
            // out of its set before its call leaves the ring. Conversations repeat: two.
            by_trace: Table::new(4 * capacity),
            by_response: Table::new(4 * capacity),
            by_conversation: Table::new(2 * capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Remembers a call, overwriting the oldest when full.
    pub fn insert(&mut self, keys: &CallKeys<'_>, service: &str, model: &str, now: u64) {
        if self.capacity == 0 || keys.trace_id.len() != 16 || keys.span_id.len() != 8 {
            return;
        }
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut call = RecentCall {
            trace_id: [0; 16],
            span_id: [0; 8],
            response: keys.response_id.map_or(0, text_key),
            conversation: keys.conversation.unwrap_or(0),
            seen_at: now.min(u64::from(u32::MAX)) as u32,
            seq: self.seq,
            prev_slot: 0,
            prev_seq: 0,
            service: self.names.intern(service),
            model: self.names.intern(model),
        };
        call.trace_id.copy_from_slice(keys.trace_id);
        call.span_id.copy_from_slice(keys.span_id);
        let slot = if self.slots.len() < self.capacity {
            self.slots.push(call);
            self.slots.len() - 1
        } else {
            let slot = self.next;
            self.slots[slot] = call;
            self.next = (slot + 1) % self.capacity;
            slot
        };
        let (slot32, seq) = (slot as u32, self.seq);
        let live = self.way_is_live();
        if let Some(previous) = self
            .by_trace
            .insert(trace_key(keys.trace_id), slot32, seq, &live)
        {
            let before = self.slots[previous as usize];
            if previous != slot32 && before.trace_id[..] == *keys.trace_id {
                self.slots[slot].prev_slot = previous;
                self.slots[slot].prev_seq = before.seq;
            }
        }
        if call.response != 0 {
            self.by_response.insert(call.response, slot32, seq, &live);
        }
        if call.conversation != 0 {
            self.by_conversation
                .insert(call.conversation, slot32, seq, &live);
        }
    }

    /// Whether a way's call is still in the ring (fewer than `capacity` calls came after it).
    fn way_is_live(&self) -> impl Fn(&Way) -> bool + use<> {
        let (current, capacity) = (self.seq, self.capacity as u32);
        move |way: &Way| current.wrapping_sub(way.seq) < capacity
    }

    fn found(&mut self, slot: usize) -> Found<'_> {
        Found {
            call: &mut self.slots[slot],
            names: &self.names.names,
        }
    }

    /// Within the match window.
    fn recent(&self, slot: usize, now: u64) -> bool {
        now.saturating_sub(self.slots[slot].seen_at()) <= self.match_window
    }

    /// The live, recent slot among a key's candidates that really holds the key.
    fn lookup(
        &self,
        table: &Table,
        key: u64,
        now: u64,
        holds: impl Fn(&RecentCall) -> bool,
    ) -> Option<usize> {
        let slot = table
            .get(key, self.way_is_live())
            .filter(|&slot| holds(&self.slots[slot]))
            .min_by_key(|&slot| self.seq.wrapping_sub(self.slots[slot].seq))?;
        self.recent(slot, now).then_some(slot)
    }

    /// The exact span, else the latest call of the trace.
    pub fn find_by_ids(
        &mut self,
        trace_id: &[u8],
        span_id: &[u8],
        now: u64,
    ) -> Option<(Found<'_>, MatchedBy)> {
        if trace_id.is_empty() {
            return None;
        }
        let latest = self.lookup(&self.by_trace, trace_key(trace_id), now, |call| {
            call.trace_id[..] == *trace_id
        })?;
        if !span_id.is_empty() {
            // Newest to oldest along the trace's chain, while the links are not reused slots.
            let mut at = Some(latest);
            for _ in 0..MAX_CHAIN {
                let Some(slot) = at else { break };
                let call = &self.slots[slot];
                if call.span_id[..] == *span_id {
                    if !self.recent(slot, now) {
                        break;
                    }
                    return Some((self.found(slot), MatchedBy::Span));
                }
                let before = &self.slots[call.prev_slot as usize];
                at = (call.prev_seq != 0
                    && before.seq == call.prev_seq
                    && before.trace_id[..] == *trace_id)
                    .then_some(call.prev_slot as usize);
            }
        }
        Some((self.found(latest), MatchedBy::Trace))
    }

    /// The latest call of the trace.
    pub fn find_by_trace(&mut self, trace_id: &[u8], now: u64) -> Option<Found<'_>> {
        let slot = self.lookup(&self.by_trace, trace_key(trace_id), now, |call| {
            call.trace_id[..] == *trace_id
        })?;
        Some(self.found(slot))
    }

    /// The latest call with this response id (by its [`text_key`]).
    pub fn find_by_response(&mut self, response: u64, now: u64) -> Option<Found<'_>> {
        let slot = self.lookup(&self.by_response, response, now, |call| {
            call.response == response
        })?;
        Some(self.found(slot))
    }

    /// The latest call of the conversation (by its [`text_key`]).
    pub fn find_by_conversation(&mut self, conversation: u64, now: u64) -> Option<Found<'_>> {
        let slot = self.lookup(&self.by_conversation, conversation, now, |call| {
            call.conversation == conversation
        })?;
        Some(self.found(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(trace: &'a [u8; 16], span: &'a [u8; 8], response: Option<&'a str>) -> CallKeys<'a> {
        CallKeys {
            trace_id: trace,
            span_id: span,
            response_id: response,
            conversation: Some(text_key("conv")),
        }
    }

    #[test]
    fn finds_by_span_then_trace_response_and_conversation() {
        let mut recent = RecentCalls::new(10, 3600);
        let (trace, a, b) = ([1; 16], [1; 8], [2; 8]);
        recent.insert(&keys(&trace, &a, Some("r-a")), "svc", "m-a", 100);
        recent.insert(&keys(&trace, &b, Some("r-b")), "svc", "m-b", 100);
        let (found, by) = recent.find_by_ids(&trace, &a, 100).unwrap();
        assert_eq!(
            (&*found.model(), &*found.service(), by),
            ("m-a", "svc", MatchedBy::Span)
        );
        assert!(found.call.mark_feedback());
        // An unknown span of a known trace: the trace's latest call.
        let (found, by) = recent.find_by_ids(&trace, &[9; 8], 100).unwrap();
        assert_eq!((&*found.model(), by), ("m-b", MatchedBy::Trace));
        assert!(found.call.model & FEEDBACK_BIT == 0);
        let found = recent.find_by_response(text_key("r-a"), 100).unwrap();
        assert!(!found.call.mark_feedback());
        let found = recent.find_by_conversation(text_key("conv"), 100).unwrap();
        assert_eq!(&*found.model(), "m-b");
        assert!(recent.find_by_ids(&[2; 16], &a, 100).is_none());
        assert!(recent.find_by_response(text_key("r-c"), 100).is_none());
    }

    #[test]
    fn the_oldest_call_is_overwritten_and_old_calls_stop_matching() {
        let mut recent = RecentCalls::new(3, 60);
        for i in 0..5u8 {
            let response = format!("r-{i}");
            recent.insert(
                &keys(&[i + 1; 16], &[1; 8], Some(&response)),
                "svc",
                "m",
                i as u64 * 10,
            );
        }
        assert_eq!(recent.len(), 3);
        assert!(recent.find_by_ids(&[1; 16], &[1; 8], 40).is_none());
        assert!(recent.find_by_response(text_key("r-1"), 40).is_none());
        assert!(recent.find_by_ids(&[3; 16], &[1; 8], 40).is_some());
        // r-2 was seen at 20: matchable until 80.
        assert!(recent.find_by_response(text_key("r-2"), 80).is_some());
        assert!(recent.find_by_response(text_key("r-2"), 81).is_none());
    }

    #[test]
    fn spans_of_a_long_trace_are_found_along_its_chain_until_overwritten() {
        let mut recent = RecentCalls::new(4, 3600);
        let trace = [7; 16];
        for span in 1..=6u8 {
            let model = format!("m{span}");
            recent.insert(&keys(&trace, &[span; 8], None), "s", &model, 0);
        }
        // Spans 3 to 6 are remembered; 1 and 2 were overwritten: the trace's latest call.
        let found = |recent: &mut RecentCalls, span: u8| {
            let (found, by) = recent.find_by_ids(&trace, &[span; 8], 0).unwrap();
            (found.model().to_string(), by)
        };
        assert_eq!(found(&mut recent, 3), ("m3".to_owned(), MatchedBy::Span));
        assert_eq!(found(&mut recent, 6), ("m6".to_owned(), MatchedBy::Span));
        assert_eq!(found(&mut recent, 1), ("m6".to_owned(), MatchedBy::Trace));
        // Another trace reusing the slots breaks no chain into the wrong trace.
        recent.insert(&keys(&[8; 16], &[3; 8], None), "s", "x", 0);
        assert_eq!(found(&mut recent, 3), ("m6".to_owned(), MatchedBy::Trace));
        assert_eq!(found(&mut recent, 4), ("m4".to_owned(), MatchedBy::Span));
    }

    #[test]
    fn nearly_every_call_in_the_ring_stays_findable() {
        // Set-associative tables lose a key only when five newer keys land in its set first.
        let mut recent = RecentCalls::new(1_000, 3600);
        let trace = |i: u32| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            id[4] = 1;
            id
        };
        for i in 0..3_000u32 {
            let response = format!("r-{i}");
            let id = trace(i);
            recent.insert(&keys(&id, &[1; 8], Some(&response)), "s", "m", 0);
        }
        let by_trace = (2_000..3_000)
            .filter(|&i| recent.find_by_ids(&trace(i), &[1; 8], 0).is_some())
            .count();
        let by_response = (2_000..3_000)
            .filter(|&i| {
                recent
                    .find_by_response(text_key(&format!("r-{i}")), 0)
                    .is_some()
            })
            .count();
        assert!(
            by_trace >= 990 && by_response >= 990,
            "{by_trace} {by_response}"
        );
        // Overwritten calls are never returned for their keys.
        assert!((0..2_000).all(|i| recent.find_by_ids(&trace(i), &[1; 8], 0).is_none()));
    }

    #[test]
    fn a_call_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<RecentCall>(), 64);
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let mut recent = RecentCalls::new(0, 60);
        recent.insert(&keys(&[1; 16], &[1; 8], None), "s", "m", 0);
        assert!(recent.is_empty());
    }
}
