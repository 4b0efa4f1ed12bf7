//! Drift detection end to end: `llmwatch simulate` scenarios sent over OTLP/gRPC into an
//! in-process llmwatch, every verdict read back from `/metrics`.
//!
//! Each test starts a [`TestServer`] with [`processor_config`] (drift settings for short runs),
//! runs `simulate::send` in-process at [`RATE`] spans per second with `--time-scale`
//! [`TIME_SCALE`], and evaluates the drift monitors once per simulated minute of ingested
//! traffic. After every evaluation it scrapes `/metrics` and records when each
//! `llmwatch_drift_detected`, `llmwatch_spc_alarm` and `llmwatch_model_changes_total` series first
//! showed.
//!
//! # Time
//!
//! A delay is measured in simulated time, by data: the simulated seconds of traffic llmwatch had
//! ingested after the change when the flag was first seen, `(spans received − change index) /
//! simulated rate`. It counts whole evaluations (one per simulated minute) and does not depend on
//! how fast a loaded machine sends. The wall-clock figure, `(wall time first seen − wall time of
//! the change) × time scale`, is printed beside it; it adds the exporters' batching (up to 0.5 s
//! of wall time, 30 simulated seconds) and any lag of the sender.
//!
//! # Who evaluates
//!
//! The server's own drift task evaluates every `drift_interval` with the wall clock, which the
//! monitors turn into data time: the newest call's timestamp plus the wall time since it
//! arrived. `simulate` places a time-scaled run's timestamps so that the simulated timeline
//! *ends* when the send ends (while it runs, its newest spans are `(F − 1) × (time left)` behind
//! the wall clock); with data time the windows follow the simulated timeline as it arrives
//! ([`the_service_evaluates_time_scaled_traffic_as_it_arrives`] shows it with the server's
//! timer; before data time, the windows stayed empty until the last `current_window / (F − 1)`
//! seconds of the send). The detection tests switch the server's timer off (`drift_interval` of
//! a day) and call the same `DriftMonitors::evaluate` with the wall clock themselves, once per
//! simulated minute of ingested traffic, so that delays count whole evaluations.
//!
//! # Settings
//!
//! `current_window` 600 s in 10 buckets, reference the first 600 calls of each key,
//! `min_samples` 300, `consecutive` 2; the service's thresholds (PSI 0.2, JS 0.1 with
//! chi-square p < 0.01, MMD² 0.05 with p < 0.01); SPC at the service defaults (λ 0.2, L 4.5,
//! warm-up 60 intervals, at least 20 calls or scores per interval; judge-sag warms up over 20,
//! see [`judge_sag_config`]). With 400 spans per second at time scale
//! 60 (6.67 calls per simulated second) three chat keys hold comfortably more than
//! `min_samples` in a window and fill their reference before the change ([`Key::watched`]):
//! support-chat × gpt-4o (~800 per window), support-chat × claude-sonnet-4-5 (~480) and
//! docs-summarizer × gpt-4o-mini (~420); the smaller keys are judged when their windows reach
//! `min_samples` and are reported, not required. With `min_samples` 100 and a 300 s window
//! (tried first), PSI on ~100-value reservoirs crossed 0.2 by chance and `error_type` (rare
//! categories) crossed the Jensen–Shannon and chi-square thresholds: false detections within
//! 20 simulated minutes of normal traffic.
//!
//! # Results
//!
//! Measured delays (simulated seconds after the change, by data) over seeds 7, 1, 2, 3 and 11,
//! and the bounds asserted, detailed in each test's documentation:
//!
//! | scenario | signal | measured | bound |
//! |---|---|---|---|
//! | `output-tokens` | `output_tokens` on the watched chat keys whose PSI moves ≥ 0.3 | 540–660 s | 900 s |
//! | `model-swap` | `llmwatch_model_changes_total` event | 60 s | 120 s |
//! | `model-swap` | `response_model` on support-chat × gpt-4o | 120 s | 300 s |
//! | `topic-shift` | `prompt_embedding` on the 3 watched chat keys | 360–480 s | 600 s |
//! | `judge-sag` | `evaluation_score:correctness` EWMA alarm | 180–240 s | 300 s |
//! | time-scaled traffic, the service's own timer | first verdict, wall time | 8–9 s of a 30 s send | 15 s |
//!
//! Detection of `output-tokens` is required only where the change moves a full window's PSI to
//! 0.3 or more (seed 7: two of the three keys; the third, at 0.2975, is detected as well). With
//! seeds 2 and 3 the ×1.5 moved support-chat × gpt-4o's PSI only to 0.17 and 0.21 (not
//! detected, and detected at 600 s) and support-chat × claude-sonnet-4-5's to 0.25 and 0.28
//! (540 and 900 s); docs-summarizer × gpt-4o-mini (0.74) was detected at 540 and 360 s. See
//! [`output_tokens_drift_is_detected`].
//!
//! The control (two simulated hours, 120 evaluations; eleven runs over seeds 7, 1, 2, 3 and 11)
//! detected nothing on any signal; its ratio charts started one alarm episode in ~1,200 points
//! with seed 7 (a real cluster of errors in that seed's traffic) and none with the others. Before
//! the MMD² floor, the pooling of sparse categories and the binomial charts, the embedding
//! signals gave 1–4 false detections a run, seed 11 one of `error_type`, and the ratio charts
//! started an alarm episode on 0.8–1.5% of their points: see
//! [`normal_traffic_raises_no_drift_alarm_over_two_hours`].
//!
//! These runs take minutes of wall time (the suite ~5.5 min), so they are `#[ignore]`d; run them
//! with `cargo test --release -p llmwatch-tests --test drift_detection -- --ignored --nocapture`
//! (the figures are printed on stderr; `.ci/run` runs them). A debug build cannot evaluate once
//! per simulated minute as fast as the traffic comes, which coarsens the delays. They hold one
//! lock so that they never run at the same time.
//! `DRIFT_DETECTION_SEED` changes the traffic seed (default 7; the figures above are for seed 7
//! unless stated).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use llmwatch::simulate::{
    self, ChangePoint, Generator, JudgeSag, ModelSwap, Operation, Protocol, SERVICES, ScenarioName,
    SimulateArgs, Summary,
};
use llmwatch_core::ProcessorConfig;
use llmwatch_core::drift::{DriftConfig, ReferenceMode, SpcConfig};
use llmwatch_tests::{Labels, Metrics, Sample, TestServer, loopback_config};

