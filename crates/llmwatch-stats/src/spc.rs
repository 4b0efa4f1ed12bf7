//! Statistical process control charts for scalar health series (error rate, p95 latency, mean
//! judge score per window): EWMA with exact time-varying limits and the two-sided tabular CUSUM.
//! Their whole state is serde-serialisable, so a chart can be persisted and resumed.
//!
//! **Baseline.** The in-control mean `μ0` and standard deviation `σ` are either given or frozen
//! from a warm-up: the first `warmup` observations (default 30) are absorbed without being
//! charted (`update` returns `None`); then the missing `μ0` is their mean and the missing `σ`
//! their sample standard deviation (divisor `n − 1`). Warm-up needs ≥ 1 observation when only
//! `μ0` is missing and ≥ 2 when `σ` is. A warm-up with `σ = 0` gives zero-width limits: any
//! later change alarms.
//!
//! **Alarms** are strict exceedances of the limits. **Reset** (when `reset_after_alarm`, the
//! default): after reporting an alarm point the EWMA restarts as new (`z ← μ0`, `t ← 0`, so its
//! limits narrow again) and the CUSUM sets the alarming side's sum to 0 (the other side carries
//! on). Without it the statistics carry on and alarms repeat while the shift lasts.
//! [`ControlChart::reset`] does the same restart by hand (the baseline is kept);
//! `restart_warmup` forgets a learnt baseline.
//!
//! Page–Hinkley is not provided: it is the CUSUM recursion against the running mean of the series
//! itself, so a slow drift moves its reference along and goes unnoticed (the drift is what this
//! crate is for), and its slack and threshold are in raw data units with no standard defaults;
//! the tabular CUSUM on a frozen baseline, with `k`, `h` in σ units, covers the same abrupt mean
//! shifts.

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// One charted observation.
///
/// EWMA: `value = value_low = z_t`, `center = μ0`, `upper`/`lower` the exact limits at `t`.
/// CUSUM: `value = C⁺_t`, `value_low = −C⁻_t`, `center = 0`, `upper = H`, `lower = −H`.
/// `high = value > upper`, `low = value_low < lower`, `alarm = high || low`; values are reported
/// before any reset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// 0-based position of the observation among all fed to the chart, warm-up included.
    pub index: u64,
    /// The observation `x_t`.
    pub observation: f64,
    /// The statistic compared with `upper`.
    pub value: f64,
    /// The statistic compared with `lower`.
    pub value_low: f64,
    /// Centre line.
    pub center: f64,
    /// Upper control limit.
    pub upper: f64,
    /// Lower control limit.
    pub lower: f64,
    /// `value > upper`.
    pub high: bool,
    /// `value_low < lower`.
    pub low: bool,
    /// `high || low`.
    pub alarm: bool,
}

/// The chart interface shared by [`EwmaChart`] and [`CusumChart`].
pub trait ControlChart {
    /// Feeds one observation: `Ok(None)` while warming up, else the charted point. Errors (and
    /// leaves the state unchanged) for NaN or an infinite value.
    fn update(&mut self, x: f64) -> Result<Option<ChartPoint>, StatsError>;

    /// Restarts the statistics (EWMA `z ← μ0`, `t ← 0`; CUSUM both sums 0), keeping the baseline.
    fn reset(&mut self);

    /// Feeds a series and returns the charted points (warm-up observations yield none; each
    /// point's `index` says where it was). If any value is NaN or infinite nothing is fed.
    fn run_chart(&mut self, values: &[f64]) -> Result<Vec<ChartPoint>, StatsError> {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::NotFinite("chart input"));
        }
        let mut points = Vec::with_capacity(values.len());
        for &v in values {
            if let Some(point) = self.update(v)? {
                points.push(point);
            }
        }
        Ok(points)
    }
}

/// The `index` of every alarming point.
pub fn alarm_indices(points: &[ChartPoint]) -> Vec<u64> {
    points.iter().filter(|p| p.alarm).map(|p| p.index).collect()
}

