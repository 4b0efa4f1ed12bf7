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
    /// Embedding signals drift when the unbiased MMD² reaches `mmd_threshold` **and** the
    /// permutation test's p-value is below `mmd_p_value_threshold`. MMD² is an effect size on
    /// the kernel's scale (the median-heuristic RBF kernel is in [0, 1], so MMD² is at most 2),
    /// the counterpart of the PSI and JS thresholds: the p-value alone flags any difference the
    /// windows can resolve, and a frozen reference tested every interval against overlapping
    /// windows turns its 1% chance crossings into runs that `consecutive` does not filter.
    pub mmd_threshold: f64,
    pub mmd_p_value_threshold: f64,
    pub mmd_permutations: usize,
    /// Statistical process control on per-interval ratios and scores.
    pub spc: SpcConfig,
}

/// EWMA charts on per-interval error, truncation (`length`) and refusal (`content_filter`)
/// ratios (standardized binomial charts, [`llmwatch_stats::spc::BinomialEwmaChart`]) and mean
/// evaluation scores ([`llmwatch_stats::spc::EwmaChart`]).
///
/// The limit width `l` sets the in-control average run length (intervals between false alarms;
/// normal theory, λ = 0.2): about 560 at L = 3 (nine hours of one-minute intervals, per chart),
/// 19,000 at L = 4, 170,000 at L = 4.5. With three ratio charts per key and up to `max_keys`
/// keys, L = 3 would cry wolf somewhere every few minutes; ratios of rare events (a few per
/// interval) are right-skewed, which shortens the run length further.
#[derive(Debug, Clone, PartialEq)]
pub struct SpcConfig {
    pub lambda: f64,
    pub l: f64,
    /// Intervals before a chart judges: a ratio chart pools their events and trials into its
    /// in-control proportion, a score chart learns the mean and σ of their mean scores.
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
            mmd_threshold: 0.05,
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
            l: 4.5,
            warmup_intervals: 60,
            min_per_interval: 20,
        }
    }
}

impl DriftConfig {
    /// Whether an embedding signal's MMD test is over the threshold: unbiased MMD² at least
    /// `mmd_threshold` and p-value below `mmd_p_value_threshold`.
    pub fn mmd_crossed(&self, statistic: Option<f64>, p_value: Option<f64>) -> bool {
        statistic.is_some_and(|s| s >= self.mmd_threshold)
            && p_value.is_some_and(|p| p < self.mmd_p_value_threshold)
    }

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
