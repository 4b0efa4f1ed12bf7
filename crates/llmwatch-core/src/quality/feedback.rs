//! The user's own signals: explicit feedback matched to the call it is about, implicit signals
//! from sessions, and the trailing ratios both feed (positive ratio, coverage, follow-up, retry,
//! correction and abandonment ratios, survivorship bias).
//!
//! Per call this stage takes one shard lock to remember the call (for matching) and, when the
//! call names a conversation, one more for its session; feedback, which is rare, may look at
//! every shard. Time is always an argument; [`UserSignals::sweep`] ends inactive sessions and is
//! called on an interval by the server.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use llmwatch_semconv::{Feedback, FeedbackRules, FeedbackSignal, LlmCall};
use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::catalog::{self, names};
use crate::labeled::LabeledFamily;
use crate::quality::recent::{
    CallKeys, Found, MatchedBy, RecentCalls, bytes_key, shard_of, text_key,
};
use crate::quality::sessions::{EndedSession, SessionSignal, Sessions, TurnCall, TurnRules};
use crate::quality::window::{COUNTS, Count, ServiceWindows, Totals, WindowSpec};
use crate::snapshot::FamilySnapshot;

/// Lock shards of the call index and of the sessions.
const SHARDS: usize = 8;

/// Services the ratio windows follow; counts of further services are dropped (and counted).
pub const MAX_RATIO_SERVICES: usize = 256;

/// Explicit feedback: how it is read, matched and summarized.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackConfig {
    /// Default rating scale and the evaluation names that are user feedback (read by semconv).
    pub rules: FeedbackRules,
    /// A rating normalized to 0..1 at or above this is positive.
    pub positive_score: f64,
    /// Calls remembered for matching (0: feedback is never matched to a call).
    pub max_recent_calls: usize,
    /// How long after llmwatch saw a call feedback can still match it (seconds).
    pub match_window: u64,
    /// How long feedback that matches no call waits for its call's span (seconds; exporters
    /// batch spans for a few seconds, feedback is often sent at once); 0: counted unmatched at
    /// once.
    pub call_wait: u64,
    /// Feedback items waiting at once; the oldest is counted unmatched to make room.
    pub call_wait_max_items: usize,
    /// The trailing window of every ratio (seconds), in `ratio_buckets` buckets.
    pub ratio_window: u64,
    pub ratio_buckets: usize,
    pub survivorship: SurvivorshipConfig,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        FeedbackConfig {
            rules: FeedbackRules::default(),
            positive_score: 0.75,
            max_recent_calls: 50_000,
            match_window: 3_600,
            call_wait: 30,
            call_wait_max_items: 10_000,
            ratio_window: 3_600,
            ratio_buckets: 12,
            survivorship: SurvivorshipConfig::default(),
        }
    }
}

/// When explicit feedback looks good only because the unhappy users left without voting.
#[derive(Debug, Clone, PartialEq)]
pub struct SurvivorshipConfig {
    /// The positive ratio is above this...
    pub positive_ratio_above: f64,
    /// ...while the abandonment ratio is above this...
    pub abandonment_ratio_above: f64,
    /// ...with at least this much feedback and this many ended sessions in the window.
    pub min_feedback: u64,
    pub min_sessions: u64,
}

impl Default for SurvivorshipConfig {
    fn default() -> Self {
        SurvivorshipConfig {
            positive_ratio_above: 0.8,
            abandonment_ratio_above: 0.5,
            min_feedback: 20,
            min_sessions: 20,
        }
    }
}

/// Implicit signals from sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub enabled: bool,
    /// A turn starting at most this long (seconds) after the previous one ended is a follow-up.
    pub follow_up_window: u64,
    /// A session without a call for this long (seconds) has ended.
    pub inactivity_timeout: u64,
    /// Sessions followed at once; the least recently active is ended to make room.
    pub max_sessions: usize,
    /// Phrases that start a correcting user message (case-insensitive, whole words).
    pub correction_phrases: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            enabled: true,
            follow_up_window: 300,
            inactivity_timeout: 1_800,
            max_sessions: 10_000,
            correction_phrases: DEFAULT_CORRECTION_PHRASES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
        }
    }
}

/// Openings of a user message that tell the previous answer was wrong.
pub const DEFAULT_CORRECTION_PHRASES: [&str; 14] = [
    "no,",
    "no.",
    "no!",
    "nope",
    "wrong",
    "incorrect",
    "that's wrong",
    "that is wrong",
    "that's not right",
    "that's incorrect",
    "not what i asked",
    "you misunderstood",
    "i meant",
    "actually",
];

/// How feedback arrived: the `channel` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An OTLP log event (`gen_ai.user.feedback` or a feedback-named evaluation).
    Otlp,
    /// `POST /v1/feedback`.
    Http,
    /// The gRPC `FeedbackService`.
    Grpc,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Otlp => "otlp",
            Channel::Http => "http",
            Channel::Grpc => "grpc",
        }
    }
}

/// What recording one piece of feedback found.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackReceipt {
    /// How the call was found; `None` when no recent call matched.
    pub matched: Option<MatchedBy>,
    /// The matched call's service, else the feedback's own.
    pub service: Arc<str>,
    /// The matched call's request model; empty when unmatched.
    pub model: Arc<str>,
    /// The matched call's trace and span id.
    pub call_ids: Option<([u8; 16], [u8; 8])>,
    /// Not recorded yet: it matched no call and waits for its call's span
    /// ([`FeedbackConfig::call_wait`]).
    pub waiting: bool,
}

/// Feedback that matched no call, held until its call's span arrives or the wait is over.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingFeedback {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    response_id: Option<String>,
    conversation_id: Option<String>,
    service_name: String,
    signal: FeedbackSignal,
    rating: Option<f64>,
    score: Option<f64>,
    evaluation_name: String,
    has_comment: bool,
    pub channel: Channel,
    /// When it arrived (Unix seconds).
    since: u64,
}

impl WaitingFeedback {
    fn new(feedback: &Feedback<'_>, channel: Channel, since: u64) -> WaitingFeedback {
        WaitingFeedback {
            trace_id: feedback.trace_id.to_vec(),
            span_id: feedback.span_id.to_vec(),
            response_id: feedback.response_id.map(str::to_owned),
            conversation_id: feedback.conversation_id.map(str::to_owned),
            service_name: feedback.service_name.to_owned(),
            signal: feedback.signal,
            rating: feedback.rating,
            score: feedback.score,
            evaluation_name: feedback.evaluation_name.to_owned(),
            has_comment: feedback.has_comment,
            channel,
            since,
        }
    }

    /// The feedback as it arrived.
    pub fn feedback(&self) -> Feedback<'_> {
        Feedback {
            trace_id: &self.trace_id,
            span_id: &self.span_id,
            response_id: self.response_id.as_deref(),
            conversation_id: self.conversation_id.as_deref(),
            service_name: &self.service_name,
            signal: self.signal,
            rating: self.rating,
            score: self.score,
            evaluation_name: &self.evaluation_name,
            has_comment: self.has_comment,
        }
    }

    /// The keys a call that could match it has (trace, response id, conversation), as the
    /// call index hashes them.
    fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        let trace = (!self.trace_id.is_empty()).then(|| bytes_key(&self.trace_id));
        let response = self.response_id.as_deref().map(text_key);
        let conversation = self.conversation_id.as_deref().map(text_key);
        [trace, response, conversation].into_iter().flatten()
    }
}