/// Where the baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineConfig {
    /// In-control mean μ0; `None` = learnt in the warm-up.
    pub mean: Option<f64>,
    /// In-control standard deviation σ (> 0); `None` = learnt in the warm-up.
    pub sigma: Option<f64>,
    /// Warm-up length when something is learnt (default 30).
    pub warmup: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            mean: None,
            sigma: None,
            warmup: 30,
        }
    }
}

impl BaselineConfig {
    fn validate(&self) -> Result<(), StatsError> {
        if let Some(mean) = self.mean
            && !mean.is_finite()
        {
            return Err(StatsError::InvalidParameter(format!(
                "the baseline mean must be finite, got {mean}"
            )));
        }
        if let Some(sigma) = self.sigma
            && !(sigma.is_finite() && sigma > 0.0)
        {
            return Err(StatsError::InvalidParameter(format!(
                "the baseline σ must be finite and > 0, got {sigma}"
            )));
        }
        let needed = if self.sigma.is_none() {
            2
        } else if self.mean.is_none() {
            1
        } else {
            0
        };
        if self.warmup < needed {
            return Err(StatsError::InvalidParameter(format!(
                "learning the baseline needs a warm-up of at least {needed} observations, got {}",
                self.warmup
            )));
        }
        Ok(())
    }
}

/// Baseline state: warm-up accumulators (Welford) or the frozen μ0, σ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Baseline {
    WarmUp { count: u64, mean: f64, m2: f64 },
    Frozen { mean: f64, sigma: f64 },
}

impl Baseline {
    fn start(config: &BaselineConfig) -> Self {
        match (config.mean, config.sigma) {
            (Some(mean), Some(sigma)) => Baseline::Frozen { mean, sigma },
            _ => Baseline::WarmUp {
                count: 0,
                mean: 0.0,
                m2: 0.0,
            },
        }
    }

    /// Absorbs `x` if warming up (true), freezing the baseline when the warm-up is complete.
    fn absorb(&mut self, config: &BaselineConfig, x: f64) -> bool {
        let Baseline::WarmUp { count, mean, m2 } = self else {
            return false;
        };
        *count += 1;
        let delta = x - *mean;
        *mean += delta / *count as f64;
        *m2 += delta * (x - *mean);
        if *count >= config.warmup as u64 {
            let learnt_sigma = if *count > 1 {
                (*m2 / (*count - 1) as f64).sqrt()
            } else {
                0.0
            };
            *self = Baseline::Frozen {
                mean: config.mean.unwrap_or(*mean),
                sigma: config.sigma.unwrap_or(learnt_sigma),
            };
        }
        true
    }

    fn frozen(&self) -> Option<(f64, f64)> {
        match *self {
            Baseline::Frozen { mean, sigma } => Some((mean, sigma)),
            Baseline::WarmUp { .. } => None,
        }
    }
}

/// EWMA chart parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EwmaConfig {
    /// Smoothing weight λ in (0, 1] (default 0.2).
    pub lambda: f64,
    /// Limit width L in σ units (> 0, default 3).
    pub l: f64,
    /// μ0, σ and warm-up.
    pub baseline: BaselineConfig,
    /// Restart after an alarm (default true).
    pub reset_after_alarm: bool,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        Self {
            lambda: 0.2,
            l: 3.0,
            baseline: BaselineConfig::default(),
            reset_after_alarm: true,
        }
    }
}

/// EWMA chart (Montgomery): `z_0 = μ0`, `z_t = λ x_t + (1−λ) z_{t−1}`, limits
/// `μ0 ± L σ sqrt(λ/(2−λ) · (1 − (1−λ)^{2t}))` (exact, not steady-state), alarm when `z_t` is
/// strictly outside. `t` counts observations since the baseline was frozen or the last restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EwmaChart {
    config: EwmaConfig,
    baseline: Baseline,
    z: f64,
    t: u64,
    seen: u64,
}

