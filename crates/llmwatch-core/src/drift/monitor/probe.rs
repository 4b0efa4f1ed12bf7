//! Canary probe answers as an embedding drift signal: a fixed prompt asked on a schedule should
//! keep getting answers in the same style, so per probe (name × model) the answers' embeddings
//! are compared with the probe's baseline answers by the same MMD permutation test as the prompt
//! and response embeddings.
//!
//! - **Baseline**: the first `baseline` answers of the probe (whatever `drift.reference` says:
//!   a probe has no traffic to slide over), or the current window when pinned through the admin
//!   API (`pin` / scheduled pin); `reset` collects the first answers afresh.
//! - **Current**: the last `window` answers after the baseline.
//! - A verdict needs a complete baseline and a full window; the `consecutive` rule applies.
//! - Answers are embedded with the built-in embedder (a style change on a fixed prompt is what it
//!   sees well), also when remote embeddings are configured for app traffic.
//! - Exported through [`DriftMonitors::snapshot`] in the drift families, with the probe's model
//!   as `gen_ai_request_model`, other key labels empty and `signal="canary_response_embedding:<probe>"`.
//!
//! Memory: only registered probes are kept (at most [`MAX_PROBES`]), each with at most
//! `baseline + window` vectors.

use std::collections::VecDeque;

use llmwatch_stats::mmd::{
    Bandwidth, MmdEstimator, distinct_median_heuristic_sigma, mmd2_permutation_test,
};
use serde::{Deserialize, Serialize};

use super::{BaselineInfo, DriftMonitors, Verdict};
use crate::catalog::DRIFT_KEY_LABELS;
use crate::snapshot::FamilySnapshot;

/// Most probes monitored.
pub const MAX_PROBES: usize = 64;
/// The `signal` label of a probe's answers is this prefix and the probe's name.
pub const PROBE_SIGNAL_PREFIX: &str = "canary_response_embedding:";

/// How many answers form a probe's baseline and its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeWindows {
    pub baseline: usize,
    pub window: usize,
}

