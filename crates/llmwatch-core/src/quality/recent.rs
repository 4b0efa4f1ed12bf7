//! The recent-call index: which call a piece of feedback is about. A ring of the last N calls
//! with three small maps of 64-bit key hashes onto it (trace+span, trace, response id) and one
//! for the conversation; the oldest call is overwritten first and calls older than the match
//! window no longer match, so memory is fixed by the capacity whatever the traffic.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};

/// What feedback learns from the call it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentCall {
    pub service: Arc<str>,
    pub model: Arc<str>,
    /// Hash of the conversation id, when the call had one.
    pub conversation: Option<u64>,
    pub end_unix_nano: u64,
    /// When llmwatch saw the call (Unix seconds); the match window counts from here.
    pub seen_at: u64,
    /// Whether feedback already matched this call (coverage counts a call once).
    pub has_feedback: bool,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    response: Option<u64>,
}

impl RecentCall {
    /// The call's trace and span id.
    pub fn ids(&self) -> ([u8; 16], [u8; 8]) {
        (self.trace_id, self.span_id)
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

/// Hash of a text key (response or conversation id).
pub fn text_key(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    text.hash(&mut hasher);
    hasher.finish()
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

fn span_key(trace_id: &[u8], span_id: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    trace_id.hash(&mut hasher);
    span_id.hash(&mut hasher);
    hasher.finish()
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
    by_span: FxHashMap<u64, u32>,
    by_trace: FxHashMap<u64, u32>,
    by_response: FxHashMap<u64, u32>,
    by_conversation: FxHashMap<u64, u32>,
}

/// The keys of one call to remember.
#[derive(Debug, Clone, Copy)]
pub struct CallKeys<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub response_id: Option<&'a str>,
    pub conversation: Option<u64>,
    pub end_unix_nano: u64,
}

impl RecentCalls {
    /// At most `capacity` calls, matchable for `match_window` seconds after they were seen.
    pub fn new(capacity: usize, match_window: u64) -> RecentCalls {
        RecentCalls {
            capacity,
            match_window,
            slots: Vec::new(),
            next: 0,
            by_span: FxHashMap::default(),
            by_trace: FxHashMap::default(),
            by_response: FxHashMap::default(),
            by_conversation: FxHashMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Remembers a call, overwriting the oldest when full.
    pub fn insert(&mut self, keys: &CallKeys<'_>, service: Arc<str>, model: Arc<str>, now: u64) {
        if self.capacity == 0 || keys.trace_id.len() != 16 || keys.span_id.len() != 8 {
            return;
        }
        let mut call = RecentCall {
            service,
            model,
            conversation: keys.conversation,
            end_unix_nano: keys.end_unix_nano,
            seen_at: now,
            has_feedback: false,
            trace_id: [0; 16],
            span_id: [0; 8],
            response: keys.response_id.map(text_key),
        };
        call.trace_id.copy_from_slice(keys.trace_id);
        call.span_id.copy_from_slice(keys.span_id);
        let slot = if self.slots.len() < self.capacity {
            self.slots.push(call);
            self.slots.len() - 1
        } else {
            let slot = self.next;
            self.forget(slot);
            self.slots[slot] = call;
            self.next = (slot + 1) % self.capacity;
            slot
        };
        let call = &self.slots[slot];
        let slot = slot as u32;
        self.by_span
            .insert(span_key(&call.trace_id, &call.span_id), slot);
        self.by_trace.insert(trace_key(&call.trace_id), slot);
        if let Some(response) = call.response {
            self.by_response.insert(response, slot);
        }
        if let Some(conversation) = call.conversation {
            self.by_conversation.insert(conversation, slot);
        }
    }

    /// Removes the map entries that still point at `slot`.
    fn forget(&mut self, slot: usize) {
        let old = &self.slots[slot];
        let slot32 = slot as u32;
        let remove = |map: &mut FxHashMap<u64, u32>, key: u64| {
            if map.get(&key) == Some(&slot32) {
                map.remove(&key);
            }
        };
        remove(&mut self.by_span, span_key(&old.trace_id, &old.span_id));
        remove(&mut self.by_trace, trace_key(&old.trace_id));
        if let Some(response) = old.response {
            remove(&mut self.by_response, response);
        }
        if let Some(conversation) = old.conversation {
            remove(&mut self.by_conversation, conversation);
        }
    }

    fn live(&self, slot: Option<&u32>, now: u64) -> Option<usize> {
        let slot = *slot? as usize;
        let call = &self.slots[slot];
        (now.saturating_sub(call.seen_at) <= self.match_window).then_some(slot)
    }

    /// The exact span, else the latest call of the trace.
    pub fn find_by_ids(
        &mut self,
        trace_id: &[u8],
        span_id: &[u8],
        now: u64,
    ) -> Option<(&mut RecentCall, MatchedBy)> {
        if trace_id.is_empty() {
            return None;
        }
        if !span_id.is_empty()
            && let Some(slot) = self.live(self.by_span.get(&span_key(trace_id, span_id)), now)
            && self.slots[slot].trace_id[..] == *trace_id
            && self.slots[slot].span_id[..] == *span_id
        {
            return Some((&mut self.slots[slot], MatchedBy::Span));
        }
        self.find_by_trace(trace_id, now)
            .map(|call| (call, MatchedBy::Trace))
    }

    /// The latest call of the trace.
    pub fn find_by_trace(&mut self, trace_id: &[u8], now: u64) -> Option<&mut RecentCall> {
        let slot = self.live(self.by_trace.get(&trace_key(trace_id)), now)?;
        (self.slots[slot].trace_id[..] == *trace_id).then(|| &mut self.slots[slot])
    }

    /// The latest call with this response id (by its hash).
    pub fn find_by_response(&mut self, response: u64, now: u64) -> Option<&mut RecentCall> {
        let slot = self.live(self.by_response.get(&response), now)?;
        Some(&mut self.slots[slot])
    }

    /// The latest call of the conversation (by its hash).
    pub fn find_by_conversation(&mut self, conversation: u64, now: u64) -> Option<&mut RecentCall> {
        let slot = self.live(self.by_conversation.get(&conversation), now)?;
        Some(&mut self.slots[slot])
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
            end_unix_nano: 5,
        }
    }

    #[test]
    fn finds_by_span_then_trace_response_and_conversation() {
        let mut recent = RecentCalls::new(10, 3600);
        let (trace, a, b) = ([1; 16], [1; 8], [2; 8]);
        recent.insert(
            &keys(&trace, &a, Some("r-a")),
            "svc".into(),
            "m-a".into(),
            100,
        );
        recent.insert(
            &keys(&trace, &b, Some("r-b")),
            "svc".into(),
            "m-b".into(),
            100,
        );
        let (call, by) = recent.find_by_ids(&trace, &a, 100).unwrap();
        assert_eq!((&*call.model, by), ("m-a", MatchedBy::Span));
        call.has_feedback = true;
        // An unknown span of a known trace: the trace's latest call.
        let (call, by) = recent.find_by_ids(&trace, &[9; 8], 100).unwrap();
        assert_eq!((&*call.model, by), ("m-b", MatchedBy::Trace));
        assert!(!call.has_feedback);
        let call = recent.find_by_response(text_key("r-a"), 100).unwrap();
        assert!(call.has_feedback);
        let call = recent.find_by_conversation(text_key("conv"), 100).unwrap();
        assert_eq!(&*call.model, "m-b");
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
                "svc".into(),
                "m".into(),
                i as u64 * 10,
            );
        }
        assert_eq!(recent.len(), 3);
        assert_eq!(recent.by_span.len(), 3);
        assert_eq!(recent.by_response.len(), 3);
        assert!(recent.find_by_ids(&[1; 16], &[1; 8], 40).is_none());
        assert!(recent.find_by_response(text_key("r-1"), 40).is_none());
        assert!(recent.find_by_ids(&[3; 16], &[1; 8], 40).is_some());
        // r-2 was seen at 20: matchable until 80.
        assert!(recent.find_by_response(text_key("r-2"), 80).is_some());
        assert!(recent.find_by_response(text_key("r-2"), 81).is_none());
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let mut recent = RecentCalls::new(0, 60);
        recent.insert(&keys(&[1; 16], &[1; 8], None), "s".into(), "m".into(), 0);
        assert!(recent.is_empty());
    }
}
