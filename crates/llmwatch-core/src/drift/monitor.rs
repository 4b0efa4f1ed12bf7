//! Live drift monitors: for every key (service × provider × request model × dimensions), bounded
//! reference and current windows of every signal, evaluated on an interval off the ingest path.
//!
//! Ingest only appends to the key's current bucket (reservoirs and counters: O(1) per signal).
//! Evaluation copies each key's samples under its lock, then tests outside it, so a slow
//! evaluation never holds up ingest.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use hashbrown::{DefaultHashBuilder, HashTable};
use llmwatch_semconv::{FinishReason, LlmCall, MAX_DIMENSIONS};
use llmwatch_stats::binned::{Bins, jensen_shannon_from_counts, psi_from_counts};
use llmwatch_stats::chi2::{MIN_EXPECTED_COUNT, chi2_contingency, pool_sparse_categories};
use llmwatch_stats::embed::HashingEmbedder;
use llmwatch_stats::ks::{Alternative, KsMethod, ks_2samp};
use llmwatch_stats::mmd::{Bandwidth, MmdEstimator, mmd2_permutation_test};
use llmwatch_stats::spc::{
    BaselineConfig, BinomialEwmaChart, BinomialEwmaConfig, ChartPoint, ControlChart, EwmaChart,
    EwmaConfig,
};
use llmwatch_stats::summary::{CategoryCounter, Reservoir};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::config::{DriftConfig, ReferenceMode};
use super::signals::{CategoricalSignal, NumericSignal, finish_share};
use super::window::Ring;
use crate::catalog::{self, DRIFT_KEY_LABELS, names};
use crate::pricer::CallPrice;
use crate::snapshot::FamilySnapshot;

// Canary probe answers and remote embeddings: child modules, as they reach into key state.
mod probe;
mod remote;
pub use probe::{MAX_PROBES, PROBE_SIGNAL_PREFIX, ProbeWindows};
pub use remote::{EmbeddingJob, EmbeddingSink, EmbeddingTarget};

/// Distinct categories kept per signal and bucket (the rest count as `__other__`).
const MAX_CATEGORIES: usize = 64;
/// New response models or fingerprints remembered per key and kind.
const MAX_MODEL_CHANGES: usize = 16;
/// Evaluation score names charted (per service).
const MAX_SCORE_CHARTS: usize = 64;
/// Characters of a prompt or response kept for embedding.
const MAX_TEXT_CHARS: usize = 2_000;

/// Text signals, embedded at evaluation time.
/// Embedding signals: prompts and responses embedded at evaluation time, and vectors that
/// embedding spans already carry (OpenInference), used as they are.
const TEXT_SIGNALS: [&str; 3] = ["prompt_embedding", "response_embedding", "embedding_vector"];
/// Ratio charts per key, in this order.
const RATIO_CHARTS: [&str; 3] = ["error_ratio", "length_ratio", "refusal_ratio"];
/// The `chart` label of the ratio charts (standardized binomial EWMA: values in σ units) and of
/// the evaluation score charts (EWMA of the mean score: values in score units).
const RATIO_CHART: &str = "binomial_ewma";
const SCORE_CHART: &str = "ewma";
/// Categorical signals whose new values are model-change events.
const CHANGE_KINDS: [(CategoricalSignal, &str); 2] = [
    (CategoricalSignal::ResponseModel, "response_model"),
    (CategoricalSignal::SystemFingerprint, "system_fingerprint"),
];