/// Simulated seconds per second of the send.
const TIME_SCALE: f64 = 60.0;
/// Spans per second of the send.
const RATE: f64 = 400.0;
/// Spans per simulated second.
const SIM_RATE: f64 = RATE / TIME_SCALE;
/// Simulated seconds of ingested traffic between two evaluations.
const EVALUATION_EVERY: f64 = 60.0;
const WINDOW: u64 = 600;
const REFERENCE: usize = 600;
const MIN_SAMPLES: usize = 300;
/// Scenario runs: the change 25 simulated minutes in, the end 17 minutes after it.
const CHANGE_AFTER: Duration = Duration::from_secs(25);
const SCENARIO_DURATION: Duration = Duration::from_secs(42);
/// The control run: two simulated hours.
const CONTROL_DURATION: Duration = Duration::from_secs(120);

const DETECTED: &str = "llmwatch_drift_detected";
const SCORE: &str = "llmwatch_drift_score";
const WINDOW_SAMPLES: &str = "llmwatch_drift_window_samples";
const P_VALUE: &str = "llmwatch_drift_p_value";
const SPC_ALARM: &str = "llmwatch_spc_alarm";
const SPC_VALUE: &str = "llmwatch_spc_value";
const SPC_UPPER: &str = "llmwatch_spc_upper_limit";
const SPC_LOWER: &str = "llmwatch_spc_lower_limit";
const MODEL_CHANGES: &str = "llmwatch_model_changes_total";
const CALLS: &str = "llmwatch_llm_calls_total";

/// One run at a time: they measure delays and would slow each other down.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn seed() -> u64 {
    std::env::var("DRIFT_DETECTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// Drift settings for short runs (see the module documentation).
fn processor_config() -> ProcessorConfig {
    ProcessorConfig {
        drift: DriftConfig {
            current_window: WINDOW,
            buckets: 10,
            reference: ReferenceMode::FirstN(REFERENCE),
            min_samples: MIN_SAMPLES,
            consecutive: 2,
            spc: SpcConfig::default(),
            ..DriftConfig::default()
        },
        ..ProcessorConfig::default()
    }
}

/// judge-sag's: [`processor_config`] with charts that judge after 20 intervals, as the change
/// comes 25 simulated minutes (evaluations) in and the default warm-up is 60 intervals.
fn judge_sag_config() -> ProcessorConfig {
    let mut config = processor_config();
    config.drift.spc.warmup_intervals = 20;
    config
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// A drift key of the simulated traffic: service × provider × request model.
#[derive(Debug, Clone)]
struct Key {
    service: &'static str,
    provider: &'static str,
    model: &'static str,
    chat: bool,
    /// Share of all calls.
    share: f64,
}

impl Key {
    fn id(&self) -> String {
        key_id(self.service, self.provider, self.model)
    }

    /// Whether the run judges this key reliably: a full window holds at least 1.25 ×
    /// `min_samples` of its calls, and its first-N reference is full well before the change.
    fn watched(&self) -> bool {
        let per_second = self.share * SIM_RATE;
        let change = CHANGE_AFTER.as_secs_f64() * TIME_SCALE;
        per_second * WINDOW as f64 >= 1.25 * MIN_SAMPLES as f64
            && per_second * change >= 1.25 * REFERENCE as f64
    }
}

fn key_id(service: &str, provider: &str, model: &str) -> String {
    format!("{service}/{provider}/{model}")
}

/// Every key of the simulated traffic, from simulate's profiles.
fn keys() -> Vec<Key> {
    let mut keys = Vec::new();
    for service in SERVICES {
        let total: f64 = service.models.iter().map(|(_, w)| w).sum();
        for (model, weight) in service.models {
            let profile = simulate::model(model).expect("profiles name known models");
            keys.push(Key {
                service: service.name,
                provider: profile.provider.name(),
                model: profile.request_model,
                chat: profile.operation == Operation::Chat,
                share: service.weight * weight / total,
            });
        }
    }
    keys
}

fn watched_chat_keys() -> Vec<Key> {
    keys()
        .into_iter()
        .filter(|k| k.chat && k.watched())
        .collect()
}

/// The key of a drift or SPC sample.
fn key_of(sample: &Sample) -> String {
    let label = |name: &str| sample.labels.get(name).map_or("", String::as_str);
    key_id(
        label("service_name"),
        label("gen_ai_provider_name"),
        label("gen_ai_request_model"),
    )
}

fn signal_of(sample: &Sample) -> String {
    sample.labels.get("signal").cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

/// When something was seen, counted from the change.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The evaluation (from 1).
    evaluation: u32,
    /// Simulated seconds of traffic ingested since the change when the evaluation ran; zero or
    /// negative: the evaluation saw no changed call.
    by_data: f64,
    /// Wall time since the change was due to be sent, times the time scale.
    by_wall: f64,
}

impl Seen {
    fn after_change(&self) -> bool {
        self.by_data > 0.0
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:+.0} s simulated by data ({:+.0} s by wall clock × {TIME_SCALE}), evaluation {}",
            self.by_data, self.by_wall, self.evaluation
        )
    }
}

/// A `llmwatch_drift_detected` 1, with the test statistics of that evaluation.
#[derive(Debug, Clone, Copy)]
struct Detection {
    seen: Seen,
    score: Option<f64>,
    p_value: Option<f64>,
}

/// First and first-after-the-change detections of one (key, signal).
#[derive(Debug, Clone, Copy)]
struct Detections {
    first: Detection,
    after_change: Option<Detection>,
}

/// One alarming point of an SPC chart.
#[derive(Debug, Clone, Copy)]
struct Alarm {
    seen: Seen,
    value: f64,
    lower: f64,
    upper: f64,
}

