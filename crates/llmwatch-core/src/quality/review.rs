//! The review queue: flagged calls (a low score, a safety flag) kept for the "look at 20 flagged
//! responses" step of incident triage.
//!
//! This is the in-memory part: a bounded list of the newest entries, and the entries not yet
//! written to disk. The server writes those to a rotated JSON-lines file in the data directory off
//! the ingest path and reads the file back at start; pushing never waits on disk.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Limits and content policy of the review queue.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewConfig {
    /// Entries kept in memory and listed; 0 turns the queue off.
    pub max_entries: usize,
    /// Keep the prompt and answer in entries (they may hold personal data).
    pub include_content: bool,
    /// Longest prompt or answer kept, in characters, when content is included.
    pub max_content_chars: usize,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            max_entries: 1_000,
            include_content: false,
            max_content_chars: 4_000,
        }
    }
}

/// One score on a flagged call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewScore {
    /// The evaluation's name, e.g. `correctness`.
    pub name: String,
    /// `judge`, `plugin`, `external` or `user`.
    pub source: String,
    /// The evaluator (`judge` or a plugin's name) when llmwatch ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
    /// On 0..1 for the judge and plugins; as reported otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub flagged: bool,
}

/// One flagged call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewEntry {
    /// When it was flagged, Unix nanoseconds.
    pub flagged_unix_nano: u64,
    /// Hex; empty when the call's trace is unknown.
    pub trace_id: String,
    pub span_id: String,
    pub service_name: String,
    pub request_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    pub scores: Vec<ReviewScore>,
    /// Why it was flagged, one line per reason (a low score with the judge's explanation, a
    /// safety category).
    pub reasons: Vec<String>,
    /// Safety categories raised on the call: the pattern monitor's, then the LLM safety judge's.
    pub safety_flags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[derive(Debug, Default)]
struct State {
    /// Newest last.
    recent: VecDeque<Arc<ReviewEntry>>,
    /// Pushed since the last [`ReviewLog::take_unwritten`], oldest first.
    unwritten: VecDeque<Arc<ReviewEntry>>,
}

/// The bounded in-memory review queue.
#[derive(Debug)]
pub struct ReviewLog {
    config: ReviewConfig,
    state: Mutex<State>,
    /// Entries dropped before they could be written (the writer fell behind).
    unwritten_dropped: AtomicU64,
}

impl ReviewLog {
    pub fn new(config: ReviewConfig) -> ReviewLog {
        ReviewLog {
            config,
            state: Mutex::new(State::default()),
            unwritten_dropped: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &ReviewConfig {
        &self.config
    }

    pub fn enabled(&self) -> bool {
        self.config.max_entries > 0
    }

    /// Content for an entry: `None` unless configured, cut to the configured length.
    pub fn content(&self, text: Option<&str>) -> Option<String> {
        let text = text.filter(|_| self.config.include_content)?;
        Some(
            match text.char_indices().nth(self.config.max_content_chars) {
                Some((cut, _)) => format!("{}…", &text[..cut]),
                None => text.to_owned(),
            },
        )
    }

    /// Adds an entry (to be written by the server); the oldest goes when full.
    pub fn push(&self, mut entry: ReviewEntry) {
        if !self.enabled() {
            return;
        }
        if !self.config.include_content {
            entry.input = None;
            entry.output = None;
        }
        let entry = Arc::new(entry);
        let mut state = self.state.lock();
        if state.recent.len() >= self.config.max_entries {
            state.recent.pop_front();
        }
        state.recent.push_back(entry.clone());
        if state.unwritten.len() >= self.config.max_entries {
            state.unwritten.pop_front();
            self.unwritten_dropped.fetch_add(1, Ordering::Relaxed);
        }
        state.unwritten.push_back(entry);
    }

    /// Entries read back from disk at start, oldest first; they are not written again.
    pub fn restore(&self, entries: impl IntoIterator<Item = ReviewEntry>) {
        let mut state = self.state.lock();
        for entry in entries {
            if state.recent.len() >= self.config.max_entries {
                state.recent.pop_front();
            }
            state.recent.push_back(Arc::new(entry));
        }
    }

    /// The newest `limit` entries, newest first.
    pub fn list(&self, limit: usize) -> Vec<Arc<ReviewEntry>> {
        let state = self.state.lock();
        state.recent.iter().rev().take(limit).cloned().collect()
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.state.lock().recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries to append to the file, oldest first.
    pub fn take_unwritten(&self) -> Vec<Arc<ReviewEntry>> {
        self.state.lock().unwritten.drain(..).collect()
    }

    /// Entries that were never written because the writer fell a whole queue behind.
    pub fn unwritten_dropped(&self) -> u64 {
        self.unwritten_dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> ReviewEntry {
        ReviewEntry {
            flagged_unix_nano: n,
            trace_id: hex(&[n as u8; 16]),
            span_id: hex(&[1; 8]),
            service_name: "svc".into(),
            request_model: "m".into(),
            response_id: None,
            scores: vec![],
            reasons: vec![],
            safety_flags: vec!["pii_email".into()],
            input: Some("Q".into()),
            output: Some("A".into()),
        }
    }

    #[test]
    fn newest_first_bounded_and_drained_for_the_writer() {
        let log = ReviewLog::new(ReviewConfig {
            max_entries: 3,
            ..ReviewConfig::default()
        });
        for n in 1..=5 {
            log.push(entry(n));
        }
        let listed: Vec<u64> = log.list(10).iter().map(|e| e.flagged_unix_nano).collect();
        assert_eq!(listed, [5, 4, 3]);
        assert_eq!(log.list(2).len(), 2);
        assert_eq!(log.len(), 3);
        // Content is left out unless configured.
        assert_eq!(log.list(1)[0].input, None);
        let unwritten: Vec<u64> = log
            .take_unwritten()
            .iter()
            .map(|e| e.flagged_unix_nano)
            .collect();
        assert_eq!(unwritten, [3, 4, 5]);
        assert_eq!(log.unwritten_dropped(), 2);
        assert!(log.take_unwritten().is_empty());
    }

    #[test]
    fn content_only_when_configured_and_cut() {
        let log = ReviewLog::new(ReviewConfig {
            max_entries: 3,
            include_content: true,
            max_content_chars: 3,
        });
        assert_eq!(log.content(Some("abcdef")).as_deref(), Some("abc…"));
        assert_eq!(log.content(Some("äb")).as_deref(), Some("äb"));
        log.push(entry(1));
        assert_eq!(log.list(1)[0].output.as_deref(), Some("A"));
        let off = ReviewLog::new(ReviewConfig {
            max_entries: 0,
            ..ReviewConfig::default()
        });
        off.push(entry(1));
        assert!(off.is_empty());
    }

    #[test]
    fn restored_entries_are_listed_not_rewritten() {
        let log = ReviewLog::new(ReviewConfig::default());
        log.restore([entry(1), entry(2)]);
        log.push(entry(3));
        assert_eq!(log.list(5).len(), 3);
        assert_eq!(log.take_unwritten().len(), 1);
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
