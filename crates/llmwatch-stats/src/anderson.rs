//! Anderson–Darling k-sample test, as `scipy.stats.anderson_ksamp` computes it with its default
//! `midrank=True` (Scholz & Stephens 1987, eq. 7: the version for continuous and discrete data).
//!
//! With `k` samples of sizes `n_i`, `N = Σ n_i` pooled values, the distinct pooled values
//! `z*_1 < … < z*_L`, `l_j` = how many pooled values equal `z*_j`, `B_j` = (number of pooled values
//! below `z*_j`) + `l_j/2`, and `M_ij` = (number of values of sample `i` below `z*_j`) + half the
//! number equal to it:
//!
//! ```text
//! A²_akN = (N−1)/N · Σ_i 1/n_i · Σ_j l_j/N · (N·M_ij − B_j·n_i)² / (B_j(N − B_j) − N·l_j/4)
//! ```
//!
//! The reported statistic is the standardised `(A²_akN − (k−1)) / σ_N` with Scholz & Stephens'
//! variance `σ²_N` (eq. 4 with their `H`, `h`, `g`). The critical values for the significance
//! levels 0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001 are `b0 + b1/√m + b2/m` with `m = k − 1`
//! (their Table 2). The p-value is scipy's: `exp` of the least-squares quadratic in the statistic
//! fitted to `ln(significance level)` at the 7 critical values; below the smallest critical value
//! it is capped at 0.25, above the largest floored at 0.001 (the true p-value is then only known to
//! be ≥ 0.25, respectively ≤ 0.001: see [`PValueBound`]).

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// The significance levels of the critical values, in the order of
/// [`AndersonKsamp::critical_values`].
pub const AD_SIGNIFICANCE_LEVELS: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];

const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];

/// What the interpolated p-value of [`anderson_ksamp`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PValueBound {
    /// Between the smallest and largest critical values: the interpolated value.
    Interpolated,
    /// The statistic is below the smallest critical value: p is reported as 0.25, the true value
    /// is at least that.
    CappedAt025,
    /// The statistic is above the largest critical value: p is reported as 0.001, the true value
    /// is at most that.
    FlooredAt0001,
}

/// Result of [`anderson_ksamp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AndersonKsamp {
    /// The standardised statistic `(A²_akN − (k−1)) / σ_N` (scipy's `statistic`).
    pub statistic: f64,
    /// Critical values at [`AD_SIGNIFICANCE_LEVELS`] (scipy's `critical_values`).
    pub critical_values: [f64; 7],
    /// scipy's interpolated p-value (`pvalue`), in [0.001, 0.25].
    pub p_value: f64,
    /// Whether `p_value` was capped or floored.
    pub bound: PValueBound,
}

/// The Scholz–Stephens critical values for `k` samples: `b0 + b1/√(k−1) + b2/(k−1)` at
/// [`AD_SIGNIFICANCE_LEVELS`]. Errors when `k < 2`.
pub fn anderson_ksamp_critical_values(k: usize) -> Result<[f64; 7], StatsError> {
    if k < 2 {
        return Err(StatsError::InvalidParameter(format!(
            "the Anderson–Darling k-sample test needs at least two samples, got {k}"
        )));
    }
    let m = (k - 1) as f64;
    let sqrt_m = m.sqrt();
    let mut critical = [0.0; 7];
    for (i, c) in critical.iter_mut().enumerate() {
        *c = B0[i] + B1[i] / sqrt_m + B2[i] / m;
    }
    Ok(critical)
}

