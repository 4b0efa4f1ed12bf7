//! Statistical process control charts for scalar health series (error rate, p95 latency, mean
//! judge score per window): EWMA with exact time-varying limits and the two-sided tabular CUSUM,
//! and for per-interval proportions with varying interval sizes the standardized binomial EWMA
//! ([`BinomialEwmaChart`], its own baseline rule below). Their whole state is
//! serde-serialisable, so a chart can be persisted and resumed.
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

/// λ in (0, 1] and L finite and > 0, for both EWMA charts.
fn check_ewma_parameters(lambda: f64, l: f64) -> Result<(), StatsError> {
    if !(lambda > 0.0 && lambda <= 1.0) {
        return Err(StatsError::InvalidParameter(format!(
            "EWMA λ must be in (0, 1], got {lambda}"
        )));
    }
    if !(l.is_finite() && l > 0.0) {
        return Err(StatsError::InvalidParameter(format!(
            "EWMA L must be finite and > 0, got {l}"
        )));
    }
    Ok(())
}

impl EwmaChart {
    /// Errors for λ outside (0, 1], L ≤ 0, or an invalid baseline (non-finite μ0, σ ≤ 0, or a
    /// warm-up too short for what must be learnt).
    pub fn new(config: EwmaConfig) -> Result<Self, StatsError> {
        check_ewma_parameters(config.lambda, config.l)?;
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

/// Standardized binomial EWMA chart parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinomialEwmaConfig {
    /// Smoothing weight λ in (0, 1] (default 0.2).
    pub lambda: f64,
    /// Limit width L in standard deviations of the EWMA (> 0, default 3).
    pub l: f64,
    /// Intervals pooled into the in-control proportion `p0` before the chart judges (≥ 1,
    /// default 30).
    pub warmup: usize,
}

impl Default for BinomialEwmaConfig {
    fn default() -> Self {
        Self {
            lambda: 0.2,
            l: 3.0,
            warmup: 30,
        }
    }
}

/// Where a binomial chart's in-control proportion comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum BinomialBaseline {
    WarmUp {
        intervals: u64,
        events: u64,
        trials: u64,
    },
    /// `p0` = pooled events / pooled `trials` of the warm-up.
    Frozen { p0: f64, trials: u64 },
}

/// EWMA chart of per-interval proportions (error ratio, share of truncated answers, …) with
/// varying interval sizes: the standardized binomial chart (Montgomery, *Introduction to
/// Statistical Quality Control*, the standardized p chart) smoothed by an EWMA.
///
/// **Baseline.** The first `warmup` intervals are pooled: `p0 = Σ events / Σ trials` (not a mean
/// of per-interval ratios, so a small interval weighs what it holds), and no point is charted
/// while warming up. `p0` is then frozen.
///
/// **Statistic.** Interval `t` with `x_t` events in `n_t` trials, `r_t = x_t / n_t`:
///
/// ```text
/// s_t = max( sqrt(p0 (1 − p0) / n_t), 1 / (L n_t) )
/// u_t = (r_t − p0) / s_t                         (≈ N(0, 1) in control)
/// z_t = λ u_t + (1 − λ) z_{t−1},   z_0 = 0
/// ```
///
/// The floor on `s_t` keeps a proportion that is (nearly) never seen from charting with a
/// vanishing standard error: with `p0 = 0` (no refusal in the warm-up) one event would otherwise
/// be an infinite `u_t`. A single event changes `r_t` by `1 / n_t`, so the floor caps its `u_t`
/// at `L`, and `λ L` is the narrowest limit the chart ever has: one event after a clean run
/// never alarms by itself, two or more in one interval can. The floor is inactive whenever
/// `n_t p0 (1 − p0) ≥ 1 / L²` (for L = 4.5, about 0.05 expected events per interval).
///
/// **Limits** are exact for every `t` (time-varying, not steady-state) and include the sampling
/// error of `p0` itself, which the warm-up estimate carries into every later point alike:
///
/// ```text
/// a_t = λ / s_t + (1 − λ) a_{t−1},   a_0 = 0
/// Var z_t = λ/(2−λ) · (1 − (1−λ)^{2t})  +  p0 (1 − p0) / N · a_t²      (N = warm-up trials)
/// limits ±L sqrt(Var z_t);  alarm when z_t is strictly outside
/// ```
///
/// The first term is the EWMA of independent unit-variance `u_t`, the second the variance of
/// `p0`'s error (`p0 (1 − p0) / N`) times the EWMA weights it enters `z_t` with (`Σ w_i / s_i`).
/// `t` counts intervals since the baseline was frozen; the chart carries on after an alarm
/// (alarms repeat while a shift lasts). Normal theory: with λ = 0.2 the in-control average run
/// length is about 560 intervals at L = 3, 19,000 at L = 4 and 170,000 at L = 4.5 (Brook–Evans
/// Markov chain); with few expected events per interval the binomial's right skew shortens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinomialEwmaChart {
    config: BinomialEwmaConfig,
    baseline: BinomialBaseline,
    z: f64,
    /// `a_t`: the EWMA of `1 / s_t`.
    weight: f64,
    t: u64,
    seen: u64,
}