impl Default for ProbeWindows {
    fn default() -> Self {
        ProbeWindows {
            baseline: 20,
            window: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ProbeState {
    name: String,
    model: String,
    windows: ProbeWindows,
    reference: Vec<Vec<f64>>,
    current: VecDeque<Vec<f64>>,
    pinned: bool,
    #[serde(skip)]
    verdict: Verdict,
}

impl ProbeState {
    fn new(name: &str, model: &str, windows: ProbeWindows) -> ProbeState {
        ProbeState {
            name: name.to_owned(),
            model: model.to_owned(),
            windows,
            reference: Vec::new(),
            current: VecDeque::new(),
            pinned: false,
            verdict: Verdict::default(),
        }
    }

    fn is(&self, name: &str, model: &str) -> bool {
        self.name == name && self.model == model
    }

    fn baseline_complete(&self) -> bool {
        if self.pinned {
            self.reference.len() >= 2
        } else {
            self.reference.len() >= self.windows.baseline
        }
    }

    /// The key labels (model only) and the `probe` pseudo-label the admin filters may name.
    fn matches(&self, filter: &[(String, String)], label_names: &[String]) -> bool {
        filter.iter().all(|(name, value)| {
            if name == "probe" {
                return *value == self.name;
            }
            let mine = if name == DRIFT_KEY_LABELS[2] {
                self.model.as_str()
            } else {
                ""
            };
            label_names.contains(name) && value == mine
        })
    }

    /// Seeds the permutation test from the probe's identity, so verdicts repeat across restarts.
    fn seed(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.name.bytes().chain([0]).chain(self.model.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash
    }
}

/// The registered probes.
#[derive(Debug, Default)]
pub(super) struct Probes {
    states: parking_lot::Mutex<Vec<ProbeState>>,
}

impl DriftMonitors {
    /// Monitors the answers of probe `name` on `model`; answers of unregistered probes are
    /// ignored. Register before restoring saved state (a saved baseline is kept only when the
    /// probe is registered again with the same windows). False when [`MAX_PROBES`] are
    /// registered or a window is below 2.
    pub fn register_probe(&self, name: &str, model: &str, windows: ProbeWindows) -> bool {
        if windows.baseline < 2 || windows.window < 2 {
            return false;
        }
        let mut states = self.probes.states.lock();
        if let Some(state) = states.iter_mut().find(|s| s.is(name, model)) {
            if state.windows != windows {
                *state = ProbeState::new(name, model, windows);
            }
            return true;
        }
        if states.len() >= MAX_PROBES {
            return false;
        }
        states.push(ProbeState::new(name, model, windows));
        true
    }

    /// Adds one answer of a registered probe: to its baseline while that fills, else to its
    /// current window. An empty answer has no embedding and is skipped.
    pub fn observe_probe_answer(&self, name: &str, model: &str, answer: &str) {
        if !self.config.enabled {
            return;
        }
        let Ok(vector) = self.embedder.embed(answer) else {
            return;
        };
        let mut states = self.probes.states.lock();
        let Some(state) = states.iter_mut().find(|s| s.is(name, model)) else {
            return;
        };
        if !state.pinned && state.reference.len() < state.windows.baseline {
            state.reference.push(vector);
            return;
        }
        state.current.push_back(vector);
        while state.current.len() > state.windows.window {
            state.current.pop_front();
        }
    }

    pub(super) fn evaluate_probes(&self) {
        let config = &self.config;
        let mut states = self.probes.states.lock();
        for state in states.iter_mut() {
            let ready = state.baseline_complete() && state.current.len() >= state.windows.window;
            let reference: Vec<&[f64]> = state.reference.iter().map(Vec::as_slice).collect();
            let current: Vec<&[f64]> = state.current.iter().map(Vec::as_slice).collect();
            let mut verdict = Verdict {
                reference_samples: state.reference.len(),
                current_samples: current.len(),
                ..Verdict::default()
            };
            if ready {
                verdict.test = "mmd";
                verdict.p_test = "mmd";
                // A probe at temperature 0 often answers identically: the bandwidth comes from
                // the pairs of distinct answers, and identical answers everywhere are no drift.
                match distinct_median_heuristic_sigma(&reference, &current) {
                    Err(_) => {}
                    Ok(None) => {
                        verdict.score = Some(0.0);
                        verdict.p_value = Some(1.0);
                    }
                    Ok(Some(sigma)) => {
                        let test = mmd2_permutation_test(
                            &reference,
                            &current,
                            Bandwidth::Sigma(sigma),
                            MmdEstimator::Unbiased,
                            config.mmd_permutations,
                            state.seed(),
                        );
                        verdict.score = test.as_ref().ok().map(|t| t.statistic);
                        verdict.p_value = test.ok().map(|t| t.p_value);
                    }
                }
            }
            // The same evidence as every embedding signal: an effect size and a p-value.
            let over = config.mmd_crossed(verdict.score, verdict.p_value);
            verdict.streak = if over { state.verdict.streak + 1 } else { 0 };
            verdict.detected = verdict.streak >= config.consecutive;
            state.verdict = verdict;
        }
    }

    /// Pins the current window as the baseline of matching probes (an empty filter matches
    /// all; `probe=<name>` names one). Probes with fewer than two answers in their window are
    /// left as they are. Returns how many were pinned.
    pub(super) fn pin_probes(&self, filter: &[(String, String)]) -> usize {
        let mut n = 0;
        for state in self.probes.states.lock().iter_mut() {
            if state.matches(filter, &self.label_names) && state.current.len() >= 2 {
                state.reference = state.current.iter().cloned().collect();
                state.pinned = true;
                state.verdict = Verdict::default();
                n += 1;
            }
        }
        n
    }

    /// Clears the baseline (and window) of matching probes: the next answers form it afresh.
    pub(super) fn reset_probes(&self, filter: &[(String, String)]) -> usize {
        let mut n = 0;
        for state in self.probes.states.lock().iter_mut() {
            if state.matches(filter, &self.label_names) {
                *state = ProbeState::new(&state.name, &state.model, state.windows);
                n += 1;
            }
        }
        n
    }

    pub(super) fn probe_baselines(&self) -> Vec<BaselineInfo> {
        self.probes
            .states
            .lock()
            .iter()
            .map(|state| BaselineInfo {
                labels: self
                    .probe_labels(state)
                    .into_iter()
                    .chain([("probe".to_owned(), state.name.clone())])
                    .collect(),
                mode: if state.pinned { "pinned" } else { "first_n" },
                reference_calls: state.reference.len() as u64,
                reference_samples: Vec::new(),
            })
            .collect()
    }

    /// The key labels of a probe's series: its model, the rest empty.
    fn probe_labels(&self, state: &ProbeState) -> Vec<(String, String)> {
        self.label_names
            .iter()
            .map(|name| {
                let value = if name == DRIFT_KEY_LABELS[2] {
                    state.model.clone()
                } else {
                    String::new()
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// Adds each probe's last verdict to the drift families.
    pub(super) fn snapshot_probes(
        &self,
        score: &mut FamilySnapshot,
        p_value: &mut FamilySnapshot,
        detected: &mut FamilySnapshot,
        samples: &mut FamilySnapshot,
    ) {
        let states = self.probes.states.lock();
        for state in states.iter() {
            let verdict = &state.verdict;
            let Some(value) = verdict.score else { continue };
            let signal = format!("{PROBE_SIGNAL_PREFIX}{}", state.name);
            let base = self.probe_labels(state);
            let with = |extra: &[(&str, &str)]| {
                let mut labels = base.clone();
                labels.push(("signal".to_owned(), signal.clone()));
                labels.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
                labels
            };
            score.push_scalar(with(&[("test", verdict.test)]), value);
            if let Some(p) = verdict.p_value {
                p_value.push_scalar(with(&[("test", verdict.p_test)]), p);
            }
            detected.push_scalar(with(&[]), f64::from(u8::from(verdict.detected)));
            samples.push_scalar(
                with(&[("window", "reference")]),
                verdict.reference_samples as f64,
            );
            samples.push_scalar(
                with(&[("window", "current")]),
                verdict.current_samples as f64,
            );
        }
    }

    pub(super) fn export_probes(&self) -> Vec<ProbeState> {
        self.probes.states.lock().clone()
    }

    /// Restores the saved state of probes registered again with the same windows.
    pub(super) fn restore_probes(&self, saved: Vec<ProbeState>) {
        let mut states = self.probes.states.lock();
        for saved in saved {
            if let Some(state) = states
                .iter_mut()
                .find(|s| s.is(&saved.name, &saved.model) && s.windows == saved.windows)
            {
                *state = saved;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::DriftConfig;
    use crate::snapshot::{SampleValue, family};

    fn monitors() -> DriftMonitors {
        DriftMonitors::new(
            DriftConfig {
                consecutive: 2,
                ..DriftConfig::default()
            },
            &[],
        )
    }

    const WINDOWS: ProbeWindows = ProbeWindows {
        baseline: 10,
        window: 10,
    };

    /// Answers in prose, in three wordings taken in turn.
    fn prose(i: usize) -> String {
        [
            "The capital of France is Paris.",
            "Paris is the capital of France.",
            "The capital city of France is Paris, on the Seine.",
        ][i % 3]
            .to_owned()
    }

    /// The same answers as JSON.
    fn json(i: usize) -> String {
        [
            "{\"capital\": \"Paris\", \"country\": \"FR\"}",
            "{\"country\": \"France\", \"capital\": \"Paris\"}",
            "{\"answer\": \"Paris\"}",
        ][i % 3]
            .to_owned()
    }

    /// (signal, value) of every sample of `name` that has `labels`.
    fn values(drift: &DriftMonitors, name: &str) -> Vec<(Vec<(String, String)>, f64)> {
        let mut families = Vec::new();
        drift.snapshot(&mut families);
        family(&families, name)
            .unwrap()
            .samples
            .iter()
            .map(|s| {
                let value = match s.value {
                    SampleValue::Gauge(v) | SampleValue::Counter(v) => v,
                    SampleValue::Histogram(_) => unreachable!(),
                };
                let labels = s
                    .labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .cloned()
                    .collect();
                (labels, value)
            })
            .collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_changed_answer_style_is_detected_against_the_first_answers() {
        let drift = monitors();
        assert!(drift.register_probe("capital", "gpt-4o", WINDOWS));
        // An unregistered probe is ignored.
        drift.observe_probe_answer("other", "gpt-4o", &prose(0));
        for i in 0..20 {
            drift.observe_probe_answer("capital", "gpt-4o", &prose(i));
        }
        drift.evaluate(Some(0));
        let signal = "canary_response_embedding:capital";
        let key = |extra: &[(&str, &str)]| {
            let mut l = labels(&[("gen_ai_request_model", "gpt-4o"), ("signal", signal)]);
            l.extend(labels(extra));
            l
        };
        assert_eq!(values(&drift, "llmwatch_drift_detected"), [(key(&[]), 0.0)]);
        assert_eq!(
            values(&drift, "llmwatch_drift_window_samples"),
            [
                (key(&[("window", "reference")]), 10.0),
                (key(&[("window", "current")]), 10.0)
            ]
        );
        let p_same = values(&drift, "llmwatch_drift_p_value")[0].1;
        assert!(p_same > 0.01, "{p_same}");

        // The same question now gets JSON: drift, flagged on the second evaluation in a row.
        for i in 20..30 {
            drift.observe_probe_answer("capital", "gpt-4o", &json(i));
        }
        drift.evaluate(Some(0));
        assert_eq!(
            values(&drift, "llmwatch_drift_p_value"),
            [(key(&[("test", "mmd")]), 1.0 / 101.0)]
        );
        assert_eq!(values(&drift, "llmwatch_drift_detected"), [(key(&[]), 0.0)]);
        drift.evaluate(Some(0));
        assert_eq!(values(&drift, "llmwatch_drift_detected"), [(key(&[]), 1.0)]);
        let score = values(&drift, "llmwatch_drift_score");
        assert_eq!(score[0].0, key(&[("test", "mmd")]));
        assert!(score[0].1 > 0.0);

        // Pinning the new style as the baseline clears the alarm.
        let filter = labels(&[("probe", "capital")]);
        assert_eq!(drift.pin(&filter, Some(0)), 1);
        drift.evaluate(Some(0));
        assert_eq!(values(&drift, "llmwatch_drift_detected"), [(key(&[]), 0.0)]);
        let listed = drift.baselines();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].mode, "pinned");
        assert_eq!(listed[0].reference_calls, 10);
        assert_eq!(
            listed[0].labels,
            labels(&[
                ("service_name", ""),
                ("gen_ai_provider_name", ""),
                ("gen_ai_request_model", "gpt-4o"),
                ("probe", "capital")
            ])
        );
    }

    #[test]
    fn identical_answers_are_no_drift() {
        let drift = monitors();
        assert!(drift.register_probe("p", "m", WINDOWS));
        for _ in 0..20 {
            drift.observe_probe_answer("p", "m", "Paris.");
        }
        drift.evaluate(Some(0));
        let key = |extra: &[(&str, &str)]| {
            let mut l = labels(&[
                ("gen_ai_request_model", "m"),
                ("signal", "canary_response_embedding:p"),
            ]);
            l.extend(labels(extra));
            l
        };
        assert_eq!(
            values(&drift, "llmwatch_drift_score"),
            [(key(&[("test", "mmd")]), 0.0)]
        );
        assert_eq!(
            values(&drift, "llmwatch_drift_p_value"),
            [(key(&[("test", "mmd")]), 1.0)]
        );
        // One answer differs: the bandwidth comes from the distinct pairs, no alarm.
        drift.observe_probe_answer("p", "m", "Paris, France.");
        drift.evaluate(Some(0));
        assert_eq!(values(&drift, "llmwatch_drift_detected"), [(key(&[]), 0.0)]);
    }

    #[test]
    fn no_verdict_before_a_full_baseline_and_window_and_state_survives_export() {
        let drift = monitors();
        assert!(!drift.register_probe(
            "tiny",
            "m",
            ProbeWindows {
                baseline: 1,
                window: 5
            }
        ));
        assert!(drift.register_probe("p", "m", WINDOWS));
        for i in 0..19 {
            drift.observe_probe_answer("p", "m", &prose(i));
        }
        drift.evaluate(Some(0));
        assert!(values(&drift, "llmwatch_drift_detected").is_empty());

        // Saved and restored into monitors where the probe is registered again.
        let state = drift.export_state();
        let again = monitors();
        assert!(again.register_probe("p", "m", WINDOWS));
        again.restore(state);
        again.observe_probe_answer("p", "m", &prose(19));
        again.evaluate(Some(0));
        assert_eq!(values(&again, "llmwatch_drift_detected").len(), 1);

        // A filter on an app's service does not touch probes; reset starts the baseline over.
        let service = labels(&[("service_name", "checkout")]);
        assert_eq!(again.reset(&service), 0);
        assert_eq!(again.reset(&labels(&[("gen_ai_request_model", "m")])), 1);
        again.evaluate(Some(0));
        assert!(values(&again, "llmwatch_drift_detected").is_empty());
    }
}