/// Why waiting feedback is settled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A call sharing one of its keys arrived: matched if it is the call, else it waits on.
    Candidate,
    /// It waited the whole `call_wait`.
    Expired,
    /// It made room for newer feedback.
    Full,
}

/// The feedback waiting for its call, oldest first, and which keys it waits for.
#[derive(Debug, Default)]
struct WaitingQueue {
    items: VecDeque<WaitingFeedback>,
    /// Key hash → waiting items with that key.
    keys: FxHashMap<u64, u32>,
    due: Vec<(WaitingFeedback, Due)>,
}

impl WaitingQueue {
    /// Adds an item in arrival order (one that waits on goes back to its place).
    fn push(&mut self, item: WaitingFeedback) {
        for key in item.keys() {
            *self.keys.entry(key).or_default() += 1;
        }
        let at = self.items.partition_point(|i| i.since <= item.since);
        self.items.insert(at, item);
    }

    fn unkey(keys: &mut FxHashMap<u64, u32>, item: &WaitingFeedback) {
        for key in item.keys() {
            if let Some(count) = keys.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    keys.remove(&key);
                }
            }
        }
    }

    /// Moves the items `due` says are due to the due list.
    fn settle(&mut self, mut due: impl FnMut(&WaitingFeedback) -> Option<Due>) {
        let WaitingQueue {
            items,
            keys,
            due: out,
        } = self;
        items.retain(|item| match due(item) {
            Some(why) => {
                Self::unkey(keys, item);
                out.push((item.clone(), why));
                false
            }
            None => true,
        });
    }

    fn len(&self) -> usize {
        self.items.len() + self.due.len()
    }
}

/// A session turn waiting for its call's content: [`UserSignals::observe_batched`] with
/// `hold_turn`, completed by [`UserSignals::resolve_turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldTurn {
    session: u64,
    /// Which call of the session: its trace's key and its start.
    trace: u64,
    start_unix_nano: u64,
}

#[cfg(test)]
impl HeldTurn {
    /// A turn of session `n`.
    pub(crate) fn for_test(n: u8) -> HeldTurn {
        HeldTurn {
            session: u64::from(n),
            trace: 0,
            start_unix_nano: 0,
        }
    }
}

/// The call of a held turn, as the turn needs it.
#[derive(Debug)]
struct WaitingTurn {
    service: Arc<str>,
    trace_id: [u8; 16],
    start_unix_nano: u64,
    end_unix_nano: u64,
    /// When it was held (Unix seconds).
    since: u64,
}

impl WaitingTurn {
    fn turn<'a>(&'a self, input: Option<&str>, user_text: Option<&'a str>) -> TurnCall<'a> {
        TurnCall {
            trace_id: &self.trace_id,
            start_unix_nano: self.start_unix_nano,
            end_unix_nano: self.end_unix_nano,
            input_hash: input.map(text_key),
            user_text,
        }
    }
}

/// Held turns older than this are completed without content at the next sweep (the join buffer
/// completes them when it gives up on their content, well before).
const MAX_TURN_WAIT_SECONDS: u64 = 3_600;

/// Shares service and model names among the calls of a shard; bounded, cleared when full. The
/// last few names are compared first, as calls of one service and model come in runs.
#[derive(Debug, Default)]
struct Names {
    set: FxHashSet<Arc<str>>,
    recent: [Option<Arc<str>>; 4],
    next: usize,
}

impl Names {
    const MAX: usize = 1_024;

    /// The shared name; borrowed, so a hit costs no reference count update.
    fn get(&mut self, name: &str) -> &Arc<str> {
        if let Some(at) = self.recent.iter().position(|n| n.as_deref() == Some(name)) {
            return self.recent[at].as_ref().unwrap_or_else(|| unreachable!());
        }
        let shared = match self.set.get(name) {
            Some(shared) => shared.clone(),
            None => {
                if self.set.len() >= Names::MAX {
                    self.set.clear();
                }
                let shared: Arc<str> = Arc::from(name);
                self.set.insert(shared.clone());
                shared
            }
        };
        let at = self.next;
        self.next = (self.next + 1) % self.recent.len();
        self.recent[at].insert(shared)
    }
}

#[derive(Debug)]
struct CallShard {
    recent: RecentCalls,
    window: ServiceWindows,
    names: Names,
}

#[derive(Debug)]
struct SessionShard {
    sessions: Sessions,
    window: ServiceWindows,
    names: Names,
    /// Turns waiting for their call's content, by session.
    held: FxHashMap<u64, WaitingTurn>,
}

/// The calls of one export request, remembered together once it is read: one lock per shard
/// per request instead of one per call, and the ring's cache-missing stores overlap instead of
/// waiting, call after call, for the lock's release.
#[derive(Debug, Default)]
pub struct CallBatch<'a> {
    calls: Vec<BatchedCall<'a>>,
}

#[derive(Debug)]
struct BatchedCall<'a> {
    shard: usize,
    keys: CallKeys<'a>,
    service: &'a str,
    model: &'a str,
    /// Calls the span stands for.
    count: u32,
}

/// A feedback's hit in the call index.
struct Hit {
    service: Arc<str>,
    model: Arc<str>,
    /// The call had no feedback before.
    first: bool,
    by: MatchedBy,
    ids: ([u8; 16], [u8; 8]),
}

fn take(found: Found<'_>, by: MatchedBy) -> Hit {
    let first = found.call.mark_feedback();
    Hit {
        service: found.service(),
        model: found.model(),
        first,
        by,
        ids: found.call.ids(),
    }
}

/// The feedback and session stage.
#[derive(Debug)]
pub struct UserSignals {
    feedback: FeedbackConfig,
    sessions: SessionConfig,
    turn_rules: TurnRules,
    calls: Box<[Mutex<CallShard>]>,
    session_shards: Box<[Mutex<SessionShard>]>,
    feedback_window: Mutex<(ServiceWindows, Names)>,
    /// Held turns per session shard at most.
    max_held_turns: usize,
    waiting: Mutex<WaitingQueue>,
    /// Items waiting or due (read without the lock).
    waiting_len: AtomicUsize,
    /// Waiting feedback counted unmatched after the whole wait, and to make room.
    waiting_expired: AtomicU64,
    waiting_full: AtomicU64,
    feedback_total: LabeledFamily,
    feedback_rejected: LabeledFamily,
    session_signals: LabeledFamily,
    sessions_ended: LabeledFamily,
    sessions_evicted: LabeledFamily,
}