/// Anderson–Darling k-sample test (midrank version), matching `scipy.stats.anderson_ksamp(samples)`;
/// the definitions are in the [module documentation](self).
///
/// Errors: fewer than two samples, an empty sample, a NaN or infinite value, fewer than two
/// distinct pooled values (as scipy), or fewer than 4 pooled values (σ²_N divides by
/// `(N−1)(N−2)(N−3)`; scipy returns NaN there).
pub fn anderson_ksamp<S: AsRef<[f64]>>(samples: &[S]) -> Result<AndersonKsamp, StatsError> {
    let k = samples.len();
    let critical = anderson_ksamp_critical_values(k)?;
    let mut pooled: Vec<(f64, usize)> = Vec::new();
    let mut sizes = Vec::with_capacity(k);
    for (i, sample) in samples.iter().enumerate() {
        let sample = sample.as_ref();
        if sample.is_empty() {
            return Err(StatsError::EmptySample("Anderson–Darling input"));
        }
        if sample.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::NotFinite("Anderson–Darling input"));
        }
        sizes.push(sample.len());
        pooled.extend(sample.iter().map(|&v| (v, i)));
    }
    let total = pooled.len();
    if total < 4 {
        return Err(StatsError::Undefined(format!(
            "the Anderson–Darling k-sample variance needs at least 4 pooled values, got {total}"
        )));
    }
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    if pooled[0].0 == pooled[total - 1].0 {
        return Err(StatsError::Undefined(
            "the Anderson–Darling k-sample test needs more than one distinct value".to_string(),
        ));
    }

    let n_f = total as f64;
    // Per sample: values strictly below the current group, and the inner sums over groups.
    let mut below = vec![0usize; k];
    let mut in_group = vec![0usize; k];
    let mut inner = vec![0.0f64; k];
    let mut start = 0;
    while start < total {
        let value = pooled[start].0;
        let mut end = start;
        while end < total && pooled[end].0 == value {
            in_group[pooled[end].1] += 1;
            end += 1;
        }
        let lj = (end - start) as f64;
        let bj = start as f64 + lj / 2.0;
        let denominator = bj * (n_f - bj) - n_f * lj / 4.0;
        for i in 0..k {
            let mij = below[i] as f64 + in_group[i] as f64 / 2.0;
            let diff = n_f * mij - bj * sizes[i] as f64;
            inner[i] += lj / n_f * diff * diff / denominator;
            below[i] += in_group[i];
            in_group[i] = 0;
        }
        start = end;
    }
    let mut a2akn = 0.0;
    for (sum, &size) in inner.iter().zip(&sizes) {
        a2akn += sum / size as f64;
    }
    a2akn *= (n_f - 1.0) / n_f;

    // Scholz & Stephens' variance of A²_akN.
    let k_f = k as f64;
    let h_cap: f64 = sizes.iter().map(|&n| 1.0 / n as f64).sum();
    // hs_cs[j] = Σ_{i = N−1−j}^{N−1} 1/i for j = 0..N−3 (scipy: cumsum(1/arange(N−1, 1, −1))).
    let mut cumulative = 0.0;
    let mut g = 0.0;
    for (j, i) in (2..total).rev().enumerate() {
        cumulative += 1.0 / i as f64;
        g += cumulative / (j + 2) as f64;
    }
    let h = cumulative + 1.0;
    let a = (4.0 * g - 6.0) * (k_f - 1.0) + (10.0 - 6.0 * g) * h_cap;
    let b = (2.0 * g - 4.0) * k_f * k_f + 8.0 * h * k_f + (2.0 * g - 14.0 * h - 4.0) * h_cap
        - 8.0 * h
        + 4.0 * g
        - 6.0;
    let c = (6.0 * h + 2.0 * g - 2.0) * k_f * k_f
        + (4.0 * h - 4.0 * g + 6.0) * k_f
        + (2.0 * h - 6.0) * h_cap
        + 4.0 * h;
    let d = (2.0 * h + 6.0) * k_f * k_f - 4.0 * h * k_f;
    let sigma_sq =
        (a * n_f.powi(3) + b * n_f * n_f + c * n_f + d) / ((n_f - 1.0) * (n_f - 2.0) * (n_f - 3.0));
    if !(sigma_sq.is_finite() && sigma_sq > 0.0) {
        return Err(StatsError::Undefined(format!(
            "the Anderson–Darling k-sample variance is not positive ({sigma_sq})"
        )));
    }
    let statistic = (a2akn - (k_f - 1.0)) / sigma_sq.sqrt();
    let (p_value, bound) = interpolate_p_value(statistic, &critical);
    Ok(AndersonKsamp {
        statistic,
        critical_values: critical,
        p_value,
        bound,
    })
}

/// scipy's p-value: caps outside the critical values, else `exp(polyval(polyfit(critical,
/// ln(sig), 2), statistic))`.
fn interpolate_p_value(statistic: f64, critical: &[f64; 7]) -> (f64, PValueBound) {
    let min = critical.iter().copied().fold(f64::INFINITY, f64::min);
    let max = critical.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if statistic < min {
        return (0.25, PValueBound::CappedAt025);
    }
    if statistic > max {
        return (0.001, PValueBound::FlooredAt0001);
    }
    let log_sig = AD_SIGNIFICANCE_LEVELS.map(f64::ln);
    let [c2, c1, c0] = quadratic_least_squares(critical, &log_sig);
    let log_p = (c2 * statistic + c1) * statistic + c0;
    (log_p.exp(), PValueBound::Interpolated)
}

