//! Budgets and top spenders: where the money goes, in memory bounded by configuration.
//!
//! Time is the calls' own (span end), so a replay of last month's traces fills last month's
//! windows; the clock moves with the newest call seen or, when live, with the wall clock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use llmwatch_pricing::Date;
use llmwatch_semconv::LlmCall;
use parking_lot::Mutex;
use rustc_hash::FxHashSet;
use sha2::{Digest, Sha256};

use crate::catalog::{self, names};
use crate::heavy_hitters::SpaceSaving;
use crate::snapshot::FamilySnapshot;

/// Slots of a rolling window; its resolution is the window's length / this.
const ROLLING_SLOTS: usize = 60;

/// A spending window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Calendar hour, day or month (UTC).
    Hour,
    Day,
    Month,
    /// A duration in seconds: rolling for budgets on one total, tumbling (aligned to the Unix
    /// epoch) for per-user budgets and top spenders, whose summaries cannot slide.
    Every(u64),
}

impl Window {
    /// Start (Unix seconds) of the calendar or tumbling window containing `t`.
    pub fn start(self, t: i64) -> i64 {
        match self {
            Window::Hour => t.saturating_sub(t.rem_euclid(3_600)),
            Window::Day => t.saturating_sub(t.rem_euclid(86_400)),
            Window::Month => {
                Date::from_unix_nanos((t.max(0) as u64).saturating_mul(1_000_000_000))
                    .first_of_month()
                    .days_since_epoch()
                    * 86_400
            }
            Window::Every(seconds) => {
                let seconds = seconds.max(1) as i64;
                t.saturating_sub(t.rem_euclid(seconds))
            }
        }
    }
}

/// Whose spending a budget limits.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetScope {
    Global,
    /// One service (`service_name`).
    Service(String),
    /// Calls whose configured dimension (by position) has this value.
    Dimension {
        index: usize,
        value: String,
    },
    /// Each user separately; breaches counted per user, no series per user.
    PerUser,
}