impl UserSignals {
    pub fn new(
        feedback: FeedbackConfig,
        sessions: SessionConfig,
        max_label_sets: usize,
    ) -> UserSignals {
        let spec = WindowSpec::new(feedback.ratio_window, feedback.ratio_buckets);
        let window = || ServiceWindows::new(spec, MAX_RATIO_SERVICES);
        let per_shard = |total: usize| total.div_ceil(SHARDS);
        let calls = (0..SHARDS)
            .map(|_| {
                Mutex::new(CallShard {
                    recent: RecentCalls::new(
                        per_shard(feedback.max_recent_calls),
                        feedback.match_window,
                    ),
                    window: window(),
                    names: Names::default(),
                })
            })
            .collect();
        let session_shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(SessionShard {
                    sessions: Sessions::new(if sessions.enabled {
                        per_shard(sessions.max_sessions)
                    } else {
                        0
                    }),
                    window: window(),
                    names: Names::default(),
                    held: FxHashMap::default(),
                })
            })
            .collect();
        let turn_rules = TurnRules {
            follow_up_window_nanos: sessions.follow_up_window.saturating_mul(1_000_000_000),
            correction_phrases: sessions
                .correction_phrases
                .iter()
                .map(|p| p.trim().to_lowercase().replace('\u{2019}', "'"))
                .filter(|p| !p.is_empty())
                .collect(),
        };
        let family = |name| LabeledFamily::new(name, max_label_sets);
        UserSignals {
            feedback_window: Mutex::new((window(), Names::default())),
            max_held_turns: per_shard(sessions.max_sessions),
            waiting: Mutex::new(WaitingQueue::default()),
            waiting_len: AtomicUsize::new(0),
            waiting_expired: AtomicU64::new(0),
            waiting_full: AtomicU64::new(0),
            feedback,
            sessions,
            turn_rules,
            calls,
            session_shards,
            feedback_total: family(names::FEEDBACK),
            feedback_rejected: family(names::FEEDBACK_REJECTED),
            session_signals: family(names::SESSION_SIGNALS),
            sessions_ended: family(names::SESSIONS),
            sessions_evicted: family(names::SESSIONS_EVICTED),
        }
    }

    pub fn feedback_config(&self) -> &FeedbackConfig {
        &self.feedback
    }

    pub fn session_config(&self) -> &SessionConfig {
        &self.sessions
    }

    /// [`UserSignals::observe_batched`] for one call on its own.
    pub fn observe_call(
        &self,
        call: &LlmCall<'_>,
        input: Option<&str>,
        user_text: Option<&str>,
        now: u64,
    ) {
        let mut batch = CallBatch::default();
        self.observe_batched(call, input, user_text, false, now, &mut batch);
        self.flush(batch, now);
    }

    /// Adds a call to its session, and to `batch` to be remembered for matching and counted
    /// for coverage by [`UserSignals::flush`]. `input` is the captured input as text and
    /// `user_text` its last user message, when the input was captured.
    ///
    /// With `hold_turn` (its input may still come as log events) the call's turn waits: the
    /// returned [`HeldTurn`] is completed by [`UserSignals::resolve_turn`], with the input or
    /// without it. A held turn of the same session is completed first by any later call of the
    /// session, so turns are counted in order.
    pub fn observe_batched<'a>(
        &self,
        call: &LlmCall<'a>,
        input: Option<&str>,
        user_text: Option<&str>,
        hold_turn: bool,
        now: u64,
        batch: &mut CallBatch<'a>,
    ) -> Option<HeldTurn> {
        // Embeddings are no answer a user rates or replies to.
        if call.operation == "embeddings" {
            return None;
        }
        let conversation = call.conversation_id.filter(|c| !c.is_empty());
        batch.calls.push(BatchedCall {
            shard: shard_of(call.trace_id, SHARDS),
            keys: CallKeys {
                trace_id: call.trace_id,
                span_id: call.span_id,
                response_id: call.response_id,
                conversation: conversation.map(text_key),
            },
            service: call.service_name,
            model: call.request_model,
            // A sampled span stands for several calls (counted as the GenAI metrics count it).
            count: crate::processor::sampled_count(call).min(1_000_000) as u32,
        });
        let conversation = conversation.filter(|_| self.sessions.enabled)?;
        let key = session_key(call.service_name, conversation);
        let turn = TurnCall {
            trace_id: call.trace_id,
            start_unix_nano: call.start_unix_nano,
            end_unix_nano: call.end_unix_nano,
            input_hash: input.map(text_key),
            user_text,
        };
        let mut shard = self.session_shards[(key % SHARDS as u64) as usize].lock();
        let SessionShard {
            sessions,
            window,
            names,
            held,
        } = &mut *shard;
        if !held.is_empty()
            && let Some(earlier) = held.remove(&key)
        {
            let turn = earlier.turn(None, None);
            self.observe_turn(sessions, window, key, &earlier.service, &turn, now);
        }
        let service = names.get(call.service_name);
        if hold_turn && held.len() < self.max_held_turns {
            let mut trace_id = [0u8; 16];
            if call.trace_id.len() == trace_id.len() {
                trace_id.copy_from_slice(call.trace_id);
                held.insert(
                    key,
                    WaitingTurn {
                        service: service.clone(),
                        trace_id,
                        start_unix_nano: call.start_unix_nano,
                        end_unix_nano: call.end_unix_nano,
                        since: now,
                    },
                );
                return Some(HeldTurn {
                    session: key,
                    trace: bytes_key(call.trace_id),
                    start_unix_nano: call.start_unix_nano,
                });
            }
        }
        self.observe_turn(sessions, window, key, service, &turn, now);
        None
    }

    /// Counts one call in its session.
    fn observe_turn(
        &self,
        sessions: &mut Sessions,
        window: &mut ServiceWindows,
        key: u64,
        service: &Arc<str>,
        turn: &TurnCall<'_>,
        now: u64,
    ) {
        let observed = sessions.observe(key, service, turn, &self.turn_rules, now);
        if observed.new_turn {
            window.add(service, Count::Turns, 1, now);
        }
        if let Some(signal) = observed.signal {
            window.add(service, count_of(signal), 1, now);
            self.session_signals.add(&[service, signal.as_str()], 1.0);
        }
        if let Some(ended) = observed.evicted {
            self.end(window, ended, now);
        }
    }

    /// Completes a held turn with its input (its text and last user message) when it came, or
    /// without. Nothing when the turn was completed already (a later call of the session came).
    pub fn resolve_turn(
        &self,
        turn: HeldTurn,
        input: Option<&str>,
        user_text: Option<&str>,
        now: u64,
    ) {
        let mut shard = self.session_shards[(turn.session % SHARDS as u64) as usize].lock();
        let SessionShard {
            sessions,
            window,
            held,
            ..
        } = &mut *shard;
        let same = held.get(&turn.session).is_some_and(|w| {
            bytes_key(&w.trace_id) == turn.trace && w.start_unix_nano == turn.start_unix_nano
        });
        if !same {
            return;
        }
        if let Some(waiting) = held.remove(&turn.session) {
            let call = waiting.turn(input, user_text);
            self.observe_turn(sessions, window, turn.session, &waiting.service, &call, now);
        }
    }

    /// Remembers the batched calls for matching and counts them for coverage.
    pub fn flush(&self, mut batch: CallBatch<'_>, now: u64) {
        if batch.calls.is_empty() {
            return;
        }
        // Stable: the calls of a shard keep their order (the newest call of a trace wins).
        batch.calls.sort_by_key(|c| c.shard);
        for group in batch.calls.chunk_by(|a, b| a.shard == b.shard) {
            let mut shard = self.calls[group[0].shard].lock();
            let CallShard {
                recent,
                window,
                names,
            } = &mut *shard;
            for call in group {
                if self.feedback.max_recent_calls > 0 {
                    recent.insert(&call.keys, call.service, call.model, now);
                }
                window.add(names.get(call.service), Count::Calls, call.count, now);
            }
        }
        if self.waiting_len.load(Ordering::Relaxed) > 0 {
            self.find_candidates(&batch);
        }
    }

    /// Marks the waiting feedback that shares a key with a call just remembered as due.
    fn find_candidates(&self, batch: &CallBatch<'_>) {
        let mut waiting = self.waiting.lock();
        if waiting.keys.is_empty() {
            return;
        }
        let mut seen = FxHashSet::default();
        for call in &batch.calls {
            let keys = &call.keys;
            let trace = bytes_key(keys.trace_id);
            let response = keys.response_id.map(text_key);
            for key in [Some(trace), response, keys.conversation]
                .into_iter()
                .flatten()
            {
                if waiting.keys.contains_key(&key) {
                    seen.insert(key);
                }
            }
        }
        if !seen.is_empty() {
            waiting.settle(|item| {
                item.keys()
                    .any(|k| seen.contains(&k))
                    .then_some(Due::Candidate)
            });
        }
    }

    fn end(&self, window: &mut ServiceWindows, ended: EndedSession, now: u64) {
        window.add(&ended.service, Count::Ended, 1, now);
        self.sessions_ended.add(&[&ended.service], 1.0);
        if ended.evicted {
            self.sessions_evicted.add(&[&ended.service], 1.0);
        }
        if ended.abandoned() {
            window.add(&ended.service, Count::Abandonment, 1, now);
            self.session_signals
                .add(&[&ended.service, SessionSignal::Abandonment.as_str()], 1.0);
        }
    }

    /// Ends the sessions inactive past the timeout and forgets services gone from the window.
    pub fn sweep(&self, now: u64) {
        for shard in self.session_shards.iter() {
            let mut shard = shard.lock();
            let shard = &mut *shard;
            if !shard.held.is_empty() {
                let stale: Vec<u64> = shard
                    .held
                    .iter()
                    .filter(|(_, w)| now.saturating_sub(w.since) > MAX_TURN_WAIT_SECONDS)
                    .map(|(key, _)| *key)
                    .collect();
                for key in stale {
                    if let Some(waiting) = shard.held.remove(&key) {
                        let turn = waiting.turn(None, None);
                        self.observe_turn(
                            &mut shard.sessions,
                            &mut shard.window,
                            key,
                            &waiting.service,
                            &turn,
                            now,
                        );
                    }
                }
            }
            let mut ended = Vec::new();
            let held = &shard.held;
            // A session with a turn waiting for its content is active.
            shard.sessions.sweep(
                now,
                self.sessions.inactivity_timeout,
                |key| held.contains_key(&key),
                |e| ended.push(e),
            );
            for session in ended {
                self.end(&mut shard.window, session, now);
            }
            shard.window.prune(now);
        }
        for shard in self.calls.iter() {
            shard.lock().window.prune(now);
        }
        self.feedback_window.lock().0.prune(now);
    }

    /// Counts one piece of checked feedback against the call it is about: the exact span, else
    /// the call with its response id, else the trace's latest call, else the conversation's.
    pub fn record_feedback(
        &self,
        feedback: &Feedback<'_>,
        channel: Channel,
        now: u64,
    ) -> FeedbackReceipt {
        let hit = self.find_call(feedback, now, false);
        self.count_feedback(feedback, channel, hit, now)
    }

    /// [`UserSignals::record_feedback`], except that feedback matching no call but naming one
    /// (trace, response or conversation id) waits for its call's span instead (`None`), for at
    /// most `call_wait`: settled by [`UserSignals::take_due_feedback`] and
    /// [`UserSignals::record_due_feedback`].
    pub fn record_or_hold_feedback(
        &self,
        feedback: &Feedback<'_>,
        channel: Channel,
        now: u64,
    ) -> Option<FeedbackReceipt> {
        let hit = self.find_call(feedback, now, false);
        if hit.is_none() && self.hold_feedback(feedback, channel, now) {
            return None;
        }
        Some(self.count_feedback(feedback, channel, hit, now))
    }

    fn hold_feedback(&self, feedback: &Feedback<'_>, channel: Channel, now: u64) -> bool {
        let config = &self.feedback;
        if config.call_wait == 0 || config.call_wait_max_items == 0 || config.max_recent_calls == 0
        {
            return false;
        }
        let item = WaitingFeedback::new(feedback, channel, now);
        if item.keys().next().is_none() {
            return false;
        }
        let mut waiting = self.waiting.lock();
        while waiting.items.len() >= config.call_wait_max_items {
            let Some(oldest) = waiting.items.pop_front() else {
                break;
            };
            WaitingQueue::unkey(&mut waiting.keys, &oldest);
            waiting.due.push((oldest, Due::Full));
            self.waiting_full.fetch_add(1, Ordering::Relaxed);
        }
        waiting.push(item);
        self.waiting_len.store(waiting.len(), Ordering::Relaxed);
        true
    }

    /// Waiting feedback to settle now: items whose call may have arrived, items that waited
    /// longer than `call_wait` (as of `now`, whole seconds) and items that made room.
    pub fn take_due_feedback(&self, now: u64) -> Vec<(WaitingFeedback, Due)> {
        if self.waiting_len.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut waiting = self.waiting.lock();
        let wait = self.feedback.call_wait;
        // Items are in arrival order: the expired ones are in front.
        while waiting
            .items
            .front()
            .is_some_and(|item| now.saturating_sub(item.since) > wait)
        {
            let Some(item) = waiting.items.pop_front() else {
                break;
            };
            WaitingQueue::unkey(&mut waiting.keys, &item);
            waiting.due.push((item, Due::Expired));
            self.waiting_expired.fetch_add(1, Ordering::Relaxed);
        }
        let due = std::mem::take(&mut waiting.due);
        self.waiting_len.store(waiting.len(), Ordering::Relaxed);
        due
    }

    /// Records a due item: a candidate when it now matches its call (else it waits on,
    /// `None`); an expired or evicted one matched as on arrival (a call of its trace, response
    /// or conversation), else unmatched.
    pub fn record_due_feedback(
        &self,
        item: WaitingFeedback,
        due: Due,
        now: u64,
    ) -> Option<FeedbackReceipt> {
        let feedback = item.feedback();
        let hit = self.find_call(&feedback, now, due == Due::Candidate);
        if hit.is_none() && due == Due::Candidate {
            let mut waiting = self.waiting.lock();
            waiting.push(item);
            self.waiting_len.store(waiting.len(), Ordering::Relaxed);
            return None;
        }
        Some(self.count_feedback(&feedback, item.channel, hit, now))
    }

    /// Feedback waiting for its call.
    pub fn waiting_feedback(&self) -> usize {
        self.waiting.lock().items.len()
    }

    /// Waiting feedback counted unmatched: after the whole wait, and to make room.
    pub fn waiting_dropped(&self) -> (u64, u64) {
        (
            self.waiting_expired.load(Ordering::Relaxed),
            self.waiting_full.load(Ordering::Relaxed),
        )
    }

    fn count_feedback(
        &self,
        feedback: &Feedback<'_>,
        channel: Channel,
        hit: Option<Hit>,
        now: u64,
    ) -> FeedbackReceipt {
        let (service, model) = match &hit {
            Some(hit) => (hit.service.clone(), hit.model.clone()),
            None => (Arc::from(feedback.service_name), Arc::from("")),
        };
        self.feedback_total.add(
            &[&service, &model, feedback.signal.as_str(), channel.as_str()],
            1.0,
        );
        {
            let mut guard = self.feedback_window.lock();
            let (window, names) = &mut *guard;
            let key = names.get(&service);
            window.add(key, Count::Feedback, 1, now);
            if feedback.is_positive(self.feedback.positive_score) {
                window.add(key, Count::Positive, 1, now);
            }
            // Coverage counts a call once; unmatched feedback is assumed to be on its own call.
            if hit.as_ref().is_none_or(|h| h.first) {
                window.add(key, Count::Covered, 1, now);
            }
        }
        FeedbackReceipt {
            matched: hit.as_ref().map(|h| h.by),
            call_ids: hit.map(|h| h.ids),
            service,
            model,
            waiting: false,
        }
    }

    /// The call feedback is about. `strict` (feedback that waited for its call) accepts only
    /// the most specific key it names: the exact span or the response id when it names them,
    /// else the trace, else the conversation; the looser ones would match another call before
    /// its own arrived.
    fn find_call(&self, feedback: &Feedback<'_>, now: u64, strict: bool) -> Option<Hit> {
        if self.feedback.max_recent_calls == 0 {
            return None;
        }
        let trace_id = feedback.trace_id;
        if !trace_id.is_empty() && !feedback.span_id.is_empty() {
            let mut shard = self.calls[shard_of(trace_id, SHARDS)].lock();
            if let Some((call, MatchedBy::Span)) =
                shard.recent.find_by_ids(trace_id, feedback.span_id, now)
            {
                return Some(take(call, MatchedBy::Span));
            }
        }
        if let Some(response) = feedback.response_id.map(text_key) {
            for shard in self.calls.iter() {
                if let Some(call) = shard.lock().recent.find_by_response(response, now) {
                    return Some(take(call, MatchedBy::ResponseId));
                }
            }
        }
        if strict && (!feedback.span_id.is_empty() || feedback.response_id.is_some()) {
            return None;
        }
        if !trace_id.is_empty() {
            let mut shard = self.calls[shard_of(trace_id, SHARDS)].lock();
            if let Some(call) = shard.recent.find_by_trace(trace_id, now) {
                return Some(take(call, MatchedBy::Trace));
            }
            if strict {
                return None;
            }
        }
        let conversation = text_key(feedback.conversation_id?);
        // The conversation's calls spread over the shards: its latest call anywhere.
        let latest = (0..SHARDS)
            .filter_map(|index| {
                let mut shard = self.calls[index].lock();
                let found = shard.recent.find_by_conversation(conversation, now)?;
                Some((found.call.seen_at(), index))
            })
            .max()?;
        let mut shard = self.calls[latest.1].lock();
        let call = shard.recent.find_by_conversation(conversation, now)?;
        Some(take(call, MatchedBy::Conversation))
    }

    /// Counts a feedback item or request refused, by channel and a bounded reason.
    pub fn rejected(&self, channel: Channel, reason: &'static str) {
        self.feedback_rejected.add(&[channel.as_str(), reason], 1.0);
    }

    pub fn active_sessions(&self) -> usize {
        self.session_shards
            .iter()
            .map(|s| s.lock().sessions.len())
            .sum()
    }

    /// The bounded families, for the overflow report.
    pub fn families(&self) -> [&LabeledFamily; 5] {
        [
            &self.feedback_total,
            &self.feedback_rejected,
            &self.session_signals,
            &self.sessions_ended,
            &self.sessions_evicted,
        ]
    }

    /// Counts the ratio windows dropped for lack of room, by the ratio they would have fed.
    pub fn window_overflow(&self) -> [(&'static str, u64); 3] {
        let calls = self.calls.iter().map(|s| s.lock().window.dropped()).sum();
        let sessions = self
            .session_shards
            .iter()
            .map(|s| s.lock().window.dropped())
            .sum();
        let feedback = self.feedback_window.lock().0.dropped();
        [
            (names::FEEDBACK_COVERAGE_RATIO, calls),
            (names::SESSION_SIGNAL_RATIO, sessions),
            (names::FEEDBACK_POSITIVE_RATIO, feedback),
        ]
    }

    /// Every service's counts in the window ending at `now`.
    pub fn totals(&self, now: u64) -> Vec<(Arc<str>, Totals)> {
        let mut totals = FxHashMap::default();
        for shard in self.calls.iter() {
            shard.lock().window.merge_into(now, &mut totals);
        }
        for shard in self.session_shards.iter() {
            shard.lock().window.merge_into(now, &mut totals);
        }
        self.feedback_window.lock().0.merge_into(now, &mut totals);
        let mut totals: Vec<_> = totals.into_iter().collect();
        totals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        totals
    }

    /// The counters, the active-session gauge and the window ratios as of `now`.
    pub fn snapshot(&self, families: &mut Vec<FamilySnapshot>, now: u64) {
        for family in self.families() {
            family.snapshot_into(families);
        }
        let mut active = FamilySnapshot::new(catalog::def(names::SESSIONS_ACTIVE));
        active.push_scalar(Vec::new(), self.active_sessions() as f64);
        families.push(active);
        let mut positive = FamilySnapshot::new(catalog::def(names::FEEDBACK_POSITIVE_RATIO));
        let mut coverage = FamilySnapshot::new(catalog::def(names::FEEDBACK_COVERAGE_RATIO));
        let mut signals = FamilySnapshot::new(catalog::def(names::SESSION_SIGNAL_RATIO));
        let mut bias = FamilySnapshot::new(catalog::def(names::SURVIVORSHIP_BIAS));
        let service = |name: &str| vec![("service_name".to_owned(), name.to_owned())];
        for (name, totals) in self.totals(now) {
            let ratios = Ratios::of(&totals);
            if let Some(r) = ratios.positive {
                positive.push_scalar(service(&name), r);
            }
            if let Some(r) = ratios.coverage {
                coverage.push_scalar(service(&name), r);
            }
            for (signal, ratio) in SessionSignal::ALL.into_iter().zip(ratios.signals) {
                if let Some(r) = ratio {
                    let mut labels = service(&name);
                    labels.push(("signal".to_owned(), signal.as_str().to_owned()));
                    signals.push_scalar(labels, r);
                }
            }
            bias.push_scalar(
                service(&name),
                survivorship_bias(&totals, &self.feedback.survivorship),
            );
        }
        families.extend([positive, coverage, signals, bias]);
    }
}