/// Least-squares coefficients `[c2, c1, c0]` of `y ≈ c2 x² + c1 x + c0`, as `numpy.polyfit(x, y,
/// 2)`: the Vandermonde columns are scaled to unit norm, then solved by a Householder QR.
#[allow(clippy::needless_range_loop)] // index loops read best for this small dense matrix code
fn quadratic_least_squares(x: &[f64; 7], y: &[f64; 7]) -> [f64; 3] {
    let mut a = [[0.0f64; 3]; 7];
    for (row, &xi) in a.iter_mut().zip(x) {
        *row = [xi * xi, xi, 1.0];
    }
    let mut scale = [0.0f64; 3];
    for (col, s) in scale.iter_mut().enumerate() {
        *s = a.iter().map(|row| row[col] * row[col]).sum::<f64>().sqrt();
        for row in a.iter_mut() {
            row[col] /= *s;
        }
    }
    let mut rhs = *y;
    // Householder QR: reduce column `col` below the diagonal, applying the reflections to rhs.
    for col in 0..3 {
        let norm = (col..7).map(|r| a[r][col] * a[r][col]).sum::<f64>().sqrt();
        let alpha = if a[col][col] > 0.0 { -norm } else { norm };
        let mut v = [0.0f64; 7];
        for r in col..7 {
            v[r] = a[r][col];
        }
        v[col] -= alpha;
        let v_norm_sq: f64 = (col..7).map(|r| v[r] * v[r]).sum();
        if v_norm_sq == 0.0 {
            continue;
        }
        for c in col..3 {
            let dot: f64 = (col..7).map(|r| v[r] * a[r][c]).sum();
            let factor = 2.0 * dot / v_norm_sq;
            for r in col..7 {
                a[r][c] -= factor * v[r];
            }
        }
        let dot: f64 = (col..7).map(|r| v[r] * rhs[r]).sum();
        let factor = 2.0 * dot / v_norm_sq;
        for r in col..7 {
            rhs[r] -= factor * v[r];
        }
    }
    let mut coef = [0.0f64; 3];
    for row in (0..3).rev() {
        let mut acc = rhs[row];
        for c in row + 1..3 {
            acc -= a[row][c] * coef[c];
        }
        coef[row] = acc / a[row][row];
    }
    for (c, s) in coef.iter_mut().zip(scale) {
        *c /= s;
    }
    coef
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        let one: [&[f64]; 1] = [&[1.0, 2.0]];
        assert!(matches!(
            anderson_ksamp(&one),
            Err(StatsError::InvalidParameter(_))
        ));
        let empty: [&[f64]; 2] = [&[1.0, 2.0], &[]];
        assert_eq!(
            anderson_ksamp(&empty),
            Err(StatsError::EmptySample("Anderson–Darling input"))
        );
        let nan: [&[f64]; 2] = [&[1.0, f64::NAN], &[1.0, 2.0]];
        assert!(matches!(
            anderson_ksamp(&nan),
            Err(StatsError::NotFinite(_))
        ));
        let inf: [&[f64]; 2] = [&[1.0, 3.0], &[f64::INFINITY, 2.0]];
        assert!(matches!(
            anderson_ksamp(&inf),
            Err(StatsError::NotFinite(_))
        ));
        let constant: [&[f64]; 2] = [&[1.0, 1.0], &[1.0, 1.0]];
        assert!(matches!(
            anderson_ksamp(&constant),
            Err(StatsError::Undefined(_))
        ));
        let three: [&[f64]; 2] = [&[1.0, 2.0], &[3.0]];
        assert!(matches!(
            anderson_ksamp(&three),
            Err(StatsError::Undefined(_))
        ));
    }

    #[test]
    fn polyfit_recovers_a_quadratic() {
        let x = [0.3, 1.2, 2.0, 2.7, 3.8, 4.6, 6.5];
        let y = x.map(|v| 0.5 * v * v - 2.0 * v + 3.0);
        let [c2, c1, c0] = quadratic_least_squares(&x, &y);
        assert!((c2 - 0.5).abs() < 1e-13 && (c1 + 2.0).abs() < 1e-13 && (c0 - 3.0).abs() < 1e-13);
    }

    #[test]
    fn scipy_small_example() {
        // scipy 1.17.1: anderson_ksamp([[1, 2], [3, 4]]) = (1.5427784316797186, p 0.07502559142197461)
        let s: [&[f64]; 2] = [&[1.0, 2.0], &[3.0, 4.0]];
        let r = anderson_ksamp(&s).unwrap();
        assert!((r.statistic - 1.5427784316797186).abs() < 1e-12);
        assert!((r.p_value - 0.07502559142197461).abs() < 1e-12);
        assert_eq!(r.bound, PValueBound::Interpolated);
    }
}