impl BudgetScope {
    /// The `scope` label: `global`, `service`, `dimension` or `user`. A per-user budget's spend
    /// is its heaviest user's, so alerts treat it apart from shared budgets.
    pub fn label(&self) -> &'static str {
        match self {
            BudgetScope::Global => "global",
            BudgetScope::Service(_) => "service",
            BudgetScope::Dimension { .. } => "dimension",
            BudgetScope::PerUser => "user",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub name: String,
    pub window: Window,
    pub limit_usd: f64,
    pub scope: BudgetScope,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopSpendersConfig {
    /// Ranks exported per scope (`rank="1"` … `rank="count"`); 0 turns top spenders off.
    pub count: usize,
    /// Counters kept per scope; the error bound is total spend / capacity.
    pub capacity: usize,
    pub window: Window,
    /// Salt of the `spender` hash; ids are never exported unless `raw_ids`.
    pub salt: String,
    pub raw_ids: bool,
}

impl Default for TopSpendersConfig {
    fn default() -> Self {
        TopSpendersConfig {
            count: 10,
            capacity: 1_000,
            window: Window::Day,
            salt: String::new(),
            raw_ids: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendConfig {
    pub budgets: Vec<BudgetConfig>,
    pub top_spenders: TopSpendersConfig,
}

#[derive(Debug)]
enum Accumulator {
    Calendar {
        window_start: i64,
        spend: f64,
    },
    Rolling {
        slot_seconds: i64,
        slots: Box<[(i64, f64); ROLLING_SLOTS]>,
    },
    PerUser {
        window_start: i64,
        users: SpaceSaving,
        breached: FxHashSet<Box<str>>,
    },
}

#[derive(Debug)]
struct BudgetState {
    accumulator: Accumulator,
    breaches: u64,
    /// Whether the total is at or over the limit (to count each crossing once).
    over: bool,
}

#[derive(Debug)]
struct Budget {
    config: BudgetConfig,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct TopSpenders {
    window_start: i64,
    users: SpaceSaving,
    sessions: SpaceSaving,
}

#[derive(Debug)]
pub struct SpendTracker {
    budgets: Vec<Budget>,
    top_config: TopSpendersConfig,
    top: Option<Mutex<TopSpenders>>,
    /// Newest call time seen (Unix seconds).
    clock: AtomicI64,
}

impl SpendTracker {
    pub fn new(config: &SpendConfig) -> SpendTracker {
        let budgets = config
            .budgets
            .iter()
            .map(|budget| {
                let accumulator = match (&budget.scope, budget.window) {
                    (BudgetScope::PerUser, _) => Accumulator::PerUser {
                        window_start: i64::MIN,
                        users: SpaceSaving::new(config.top_spenders.capacity),
                        breached: FxHashSet::default(),
                    },
                    (_, Window::Every(seconds)) => Accumulator::Rolling {
                        slot_seconds: (seconds as i64 / ROLLING_SLOTS as i64).max(1),
                        slots: Box::new([(i64::MIN, 0.0); ROLLING_SLOTS]),
                    },
                    _ => Accumulator::Calendar {
                        window_start: i64::MIN,
                        spend: 0.0,
                    },
                };
                Budget {
                    config: budget.clone(),
                    state: Mutex::new(BudgetState {
                        accumulator,
                        breaches: 0,
                        over: false,
                    }),
                }
            })
            .collect();
        let top = (config.top_spenders.count > 0).then(|| {
            Mutex::new(TopSpenders {
                window_start: i64::MIN,
                users: SpaceSaving::new(config.top_spenders.capacity),
                sessions: SpaceSaving::new(config.top_spenders.capacity),
            })
        });
        SpendTracker {
            budgets,
            top_config: config.top_spenders.clone(),
            top,
            clock: AtomicI64::new(i64::MIN),
        }
    }

    /// Adds a priced call's cost (already multiplied by its sampling count).
    pub fn record(&self, call: &LlmCall<'_>, cost: f64) {
        if cost <= 0.0 || (self.budgets.is_empty() && self.top.is_none()) {
            return;
        }
        let t = (call.end_unix_nano / 1_000_000_000) as i64;
        self.clock.fetch_max(t, Relaxed);
        for budget in &self.budgets {
            let applies = match &budget.config.scope {
                BudgetScope::Global => true,
                BudgetScope::Service(service) => call.service_name == service,
                BudgetScope::Dimension { index, value } => {
                    call.dimensions.get(*index).and_then(|v| v.as_deref()) == Some(value.as_str())
                }
                BudgetScope::PerUser => call.user_id.is_some(),
            };
            if applies {
                budget.add(call.user_id, t, cost);
            }
        }
        if let Some(top) = &self.top {
            let mut top = top.lock();
            let start = self.top_config.window.start(t);
            if start > top.window_start {
                top.window_start = start;
                top.users.clear();
                top.sessions.clear();
            }
            if start == top.window_start {
                if let Some(user) = call.user_id {
                    top.users.add(user, cost);
                }
                if let Some(session) = call.conversation_id {
                    top.sessions.add(session, cost);
                }
            }
        }
    }

    /// Budget gauges and top spenders as of `now` (Unix seconds; `None` uses the newest call).
    pub fn snapshot(&self, out: &mut Vec<FamilySnapshot>, now: Option<i64>) {
        let clock = self.clock.load(Relaxed).max(now.unwrap_or(i64::MIN));
        let label = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        let mut spend = FamilySnapshot::new(catalog::def(names::BUDGET_SPEND));
        let mut limit = FamilySnapshot::new(catalog::def(names::BUDGET_LIMIT));
        let mut breaches = FamilySnapshot::new(catalog::def(names::BUDGET_BREACHES));
        for budget in &self.budgets {
            let name = vec![
                label("budget", &budget.config.name),
                label("scope", budget.config.scope.label()),
            ];
            let state = budget.state.lock();
            spend.push_scalar(name.clone(), budget.spend(&state, clock));
            limit.push_scalar(name.clone(), budget.config.limit_usd);
            breaches.push_scalar(name, state.breaches as f64);
        }
        out.extend([spend, limit, breaches]);

        let mut ranks = FamilySnapshot::new(catalog::def(names::TOP_SPENDER_COST));
        let mut bounds = FamilySnapshot::new(catalog::def(names::TOP_SPENDER_ERROR_BOUND));
        if let Some(top) = &self.top {
            let top = top.lock();
            let current = top.window_start == self.top_config.window.start(clock);
            for (scope, summary) in [("user", &top.users), ("session", &top.sessions)] {
                if !current {
                    continue;
                }
                for (rank, estimate) in summary.top(self.top_config.count).iter().enumerate() {
                    ranks.push_scalar(
                        vec![
                            label("scope", scope),
                            label("rank", &(rank + 1).to_string()),
                            label("spender", &self.spender(estimate.key)),
                        ],
                        estimate.count,
                    );
                }
                bounds.push_scalar(vec![label("scope", scope)], summary.error_bound());
            }
        }
        out.extend([ranks, bounds]);
    }

    /// The `spender` label: a salted SHA-256 prefix of the id, or the id when allowed.
    fn spender(&self, id: &str) -> String {
        if self.top_config.raw_ids {
            return id.to_owned();
        }
        spender_hash(&self.top_config.salt, id)
    }
}

/// A salted SHA-256 of an id, as 16 hex characters: stable for a salt, not reversible without it.
pub fn spender_hash(salt: &str, id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update([0])
        .chain_update(id.as_bytes())
        .finalize();
    let mut out = String::with_capacity(16);
    for byte in &digest[..8] {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

impl Budget {
    fn add(&self, user: Option<&str>, t: i64, cost: f64) {
        let mut state = self.state.lock();
        let window = self.config.window;
        let limit = self.config.limit_usd;
        let state = &mut *state;
        match &mut state.accumulator {
            Accumulator::Calendar {
                window_start,
                spend,
            } => {
                let start = window.start(t);
                if start > *window_start {
                    *window_start = start;
                    *spend = 0.0;
                    state.over = false;
                }
                if start == *window_start {
                    *spend += cost;
                    count_crossing(&mut state.over, &mut state.breaches, *spend >= limit);
                }
            }
            Accumulator::Rolling {
                slot_seconds,
                slots,
            } => {
                let slot_start = t - t.rem_euclid(*slot_seconds);
                let slot = &mut slots
                    [(slot_start / *slot_seconds).rem_euclid(ROLLING_SLOTS as i64) as usize];
                if slot.0 < slot_start {
                    *slot = (slot_start, 0.0);
                }
                if slot.0 == slot_start {
                    slot.1 += cost;
                }
                let total = rolling_total(slots, *slot_seconds, t);
                count_crossing(&mut state.over, &mut state.breaches, total >= limit);
            }
            Accumulator::PerUser {
                window_start,
                users,
                breached,
            } => {
                let Some(user) = user else { return };
                let start = window.start(t);
                if start > *window_start {
                    *window_start = start;
                    users.clear();
                    breached.clear();
                }
                if start != *window_start {
                    return;
                }
                users.add(user, cost);
                // Only the guaranteed spend (estimate − error) can breach: no false alarms.
                let guaranteed = users.get(user).map_or(0.0, |e| e.guaranteed());
                if guaranteed >= limit
                    && breached.len() < users.capacity()
                    && breached.insert(user.into())
                {
                    state.breaches += 1;
                }
            }
        }
    }

    fn spend(&self, state: &BudgetState, clock: i64) -> f64 {
        match &state.accumulator {
            Accumulator::Calendar {
                window_start,
                spend,
            } => {
                if *window_start == self.config.window.start(clock) {
                    *spend
                } else {
                    0.0
                }
            }
            Accumulator::Rolling {
                slot_seconds,
                slots,
            } => rolling_total(slots, *slot_seconds, clock),
            Accumulator::PerUser {
                window_start,
                users,
                ..
            } => {
                if *window_start == self.config.window.start(clock) {
                    users.top(1).first().map_or(0.0, |e| e.count)
                } else {
                    0.0
                }
            }
        }
    }
}

fn count_crossing(over: &mut bool, breaches: &mut u64, now_over: bool) {
    if now_over && !*over {
        *breaches += 1;
    }
    *over = now_over;
}

/// Spend of the slots inside the window ending at `now`.
fn rolling_total(slots: &[(i64, f64); ROLLING_SLOTS], slot_seconds: i64, now: i64) -> f64 {
    let oldest = now
        .saturating_sub(now.rem_euclid(slot_seconds))
        .saturating_sub(slot_seconds * (ROLLING_SLOTS as i64 - 1));
    slots
        .iter()
        .filter(|(start, _)| *start >= oldest && *start <= now)
        .map(|(_, spend)| spend)
        .sum()
}