fn session_key(service: &str, conversation: &str) -> u64 {
    let mut hasher = FxHasher::default();
    service.hash(&mut hasher);
    conversation.hash(&mut hasher);
    hasher.finish()
}

fn count_of(signal: SessionSignal) -> Count {
    match signal {
        SessionSignal::FollowUp => Count::FollowUp,
        SessionSignal::Retry => Count::Retry,
        SessionSignal::Correction => Count::Correction,
        SessionSignal::Abandonment => Count::Abandonment,
    }
}

/// The ratios of one service's window totals; `None` where the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratios {
    /// Positive / all explicit feedback.
    pub positive: Option<f64>,
    /// Covered calls / calls.
    pub coverage: Option<f64>,
    /// follow_up, retry, correction per turn; abandonment per ended session.
    pub signals: [Option<f64>; 4],
}

impl Ratios {
    pub fn of(totals: &Totals) -> Ratios {
        let get = |count: Count| totals[count as usize];
        let ratio = |n: Count, d: Count| (get(d) > 0).then(|| get(n) as f64 / get(d) as f64);
        Ratios {
            positive: ratio(Count::Positive, Count::Feedback),
            coverage: ratio(Count::Covered, Count::Calls),
            signals: [
                ratio(Count::FollowUp, Count::Turns),
                ratio(Count::Retry, Count::Turns),
                ratio(Count::Correction, Count::Turns),
                ratio(Count::Abandonment, Count::Ended),
            ],
        }
    }
}