impl BinomialEwmaChart {
    /// Errors for λ outside (0, 1], L ≤ 0 or not finite, or a warm-up of 0 intervals.
    pub fn new(config: BinomialEwmaConfig) -> Result<Self, StatsError> {
        check_ewma_parameters(config.lambda, config.l)?;
        if config.warmup == 0 {
            return Err(StatsError::InvalidParameter(
                "a binomial chart needs a warm-up of at least one interval".to_string(),
            ));
        }
        Ok(Self {
            config,
            baseline: BinomialBaseline::WarmUp {
                intervals: 0,
                events: 0,
                trials: 0,
            },
            z: 0.0,
            weight: 0.0,
            t: 0,
            seen: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BinomialEwmaConfig {
        &self.config
    }

    /// `(p0, warm-up trials)` once the warm-up is complete.
    pub fn baseline(&self) -> Option<(f64, u64)> {
        match self.baseline {
            BinomialBaseline::Frozen { p0, trials } => Some((p0, trials)),
            BinomialBaseline::WarmUp { .. } => None,
        }
    }

    /// Feeds one interval of `events` out of `trials`: `Ok(None)` while warming up, else the
    /// charted point (`observation = u_t`, `value = value_low = z_t`, `center = 0`, limits
    /// `±L sqrt(Var z_t)`). Errors (state unchanged) for `trials = 0` or `events > trials`.
    pub fn update(&mut self, events: u64, trials: u64) -> Result<Option<ChartPoint>, StatsError> {
        if trials == 0 || events > trials {
            return Err(StatsError::InvalidParameter(format!(
                "an interval needs 0 ≤ events ≤ trials and trials > 0, got {events} of {trials}"
            )));
        }
        let index = self.seen;
        self.seen += 1;
        let (p0, pooled) = match &mut self.baseline {
            BinomialBaseline::WarmUp {
                intervals,
                events: e,
                trials: n,
            } => {
                *intervals += 1;
                *e += events;
                *n += trials;
                if *intervals >= self.config.warmup as u64 {
                    self.baseline = BinomialBaseline::Frozen {
                        p0: *e as f64 / *n as f64,
                        trials: *n,
                    };
                }
                return Ok(None);
            }
            BinomialBaseline::Frozen { p0, trials } => (*p0, *trials),
        };
        let (lambda, l) = (self.config.lambda, self.config.l);
        let n = trials as f64;
        // A hair above 1 / (L n): a single event's u_t = L exactly meets the limit λL at t = 1,
        // and strict exceedance must not be decided by rounding.
        let floor = (1.0 + 1e-9) / (l * n);
        let s = (p0 * (1.0 - p0) / n).sqrt().max(floor);
        let u = (events as f64 / n - p0) / s;
        self.t += 1;
        self.z = lambda * u + (1.0 - lambda) * self.z;
        self.weight = lambda / s + (1.0 - lambda) * self.weight;
        let variance = lambda / (2.0 - lambda) * (1.0 - (1.0 - lambda).powf(2.0 * self.t as f64))
            + p0 * (1.0 - p0) / pooled as f64 * self.weight * self.weight;
        let width = l * variance.sqrt();
        let high = self.z > width;
        let low = self.z < -width;
        Ok(Some(ChartPoint {
            index,
            observation: u,
            value: self.z,
            value_low: self.z,
            center: 0.0,
            upper: width,
            lower: -width,
            high,
            low,
            alarm: high || low,
        }))
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

    fn binomial(l: f64, warmup: usize) -> BinomialEwmaChart {
        BinomialEwmaChart::new(BinomialEwmaConfig {
            lambda: 0.2,
            l,
            warmup,
        })
        .unwrap()
    }

    #[test]
    fn binomial_warmup_pools_events_and_trials() {
        let mut chart = binomial(3.0, 2);
        assert_eq!(chart.update(1, 10).unwrap(), None);
        assert_eq!(chart.update(0, 90).unwrap(), None);
        // 1 of 100, not the mean of the ratios (0.05).
        assert_eq!(chart.baseline(), Some((0.01, 100)));
        let point = chart.update(1, 100).unwrap().unwrap();
        assert_eq!(point.index, 2);
        assert_eq!(point.observation, 0.0);
        // t = 1: Var = λ² + p0(1−p0)/N · (λ/s)², s = sqrt(p0(1−p0)/100), so λ² (1 + 100/100).
        let width = 3.0 * (0.04f64 * 2.0).sqrt();
        assert!((point.upper - width).abs() < 1e-12, "{point:?}");
        assert_eq!(point.lower, -point.upper);
        assert!(!point.alarm);
        assert!(
            BinomialEwmaChart::new(BinomialEwmaConfig {
                warmup: 0,
                ..BinomialEwmaConfig::default()
            })
            .is_err()
        );
        let before = chart.clone();
        assert!(chart.update(3, 2).is_err());
        assert!(chart.update(0, 0).is_err());
        assert_eq!(chart, before);
    }

    #[test]
    fn binomial_limits_settle_at_the_steady_state_plus_the_baseline_error() {
        let mut chart = binomial(3.0, 10);
        for _ in 0..10 {
            chart.update(10, 100).unwrap();
        }
        let mut last = None;
        for _ in 0..200 {
            last = chart.update(10, 100).unwrap();
        }
        let last = last.unwrap();
        // λ/(2−λ) + p0(1−p0)/N · (1/s)² = 1/9 + 100/1000.
        let width = 3.0 * (1.0f64 / 9.0 + 0.1).sqrt();
        assert!((last.upper - width).abs() < 1e-9, "{last:?}");
        assert_eq!(last.value, 0.0);
    }

    #[test]
    fn binomial_one_event_after_a_clean_warmup_does_not_alarm_two_do() {
        for l in [3.0, 4.5] {
            let mut chart = binomial(l, 30);
            for _ in 0..30 {
                chart.update(0, 30).unwrap();
            }
            assert_eq!(chart.baseline(), Some((0.0, 900)));
            let one = chart.update(1, 30).unwrap().unwrap();
            assert!((one.observation - l).abs() < 1e-6, "{one:?}");
            assert!(!one.alarm, "{one:?}");
            for _ in 0..50 {
                chart.update(0, 30).unwrap();
            }
            let one = chart.update(1, 20).unwrap().unwrap();
            assert!(!one.alarm, "{one:?}");
            chart.update(0, 30).unwrap();
            let two = chart.update(2, 30).unwrap().unwrap();
            assert!(two.alarm && two.high, "{two:?}");
        }
    }

    #[test]
    fn binomial_chart_alarms_on_a_burst_and_round_trips() {
        let mut chart = binomial(4.5, 20);
        // 2–4 errors in 100 calls, then 30.
        let points: Vec<ChartPoint> = (0..60)
            .filter_map(|i| {
                let events = if i >= 50 { 30 } else { 2 + i % 3 };
                chart.update(events, 100).unwrap()
            })
            .collect();
        assert_eq!(points.len(), 40);
        assert_eq!(alarm_indices(&points), (50..60).collect::<Vec<u64>>());
        let json = serde_json::to_string(&chart).unwrap();
        let back: BinomialEwmaChart = serde_json::from_str(&json).unwrap();
        assert_eq!(back, chart);
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
