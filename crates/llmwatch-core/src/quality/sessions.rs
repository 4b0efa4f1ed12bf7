//! Implicit signals from sessions: what users do next says how the last answer landed.
//!
//! A session is one conversation id of one service. Its calls are grouped into turns: a call in a
//! new trace, or whose last user message differs from the turn's, starts a turn (the calls of an
//! agent loop share the trace and the user message). Each turn after the first is at most one of,
//! in this order:
//! - `retry`: the same prompt again (the whole captured input, or the last user message, hashes
//!   equal to the previous turn's): a regenerate or a re-asked question;
//! - `correction`: the new user message starts with a configured phrase ("no,", "that's wrong");
//! - `follow_up`: the turn started within the follow-up window after the previous turn ended.
//!
//! Retry and correction need captured input; without it only follow-ups and abandonment are
//! detectable. A session ends when no call arrives for the inactivity timeout (found by
//! [`Sessions::sweep`]) or when it is evicted as the least recently active one to make room; it is
//! `abandonment` when it ended after its first turn.
//!
//! Pure: time is an argument, state is bounded by the session limit.

use std::collections::VecDeque;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// The implicit signals: the `signal` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSignal {
    FollowUp,
    Retry,
    Correction,
    Abandonment,
}

impl SessionSignal {
    pub const ALL: [SessionSignal; 4] = [
        SessionSignal::FollowUp,
        SessionSignal::Retry,
        SessionSignal::Correction,
        SessionSignal::Abandonment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SessionSignal::FollowUp => "follow_up",
            SessionSignal::Retry => "retry",
            SessionSignal::Correction => "correction",
            SessionSignal::Abandonment => "abandonment",
        }
    }
}

/// How turns are read.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRules {
    /// A turn starting this long (nanoseconds) or less after the previous turn ended is a
    /// follow-up.
    pub follow_up_window_nanos: u64,
    /// Lowercase phrases that start a correcting user message.
    pub correction_phrases: Vec<String>,
}

impl TurnRules {
    /// Whether a user message starts with a correction phrase, as a whole word: "no," matches
    /// "No, I meant…", "actually" does not match "actuallyx"; case and curly apostrophes ignored.
    pub fn is_correction(&self, user_text: &str) -> bool {
        let text = user_text
            .trim_start_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .to_lowercase()
            .replace('\u{2019}', "'");
        self.correction_phrases.iter().any(|phrase| {
            let phrase = phrase.trim();
            !phrase.is_empty()
                && text.starts_with(phrase)
                && (phrase.ends_with(|c: char| !c.is_alphanumeric())
                    || !text[phrase.len()..].starts_with(char::is_alphanumeric))
        })
    }
}

/// One call of a session, as turns need it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnCall<'a> {
    pub trace_id: &'a [u8],
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Hash of the whole captured input.
    pub input_hash: Option<u64>,
    /// The last user message of the captured input.
    pub user_text: Option<&'a str>,
}

/// A session that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub service: Arc<str>,
    pub turns: u32,
    /// Made room for a new session instead of timing out.
    pub evicted: bool,
}

impl EndedSession {
    /// Ended after the first answer: the user never came back.
    pub fn abandoned(&self) -> bool {
        self.turns == 1
    }
}

/// What one call did to its session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The call started a turn.
    pub new_turn: bool,
    pub signal: Option<SessionSignal>,
    /// The session evicted to make room for this one.
    pub evicted: Option<EndedSession>,
}

#[derive(Debug)]
struct Session {
    service: Arc<str>,
    turns: u32,
    trace: u64,
    /// Hash of the current turn's last user message.
    user: Option<u64>,
    /// Hash of the current turn's first captured input.
    turn_input: Option<u64>,
    /// Latest end of any call of the session.
    last_end: u64,
    /// When the session was last active (Unix seconds, llmwatch's clock).
    touched: u64,
    /// Activity counter at the last call, for the eviction order.
    touched_seq: u64,
}

/// Open sessions, at most `capacity`, keyed by a hash of (service, conversation id).
#[derive(Debug)]
pub struct Sessions {
    capacity: usize,
    by_key: FxHashMap<u64, Session>,
    /// Eviction candidates, (key, activity counter when queued), oldest first. A session active
    /// since it was queued goes to the back instead (second chance), so the one evicted is about
    /// the least recently active without reordering anything per call. Entries of ended sessions
    /// are dropped lazily.
    queue: VecDeque<(u64, u64)>,
    seq: u64,
}

fn hash_text(text: &str) -> u64 {
    crate::quality::recent::text_key(text)
}

/// The user message as retries compare it: trimmed, lowercase.
fn user_key(text: &str) -> u64 {
    hash_text(&text.trim().to_lowercase())
}