/// Counts over part of a run.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// (evaluation, key, signal) verdicts: both windows held `min_samples`.
    verdicts: u64,
    /// Verdicts over their test's threshold: PSI ≥ 0.2; JS ≥ 0.1 with chi-square p < 0.01; MMD
    /// p < 0.01. `consecutive` of them in a row make a detection.
    crossings: u64,
    /// Of those, verdicts and crossings of the embedding signals (MMD).
    text_verdicts: u64,
    text_crossings: u64,
    /// Embedding verdicts with p < 0.01 whatever their MMD²: the crossings without the MMD²
    /// floor (`mmd_threshold`).
    text_p_crossings: u64,
    /// (evaluation, key, signal) with `llmwatch_drift_detected` 1.
    detected: u64,
    /// New points of the ratio charts (error, length and refusal ratios).
    ratio_points: u64,
    /// Of those, alarming.
    ratio_alarm_points: u64,
    /// Ratio-chart alarm episodes: a chart going from no alarm to alarm.
    ratio_episodes: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, b: Counts) -> Counts {
        Counts {
            verdicts: self.verdicts + b.verdicts,
            crossings: self.crossings + b.crossings,
            text_verdicts: self.text_verdicts + b.text_verdicts,
            text_crossings: self.text_crossings + b.text_crossings,
            text_p_crossings: self.text_p_crossings + b.text_p_crossings,
            detected: self.detected + b.detected,
            ratio_points: self.ratio_points + b.ratio_points,
            ratio_alarm_points: self.ratio_alarm_points + b.ratio_alarm_points,
            ratio_episodes: self.ratio_episodes + b.ratio_episodes,
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} drift verdicts, {} threshold crossings ({} of {} embedding verdicts; {} with \
             p < {} alone), {} detected; ratio charts: {} points, {} alarming, {} alarm episodes",
            self.verdicts,
            self.crossings,
            self.text_crossings,
            self.text_verdicts,
            self.text_p_crossings,
            processor_config().drift.mmd_p_value_threshold,
            self.detected,
            self.ratio_points,
            self.ratio_alarm_points,
            self.ratio_episodes
        )
    }
}

fn is_text(signal: &str) -> bool {
    matches!(signal, "prompt_embedding" | "response_embedding")
}

/// What one run showed on `/metrics`, evaluation by evaluation.
#[derive(Debug)]
struct Outcome {
    evaluations: u32,
    /// Simulated seconds of traffic in the run.
    simulated: f64,
    detections: BTreeMap<(String, String), Detections>,
    /// (key, kind, value) → first seen.
    model_changes: BTreeMap<(String, String, String), Seen>,
    /// Every new alarming point of an evaluation-score chart, by service.
    score_alarms: Vec<(String, Alarm)>,
    /// Ratio charts seen, and the first alarm of those that alarmed.
    ratio_charts: usize,
    ratio_alarms: BTreeMap<(String, String), Alarm>,
    /// Evaluations that saw no changed call, and the others.
    before: Counts,
    after: Counts,
    /// Every drift statistic of those evaluations, by test (`psi`, `js`, `mmd`).
    scores_before: BTreeMap<String, Vec<f64>>,
    scores_after: BTreeMap<String, Vec<f64>>,
    summary: Summary,
    last: Metrics,
    wall: Duration,
}

impl Outcome {
    /// The first detection of (key, signal) by an evaluation that saw changed calls.
    fn detected_after_change(&self, key: &str, signal: &str) -> Option<Detection> {
        self.detections
            .get(&(key.to_owned(), signal.to_owned()))
            .and_then(|d| d.after_change)
    }

    /// (key, signal)s detected by an evaluation that saw no changed call: false detections.
    fn detected_before_change(&self) -> Vec<(String, String, Seen)> {
        self.detections
            .iter()
            .filter(|(_, d)| !d.first.seen.after_change())
            .map(|((key, signal), d)| (key.clone(), signal.clone(), d.first.seen))
            .collect()
    }

    /// Detections of (key, signal)s that `allowed` does not cover, whenever they came.
    fn detected_unless(&self, allowed: impl Fn(&str, &str) -> bool) -> Vec<String> {
        self.detections
            .iter()
            .filter(|((key, signal), _)| !allowed(key, signal))
            .map(|((key, signal), d)| format!("{key} {signal} at {}", d.first.seen))
            .collect()
    }

    fn report(&self) {
        let name = self.summary.scenario;
        eprintln!(
            "[{name}] {}; {} evaluations over {:.0} simulated minutes, {:.1} s of wall time",
            self.summary,
            self.evaluations,
            self.simulated / 60.0,
            self.wall.as_secs_f64()
        );
        eprintln!("[{name}]   before the change: {}", self.before);
        eprintln!("[{name}]   after the change: {}", self.after);
        for (when, scores) in [
            ("before", &self.scores_before),
            ("after", &self.scores_after),
        ] {
            for (test, values) in scores {
                eprintln!("[{name}]   {test} {when} the change: {}", quantiles(values));
            }
        }
        for ((key, signal), d) in &self.detections {
            let first = d.first;
            eprintln!(
                "[{name}]   detected {key} {signal}: {} (score {:?}, p {:?})",
                first.seen, first.score, first.p_value
            );
            if let Some(after) = d.after_change.filter(|_| !first.seen.after_change()) {
                eprintln!("[{name}]     and after the change: {}", after.seen);
            }
        }
        for ((key, kind, value), seen) in &self.model_changes {
            eprintln!("[{name}]   model change {key} {kind}={value}: {seen}");
        }
        for (service, alarm) in self.score_alarms.iter().take(3) {
            eprintln!(
                "[{name}]   score chart alarm {service}: {} (EWMA {:.4}, limits {:.4}..{:.4})",
                alarm.seen, alarm.value, alarm.lower, alarm.upper
            );
        }
        for ((key, signal), alarm) in &self.ratio_alarms {
            eprintln!(
                "[{name}]   ratio chart alarm {key} {signal}: first {} (EWMA {:.4}, limits \
                 {:.4}..{:.4})",
                alarm.seen, alarm.value, alarm.lower, alarm.upper
            );
        }
    }
}