/// 1 when, with enough feedback and ended sessions, explicit feedback is mostly positive while
/// most sessions are abandoned; else 0.
pub fn survivorship_bias(totals: &Totals, config: &SurvivorshipConfig) -> f64 {
    debug_assert_eq!(totals.len(), COUNTS);
    let ratios = Ratios::of(totals);
    let enough = totals[Count::Feedback as usize] >= config.min_feedback.max(1)
        && totals[Count::Ended as usize] >= config.min_sessions.max(1);
    let biased = enough
        && ratios
            .positive
            .is_some_and(|p| p > config.positive_ratio_above)
        && ratios.signals[3].is_some_and(|a| a > config.abandonment_ratio_above);
    if biased { 1.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Sample, matching};
    use llmwatch_semconv::{CapturedContent, ContentRef, FeedbackFields};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    const S: u64 = 1_000_000_000;
    /// The wall clock of the scripted tests (Unix seconds).
    const NOW: u64 = 1_800_000_000;

    fn text(s: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(s.into())),
        }
    }

    /// A chat call of `svc` in trace `trace`, starting `start` seconds after NOW and lasting 2 s.
    fn call<'a>(
        trace: &'a [u8; 16],
        span: &'a [u8; 8],
        model: &'a str,
        start: u64,
        conversation: Option<&'a str>,
        input: Option<&'a AnyValue>,
    ) -> LlmCall<'a> {
        LlmCall {
            trace_id: trace,
            span_id: span,
            start_unix_nano: (NOW + start) * S,
            end_unix_nano: (NOW + start + 2) * S,
            operation: "chat",
            provider: "openai",
            request_model: model,
            response_model: model,
            response_id: None,
            system_fingerprint: None,
            streaming: None,
            usage: Default::default(),
            finish_reasons: Default::default(),
            duration_seconds: 2.0,
            time_to_first_token_seconds: None,
            error_type: None,
            service_name: "svc",
            environment: None,
            conversation_id: conversation,
            user_id: None,
            output_type: None,
            reported_cost_usd: None,
            dimensions: Default::default(),
            content: CapturedContent {
                input: input.map(ContentRef::Value),
                output: None,
                system_instructions: None,
            },
            embedding_vector: None,
            sampling: Default::default(),
        }
    }

    fn observe(signals: &UserSignals, call: &LlmCall<'_>, now: u64) {
        let input = call.content.input.map(|c| c.text_and_last_user_text());
        let (text, user) = input.map_or((None, None), |(t, u)| (Some(t), u));
        signals.observe_call(call, text.as_deref(), user.as_deref(), now);
    }

    fn value(families: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        matching(families, name, labels).next().map(Sample::scalar)
    }

    fn feedback<'a>(fields: FeedbackFields<'a>) -> Feedback<'a> {
        FeedbackRules::default().check(&fields).unwrap()
    }

    #[test]
    fn feedback_matches_its_call_and_covers_each_call_once() {
        let signals = UserSignals::new(FeedbackConfig::default(), SessionConfig::default(), 100);
        let (a, b) = ([0xa; 16], [0xb; 16]);
        let mut first = call(&a, &[1; 8], "m1", 0, None, None);
        first.response_id = Some("resp-1");
        observe(&signals, &first, NOW);
        observe(&signals, &call(&a, &[2; 8], "m2", 3, None, None), NOW);
        observe(
            &signals,
            &call(&b, &[1; 8], "m3", 5, Some("conv"), None),
            NOW,
        );
        let mut embeddings = call(&b, &[2; 8], "embed", 6, None, None);
        embeddings.operation = "embeddings";
        observe(&signals, &embeddings, NOW);
        let record = |fields: FeedbackFields<'_>| {
            let receipt = signals.record_feedback(&feedback(fields), Channel::Http, NOW + 60);
            (receipt.matched, receipt.model.to_string())
        };
        let thumbs_up = FeedbackFields {
            signal: Some("thumbs_up"),
            service_name: Some("web"),
            ..FeedbackFields::default()
        };
        assert_eq!(
            record(FeedbackFields {
                trace_id: &a,
                span_id: &[1; 8],
                ..thumbs_up
            }),
            (Some(MatchedBy::Span), "m1".to_owned())
        );
        assert_eq!(
            record(FeedbackFields {
                response_id: Some("resp-1"),
                signal: Some("rating"),
                rating: Some(2.0),
                ..thumbs_up
            }),
            (Some(MatchedBy::ResponseId), "m1".to_owned())
        );
        assert_eq!(
            record(FeedbackFields {
                trace_id: &a,
                ..thumbs_up
            }),
            (Some(MatchedBy::Trace), "m2".to_owned())
        );
        assert_eq!(
            record(FeedbackFields {
                conversation_id: Some("conv"),
                signal: Some("report"),
                ..thumbs_up
            }),
            (Some(MatchedBy::Conversation), "m3".to_owned())
        );
        assert_eq!(record(thumbs_up), (None, String::new()));
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW + 60);
        let feedback_total = |labels: &[(&str, &str)]| value(&families, names::FEEDBACK, labels);
        assert_eq!(
            feedback_total(&[("gen_ai_request_model", "m1"), ("signal", "thumbs_up")]),
            Some(1.0)
        );
        assert_eq!(
            feedback_total(&[("gen_ai_request_model", "m1"), ("signal", "rating")]),
            Some(1.0)
        );
        assert_eq!(
            feedback_total(&[("service_name", "web"), ("channel", "http")]),
            Some(1.0)
        );
        // svc: 3 calls (embeddings do not count), 4 feedback of which 2 positive, 3 calls
        // covered (m1 twice counts once); web: 1 unmatched thumbs up.
        let svc = [("service_name", "svc")];
        assert_eq!(
            value(&families, names::FEEDBACK_POSITIVE_RATIO, &svc),
            Some(0.5)
        );
        assert_eq!(
            value(&families, names::FEEDBACK_COVERAGE_RATIO, &svc),
            Some(1.0)
        );
        let web = [("service_name", "web")];
        assert_eq!(
            value(&families, names::FEEDBACK_POSITIVE_RATIO, &web),
            Some(1.0)
        );
        assert_eq!(value(&families, names::FEEDBACK_COVERAGE_RATIO, &web), None);
        // Past the match window, nothing matches.
        let late = signals.record_feedback(
            &feedback(FeedbackFields {
                trace_id: &a,
                span_id: &[1; 8],
                signal: Some("thumbs_down"),
                ..FeedbackFields::default()
            }),
            Channel::Grpc,
            NOW + 3_601,
        );
        assert_eq!((late.matched, &*late.service), (None, ""));
    }

    fn waiting_signals(call_wait: u64, max_items: usize) -> UserSignals {
        UserSignals::new(
            FeedbackConfig {
                call_wait,
                call_wait_max_items: max_items,
                ..FeedbackConfig::default()
            },
            SessionConfig::default(),
            100,
        )
    }

    /// Records the due waiting feedback as the processor does; the receipts of what was recorded.
    fn settle(signals: &UserSignals, now: u64) -> Vec<(Due, FeedbackReceipt)> {
        signals
            .take_due_feedback(now)
            .into_iter()
            .filter_map(|(item, due)| Some((due, signals.record_due_feedback(item, due, now)?)))
            .collect()
    }

    #[test]
    fn feedback_before_its_span_waits_and_matches_the_span_when_it_arrives() {
        let signals = waiting_signals(30, 10);
        const A: [u8; 16] = [0xa; 16];
        const B: [u8; 16] = [0xb; 16];
        const C: [u8; 16] = [0xc; 16];
        let (a, b, c) = (&A, &B, &C);
        let thumbs_down = |trace: &'static [u8; 16], span: &'static [u8; 8]| {
            feedback(FeedbackFields {
                trace_id: trace,
                span_id: span,
                service_name: Some("web"),
                signal: Some("thumbs_down"),
                ..FeedbackFields::default()
            })
        };
        assert_eq!(
            signals.record_or_hold_feedback(&thumbs_down(a, &[1; 8]), Channel::Http, NOW),
            None
        );
        assert_eq!(signals.waiting_feedback(), 1);
        // Another call of the trace is not the one it is about: it waits on.
        observe(&signals, &call(a, &[2; 8], "m2", 0, None, None), NOW + 1);
        assert_eq!(settle(&signals, NOW + 1), []);
        assert_eq!(signals.waiting_feedback(), 1);
        // Its span: matched exactly, under the call's service and model.
        observe(&signals, &call(a, &[1; 8], "m1", 0, None, None), NOW + 2);
        let settled = settle(&signals, NOW + 2);
        assert_eq!(settled.len(), 1);
        let (due, receipt) = &settled[0];
        assert_eq!(
            (*due, receipt.matched, &*receipt.service, &*receipt.model),
            (Due::Candidate, Some(MatchedBy::Span), "svc", "m1")
        );
        assert_eq!(signals.waiting_feedback(), 0);
        // Spans that never come: after the wait, matched as on arrival (here the latest call
        // of the trace, which came meanwhile), else unmatched under the feedback's own service.
        assert_eq!(
            signals.record_or_hold_feedback(&thumbs_down(c, &[9; 8]), Channel::Grpc, NOW + 3),
            None
        );
        assert_eq!(
            signals.record_or_hold_feedback(&thumbs_down(b, &[1; 8]), Channel::Grpc, NOW + 4),
            None
        );
        observe(&signals, &call(c, &[1; 8], "m3", 0, None, None), NOW + 5);
        assert_eq!(settle(&signals, NOW + 5), []);
        // Waited at least the whole 30 s (the clock is in whole seconds).
        assert_eq!(settle(&signals, NOW + 33), []);
        let expired: Vec<_> = settle(&signals, NOW + 35)
            .into_iter()
            .map(|(due, r)| (due, r.matched, r.service.to_string(), r.model.to_string()))
            .collect();
        assert_eq!(
            expired,
            [
                (
                    Due::Expired,
                    Some(MatchedBy::Trace),
                    "svc".to_owned(),
                    "m3".to_owned()
                ),
                (Due::Expired, None, "web".to_owned(), String::new()),
            ]
        );
        assert_eq!(signals.waiting_dropped(), (2, 0));
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW + 35);
        let total = |labels: &[(&str, &str)]| value(&families, names::FEEDBACK, labels);
        assert_eq!(
            total(&[("gen_ai_request_model", "m1"), ("channel", "http")]),
            Some(1.0)
        );
        assert_eq!(
            total(&[("gen_ai_request_model", "m3"), ("channel", "grpc")]),
            Some(1.0)
        );
        assert_eq!(
            total(&[("service_name", "web"), ("channel", "grpc")]),
            Some(1.0)
        );
    }

    #[test]
    fn waiting_feedback_is_bounded_and_needs_a_key_that_can_match() {
        let signals = waiting_signals(30, 2);
        let by_response = |id: &'static str| {
            feedback(FeedbackFields {
                response_id: Some(id),
                signal: Some("thumbs_up"),
                ..FeedbackFields::default()
            })
        };
        for id in ["r-1", "r-2", "r-3"] {
            assert_eq!(
                signals.record_or_hold_feedback(&by_response(id), Channel::Http, NOW),
                None
            );
        }
        // The oldest made room: counted unmatched at once.
        assert_eq!(signals.waiting_feedback(), 2);
        let settled = settle(&signals, NOW);
        assert_eq!(settled.len(), 1);
        assert_eq!((settled[0].0, settled[0].1.matched), (Due::Full, None));
        assert_eq!(signals.waiting_dropped(), (0, 1));
        // The call of r-3 arrives (by its response id) in a later export request.
        let mut third = call(&[0xc; 16], &[1; 8], "m3", 0, None, None);
        third.response_id = Some("r-3");
        observe(&signals, &third, NOW + 5);
        let settled = settle(&signals, NOW + 5);
        assert_eq!(
            (settled[0].1.matched, &*settled[0].1.model),
            (Some(MatchedBy::ResponseId), "m3")
        );
        // Nothing to wait for: recorded at once.
        let anonymous = feedback(FeedbackFields {
            service_name: Some("web"),
            signal: Some("thumbs_up"),
            ..FeedbackFields::default()
        });
        assert!(
            signals
                .record_or_hold_feedback(&anonymous, Channel::Http, NOW)
                .is_some()
        );
        // No wait configured: recorded unmatched at once.
        let at_once = waiting_signals(0, 10);
        let receipt = at_once
            .record_or_hold_feedback(&by_response("r-9"), Channel::Http, NOW)
            .unwrap();
        assert_eq!((receipt.matched, receipt.waiting), (None, false));
    }

    #[test]
    fn a_held_turn_waits_for_its_input_and_keeps_its_session_open() {
        let sessions = SessionConfig {
            inactivity_timeout: 1_800,
            ..SessionConfig::default()
        };
        let signals = UserSignals::new(FeedbackConfig::default(), sessions, 100);
        let q = text("Where is my order?");
        let (t1, t2, t3) = ([1; 16], [2; 16], [3; 16]);
        observe(
            &signals,
            &call(&t1, &[1; 8], "m", 0, Some("s"), Some(&q)),
            NOW,
        );
        let mut batch = CallBatch::default();
        let held = signals
            .observe_batched(
                &call(&t2, &[1; 8], "m", 10, Some("s"), None),
                None,
                None,
                true,
                NOW + 10,
                &mut batch,
            )
            .unwrap();
        signals.flush(batch, NOW + 10);
        // Long after the session's last counted call, the held turn keeps it open.
        signals.sweep(NOW + 2_000);
        assert_eq!(signals.active_sessions(), 1);
        // Its input came: the same question again, a retry; a second completion does nothing.
        signals.resolve_turn(held, Some("x"), Some("Where is my order?"), NOW + 2_000);
        signals.resolve_turn(held, None, None, NOW + 2_000);
        let signal = |families: &[FamilySnapshot], name| {
            value(
                families,
                names::SESSION_SIGNALS,
                &[("service_name", "svc"), ("signal", name)],
            )
        };
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW + 2_000);
        assert_eq!(signal(&families, "retry"), Some(1.0));
        assert_eq!(signal(&families, "follow_up"), None);
        // A held turn that nothing completes is counted without content after an hour.
        let mut batch = CallBatch::default();
        let _ = signals.observe_batched(
            &call(&t3, &[1; 8], "m", 2_100, Some("s"), None),
            None,
            None,
            true,
            NOW + 2_100,
            &mut batch,
        );
        signals.sweep(NOW + 2_100 + MAX_TURN_WAIT_SECONDS);
        assert_eq!(signals.active_sessions(), 1);
        signals.sweep(NOW + 2_100 + MAX_TURN_WAIT_SECONDS + 1);
        assert_eq!(signals.active_sessions(), 1, "the held turn touched it");
        signals.sweep(NOW + 2_100 + MAX_TURN_WAIT_SECONDS + 1 + 1_801);
        assert_eq!(signals.active_sessions(), 0);
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW + 6_000);
        // Three turns: no abandonment.
        assert_eq!(signal(&families, "abandonment"), None);
        assert_eq!(
            value(&families, names::SESSIONS, &[("service_name", "svc")]),
            Some(1.0)
        );
    }

    /// Five sessions scripted turn by turn on an explicit clock.
    fn scripted(signals: &UserSignals) {
        let q = |s: &str| text(&format!(r#"[{{"role":"user","content":"{s}"}}]"#));
        let (q1, q2, again, fix) = (
            q("Where is my order?"),
            q("And the invoice?"),
            q("Where is my order?"),
            q("No, I meant order 42"),
        );
        let t = |i: u8| [i; 16];
        let traces: Vec<[u8; 16]> = (1..=20).map(t).collect();
        let span = [1u8; 8];
        // s1: question, follow-up 30 s later, retry of that follow-up, correction.
        observe(
            signals,
            &call(&traces[0], &span, "m", 0, Some("s1"), Some(&q1)),
            NOW,
        );
        observe(
            signals,
            &call(&traces[1], &span, "m", 32, Some("s1"), Some(&q2)),
            NOW + 32,
        );
        observe(
            signals,
            &call(&traces[2], &span, "m", 40, Some("s1"), Some(&q2)),
            NOW + 40,
        );
        observe(
            signals,
            &call(&traces[3], &span, "m", 50, Some("s1"), Some(&fix)),
            NOW + 50,
        );
        // s2: one answer, then nothing: abandoned.
        observe(
            signals,
            &call(&traces[4], &span, "m", 0, Some("s2"), Some(&q1)),
            NOW,
        );
        // s3: the same question asked again: a retry.
        observe(
            signals,
            &call(&traces[5], &span, "m", 0, Some("s3"), Some(&q1)),
            NOW,
        );
        observe(
            signals,
            &call(&traces[6], &span, "m", 20, Some("s3"), Some(&again)),
            NOW + 20,
        );
        // s4 and s5: one answer each, no content captured: abandoned.
        observe(
            signals,
            &call(&traces[7], &span, "m", 0, Some("s4"), None),
            NOW,
        );
        observe(
            signals,
            &call(&traces[8], &span, "m", 0, Some("s5"), None),
            NOW,
        );
        // s5 again after 10 minutes, no content: a turn, not a follow-up.
        observe(
            signals,
            &call(&traces[9], &span, "m", 600, Some("s5"), None),
            NOW + 600,
        );
    }

    #[test]
    fn a_scripted_session_stream_gives_exact_signals_and_ratios() {
        let sessions = SessionConfig {
            follow_up_window: 60,
            inactivity_timeout: 900,
            ..SessionConfig::default()
        };
        let signals = UserSignals::new(FeedbackConfig::default(), sessions, 100);
        scripted(&signals);
        assert_eq!(signals.active_sessions(), 5);
        // At NOW + 1000 every session but s5 (last active at NOW + 600) has been quiet for more
        // than 900 s.
        signals.sweep(NOW + 1_000);
        assert_eq!(signals.active_sessions(), 1);
        signals.sweep(NOW + 1_600);
        assert_eq!(signals.active_sessions(), 0);
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW + 1_600);
        let count = |signal| {
            value(
                &families,
                names::SESSION_SIGNALS,
                &[("service_name", "svc"), ("signal", signal)],
            )
        };
        assert_eq!(count("follow_up"), Some(1.0));
        assert_eq!(count("retry"), Some(2.0));
        assert_eq!(count("correction"), Some(1.0));
        assert_eq!(count("abandonment"), Some(2.0));
        assert_eq!(
            value(&families, names::SESSIONS, &[("service_name", "svc")]),
            Some(5.0)
        );
        assert_eq!(value(&families, names::SESSIONS_ACTIVE, &[]), Some(0.0));
        // 10 turns; 5 ended sessions.
        let ratio = |signal| {
            value(
                &families,
                names::SESSION_SIGNAL_RATIO,
                &[("service_name", "svc"), ("signal", signal)],
            )
        };
        assert_eq!(ratio("follow_up"), Some(0.1));
        assert_eq!(ratio("retry"), Some(0.2));
        assert_eq!(ratio("correction"), Some(0.1));
        assert_eq!(ratio("abandonment"), Some(0.4));
    }

    #[test]
    fn survivorship_bias_needs_good_feedback_high_abandonment_and_enough_of_both() {
        let config = SurvivorshipConfig {
            positive_ratio_above: 0.8,
            abandonment_ratio_above: 0.5,
            min_feedback: 10,
            min_sessions: 10,
        };
        let totals = |feedback: u64, positive: u64, ended: u64, abandoned: u64| {
            let mut t = [0u64; COUNTS];
            t[Count::Feedback as usize] = feedback;
            t[Count::Positive as usize] = positive;
            t[Count::Ended as usize] = ended;
            t[Count::Abandonment as usize] = abandoned;
            t
        };
        assert_eq!(survivorship_bias(&totals(10, 9, 10, 6), &config), 1.0);
        // Abandonment at the threshold is not above it.
        assert_eq!(survivorship_bias(&totals(10, 9, 10, 5), &config), 0.0);
        assert_eq!(survivorship_bias(&totals(10, 8, 10, 9), &config), 0.0);
        assert_eq!(survivorship_bias(&totals(9, 9, 10, 9), &config), 0.0);
        assert_eq!(survivorship_bias(&totals(10, 10, 9, 9), &config), 0.0);
    }

    #[test]
    fn sessions_and_recent_calls_stay_bounded_under_many_conversations() {
        let sessions = SessionConfig {
            max_sessions: 64,
            ..SessionConfig::default()
        };
        let feedback = FeedbackConfig {
            max_recent_calls: 128,
            ..FeedbackConfig::default()
        };
        let signals = UserSignals::new(feedback, sessions, 100);
        for i in 0..10_000u32 {
            let mut trace = [0u8; 16];
            trace[..4].copy_from_slice(&i.to_le_bytes());
            let conversation = format!("c{i}");
            observe(
                &signals,
                &call(&trace, &[1; 8], "m", 0, Some(&conversation), None),
                NOW,
            );
        }
        assert_eq!(signals.active_sessions(), 64);
        let remembered: usize = signals.calls.iter().map(|s| s.lock().recent.len()).sum();
        assert_eq!(remembered, 128);
        let mut families = Vec::new();
        signals.snapshot(&mut families, NOW);
        let svc = [("service_name", "svc")];
        assert_eq!(
            value(&families, names::SESSIONS_EVICTED, &svc),
            Some((10_000 - 64) as f64)
        );
        // Every evicted session had one turn.
        assert_eq!(
            value(
                &families,
                names::SESSION_SIGNAL_RATIO,
                &[("signal", "abandonment")]
            ),
            Some(1.0)
        );
    }
}