impl Sessions {
    pub fn new(capacity: usize) -> Sessions {
        Sessions {
            capacity,
            by_key: FxHashMap::default(),
            queue: VecDeque::new(),
            seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Adds one call to session `key` at `now` (Unix seconds).
    pub fn observe(
        &mut self,
        key: u64,
        service: &Arc<str>,
        call: &TurnCall<'_>,
        rules: &TurnRules,
        now: u64,
    ) -> Observed {
        let mut observed = Observed::default();
        if self.capacity == 0 {
            return observed;
        }
        let trace = crate::quality::recent::bytes_key(call.trace_id);
        let user = call.user_text.map(user_key);
        let Some(session) = self.by_key.get_mut(&key) else {
            if self.by_key.len() >= self.capacity {
                observed.evicted = self.evict();
            }
            self.by_key.insert(
                key,
                Session {
                    service: service.clone(),
                    turns: 1,
                    trace,
                    user,
                    turn_input: call.input_hash,
                    last_end: call.end_unix_nano,
                    touched: now,
                    touched_seq: self.seq,
                },
            );
            self.queue.push_back((key, self.seq));
            self.seq += 1;
            if self.queue.len() > 2 * self.capacity.max(8) {
                self.compact();
            }
            observed.new_turn = true;
            return observed;
        };
        session.touched = now;
        session.touched_seq = self.seq;
        self.seq += 1;
        let new_turn =
            trace != session.trace || matches!((user, session.user), (Some(a), Some(b)) if a != b);
        if new_turn {
            let same_input = call.input_hash.is_some() && call.input_hash == session.turn_input;
            let same_user = user.is_some() && user == session.user;
            observed.signal = if same_input || same_user {
                Some(SessionSignal::Retry)
            } else if call.user_text.is_some_and(|t| rules.is_correction(t)) {
                Some(SessionSignal::Correction)
            } else if call.start_unix_nano.saturating_sub(session.last_end)
                <= rules.follow_up_window_nanos
            {
                Some(SessionSignal::FollowUp)
            } else {
                None
            };
            observed.new_turn = true;
            session.turns = session.turns.saturating_add(1);
            session.trace = trace;
            session.user = user;
            session.turn_input = call.input_hash;
        } else if session.user.is_none() {
            session.user = user;
        }
        session.last_end = session.last_end.max(call.end_unix_nano);
        observed
    }

    /// Ends every session inactive for longer than `timeout` seconds at `now`, except those
    /// `active` says are (a turn of theirs waits for its content).
    pub fn sweep(
        &mut self,
        now: u64,
        timeout: u64,
        active: impl Fn(u64) -> bool,
        mut ended: impl FnMut(EndedSession),
    ) {
        self.by_key.retain(|key, session| {
            let quiet = now.saturating_sub(session.touched) > timeout && !active(*key);
            if quiet {
                ended(EndedSession {
                    service: session.service.clone(),
                    turns: session.turns,
                    evicted: false,
                });
            }
            !quiet
        });
        self.compact();
    }

    /// Ends about the least recently active session to make room.
    fn evict(&mut self) -> Option<EndedSession> {
        while let Some((key, queued)) = self.queue.pop_front() {
            let Some(session) = self.by_key.get(&key) else {
                continue;
            };
            if session.touched_seq != queued {
                self.queue.push_back((key, session.touched_seq));
                continue;
            }
            let session = self.by_key.remove(&key)?;
            return Some(EndedSession {
                service: session.service,
                turns: session.turns,
                evicted: true,
            });
        }
        None
    }

    /// Drops the queue entries of sessions that ended.
    fn compact(&mut self) {
        let by_key = &self.by_key;
        self.queue.retain(|(key, _)| by_key.contains_key(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn rules() -> TurnRules {
        TurnRules {
            follow_up_window_nanos: 300 * S,
            correction_phrases: vec!["no,".into(), "that's wrong".into(), "actually".into()],
        }
    }

    fn turn<'a>(trace: &'a [u8], start: u64, input: &'a str, user: &'a str) -> TurnCall<'a> {
        TurnCall {
            trace_id: trace,
            start_unix_nano: start * S,
            end_unix_nano: (start + 2) * S,
            input_hash: (!input.is_empty()).then(|| hash_text(input)),
            user_text: (!user.is_empty()).then_some(user),
        }
    }

    #[test]
    fn corrections_match_whole_leading_phrases() {
        let rules = rules();
        assert!(rules.is_correction("No, I meant Lyon"));
        assert!(rules.is_correction("  That\u{2019}s wrong."));
        assert!(rules.is_correction("Actually I wanted the 2023 figures"));
        assert!(!rules.is_correction("Nothing else, thanks"));
        assert!(!rules.is_correction("actuallyx"));
        assert!(!rules.is_correction("Is that wrong?"));
    }

    #[test]
    fn turns_are_classified_retry_then_correction_then_follow_up() {
        let (rules, svc): (_, Arc<str>) = (rules(), "svc".into());
        let mut sessions = Sessions::new(10);
        let mut signals = Vec::new();
        let mut see = |sessions: &mut Sessions, call: TurnCall<'_>| {
            let observed = sessions.observe(1, &svc, &call, &rules, 0);
            signals.push((observed.new_turn, observed.signal));
        };
        see(&mut sessions, turn(&[1], 0, "q1", "Capital of France?"));
        // An agent step in the same trace: same turn.
        see(
            &mut sessions,
            turn(&[1], 3, "q1 tool", "Capital of France?"),
        );
        // Regenerate: the same input in a new trace, long after.
        see(&mut sessions, turn(&[2], 1_000, "q1", "Capital of France?"));
        see(
            &mut sessions,
            turn(&[3], 1_010, "q2", "No, the capital of Italy"),
        );
        see(&mut sessions, turn(&[4], 1_020, "q3", "And of Spain?"));
        // Beyond the follow-up window: a turn without a signal.
        see(&mut sessions, turn(&[5], 5_000, "q4", "Thanks"));
        // Re-typed question (different history, same last user message).
        see(&mut sessions, turn(&[6], 5_010, "q5", " thanks"));
        // No content captured: only the timing is known.
        see(&mut sessions, turn(&[7], 5_020, "", ""));
        assert_eq!(
            signals,
            [
                (true, None),
                (false, None),
                (true, Some(SessionSignal::Retry)),
                (true, Some(SessionSignal::Correction)),
                (true, Some(SessionSignal::FollowUp)),
                (true, None),
                (true, Some(SessionSignal::Retry)),
                (true, Some(SessionSignal::FollowUp)),
            ]
        );
    }

    #[test]
    fn sweep_ends_inactive_sessions_and_eviction_makes_room() {
        let (rules, svc): (_, Arc<str>) = (rules(), "svc".into());
        let mut sessions = Sessions::new(2);
        sessions.observe(1, &svc, &turn(&[1], 0, "", ""), &rules, 100);
        sessions.observe(2, &svc, &turn(&[2], 0, "", ""), &rules, 110);
        sessions.observe(2, &svc, &turn(&[3], 5, "", ""), &rules, 120);
        // Session 1 has been quiet since it started: it makes room for session 3.
        let observed = sessions.observe(3, &svc, &turn(&[5], 0, "", ""), &rules, 140);
        assert_eq!(
            observed.evicted,
            Some(EndedSession {
                service: svc.clone(),
                turns: 1,
                evicted: true
            })
        );
        assert_eq!(sessions.len(), 2);
        let mut ended = Vec::new();
        sessions.sweep(1_920, 1_800, |_| false, |e| ended.push(e));
        assert!(
            ended.is_empty(),
            "1800 s of inactivity is not past the timeout"
        );
        sessions.sweep(1_921, 1_800, |_| false, |e| ended.push(e));
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].turns, ended[0].abandoned()), (2, false));
        sessions.sweep(1_941, 1_800, |_| false, |e| ended.push(e));
        assert_eq!((ended[1].turns, ended[1].abandoned()), (1, true));
        assert!(sessions.is_empty() && sessions.queue.is_empty());
    }

    #[test]
    fn eviction_skips_sessions_active_since_they_were_queued_and_the_queue_stays_bounded() {
        let (rules, svc): (_, Arc<str>) = (rules(), "svc".into());
        let mut sessions = Sessions::new(4);
        for key in 0..4 {
            sessions.observe(key, &svc, &turn(&[key as u8], 0, "", ""), &rules, 0);
        }
        // 0 and 1 are active again; 2 is the first left alone since it was queued.
        sessions.observe(0, &svc, &turn(&[10], 5, "", ""), &rules, 1);
        sessions.observe(1, &svc, &turn(&[11], 5, "", ""), &rules, 1);
        let observed = sessions.observe(4, &svc, &turn(&[12], 0, "", ""), &rules, 2);
        assert_eq!(observed.evicted.map(|e| e.turns), Some(1));
        assert!(!sessions.by_key.contains_key(&2));
        // Many short sessions: the queue never holds more than twice the limit.
        for key in 100..10_000 {
            sessions.observe(key, &svc, &turn(&[1], 0, "", ""), &rules, 3);
            assert!(sessions.queue.len() <= 8 + 1, "{}", sessions.queue.len());
        }
        assert_eq!(sessions.len(), 4);
    }
}