impl EwmaChart {
    /// Errors for λ outside (0, 1], L ≤ 0, or an invalid baseline (non-finite μ0, σ ≤ 0, or a
    /// warm-up too short for what must be learnt).
    pub fn new(config: EwmaConfig) -> Result<Self, StatsError> {
        if !(config.lambda > 0.0 && config.lambda <= 1.0) {
            return Err(StatsError::InvalidParameter(format!(
                "EWMA λ must be in (0, 1], got {}",
                config.lambda
            )));
        }
        if !(config.l.is_finite() && config.l > 0.0) {
            return Err(StatsError::InvalidParameter(format!(
                "EWMA L must be finite and > 0, got {}",
                config.l
            )));
        }
        config.baseline.validate()?;
        let baseline = Baseline::start(&config.baseline);
        let z = baseline.frozen().map_or(0.0, |(mean, _)| mean);
        Ok(Self {
            config,
            baseline,
            z,
            t: 0,
            seen: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EwmaConfig {
        &self.config
    }

    /// `(μ0, σ)` once known.
    pub fn baseline(&self) -> Option<(f64, f64)> {
        self.baseline.frozen()
    }

    /// Forgets a learnt baseline and warms up again (a fully given baseline is kept).
    pub fn restart_warmup(&mut self) {
        self.baseline = Baseline::start(&self.config.baseline);
        self.reset();
    }
}

impl ControlChart for EwmaChart {
    fn update(&mut self, x: f64) -> Result<Option<ChartPoint>, StatsError> {
        if !x.is_finite() {
            return Err(StatsError::NotFinite("chart input"));
        }
        let index = self.seen;
        self.seen += 1;
        if self.baseline.absorb(&self.config.baseline, x) {
            if let Some((mean, _)) = self.baseline.frozen() {
                self.z = mean;
                self.t = 0;
            }
            return Ok(None);
        }
        let Some((mean, sigma)) = self.baseline.frozen() else {
            return Ok(None);
        };
        let lambda = self.config.lambda;
        self.t += 1;
        self.z = lambda * x + (1.0 - lambda) * self.z;
        let width = self.config.l
            * sigma
            * (lambda / (2.0 - lambda) * (1.0 - (1.0 - lambda).powf(2.0 * self.t as f64))).sqrt();
        let (upper, lower) = (mean + width, mean - width);
        let high = self.z > upper;
        let low = self.z < lower;
        let point = ChartPoint {
            index,
            observation: x,
            value: self.z,
            value_low: self.z,
            center: mean,
            upper,
            lower,
            high,
            low,
            alarm: high || low,
        };
        if point.alarm && self.config.reset_after_alarm {
            self.reset();
        }
        Ok(Some(point))
    }

    fn reset(&mut self) {
        self.z = self.baseline.frozen().map_or(0.0, |(mean, _)| mean);
        self.t = 0;
    }
}

/// Tabular CUSUM parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CusumConfig {
    /// Reference value k in σ units (≥ 0, default 0.5): `K = kσ`.
    pub k: f64,
    /// Decision interval h in σ units (> 0, default 5): `H = hσ`.
    pub h: f64,
    /// μ0, σ and warm-up.
    pub baseline: BaselineConfig,
    /// Zero the alarming side after an alarm (default true).
    pub reset_after_alarm: bool,
}

impl Default for CusumConfig {
    fn default() -> Self {
        Self {
            k: 0.5,
            h: 5.0,
            baseline: BaselineConfig::default(),
            reset_after_alarm: true,
        }
    }
}

/// Two-sided tabular CUSUM (Montgomery ch. 9): `C⁺_t = max(0, x_t − (μ0 + K) + C⁺_{t−1})`,
/// `C⁻_t = max(0, (μ0 − K) − x_t + C⁻_{t−1})`, `C⁺_0 = C⁻_0 = 0`, `K = kσ`, `H = hσ`; alarm high
/// when `C⁺_t > H`, low when `C⁻_t > H`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CusumChart {
    config: CusumConfig,
    baseline: Baseline,
    upper_sum: f64,
    lower_sum: f64,
    seen: u64,
}

impl CusumChart {
    /// Errors for k < 0 or non-finite, h ≤ 0 or non-finite, or an invalid baseline.
    pub fn new(config: CusumConfig) -> Result<Self, StatsError> {
        if !(config.k.is_finite() && config.k >= 0.0) {
            return Err(StatsError::InvalidParameter(format!(
                "CUSUM k must be finite and ≥ 0, got {}",
                config.k
            )));
        }
        if !(config.h.is_finite() && config.h > 0.0) {
            return Err(StatsError::InvalidParameter(format!(
                "CUSUM h must be finite and > 0, got {}",
                config.h
            )));
        }
        config.baseline.validate()?;
        let baseline = Baseline::start(&config.baseline);
        Ok(Self {
            config,
            baseline,
            upper_sum: 0.0,
            lower_sum: 0.0,
            seen: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CusumConfig {
        &self.config
    }

    /// `(μ0, σ)` once known.
    pub fn baseline(&self) -> Option<(f64, f64)> {
        self.baseline.frozen()
    }

    /// The current sums `(C⁺, C⁻)`.
    pub fn sums(&self) -> (f64, f64) {
        (self.upper_sum, self.lower_sum)
    }

    /// Forgets a learnt baseline and warms up again (a fully given baseline is kept).
    pub fn restart_warmup(&mut self) {
        self.baseline = Baseline::start(&self.config.baseline);
        self.reset();
    }
}

impl ControlChart for CusumChart {
    fn update(&mut self, x: f64) -> Result<Option<ChartPoint>, StatsError> {
        if !x.is_finite() {
            return Err(StatsError::NotFinite("chart input"));
        }
        let index = self.seen;
        self.seen += 1;
        if self.baseline.absorb(&self.config.baseline, x) {
            return Ok(None);
        }
        let Some((mean, sigma)) = self.baseline.frozen() else {
            return Ok(None);
        };
        let k = self.config.k * sigma;
        let h = self.config.h * sigma;
        self.upper_sum = (x - (mean + k) + self.upper_sum).max(0.0);
        self.lower_sum = ((mean - k) - x + self.lower_sum).max(0.0);
        let high = self.upper_sum > h;
        let low = self.lower_sum > h;
        let point = ChartPoint {
            index,
            observation: x,
            value: self.upper_sum,
            value_low: -self.lower_sum,
            center: 0.0,
            upper: h,
            lower: -h,
            high,
            low,
            alarm: high || low,
        };
        if self.config.reset_after_alarm {
            if high {
                self.upper_sum = 0.0;
            }
            if low {
                self.lower_sum = 0.0;
            }
        }
        Ok(Some(point))
    }

    fn reset(&mut self) {
        self.upper_sum = 0.0;
        self.lower_sum = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(mean: f64, sigma: f64) -> BaselineConfig {
        BaselineConfig {
            mean: Some(mean),
            sigma: Some(sigma),
            warmup: 0,
        }
    }

    #[test]
    fn invalid_configs() {
        let bad_lambda = EwmaConfig {
            lambda: 0.0,
            ..EwmaConfig::default()
        };
        assert!(EwmaChart::new(bad_lambda).is_err());
        let bad_lambda = EwmaConfig {
            lambda: 1.5,
            ..EwmaConfig::default()
        };
        assert!(EwmaChart::new(bad_lambda).is_err());
        let bad_l = EwmaConfig {
            l: -1.0,
            ..EwmaConfig::default()
        };
        assert!(EwmaChart::new(bad_l).is_err());
        let short = BaselineConfig {
            warmup: 1,
            ..BaselineConfig::default()
        };
        assert!(
            EwmaChart::new(EwmaConfig {
                baseline: short,
                ..EwmaConfig::default()
            })
            .is_err()
        );
        let sigma_only = BaselineConfig {
            sigma: Some(1.0),
            warmup: 1,
            mean: None,
        };
        assert!(
            CusumChart::new(CusumConfig {
                baseline: sigma_only,
                ..CusumConfig::default()
            })
            .is_ok()
        );
        let zero_sigma = BaselineConfig {
            sigma: Some(0.0),
            ..BaselineConfig::default()
        };
        assert!(
            CusumChart::new(CusumConfig {
                baseline: zero_sigma,
                ..CusumConfig::default()
            })
            .is_err()
        );
        let nan_mean = BaselineConfig {
            mean: Some(f64::NAN),
            ..BaselineConfig::default()
        };
        assert!(
            CusumChart::new(CusumConfig {
                baseline: nan_mean,
                ..CusumConfig::default()
            })
            .is_err()
        );
        assert!(
            CusumChart::new(CusumConfig {
                h: 0.0,
                ..CusumConfig::default()
            })
            .is_err()
        );
        assert!(
            CusumChart::new(CusumConfig {
                k: -0.1,
                ..CusumConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn non_finite_input_is_refused_without_state_change() {
        let mut chart = EwmaChart::new(EwmaConfig {
            baseline: given(0.0, 1.0),
            ..EwmaConfig::default()
        })
        .unwrap();
        let before = chart.clone();
        assert_eq!(
            chart.update(f64::NAN),
            Err(StatsError::NotFinite("chart input"))
        );
        assert_eq!(chart, before);
        assert!(chart.run_chart(&[1.0, f64::INFINITY]).is_err());
        assert_eq!(chart, before);
    }

    #[test]
    fn ewma_steady_state_width_is_sigma_at_defaults() {
        let mut chart = EwmaChart::new(EwmaConfig {
            baseline: given(10.0, 2.0),
            ..EwmaConfig::default()
        })
        .unwrap();
        let points = chart.run_chart(&[10.0; 200]).unwrap();
        let last = points.last().unwrap();
        assert!((last.upper - 12.0).abs() < 1e-12 && (last.lower - 8.0).abs() < 1e-12);
        // First point: L σ sqrt(λ/(2−λ)(1 − (1−λ)²)) = 3·2·sqrt(0.2/1.8·0.36) = 1.2
        assert!((points[0].upper - 11.2).abs() < 1e-12);
        assert!(alarm_indices(&points).is_empty());
    }

    #[test]
    fn warmup_freezes_baseline_and_skips_points() {
        let mut chart = CusumChart::new(CusumConfig {
            baseline: BaselineConfig {
                warmup: 4,
                ..BaselineConfig::default()
            },
            ..CusumConfig::default()
        })
        .unwrap();
        let points = chart.run_chart(&[1.0, 2.0, 3.0, 4.0, 2.5]).unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].index, 4);
        let (mean, sigma) = chart.baseline().unwrap();
        assert!((mean - 2.5).abs() < 1e-15);
        assert!((sigma - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn cusum_alarms_and_resets_the_alarming_side() {
        let mut chart = CusumChart::new(CusumConfig {
            baseline: given(0.0, 1.0),
            ..CusumConfig::default()
        })
        .unwrap();
        // +2 per step: C⁺ grows by 1.5 per step, exceeds 5 at the 4th step (6.0).
        let points = chart.run_chart(&[2.0, 2.0, 2.0, 2.0, 2.0]).unwrap();
        assert_eq!(alarm_indices(&points), vec![3]);
        assert!(points[3].high && !points[3].low);
        assert_eq!(points[3].value, 6.0);
        assert_eq!(points[4].value, 1.5);
        let json = serde_json::to_string(&chart).unwrap();
        let back: CusumChart = serde_json::from_str(&json).unwrap();
        assert_eq!(back, chart);
    }

    #[test]
    fn ewma_restarts_after_alarm() {
        let mut chart = EwmaChart::new(EwmaConfig {
            baseline: given(0.0, 1.0),
            ..EwmaConfig::default()
        })
        .unwrap();
        let p = chart.update(10.0).unwrap().unwrap();
        assert!(p.alarm && p.high);
        let next = chart.update(0.0).unwrap().unwrap();
        assert_eq!(next.value, 0.0);
        assert_eq!(next.upper, p.upper);
    }
}