fn same_series(a: &Sample, b: &Sample) -> bool {
    let strip = |s: &Sample| {
        let mut labels = s.labels.clone();
        labels.remove("test");
        labels
    };
    strip(a) == strip(b)
}

/// The p-value of `test` beside a drift score sample, from the same scrape.
fn p_value_of(m: &Metrics, score: &Sample, test: &str) -> Option<f64> {
    let mut labels = score.labels.clone();
    labels.insert("test".to_owned(), test.to_owned());
    m.get(P_VALUE, &Labels(labels))
}

/// Whether a drift score sample is over its threshold (the p-value from the same scrape).
fn crossed(m: &Metrics, score: &Sample) -> bool {
    let p = |test: &str| p_value_of(m, score, test);
    let config = processor_config().drift;
    match score.labels.get("test").map(String::as_str) {
        Some("psi") => score.value >= config.psi_threshold,
        Some("js") => {
            score.value >= config.js_threshold
                && p("chi2").is_some_and(|p| p < config.p_value_threshold)
        }
        Some("mmd") => config.mmd_crossed(Some(score.value), p("mmd")),
        other => panic!("unknown drift test {other:?}"),
    }
}

/// Runs `scenario` for `duration` of wall time with its change `change_after` into the send
/// (`duration`: no call changes), evaluating once per simulated minute of ingested traffic, and
/// records what `/metrics` showed after each evaluation.
async fn run(
    scenario: ScenarioName,
    duration: Duration,
    change_after: Duration,
    processor: ProcessorConfig,
) -> Outcome {
    let mut config = loopback_config();
    // The tests evaluate (see the module documentation); the server's timer stays quiet.
    config.drift_interval = Duration::from_secs(86_400);
    let server = TestServer::start_with(config, processor).await;
    let args = SimulateArgs {
        endpoint: server.grpc_endpoint(),
        rate: RATE,
        duration,
        seed: seed(),
        protocol: Protocol::Grpc,
        scenario,
        change_after: Some(change_after),
        time_scale: TIME_SCALE,
    };
    let total = args.total_spans().expect("valid arguments");
    let change = args.change_point(total).expect("valid arguments").index;
    let started = Instant::now();
    let send = tokio::spawn(async move { simulate::send(&args).await.expect("simulate runs") });

    let step = (EVALUATION_EVERY * SIM_RATE).round() as u64;
    let mut next_at = step;
    let mut last_evaluated = 0;
    let mut evaluations = 0;
    let mut detections: BTreeMap<(String, String), Detections> = BTreeMap::new();
    let mut model_changes = BTreeMap::new();
    let mut score_alarms = Vec::new();
    let mut ratio_alarms = BTreeMap::new();
    // The last point of each chart (value, upper limit, alarm), to tell new points from old.
    let mut ratio_last: BTreeMap<(String, String), (f64, f64, bool)> = BTreeMap::new();
    let mut score_last: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let (mut before, mut after) = (Counts::default(), Counts::default());
    let (mut scores_before, mut scores_after) = (BTreeMap::new(), BTreeMap::new());
    let mut last = None;
    let deadline = duration * 3 + Duration::from_secs(60);
    loop {
        let received = server.scrape().await.total(CALLS) as u64;
        let finished = send.is_finished();
        if received < next_at && !(finished && received > last_evaluated) {
            if finished {
                break;
            }
            assert!(
                started.elapsed() < deadline,
                "the run did not finish in {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let processor = server.processor.clone();
        // As the service's timer does: the wall clock, which the monitors turn into data time.
        tokio::task::spawn_blocking(move || {
            processor
                .drift()
                .evaluate(Some(llmwatch_core::unix_now_seconds()))
        })
        .await
        .expect("evaluation");
        let m = server.scrape().await;
        evaluations += 1;
        last_evaluated = received;
        next_at = (received / step + 1) * step;
        let seen = Seen {
            evaluation: evaluations,
            by_data: (received as f64 - change as f64) / SIM_RATE,
            by_wall: (started.elapsed().as_secs_f64() - change_after.as_secs_f64()) * TIME_SCALE,
        };
        let (counts, scores) = if seen.after_change() {
            (&mut after, &mut scores_after)
        } else {
            (&mut before, &mut scores_before)
        };
        for score in m.named(SCORE) {
            let test = score.labels.get("test").cloned().unwrap_or_default();
            scores
                .entry(test)
                .or_insert_with(Vec::new)
                .push(score.value);
            let over = crossed(&m, score);
            counts.verdicts += 1;
            counts.crossings += u64::from(over);
            if is_text(&signal_of(score)) {
                counts.text_verdicts += 1;
                counts.text_crossings += u64::from(over);
                counts.text_p_crossings += u64::from(
                    p_value_of(&m, score, "mmd")
                        .is_some_and(|p| p < processor_config().drift.mmd_p_value_threshold),
                );
            }
        }
        for sample in m.named(DETECTED).filter(|s| s.value == 1.0) {
            counts.detected += 1;
            let statistic = |name: &str| {
                m.named(name)
                    .find(|s| same_series(s, sample))
                    .map(|s| s.value)
            };
            let detection = Detection {
                seen,
                score: statistic(SCORE),
                p_value: statistic(P_VALUE),
            };
            let id = (key_of(sample), signal_of(sample));
            let entry = detections.entry(id).or_insert_with_key(|(key, signal)| {
                eprintln!("  detected {key} {signal} at {seen}");
                Detections {
                    first: detection,
                    after_change: None,
                }
            });
            if seen.after_change() && entry.after_change.is_none() {
                entry.after_change = Some(detection);
            }
        }
        for sample in m.named(MODEL_CHANGES) {
            let label = |name: &str| sample.labels.get(name).cloned().unwrap_or_default();
            model_changes
                .entry((key_of(sample), label("kind"), label("value")))
                .or_insert(seen);
        }
        for sample in m.named(SPC_ALARM) {
            let labels = Labels(sample.labels.clone());
            let alarm = Alarm {
                seen,
                value: m.value(SPC_VALUE, &labels),
                lower: m.value(SPC_LOWER, &labels),
                upper: m.value(SPC_UPPER, &labels),
            };
            let alarming = sample.value == 1.0;
            let signal = signal_of(sample);
            if signal.starts_with("evaluation_score:") {
                let service = sample.labels["service_name"].clone();
                let point = (alarm.value, alarm.upper);
                if score_last.insert(service.clone(), point) != Some(point) && alarming {
                    score_alarms.push((service, alarm));
                }
                continue;
            }
            // A chart keeps showing its last point while intervals have too few calls.
            let id = (key_of(sample), signal);
            let point = (alarm.value, alarm.upper, alarming);
            let previous = ratio_last.insert(id.clone(), point);
            if previous.is_none_or(|p| (p.0, p.1) != (point.0, point.1)) {
                counts.ratio_points += 1;
                counts.ratio_alarm_points += u64::from(alarming);
            }
            if alarming && !previous.is_some_and(|p| p.2) {
                counts.ratio_episodes += 1;
                ratio_alarms.entry(id).or_insert(alarm);
            }
        }
        last = Some(m);
    }
    let summary = send.await.expect("simulate task");
    assert_eq!(
        (summary.sent, summary.failed),
        (summary.generated, 0),
        "{summary}"
    );
    assert_eq!(summary.evaluations_sent, summary.evaluations, "{summary}");
    server.stop().await;
    let outcome = Outcome {
        evaluations,
        simulated: total as f64 / SIM_RATE,
        detections,
        model_changes,
        score_alarms,
        ratio_charts: ratio_last.len(),
        ratio_alarms,
        before,
        after,
        scores_before,
        scores_after,
        summary,
        last: last.expect("at least one evaluation"),
        wall: started.elapsed(),
    };
    outcome.report();
    outcome
}

/// Median, 99th percentile and maximum of a drift statistic over a run's verdicts.
fn quantiles(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    format!(
        "{} verdicts, median {:.4}, 99% {:.4}, max {:.4}",
        sorted.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// Asserts `seen` came after the change, at most `bound` simulated seconds after it.
fn assert_within(what: &str, seen: Option<Seen>, bound: f64) -> Seen {
    let seen = seen.unwrap_or_else(|| panic!("{what}: not detected after the change"));
    assert!(
        seen.after_change() && seen.by_data <= bound,
        "{what}: detected at {seen}, expected within {bound} s after the change"
    );
    eprintln!("[delay] {what}: {seen}; bound {bound} s");
    seen
}

fn drift_labels(key: &Key, signal: &str) -> Labels {
    Labels::new(&[
        ("service_name", key.service),
        ("gen_ai_provider_name", key.provider),
        ("gen_ai_request_model", key.model),
        ("signal", signal),
    ])
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Simulated seconds from the change within which each scenario must be detected.
const OUTPUT_TOKENS_BOUND: f64 = 900.0;
const MODEL_CHANGE_EVENT_BOUND: f64 = 120.0;
const RESPONSE_MODEL_BOUND: f64 = 300.0;
const TOPIC_SHIFT_BOUND: f64 = 600.0;
const JUDGE_SAG_BOUND: f64 = 300.0;

/// The PSI of `output_tokens` that llmwatch's monitor computes between the first
/// [`REFERENCE`] calls of `key` and its calls in the last [`WINDOW`] simulated seconds of an
/// `output-tokens` run of `total` spans changing at span `change`: the run's own traffic, from
/// the pure generator, binned as `llmwatch_stats::binned` does (type-7 reference deciles,
/// duplicate edges merged, a value on an edge counted above it, shares floored at 1e-4).
fn output_tokens_psi(key: &Key, total: u64, change: u64) -> f64 {
    let scenario = ScenarioName::OutputTokens.build(ChangePoint::new(change, SIM_RATE));
    let window_start = total.saturating_sub((WINDOW as f64 * SIM_RATE) as u64);
    let (mut reference, mut current) = (Vec::new(), Vec::new());
    let mut calls = 0;
    for (index, span) in Generator::new(seed(), SIM_RATE, total, scenario).enumerate() {
        if span.service_name() != key.service || span.str("gen_ai.request.model") != Some(key.model)
        {
            continue;
        }
        calls += 1;
        let Some(output) = span.int("gen_ai.usage.output_tokens") else {
            continue;
        };
        if calls <= REFERENCE {
            reference.push(output as f64);
        }
        if index as u64 >= window_start {
            current.push(output as f64);
        }
    }
    let mut sorted = reference.clone();
    sorted.sort_by(f64::total_cmp);
    let quantile = |level: f64| {
        let position = (sorted.len() - 1) as f64 * level;
        let i = position.floor() as usize;
        match sorted.get(i + 1) {
            Some(next) => sorted[i] + (next - sorted[i]) * (position - i as f64),
            None => sorted[i],
        }
    };
    let mut edges: Vec<f64> = (1..10).map(|k| quantile(f64::from(k) / 10.0)).collect();
    edges.dedup();
    let shares = |values: &[f64]| {
        let mut counts = vec![0.0; edges.len() + 1];
        for &v in values {
            counts[edges.partition_point(|&e| e <= v)] += 1.0;
        }
        counts
            .into_iter()
            .map(|c| (c / values.len() as f64).max(1e-4))
            .collect::<Vec<f64>>()
    };
    shares(&reference)
        .into_iter()
        .zip(shares(&current))
        .map(|(p, q)| (q - p) * (q / p).ln())
        .sum()
}

/// Output tokens ×1.5 on every chat call. How far that moves PSI depends on the key and the
/// traffic: outputs pile up at `max_tokens − 1` (the scenario's cap) and at `max_tokens` (calls
/// cut at the limit), and where those point masses fall among the reference deciles decides the
/// PSI. Over seeds 1, 2, 3, 7, 11 a full post-change window gives 0.13–0.83 on the chat keys,
/// often near the 0.2 threshold (seed 7, last window of the run: support-chat × gpt-4o 0.30,
/// support-chat × claude-sonnet-4-5 0.35, docs-summarizer × gpt-4o-mini 0.80). So the test
/// computes that PSI for each watched chat key from the run's own traffic
/// ([`output_tokens_psi`]) and requires detection where it is at least 0.3 (at least one key;
/// seed 7: the last two, gpt-4o's 0.2996 falls just short), within [`OUTPUT_TOKENS_BOUND`] (900)
/// simulated seconds of the change. Measured (seed 7): 540–600 s on all three, four runs: PSI
/// reaches 0.2 when about half of the 600 s window holds longer answers, and `consecutive` 2
/// adds a minute. Only signals that follow output length may move (`output_tokens`,
/// `reasoning_tokens`, `duration_seconds`, `cost_usd`, and `time_to_first_token_seconds` of
/// o3-mini, whose reasoning comes before the first chunk): `input_tokens`, `response_model`,
/// `finish_reason`, `error_type`, the embeddings key, … must not, and nothing before the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end detection run, ~45 s; run with --ignored"]
async fn output_tokens_drift_is_detected() {
    let _serial = SERIAL.lock().await;
    let outcome = run(
        ScenarioName::OutputTokens,
        SCENARIO_DURATION,
        CHANGE_AFTER,
        processor_config(),
    )
    .await;
    let watched = watched_chat_keys();
    assert_eq!(watched.len(), 3, "{watched:?}");
    let total = outcome.summary.generated;
    let change = outcome.summary.change.expect("a change point").0;
    let mut required = 0;
    for key in &watched {
        let expected = output_tokens_psi(key, total, change);
        let what = format!("output-tokens: {} output_tokens", key.id());
        let detection = outcome.detected_after_change(&key.id(), "output_tokens");
        eprintln!(
            "[output-tokens] {}: PSI of a full post-change window {expected:.4}; detected {:?}",
            key.id(),
            detection.map(|d| d.seen.by_data)
        );
        if expected < 0.3 {
            continue;
        }
        required += 1;
        assert_within(&what, detection.map(|d| d.seen), OUTPUT_TOKENS_BOUND);
        let psi = detection.unwrap().score.expect("a PSI");
        assert!(psi >= 0.2, "{what}: PSI {psi}");
    }
    assert!(
        required >= 1,
        "no watched key moves PSI by 0.3 with this seed"
    );
    let before = outcome.detected_before_change();
    assert!(before.is_empty(), "detected before the change: {before:#?}");
    let chat: Vec<String> = keys().iter().filter(|k| k.chat).map(Key::id).collect();
    let unexpected = outcome.detected_unless(|key, signal| {
        chat.iter().any(|k| k == key)
            && (matches!(
                signal,
                "output_tokens" | "reasoning_tokens" | "duration_seconds" | "cost_usd"
            ) || (signal == "time_to_first_token_seconds" && key.ends_with("/o3-mini")))
    });
    assert!(
        unexpected.is_empty(),
        "unexpected detections: {unexpected:#?}"
    );
}

/// `gpt-4o` starts answering as `gpt-4o-2024-11-20`, with new system fingerprints. The model
/// change event `llmwatch_model_changes_total{kind="response_model",value="gpt-4o-2024-11-20"}`
/// must show on support-chat × gpt-4o within [`MODEL_CHANGE_EVENT_BOUND`] (120) simulated
/// seconds; it is raised by the first new call, so this measures the evaluation cadence
/// (measured: 60 s, the first evaluation after the change). `response_model` drift must be
/// detected there within [`RESPONSE_MODEL_BOUND`] (300) s (measured: 120 s, the second
/// evaluation over the threshold). docs-summarizer × gpt-4o, the other gpt-4o key, has too few
/// calls for a verdict (~180 per window) or a reference before the change. Nothing else may
/// move: only `response_model` and `system_fingerprint` of gpt-4o keys, and model-change events
/// only for gpt-4o's new model and fingerprints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end detection run, ~45 s; run with --ignored"]
async fn a_new_response_model_behind_gpt_4o_is_detected() {
    let _serial = SERIAL.lock().await;
    let outcome = run(
        ScenarioName::ModelSwap,
        SCENARIO_DURATION,
        CHANGE_AFTER,
        processor_config(),
    )
    .await;
    let gpt_4o = key_id("support-chat", "openai", ModelSwap::REQUEST_MODEL);
    let event = outcome.model_changes.get(&(
        gpt_4o.clone(),
        "response_model".to_owned(),
        ModelSwap::RESPONSE_MODEL.to_owned(),
    ));
    assert_within(
        &format!("model-swap: {gpt_4o} model change event"),
        event.copied(),
        MODEL_CHANGE_EVENT_BOUND,
    );
    let detection = outcome.detected_after_change(&gpt_4o, "response_model");
    assert_within(
        &format!("model-swap: {gpt_4o} response_model"),
        detection.map(|d| d.seen),
        RESPONSE_MODEL_BOUND,
    );
    let detection = detection.unwrap();
    assert!(detection.score.unwrap() >= 0.1 && detection.p_value.unwrap() < 0.01);

    let new_fingerprints = ModelSwap::FINGERPRINTS.map(|(_, new)| new);
    for ((key, kind, value), seen) in &outcome.model_changes {
        assert!(seen.after_change(), "{key} {kind}={value} at {seen}");
        assert!(
            key.ends_with("/gpt-4o")
                && ((kind == "response_model" && value == ModelSwap::RESPONSE_MODEL)
                    || (kind == "system_fingerprint"
                        && new_fingerprints.contains(&value.as_str()))),
            "unexpected model change {key} {kind}={value}"
        );
    }
    let before = outcome.detected_before_change();
    assert!(before.is_empty(), "detected before the change: {before:#?}");
    let unexpected = outcome.detected_unless(|key, signal| {
        key.ends_with("/gpt-4o") && matches!(signal, "response_model" | "system_fingerprint")
    });
    assert!(
        unexpected.is_empty(),
        "unexpected detections: {unexpected:#?}"
    );
}

/// Users ask about travel instead of billing (content captured on every chat span). The MMD
/// permutation test on `prompt_embedding` must detect the shift on every watched chat key within
/// [`TOPIC_SHIFT_BOUND`] (600) simulated seconds, with p < 0.01 (measured: 180–360 s; p = 1/101,
/// the smallest 100 permutations can give), and still show it at the end of the run. Only
/// `prompt_embedding` and `response_embedding` may be detected (answer lengths follow output
/// tokens, which do not change), and nothing before the change.
///
/// MMD² must also reach `mmd_threshold` (0.05): a window where a share f of the texts changed
/// has about f² times the MMD² of a full change, which for these prompts is ~0.13–0.15 (answers
/// ~0.4–0.55; measured at the end of the runs), so prompts cross 0.05 once about 60% of the
/// window is travel questions: measured 360–480 s over seeds 1, 2, 3, 7 and 11, against 180–360 s
/// with the p-value alone, whose 1% chance crossings the control shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end detection run, ~45 s; run with --ignored"]
async fn a_topic_shift_in_prompts_is_detected() {
    let _serial = SERIAL.lock().await;
    let outcome = run(
        ScenarioName::TopicShift,
        SCENARIO_DURATION,
        CHANGE_AFTER,
        processor_config(),
    )
    .await;
    for key in watched_chat_keys() {
        let what = format!("topic-shift: {} prompt_embedding", key.id());
        let detection = outcome.detected_after_change(&key.id(), "prompt_embedding");
        assert_within(&what, detection.map(|d| d.seen), TOPIC_SHIFT_BOUND);
        let p = detection.unwrap().p_value.expect("an MMD p-value");
        assert!(p < 0.01, "{what}: p {p}");
        let labels = drift_labels(&key, "prompt_embedding");
        for signal in ["prompt_embedding", "response_embedding"] {
            let mmd = drift_labels(&key, signal).and(&[("test", "mmd")]);
            eprintln!(
                "[topic-shift] {} {signal}: MMD² {:.4} at the end",
                key.id(),
                outcome.last.value(SCORE, &mmd)
            );
        }
        let p_end = outcome.last.value(P_VALUE, &labels.and(&[("test", "mmd")]));
        assert!(p_end < 0.01, "{what}: p {p_end} at the end");
        assert_eq!(
            outcome.last.value(DETECTED, &labels),
            1.0,
            "{what} at the end"
        );
    }
    let unexpected = outcome.detected_unless(|_, signal| is_text(signal));
    assert!(
        unexpected.is_empty(),
        "unexpected detections: {unexpected:#?}"
    );
    let before = outcome.detected_before_change();
    assert!(before.is_empty(), "detected before the change: {before:#?}");
}

/// The `correctness` judge's scores sag from ~0.85 to ~0.65 over 10 simulated minutes. The EWMA
/// chart of support-chat's mean score (the service with enough graded calls per interval, ~31)
/// must alarm below its lower limit within [`JUDGE_SAG_BOUND`] (300) simulated seconds of the
/// change (measured: 180–240 s over seeds 1, 2, 3, 7 and 11, when the mean has sagged by
/// 0.06–0.08; L is 4.5 and the chart warms up over 20 intervals, [`judge_sag_config`]), and
/// still alarm at the end; the score chart never alarmed before the change. The calls themselves
/// do not change: no drift may be detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end detection run, ~45 s; run with --ignored"]
async fn a_sagging_judge_score_raises_the_spc_alarm() {
    let _serial = SERIAL.lock().await;
    let outcome = run(
        ScenarioName::JudgeSag,
        SCENARIO_DURATION,
        CHANGE_AFTER,
        judge_sag_config(),
    )
    .await;
    let low = outcome.score_alarms.iter().find(|(service, alarm)| {
        service == "support-chat" && alarm.seen.after_change() && alarm.value < alarm.lower
    });
    assert_within(
        "judge-sag: support-chat evaluation_score:correctness low alarm",
        low.map(|(_, alarm)| alarm.seen),
        JUDGE_SAG_BOUND,
    );
    let before = outcome
        .score_alarms
        .iter()
        .filter(|(_, alarm)| !alarm.seen.after_change())
        .count();
    eprintln!("[judge-sag] score chart alarms before the change: {before}");
    let signal = format!("evaluation_score:{}", JudgeSag::EVALUATION);
    let labels = Labels::new(&[
        ("service_name", "support-chat"),
        ("signal", &signal),
        ("chart", "ewma"),
    ]);
    assert_eq!(outcome.last.value(SPC_ALARM, &labels), 1.0);
    assert!(outcome.last.value(SPC_VALUE, &labels) < 0.7);
    let unexpected = outcome.detected_unless(|_, _| false);
    assert!(
        unexpected.is_empty(),
        "unexpected detections: {unexpected:#?}"
    );
}

/// Ratio-chart alarm episodes tolerated in the control, as a share of charted points: one in
/// the ~1,200 points of a run (see [`normal_traffic_raises_no_drift_alarm_over_two_hours`]).
const MAX_RATIO_FALSE_ALARM_RATE: f64 = 0.001;

/// Two simulated hours of normal traffic: the normal scenario's calls, call for call, with
/// captured content (topic-shift with its change at the end of the run, so every prompt is about
/// billing), so that every monitor runs, the embedding ones included.
///
/// **No drift may be detected** on any signal of any key. Measured over eleven runs on five
/// seeds (7 three times, 1 and 2 twice, 3 and 11 twice; 120 evaluations, ~6,800–8,400 verdicts
/// a run, ~1,620 of them on embeddings): 0 detections; one threshold crossing per run of seed 2
/// (a JS distance of 0.11 with chi-square p < 0.01 in one evaluation, not two in a row), none
/// otherwise. What used to cry wolf:
///
/// * Embeddings: the reference is frozen and consecutive current windows share 90% of their
///   texts, so a chance permutation-test crossing (p < 0.01: 1% by construction) lasts and
///   `consecutive` does not filter it (1–4 false detections a run before). Under no drift the
///   unbiased MMD² stays small (largest per run 0.019–0.029, 99th percentile 0.010–0.017), so
///   the `mmd_threshold` of 0.05 turns the 2–20 p < 0.01 crossings a run into none.
/// * `error_type` (seed 11, JS 0.106 with p 0.0065 twice in a row): time-outs and server errors
///   are 0.6% and 0.4% of calls, two or three a window; their counts are now pooled before the
///   test (expected count under 5), and the JS distance stays below 0.09.
///
/// **Ratio charts** (standardized binomial EWMA, L 4.5, p0 pooled over 60 intervals): 22 charts,
/// ~1,200 charted points a run. Seeds 1, 2, 3 and 11: no alarm. Seed 7 (every run): one episode
/// on code-review × o3-mini `error_ratio` at minute 64: that key had 14 errors in 129 calls over
/// minutes 61–64 (2, 4, 5 and 3; 3.8 times its 2.9%, a chance of about 3·10⁻⁵ for a given
/// four minutes), just after its chart's warm-up ended; the EWMA reached 1.46 against a limit of
/// 1.32. A cluster like that is what the chart is for, and no limit that still sees a doubled
/// error rate within minutes ignores it; so one episode a run is tolerated
/// ([`MAX_RATIO_FALSE_ALARM_RATE`], 0.1% of points): one episode in ~6,100 points over the five
/// seeds (0.016%), against 0.8–1.5% of points with the former chart (mean and σ learnt from 20
/// interval ratios, L 3). A simulation of the chart on these keys' sizes and rates predicts ~0.1
/// episodes a run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end control run, ~2 min; run with --ignored"]
async fn normal_traffic_raises_no_drift_alarm_over_two_hours() {
    let _serial = SERIAL.lock().await;
    let outcome = run(
        ScenarioName::TopicShift,
        CONTROL_DURATION,
        CONTROL_DURATION,
        processor_config(),
    )
    .await;
    assert!(outcome.after.verdicts == 0, "no call changed");
    let c = outcome.before;
    eprintln!(
        "[control] {} evaluations over {:.0} simulated minutes. Drift: {} verdicts, {} threshold \
         crossings, {} of them on embedding signals ({} embedding verdicts, {} with p < 0.01 \
         alone); detected: {} (key, signal) pairs. Ratio SPC: {} charts, {} charted points, {} \
         alarming points in {} episodes on {} charts ({:.3}% of points start an episode)",
        outcome.evaluations,
        outcome.simulated / 60.0,
        c.verdicts,
        c.crossings,
        c.text_crossings,
        c.text_verdicts,
        c.text_p_crossings,
        outcome.detections.len(),
        outcome.ratio_charts,
        c.ratio_points,
        c.ratio_alarm_points,
        c.ratio_episodes,
        outcome.ratio_alarms.len(),
        100.0 * c.ratio_episodes as f64 / c.ratio_points.max(1) as f64
    );
    assert!(outcome.simulated >= 7200.0);
    assert!(outcome.evaluations >= 90, "{}", outcome.evaluations);
    assert!(c.verdicts > 3000 && c.text_verdicts > 1000, "{c}");
    let detected = outcome.detected_unless(|_, _| false);
    assert!(detected.is_empty(), "false detections: {detected:#?}");
    assert!(outcome.ratio_charts >= 20, "{}", outcome.ratio_charts);
    assert!(c.ratio_points > 1000, "{c}");
    let rate = c.ratio_episodes as f64 / c.ratio_points as f64;
    assert!(
        rate <= MAX_RATIO_FALSE_ALARM_RATE,
        "ratio charts: {} alarm episodes in {} points",
        c.ratio_episodes,
        c.ratio_points
    );
}

/// The service's own drift task (its timer, the wall clock) judges time-scaled traffic as it
/// arrives: `simulate --time-scale 60` for 30 s, whose timestamps trail the wall clock by up to
/// half an hour while it sends, and verdicts must show on `/metrics` within
/// [`LIVE_VERDICT_BOUND`] of wall time, while the send runs. Before the data clock the windows
/// (the last 600 s before the wall clock) stayed empty until the last 600 / 59 ≈ 10 s of the
/// send. support-chat × gpt-4o fills its 600-call reference after ~7.5 s and holds
/// `min_samples` in its window well before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end-to-end run with the service's own drift timer, ~30 s; run with --ignored"]
async fn the_service_evaluates_time_scaled_traffic_as_it_arrives() {
    let _serial = SERIAL.lock().await;
    let mut config = loopback_config();
    config.drift_interval = Duration::from_secs(1);
    let server = TestServer::start_with(config, processor_config()).await;
    let duration = Duration::from_secs(30);
    let args = SimulateArgs {
        endpoint: server.grpc_endpoint(),
        rate: RATE,
        duration,
        seed: seed(),
        protocol: Protocol::Grpc,
        scenario: ScenarioName::Normal,
        change_after: None,
        time_scale: TIME_SCALE,
    };
    let started = Instant::now();
    let send = tokio::spawn(async move { simulate::send(&args).await.expect("simulate runs") });
    let key = watched_chat_keys()
        .into_iter()
        .find(|k| k.service == "support-chat" && k.model == "gpt-4o")
        .expect("support-chat × gpt-4o is watched");
    let labels = drift_labels(&key, "output_tokens").and(&[("window", "current")]);
    let first = loop {
        let m = server.scrape().await;
        if m.get(WINDOW_SAMPLES, &labels).is_some() {
            break Some((started.elapsed(), send.is_finished()));
        }
        if send.is_finished() {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let summary = send.await.expect("simulate task");
    server.stop().await;
    let (at, finished) = first.expect("no verdict while sending");
    eprintln!(
        "[live] first verdict after {:.1} s of a {:.0} s send ({summary})",
        at.as_secs_f64(),
        duration.as_secs_f64()
    );
    assert!(
        !finished && at <= LIVE_VERDICT_BOUND,
        "first verdict after {at:?}"
    );
}

/// Wall time within which the service's timer must show a verdict of time-scaled traffic.
const LIVE_VERDICT_BOUND: Duration = Duration::from_secs(15);
