//! How drift is monitored: windows, references, tests and thresholds, charts.

/// Where a key's reference window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceMode {
    /// The first N observations of each signal, then frozen.
    FirstN(usize),
    /// A snapshot of the current window taken on demand (admin API), kept until replaced.
    Pinned,
    /// The same span of time this many seconds earlier (e.g. a day or a week).
    Trailing(u64),
}

/// Settings of the live drift monitors.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftConfig {
    pub enabled: bool,
    /// Length of the sliding current window, in seconds.
    pub current_window: u64,
    /// Buckets the current window slides by (its resolution is window / buckets).
    pub buckets: usize,
    pub reference: ReferenceMode,
    /// Values kept per bucket and signal (a reservoir); the reference keeps `buckets` times this.
    pub sample_capacity: usize,
    /// Texts kept per bucket for embedding drift (prompt and response, when content is captured).
    pub text_capacity: usize,
    /// Fewest values on each side before any verdict.
    pub min_samples: usize,
    /// Consecutive evaluations over the threshold before a signal is flagged as drifted.
    pub consecutive: u32,
    /// Most keys (service × provider × request model × dimensions) monitored; later keys are not.
    pub max_keys: usize,
    /// Numeric signals drift when PSI on reference-decile bins reaches this.
    pub psi_threshold: f64,
    /// Categorical signals drift when the Jensen–Shannon distance (base 2) reaches this and the
    /// chi-square test's p-value is below `p_value_threshold`.
    pub js_threshold: f64,
    pub p_value_threshold: f64,
    /// Embedding signals drift when the MMD permutation test's p-value is below this.
    pub mmd_p_value_threshold: f64,
    pub mmd_permutations: usize,
    /// Statistical process control on per-interval ratios and scores.
    pub spc: SpcConfig,
}

/// EWMA charts on per-interval error, truncation (`length`) and refusal (`content_filter`)
/// ratios and mean evaluation scores.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcConfig {
    pub lambda: f64,
    pub l: f64,
    /// Intervals whose values set the chart's mean and σ before it judges.
    pub warmup_intervals: usize,
    /// Fewest calls (or scores) in an interval for it to be charted.
    pub min_per_interval: u64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            enabled: true,
            current_window: 3_600,
            buckets: 12,
            reference: ReferenceMode::FirstN(1_000),
            sample_capacity: 128,
            text_capacity: 8,
            min_samples: 100,
            consecutive: 3,
            max_keys: 100,
            psi_threshold: 0.2,
            js_threshold: 0.1,
            p_value_threshold: 0.01,
            mmd_p_value_threshold: 0.01,
            mmd_permutations: 100,
            spc: SpcConfig::default(),
        }
    }
}

impl Default for SpcConfig {
    fn default() -> Self {
        SpcConfig {
            lambda: 0.2,
            l: 3.0,
            warmup_intervals: 20,
            min_per_interval: 20,
        }
    }
}

impl DriftConfig {
    /// Length of one bucket in seconds (at least one).
    pub fn bucket_seconds(&self) -> u64 {
        (self.current_window / self.buckets.max(1) as u64).max(1)
    }

    /// Buckets the history ring keeps: the current window, plus the trailing offset.
    pub fn ring_buckets(&self) -> usize {
        let extra = match self.reference {
            ReferenceMode::Trailing(offset) => offset.div_ceil(self.bucket_seconds()) as usize,
            _ => 0,
        };
        self.buckets.max(1) + extra
    }
}