/// The outcome of the last evaluation of one signal.
#[derive(Debug, Clone, Default, PartialEq)]
struct Verdict {
    /// The statistic's test (`psi`, `js`, `mmd`).
    test: &'static str,
    /// The test of the p-value (`ks`, `chi2`, `mmd`).
    p_test: &'static str,
    score: Option<f64>,
    p_value: Option<f64>,
    reference_samples: usize,
    current_samples: usize,
    /// Consecutive evaluations over the threshold.
    streak: u32,
    detected: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NumericState {
    current: Ring<Reservoir<f64>>,
    /// First-N or pinned reference values.
    reference: Vec<f64>,
    #[serde(skip)]
    verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CategoricalState {
    current: Ring<CategoryCounter>,
    reference: CategoryCounter,
    #[serde(skip)]
    verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TextState {
    current: Ring<Reservoir<Sample>>,
    reference: Vec<Sample>,
    #[serde(skip)]
    reference_embeddings: Option<Vec<Vec<f64>>>,
    #[serde(skip)]
    verdict: Verdict,
}

/// Counts of the interval since the last evaluation, for the ratio charts.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct IntervalCounts {
    calls: u64,
    errors: u64,
    finishes: u64,
    length: u64,
    refusals: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyState {
    numeric: Vec<NumericState>,
    categorical: Vec<CategoricalState>,
    texts: Vec<TextState>,
    /// Calls counted into the first-N reference so far.
    reference_calls: u64,
    /// Whether a pinned reference exists.
    pinned: bool,
    interval: IntervalCounts,
    /// One per [`RATIO_CHARTS`]; empty in state saved before the binomial charts (whose `charts`
    /// field is ignored), and then started afresh on restore.
    #[serde(default)]
    ratio_charts: Vec<BinomialEwmaChart>,
    #[serde(skip)]
    chart_points: Vec<Option<ChartPoint>>,
    /// (kind index, new value) → first seen, in call seconds.
    model_changes: Vec<(usize, String, i64)>,
    #[serde(skip)]
    admission: remote::Admission,
}

#[derive(Debug)]
struct KeyMonitor {
    hash: u64,
    labels: Box<[Box<str>]>,
    state: Mutex<KeyState>,
}

/// An evaluation score series charted per service and evaluation name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScoreChart {
    service: String,
    name: String,
    sum: f64,
    count: u64,
    chart: EwmaChart,
    #[serde(skip)]
    point: Option<ChartPoint>,
}

/// The persisted part of the monitors: references, charts and model-change events.
#[derive(Debug, Serialize, Deserialize)]
pub struct DriftState {
    pub version: u32,
    keys: Vec<(Vec<String>, KeyState)>,
    scores: Vec<ScoreChart>,
    #[serde(default)]
    probes: Vec<probe::ProbeState>,
}

/// A baseline as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineInfo {
    pub labels: Vec<(String, String)>,
    pub mode: &'static str,
    pub reference_calls: u64,
    /// Values in each numeric signal's reference.
    pub reference_samples: Vec<(&'static str, usize)>,
}

#[derive(Debug)]
pub struct DriftMonitors {
    config: DriftConfig,
    label_names: Vec<String>,
    hasher: DefaultHashBuilder,
    keys: RwLock<HashTable<Arc<KeyMonitor>>>,
    key_count: AtomicUsize,
    unmonitored_calls: AtomicU64,
    scores: Mutex<Vec<ScoreChart>>,
    /// Newest call time seen (seconds), and the wall-clock second it arrived at (`i64::MIN`
    /// before any call): the data clock, see [`DriftMonitors::clock`].
    clock: AtomicU64,
    clock_arrival: AtomicI64,
    embedder: HashingEmbedder,
    last_evaluation_seconds: Mutex<f64>,
    probes: probe::Probes,
    embedding_sink: OnceLock<Box<dyn EmbeddingSink>>,
}

impl DriftMonitors {
    pub fn new(config: DriftConfig, dimension_labels: &[String]) -> DriftMonitors {
        let label_names = DRIFT_KEY_LABELS
            .iter()
            .map(|s| s.to_string())
            .chain(dimension_labels.iter().cloned())
            .collect();
        DriftMonitors {
            config,
            label_names,
            hasher: DefaultHashBuilder::default(),
            keys: RwLock::new(HashTable::new()),
            key_count: AtomicUsize::new(0),
            unmonitored_calls: AtomicU64::new(0),
            scores: Mutex::new(Vec::new()),
            clock: AtomicU64::new(0),
            clock_arrival: AtomicI64::new(i64::MIN),
            embedder: HashingEmbedder::default(),
            last_evaluation_seconds: Mutex::new(0.0),
            probes: probe::Probes::default(),
            embedding_sink: OnceLock::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Adds one call to its key's current windows (and first-N reference).
    pub fn observe(&self, call: &LlmCall<'_>, price: &CallPrice) {
        if !self.config.enabled {
            return;
        }
        let t = (call.end_unix_nano / 1_000_000_000) as i64;
        self.advance_clock(t);
        let mut values: [&str; DRIFT_KEY_LABELS.len() + MAX_DIMENSIONS] =
            [""; DRIFT_KEY_LABELS.len() + MAX_DIMENSIONS];
        values[0] = call.service_name;
        values[1] = call.provider;
        values[2] = call.request_model;
        let dimensions = self.label_names.len() - DRIFT_KEY_LABELS.len();
        for (slot, value) in values[DRIFT_KEY_LABELS.len()..]
            .iter_mut()
            .zip(&call.dimensions[..dimensions])
        {
            *slot = value.as_deref().unwrap_or("");
        }
        let values = &values[..self.label_names.len()];
        let Some(key) = self.key(values) else {
            self.unmonitored_calls.fetch_add(1, Relaxed);
            return;
        };
        // Rendering captured content is the costly part: it happens only when a reservoir keeps
        // the text or its length (ever rarer as a bucket fills), and at most once per call.
        let mut texts = [
            call.content.input.map(Text::Lazy),
            call.content.output.map(Text::Lazy),
            call.embedding().map(Text::Vector),
        ];
        let mut state = key.state.lock();
        let remote = self.embedding_sink.get();
        if let Some(sink) = remote {
            self.offer_texts(sink.as_ref(), &key, &mut state, t, &mut texts);
        }
        state.add(&self.config, call, price, t, texts, remote.is_some());
    }

    /// Adds an evaluation score to its (service, evaluation name) chart's interval.
    pub fn observe_score(&self, service: &str, name: &str, score: f64) {
        if !self.config.enabled || !score.is_finite() {
            return;
        }
        let mut scores = self.scores.lock();
        if let Some(chart) = scores
            .iter_mut()
            .find(|c| c.service == service && c.name == name)
        {
            chart.sum += score;
            chart.count += 1;
        } else if scores.len() < MAX_SCORE_CHARTS {
            scores.push(ScoreChart {
                service: service.to_owned(),
                name: name.to_owned(),
                sum: score,
                count: 1,
                chart: self.new_chart(),
                point: None,
            });
        }
    }

    fn new_chart(&self) -> EwmaChart {
        let spc = &self.config.spc;
        EwmaChart::new(EwmaConfig {
            lambda: spc.lambda,
            l: spc.l,
            baseline: BaselineConfig {
                mean: None,
                sigma: None,
                warmup: spc.warmup_intervals,
            },
            reset_after_alarm: false,
        })
        .expect("validated chart parameters")
    }

    fn key(&self, values: &[&str]) -> Option<Arc<KeyMonitor>> {
        let hash = self.hasher.hash_one(values);
        let matches = |k: &Arc<KeyMonitor>| {
            k.hash == hash && k.labels.iter().map(|l| &**l).eq(values.iter().copied())
        };
        if let Some(key) = self.keys.read().find(hash, matches) {
            return Some(key.clone());
        }
        let mut keys = self.keys.write();
        if let Some(key) = keys.find(hash, matches) {
            return Some(key.clone());
        }
        if self.key_count.load(Relaxed) >= self.config.max_keys {
            return None;
        }
        self.key_count.fetch_add(1, Relaxed);
        let key = Arc::new(KeyMonitor {
            hash,
            labels: values.iter().map(|v| Box::<str>::from(*v)).collect(),
            state: Mutex::new(KeyState::new(&self.config, self.new_ratio_charts())),
        });
        keys.insert_unique(hash, key.clone(), |k| k.hash);
        Some(key)
    }

    fn new_ratio_charts(&self) -> Vec<BinomialEwmaChart> {
        let spc = &self.config.spc;
        let config = BinomialEwmaConfig {
            lambda: spc.lambda,
            l: spc.l,
            warmup: spc.warmup_intervals,
        };
        let chart = BinomialEwmaChart::new(config).expect("validated chart parameters");
        vec![chart; RATIO_CHARTS.len()]
    }

    fn all_keys(&self) -> Vec<Arc<KeyMonitor>> {
        self.keys.read().iter().cloned().collect()
    }

    /// Moves the data clock to a call's end time `t` when it is the newest yet, noting the wall
    /// second it arrived at. Only a new newest second reads the wall clock.
    fn advance_clock(&self, t: i64) {
        let t = t.max(0) as u64;
        if self.clock.load(Relaxed) < t && self.clock.fetch_max(t, Relaxed) < t {
            self.clock_arrival.store(crate::unix_now_seconds(), Relaxed);
        }
    }

    /// The evaluation clock, in data time (the calls' own timestamps), which places the current
    /// window (and a trailing reference) and a pin.
    ///
    /// With `now` (the wall clock, as the service's evaluation task and admin API pass it): the
    /// newest call's time plus the wall time since that call arrived. Live traffic, stamped by
    /// the wall clock, gives `now`; while no call comes the windows keep sliding and empty; and
    /// traffic whose timestamps are not the wall clock (replayed captures, `llmwatch simulate
    /// --time-scale`) is judged on its own timeline as it arrives, not only once it has caught
    /// up with the wall clock. Before any call: `now`. Without `now`: the newest call's time.
    fn clock(&self, now: Option<i64>) -> i64 {
        let newest = self.clock.load(Relaxed) as i64;
        match (now, self.clock_arrival.load(Relaxed)) {
            (None, _) => newest,
            (Some(now), i64::MIN) => now,
            (Some(now), arrival) => newest + (now - arrival).max(0),
        }
    }

    /// Tests every signal of every key and steps the charts; run on an interval.
    pub fn evaluate(&self, now: Option<i64>) {
        if !self.config.enabled {
            return;
        }
        let started = std::time::Instant::now();
        let clock = self.clock(now);
        for key in self.all_keys() {
            let inputs = key.state.lock().evaluation_inputs(&self.config, clock);
            let outcome = inputs.evaluate(&self.config, &self.embedder, key.hash);
            key.state.lock().apply(&self.config, outcome);
        }
        for score in self.scores.lock().iter_mut() {
            if score.count >= self.config.spc.min_per_interval {
                score.point = score
                    .chart
                    .update(score.sum / score.count as f64)
                    .ok()
                    .flatten()
                    .or(score.point);
            }
            score.sum = 0.0;
            score.count = 0;
        }
        self.evaluate_probes();
        *self.last_evaluation_seconds.lock() = started.elapsed().as_secs_f64();
    }

    /// Pins the current window as the reference of the keys whose labels include `filter`;
    /// returns how many keys.
    pub fn pin(&self, filter: &[(String, String)], now: Option<i64>) -> usize {
        let clock = self.clock(now);
        self.for_matching(filter, |state| state.pin(&self.config, clock)) + self.pin_probes(filter)
    }

    /// Clears the references of matching keys: a first-N reference starts collecting again, a
    /// pinned one is dropped until pinned again. Returns how many keys.
    pub fn reset(&self, filter: &[(String, String)]) -> usize {
        self.for_matching(filter, |state| state.reset_reference(&self.config))
            + self.reset_probes(filter)
    }

    fn for_matching(&self, filter: &[(String, String)], mut f: impl FnMut(&mut KeyState)) -> usize {
        let mut n = 0;
        for key in self.all_keys() {
            let matches = filter.iter().all(|(name, value)| {
                self.label_names
                    .iter()
                    .zip(key.labels.iter())
                    .any(|(n, v)| n == name && &**v == value)
            });
            if matches {
                f(&mut key.state.lock());
                n += 1;
            }
        }
        n
    }

    pub fn baselines(&self) -> Vec<BaselineInfo> {
        let mode = match self.config.reference {
            ReferenceMode::FirstN(_) => "first_n",
            ReferenceMode::Pinned => "pinned",
            ReferenceMode::Trailing(_) => "trailing",
        };
        let mut out: Vec<BaselineInfo> = self
            .all_keys()
            .iter()
            .map(|key| {
                let state = key.state.lock();
                BaselineInfo {
                    labels: self.labels_of(key),
                    mode,
                    reference_calls: state.reference_calls,
                    reference_samples: NumericSignal::ALL
                        .iter()
                        .zip(&state.numeric)
                        .map(|(signal, s)| (signal.name(), s.reference.len()))
                        .collect(),
                }
            })
            .collect();
        out.extend(self.probe_baselines());
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    fn labels_of(&self, key: &KeyMonitor) -> Vec<(String, String)> {
        self.label_names
            .iter()
            .cloned()
            .zip(key.labels.iter().map(|v| v.to_string()))
            .collect()
    }

    /// The state to persist.
    pub fn export_state(&self) -> DriftState {
        let keys = self
            .all_keys()
            .iter()
            .map(|key| {
                let state = key.state.lock();
                (
                    key.labels.iter().map(|l| l.to_string()).collect(),
                    state.clone(),
                )
            })
            .collect();
        let scores = self.scores.lock().clone();
        DriftState {
            version: 1,
            keys,
            scores,
            probes: self.export_probes(),
        }
    }

    /// Restores persisted state (keys beyond the limit or with another label layout are
    /// skipped); returns how many keys.
    pub fn restore(&self, state: DriftState) -> usize {
        let mut restored = 0;
        for (labels, mut key_state) in state.keys {
            if labels.len() != self.label_names.len() || !key_state.fits(&self.config) {
                continue;
            }
            let values: Vec<&str> = labels.iter().map(String::as_str).collect();
            if let Some(key) = self.key(&values) {
                key_state.chart_points = vec![None; RATIO_CHARTS.len()];
                if key_state.ratio_charts.len() != RATIO_CHARTS.len() {
                    key_state.ratio_charts = self.new_ratio_charts();
                }
                self.align_restored(&mut key_state);
                *key.state.lock() = key_state;
                restored += 1;
            }
        }
        *self.scores.lock() = state.scores;
        self.restore_probes(state.probes);
        restored
    }

    pub fn snapshot(&self, out: &mut Vec<FamilySnapshot>) {
        let family = |name| FamilySnapshot::new(catalog::def(name));
        let mut score = family(names::DRIFT_SCORE);
        let mut p_value = family(names::DRIFT_P_VALUE);
        let mut detected = family(names::DRIFT_DETECTED);
        let mut samples = family(names::DRIFT_WINDOW_SAMPLES);
        let mut spc = [
            family(names::SPC_VALUE),
            family(names::SPC_UPPER),
            family(names::SPC_LOWER),
            family(names::SPC_ALARM),
        ];
        let mut changes = family(names::MODEL_CHANGES);
        let with = |base: &[(String, String)], extra: &[(&str, &str)]| {
            let mut labels = base.to_vec();
            labels.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
            labels
        };
        let push_point = |spc: &mut [FamilySnapshot; 4],
                          base: &[(String, String)],
                          signal: &str,
                          chart: &str,
                          point: &ChartPoint| {
            let labels = with(base, &[("signal", signal), ("chart", chart)]);
            spc[0].push_scalar(labels.clone(), point.value);
            spc[1].push_scalar(labels.clone(), point.upper);
            spc[2].push_scalar(labels.clone(), point.lower);
            spc[3].push_scalar(labels, f64::from(u8::from(point.alarm)));
        };
        let mut keys = self.all_keys();
        keys.sort_by(|a, b| a.labels.cmp(&b.labels));
        for key in &keys {
            let base = self.labels_of(key);
            let state = key.state.lock();
            let verdicts = NumericSignal::ALL
                .iter()
                .map(|s| s.name())
                .zip(state.numeric.iter().map(|s| &s.verdict))
                .chain(
                    CategoricalSignal::ALL
                        .iter()
                        .map(|s| s.name())
                        .zip(state.categorical.iter().map(|s| &s.verdict)),
                )
                .chain(
                    TEXT_SIGNALS
                        .iter()
                        .copied()
                        .zip(state.texts.iter().map(|s| &s.verdict)),
                );
            for (signal, verdict) in verdicts {
                let Some(value) = verdict.score else { continue };
                score.push_scalar(
                    with(&base, &[("signal", signal), ("test", verdict.test)]),
                    value,
                );
                if let Some(p) = verdict.p_value {
                    p_value.push_scalar(
                        with(&base, &[("signal", signal), ("test", verdict.p_test)]),
                        p,
                    );
                }
                detected.push_scalar(
                    with(&base, &[("signal", signal)]),
                    f64::from(u8::from(verdict.detected)),
                );
                samples.push_scalar(
                    with(&base, &[("signal", signal), ("window", "reference")]),
                    verdict.reference_samples as f64,
                );
                samples.push_scalar(
                    with(&base, &[("signal", signal), ("window", "current")]),
                    verdict.current_samples as f64,
                );
            }
            for (signal, point) in RATIO_CHARTS.iter().zip(&state.chart_points) {
                if let Some(point) = point {
                    push_point(&mut spc, &base, signal, RATIO_CHART, point);
                }
            }
            for (kind, value, _) in &state.model_changes {
                changes.push_scalar(
                    with(&base, &[("kind", CHANGE_KINDS[*kind].1), ("value", value)]),
                    1.0,
                );
            }
        }
        for chart in self.scores.lock().iter() {
            if let Some(point) = &chart.point {
                let mut base: Vec<(String, String)> = self
                    .label_names
                    .iter()
                    .map(|n| (n.clone(), String::new()))
                    .collect();
                base[0].1 = chart.service.clone();
                push_point(
                    &mut spc,
                    &base,
                    &format!("evaluation_score:{}", chart.name),
                    SCORE_CHART,
                    point,
                );
            }
        }
        self.snapshot_probes(&mut score, &mut p_value, &mut detected, &mut samples);
        out.extend([score, p_value, detected, samples]);
        out.extend(spc);
        out.push(changes);
        let scalar = |name, value: f64| {
            let mut f = family(name);
            f.push_scalar(Vec::new(), value);
            f
        };
        out.push(scalar(
            names::DRIFT_KEYS,
            self.key_count.load(Relaxed) as f64,
        ));
        out.push(scalar(
            names::DRIFT_UNMONITORED_CALLS,
            self.unmonitored_calls.load(Relaxed) as f64,
        ));
        out.push(scalar(
            names::DRIFT_EVALUATION_SECONDS,
            *self.last_evaluation_seconds.lock(),
        ));
    }
}

/// Captured content, rendered to text at most once and only when needed.
enum Text<'a> {
    /// A vector the span carried.
    Vector(Vec<f64>),
    Lazy(llmwatch_semconv::ContentRef<'a>),
    /// The text cut to [`MAX_TEXT_CHARS`], and how many characters the whole text has.
    Ready(String, usize),
}

impl Text<'_> {
    /// What the embedding signal keeps of this text or vector.
    fn sample(&mut self) -> Sample {
        match self {
            Text::Vector(vector) => Sample::Vector(vector.clone()),
            text => Sample::Text(text.render().to_owned()),
        }
    }

    /// The text, cut to [`MAX_TEXT_CHARS`] (what the embedding signals keep).
    fn render(&mut self) -> &str {
        self.ready();
        match self {
            Text::Ready(text, _) => text,
            Text::Lazy(_) | Text::Vector(_) => "",
        }
    }

    /// Characters of the whole text, not only of the part kept.
    fn chars(&mut self) -> usize {
        self.ready();
        match self {
            Text::Ready(_, chars) => *chars,
            Text::Lazy(_) | Text::Vector(_) => 0,
        }
    }

    fn ready(&mut self) {
        if let Text::Lazy(content) = self {
            let mut text = content.to_text();
            let mut chars = 0;
            for (index, _) in text.char_indices() {
                if chars == MAX_TEXT_CHARS {
                    chars += text[index..].chars().count();
                    text.truncate(index);
                    break;
                }
                chars += 1;
            }
            *self = Text::Ready(text, chars);
        }
    }
}

/// Cached reference embeddings (if any), reference texts and current texts.
type TextInputs = (Option<Vec<Vec<f64>>>, Vec<Sample>, Vec<Sample>);

/// What an embedding signal keeps: text to embed at evaluation, or a vector to use as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Sample {
    Text(String),
    Vector(Vec<f64>),
}

/// Samples copied out of a key for one evaluation.
struct EvaluationInputs {
    numeric: Vec<(Vec<f64>, Vec<f64>)>,
    categorical: Vec<(CategoryCounter, CategoryCounter)>,
    texts: Vec<TextInputs>,
    interval: IntervalCounts,
}

struct EvaluationOutcome {
    numeric: Vec<Verdict>,
    categorical: Vec<Verdict>,
    texts: Vec<Verdict>,
    reference_embeddings: Vec<Option<Vec<Vec<f64>>>>,
    interval: IntervalCounts,
}

impl KeyState {
    fn new(config: &DriftConfig, ratio_charts: Vec<BinomialEwmaChart>) -> KeyState {
        let ring = config.ring_buckets();
        let seconds = config.bucket_seconds();
        let capacity = config.sample_capacity;
        KeyState {
            numeric: NumericSignal::ALL
                .iter()
                .enumerate()
                .map(|(i, _)| NumericState {
                    current: Ring::new(ring, seconds, || {
                        Reservoir::new(capacity, 0x5EED + i as u64).expect("capacity ≥ 1")
                    }),
                    reference: Vec::new(),
                    verdict: Verdict::default(),
                })
                .collect(),
            categorical: CategoricalSignal::ALL
                .iter()
                .map(|_| CategoricalState {
                    current: Ring::new(ring, seconds, || CategoryCounter::new(MAX_CATEGORIES)),
                    reference: CategoryCounter::new(MAX_CATEGORIES),
                    verdict: Verdict::default(),
                })
                .collect(),
            texts: TEXT_SIGNALS
                .iter()
                .enumerate()
                .map(|(i, _)| TextState {
                    current: Ring::new(ring, seconds, || {
                        Reservoir::new(config.text_capacity, 0x7E47 + i as u64)
                            .expect("capacity ≥ 1")
                    }),
                    reference: Vec::new(),
                    reference_embeddings: None,
                    verdict: Verdict::default(),
                })
                .collect(),
            reference_calls: 0,
            pinned: false,
            interval: IntervalCounts::default(),
            ratio_charts,
            chart_points: vec![None; RATIO_CHARTS.len()],
            model_changes: Vec::new(),
            admission: remote::Admission::default(),
        }
    }

    /// Whether restored state has the shape this configuration expects.
    fn fits(&self, config: &DriftConfig) -> bool {
        self.numeric.len() == NumericSignal::ALL.len()
            && self.categorical.len() == CategoricalSignal::ALL.len()
            && self.texts.len() == TEXT_SIGNALS.len()
            && self
                .numeric
                .iter()
                .all(|s| s.current.bucket_count() == config.ring_buckets())
    }

    fn reference_size(config: &DriftConfig) -> usize {
        match config.reference {
            ReferenceMode::FirstN(n) => n,
            _ => 0,
        }
    }

    /// Whether the reference is established (used for model-change events).
    fn has_reference(&self, config: &DriftConfig) -> bool {
        match config.reference {
            ReferenceMode::FirstN(n) => self.reference_calls >= n as u64,
            ReferenceMode::Pinned => self.pinned,
            ReferenceMode::Trailing(_) => true,
        }
    }

    fn add(
        &mut self,
        config: &DriftConfig,
        call: &LlmCall<'_>,
        price: &CallPrice,
        t: i64,
        mut texts: [Option<Text<'_>>; 3],
        remote: bool,
    ) {
        let first_n = Self::reference_size(config);
        let filling = matches!(config.reference, ReferenceMode::FirstN(_))
            && self.reference_calls < first_n as u64;
        if filling {
            self.reference_calls += 1;
        }
        for (signal, state) in NumericSignal::ALL.iter().zip(&mut self.numeric) {
            if *signal == NumericSignal::ResponseLength {
                let Some(response) = texts[1].as_mut() else {
                    continue;
                };
                let length = |text: &mut Text<'_>| text.chars() as f64;
                if let Some(bucket) = state.current.at(t, Reservoir::clear) {
                    bucket.push_with(|| length(response));
                }
                if filling {
                    state.reference.push(length(response));
                }
                continue;
            }
            if let Some(value) = signal.value(call, price, None).filter(|v| v.is_finite()) {
                if let Some(bucket) = state.current.at(t, Reservoir::clear) {
                    bucket.push(value);
                }
                if filling {
                    state.reference.push(value);
                }
            }
        }
        let established = self.has_reference(config);
        // New values against a first-N or pinned reference are model-change events; a trailing
        // reference moves with time, so there only the response-model drift signal speaks.
        let events =
            established && !filling && !matches!(config.reference, ReferenceMode::Trailing(_));
        for (signal, state) in CategoricalSignal::ALL.iter().zip(&mut self.categorical) {
            let mut bucket = state
                .current
                .at(t, |c| *c = CategoryCounter::new(MAX_CATEGORIES));
            signal.categories(call, |category, n| {
                if let Some(bucket) = bucket.as_deref_mut() {
                    bucket.add_n(category, n);
                }
                if filling {
                    state.reference.add_n(category, n);
                }
                let Some(kind) = CHANGE_KINDS.iter().position(|(s, _)| s == signal) else {
                    return;
                };
                if events
                    && state.reference.count(category) == 0
                    && self
                        .model_changes
                        .iter()
                        .filter(|(k, _, _)| *k == kind)
                        .count()
                        < MAX_MODEL_CHANGES
                    && !self
                        .model_changes
                        .iter()
                        .any(|(k, v, _)| *k == kind && v == category)
                {
                    self.model_changes.push((kind, category.to_owned(), t));
                }
            });
        }
        for (i, (state, text)) in self.texts.iter_mut().zip(&mut texts).enumerate() {
            let Some(text) = text else { continue };
            // Remote embeddings: prompts and responses arrive later, as vectors (`remote`).
            if remote && i < 2 {
                continue;
            }
            if filling && state.reference.len() < config.text_capacity * config.buckets {
                state.reference.push(text.sample());
            }
            if let Some(bucket) = state.current.at(t, Reservoir::clear) {
                bucket.push_with(|| text.sample());
            }
        }
        let interval = &mut self.interval;
        interval.calls += 1;
        interval.errors += u64::from(call.error_type.is_some());
        let (length, finishes) = finish_share(call, FinishReason::Length);
        interval.length += length;
        interval.refusals += finish_share(call, FinishReason::ContentFilter).0;
        interval.finishes += finishes;
    }

    /// Bucket numbers of the current window and of the trailing reference, as of `clock`.
    fn windows(config: &DriftConfig, clock: i64) -> ((i64, i64), Option<(i64, i64)>) {
        let seconds = config.bucket_seconds() as i64;
        let now = clock.div_euclid(seconds);
        let len = config.buckets.max(1) as i64;
        let current = (now - len + 1, now);
        let trailing = match config.reference {
            ReferenceMode::Trailing(offset) => {
                let back = (offset as i64).div_euclid(seconds);
                Some((current.0 - back, current.1 - back))
            }
            _ => None,
        };
        (current, trailing)
    }

    fn evaluation_inputs(&mut self, config: &DriftConfig, clock: i64) -> EvaluationInputs {
        let (current, trailing) = Self::windows(config, clock);
        let numeric_window = |state: &NumericState, (a, b): (i64, i64)| -> Vec<f64> {
            state
                .current
                .range(a, b)
                .flat_map(|r| r.items().iter().copied())
                .collect()
        };
        let counts_window = |state: &CategoricalState, (a, b): (i64, i64)| {
            let mut merged = CategoryCounter::new(MAX_CATEGORIES);
            state.current.range(a, b).for_each(|c| merged.merge(c));
            merged
        };
        let texts_window = |state: &TextState, (a, b): (i64, i64)| -> Vec<Sample> {
            state
                .current
                .range(a, b)
                .flat_map(|r| r.items().iter().cloned())
                .collect()
        };
        let usable = self.has_reference(config) || trailing.is_some();
        let numeric = self
            .numeric
            .iter()
            .map(|s| {
                let reference = match trailing {
                    Some(window) => numeric_window(s, window),
                    None if usable => s.reference.clone(),
                    None => Vec::new(),
                };
                (reference, numeric_window(s, current))
            })
            .collect();
        let categorical = self
            .categorical
            .iter()
            .map(|s| {
                let reference = match trailing {
                    Some(window) => counts_window(s, window),
                    None if usable => s.reference.clone(),
                    None => CategoryCounter::new(MAX_CATEGORIES),
                };
                (reference, counts_window(s, current))
            })
            .collect();
        let texts = self
            .texts
            .iter()
            .map(|s| match trailing {
                Some(window) => (None, texts_window(s, window), texts_window(s, current)),
                None if usable => (
                    s.reference_embeddings.clone(),
                    s.reference.clone(),
                    texts_window(s, current),
                ),
                None => (None, Vec::new(), Vec::new()),
            })
            .collect();
        EvaluationInputs {
            numeric,
            categorical,
            texts,
            interval: std::mem::take(&mut self.interval),
        }
    }

    fn apply(&mut self, config: &DriftConfig, outcome: EvaluationOutcome) {
        let step = |old: &Verdict, mut new: Verdict, over: bool| {
            new.streak = if over { old.streak + 1 } else { 0 };
            new.detected = new.streak >= config.consecutive;
            new
        };
        for (state, verdict) in self.numeric.iter_mut().zip(outcome.numeric) {
            let over = verdict.score.is_some_and(|s| s >= config.psi_threshold);
            state.verdict = step(&state.verdict, verdict, over);
        }
        for (state, verdict) in self.categorical.iter_mut().zip(outcome.categorical) {
            let over = verdict.score.is_some_and(|s| s >= config.js_threshold)
                && verdict
                    .p_value
                    .is_some_and(|p| p < config.p_value_threshold);
            state.verdict = step(&state.verdict, verdict, over);
        }
        for ((state, verdict), embeddings) in self
            .texts
            .iter_mut()
            .zip(outcome.texts)
            .zip(outcome.reference_embeddings)
        {
            let over = config.mmd_crossed(verdict.score, verdict.p_value);
            state.verdict = step(&state.verdict, verdict, over);
            if matches!(
                config.reference,
                ReferenceMode::FirstN(_) | ReferenceMode::Pinned
            ) && embeddings.is_some()
            {
                state.reference_embeddings = embeddings;
            }
        }
        // (events, trials) of each ratio chart: errors per call; `length` and `content_filter`
        // finishes per finish (choice). An interval with fewer trials than `min_per_interval`
        // is not charted.
        let interval = outcome.interval;
        let counts = [
            (interval.errors, interval.calls),
            (interval.length, interval.finishes),
            (interval.refusals, interval.finishes),
        ];
        for ((chart, point), (events, trials)) in self
            .ratio_charts
            .iter_mut()
            .zip(&mut self.chart_points)
            .zip(counts)
        {
            if trials >= config.spc.min_per_interval
                && let Ok(Some(p)) = chart.update(events, trials)
            {
                *point = Some(p);
            }
        }
    }

    fn pin(&mut self, config: &DriftConfig, clock: i64) {
        let (current, _) = Self::windows(config, clock);
        for state in &mut self.numeric {
            state.reference = state
                .current
                .range(current.0, current.1)
                .flat_map(|r| r.items().iter().copied())
                .collect();
            state.verdict = Verdict::default();
        }
        for state in &mut self.categorical {
            let mut merged = CategoryCounter::new(MAX_CATEGORIES);
            state
                .current
                .range(current.0, current.1)
                .for_each(|c| merged.merge(c));
            state.reference = merged;
            state.verdict = Verdict::default();
        }
        for state in &mut self.texts {
            state.reference = state
                .current
                .range(current.0, current.1)
                .flat_map(|r| r.items().iter().cloned())
                .collect();
            state.reference_embeddings = None;
            state.verdict = Verdict::default();
        }
        self.pinned = true;
        self.model_changes.clear();
    }

    fn reset_reference(&mut self, _config: &DriftConfig) {
        for state in &mut self.numeric {
            state.reference.clear();
            state.verdict = Verdict::default();
        }
        for state in &mut self.categorical {
            state.reference = CategoryCounter::new(MAX_CATEGORIES);
            state.verdict = Verdict::default();
        }
        for state in &mut self.texts {
            state.reference.clear();
            state.reference_embeddings = None;
            state.verdict = Verdict::default();
        }
        self.reference_calls = 0;
        self.pinned = false;
        self.model_changes.clear();
    }
}

impl EvaluationInputs {
    fn evaluate(
        self,
        config: &DriftConfig,
        embedder: &HashingEmbedder,
        seed: u64,
    ) -> EvaluationOutcome {
        let numeric = self
            .numeric
            .iter()
            .map(|(reference, current)| numeric_verdict(config, reference, current))
            .collect();
        let categorical = self
            .categorical
            .iter()
            .map(|(reference, current)| categorical_verdict(config, reference, current))
            .collect();
        let mut reference_embeddings = Vec::new();
        let texts = self
            .texts
            .into_iter()
            .map(|(cached, reference, current)| {
                let embed = |samples: &[Sample]| -> Vec<Vec<f64>> {
                    samples
                        .iter()
                        .filter_map(|sample| match sample {
                            Sample::Text(text) => embedder.embed(text).ok(),
                            Sample::Vector(vector) => Some(vector.clone()),
                        })
                        .collect()
                };
                let reference = cached.unwrap_or_else(|| embed(&reference));
                let current = embed(&current);
                let verdict = text_verdict(config, &reference, &current, seed);
                reference_embeddings.push((!reference.is_empty()).then_some(reference));
                verdict
            })
            .collect();
        EvaluationOutcome {
            numeric,
            categorical,
            texts,
            reference_embeddings,
            interval: self.interval,
        }
    }
}

/// A verdict without a score when either side has fewer than `minimum` samples.
fn too_few(reference: usize, current: usize, minimum: usize) -> Option<Verdict> {
    (reference < minimum || current < minimum).then(|| Verdict {
        reference_samples: reference,
        current_samples: current,
        ..Verdict::default()
    })
}

/// PSI on reference-decile bins decides; the asymptotic KS p-value is reported beside it.
fn numeric_verdict(config: &DriftConfig, reference: &[f64], current: &[f64]) -> Verdict {
    if let Some(short) = too_few(reference.len(), current.len(), config.min_samples) {
        return short;
    }
    let mut verdict = Verdict {
        test: "psi",
        p_test: "ks",
        reference_samples: reference.len(),
        current_samples: current.len(),
        ..Verdict::default()
    };
    if let Ok(bins) = Bins::deciles(reference)
        && let (Ok(r), Ok(c)) = (bins.counts(reference), bins.counts(current))
    {
        verdict.score = psi_from_counts(&r, &c).ok();
    }
    verdict.p_value = ks_2samp(reference, current, Alternative::TwoSided, KsMethod::Asymp)
        .ok()
        .map(|ks| ks.p_value);
    verdict
}

/// Jensen–Shannon distance (base 2) with the chi-square contingency test's p-value, both on the
/// counts after pooling the categories too sparse for the test (expected count under 5 in either
/// window: Cochran's rule, [`pool_sparse_categories`]). A rare category (an error type on half a
/// percent of calls) otherwise moves by a few counts by chance, which chi-square takes for a
/// significant change and the JS distance inflates (a share change Δ counts as about Δ/√share);
/// a category that appears or grows past the rule still stands on its own.
fn categorical_verdict(
    config: &DriftConfig,
    reference: &CategoryCounter,
    current: &CategoryCounter,
) -> Verdict {
    let (r_total, c_total) = (reference.total() as usize, current.total() as usize);
    if let Some(short) = too_few(r_total, c_total, config.min_samples) {
        return short;
    }
    let (_, r, c) = CategoryCounter::aligned_counts(reference, current);
    let (r, c) = pool_sparse_categories(&r, &c, MIN_EXPECTED_COUNT);
    Verdict {
        test: "js",
        p_test: "chi2",
        score: jensen_shannon_from_counts(&r, &c).ok(),
        p_value: chi2_contingency(&r, &c, true).ok().map(|chi| chi.p_value),
        reference_samples: r_total,
        current_samples: c_total,
        ..Verdict::default()
    }
}

/// Unbiased MMD² with the median-heuristic RBF kernel and a seeded permutation p-value; the
/// signal is over the threshold when both the statistic reaches `mmd_threshold` and the p-value
/// is below `mmd_p_value_threshold` ([`DriftConfig::mmd_crossed`]).
fn text_verdict(
    config: &DriftConfig,
    reference: &[Vec<f64>],
    current: &[Vec<f64>],
    seed: u64,
) -> Verdict {
    let minimum = config
        .min_samples
        .min(config.text_capacity * config.buckets / 2)
        .max(2);
    if let Some(short) = too_few(reference.len(), current.len(), minimum) {
        return short;
    }
    let test = mmd2_permutation_test(
        reference,
        current,
        Bandwidth::MedianHeuristic,
        MmdEstimator::Unbiased,
        config.mmd_permutations,
        seed,
    );
    Verdict {
        test: "mmd",
        p_test: "mmd",
        score: test.as_ref().ok().map(|t| t.statistic),
        p_value: test.ok().map(|t| t.p_value),
        reference_samples: reference.len(),
        current_samples: current.len(),
        ..Verdict::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

    #[test]
    fn a_long_text_is_kept_cut_but_measured_whole() {
        let answer = AnyValue {
            value: Some(Value::StringValue("é".repeat(MAX_TEXT_CHARS + 500))),
        };
        let mut text = Text::Lazy(llmwatch_semconv::ContentRef::Value(&answer));
        assert_eq!(text.chars(), MAX_TEXT_CHARS + 500);
        assert_eq!(text.render().chars().count(), MAX_TEXT_CHARS);
        let short = AnyValue {
            value: Some(Value::StringValue("four".into())),
        };
        let mut text = Text::Lazy(llmwatch_semconv::ContentRef::Value(&short));
        assert_eq!(text.chars(), 4);
        assert_eq!(text.render(), "four");
    }
}
