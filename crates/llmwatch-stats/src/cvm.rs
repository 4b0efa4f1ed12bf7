//! Cramér–von Mises two-sample test, as `scipy.stats.cramervonmises_2samp` computes it.
//!
//! With samples `x` (size `n_x`) and `y` (size `n_y`), `N = n_x + n_y`, `k = n_x·n_y`, and `r_i`,
//! `s_j` the pooled midranks (ties get the average rank) of the sorted `x` and `y`:
//!
//! ```text
//! U = n_x Σ_i (r_i − i)² + n_y Σ_j (s_j − j)²        T = U/(k N) − (4k − 1)/(6N)
//! ```
//!
//! P-values (`P(T* ≥ T)`):
//! * [`CvmMethod::Exact`]: the null distribution of `U` over all `C(N, n_x)` rank assignments by
//!   the frequency recursion of Xiao, Gordon & Yakovlev (2006), as scipy's
//!   `_pval_cvm_2samp_exact` (which, as scipy, ignores ties: with ties it is the p-value of the
//!   untied distribution at the tied `U`).
//! * [`CvmMethod::Asymptotic`]: `T` is normalised with its exact mean and variance (Anderson 1962,
//!   eqs. 11, 14, 15), `t_n = 1/6 + (T − E T)/√(45 Var T)`, and `p = max(0, 1 − F_∞(t_n))` with
//!   the limiting one-sample distribution [`cvm_limit_cdf`] (`p = 1` when `t_n < 0.003`).
//! * [`CvmMethod::Auto`]: exact iff `max(n_x, n_y) ≤ 20`, as scipy.

use serde::{Deserialize, Serialize};

use crate::StatsError;

/// How [`cramervonmises_2samp`] computes its p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CvmMethod {
    /// Exact iff `max(n_x, n_y) ≤ 20`, else asymptotic (scipy's `method='auto'`).
    #[default]
    Auto,
    /// The exact null distribution (cost grows quickly with the sample sizes; refused when
    /// `C(N, n_x)` does not fit in 128 bits).
    Exact,
    /// The limiting distribution of the normalised statistic.
    Asymptotic,
}

/// Result of [`cramervonmises_2samp`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CramerVonMises {
    /// The statistic `T`.
    pub statistic: f64,
    /// The p-value `P(T* ≥ T)`.
    pub p_value: f64,
    /// The method actually used (`Exact` or `Asymptotic`, never `Auto`).
    pub method: CvmMethod,
}

/// Two-sample Cramér–von Mises test matching `scipy.stats.cramervonmises_2samp(x, y, method)`;
/// definitions in the [module documentation](self).
///
/// Errors: a sample with fewer than two values (as scipy), NaN or infinite values, or
/// `Exact` on samples so large that `C(N, n_x)` overflows 128 bits.
pub fn cramervonmises_2samp(
    x: &[f64],
    y: &[f64],
    method: CvmMethod,
) -> Result<CramerVonMises, StatsError> {
    check_sample(x, "x")?;
    check_sample(y, "y")?;
    let (nx, ny) = (x.len(), y.len());
    let method = match method {
        CvmMethod::Auto if nx.max(ny) > 20 => CvmMethod::Asymptotic,
        CvmMethod::Auto => CvmMethod::Exact,
        other => other,
    };
    let u = u_statistic(x, y);
    let k = (nx as u128) * (ny as u128);
    let n = (nx + ny) as u128;
    let t = u / ((k * n) as f64) - ((4 * k - 1) as f64) / ((6 * n) as f64);
    let p_value = match method {
        CvmMethod::Exact => exact_p_value(u, nx as u64, ny as u64)?,
        _ => asymptotic_p_value(t, nx, ny)?,
    };
    Ok(CramerVonMises {
        statistic: t,
        p_value,
        method,
    })
}

fn check_sample(sample: &[f64], which: &'static str) -> Result<(), StatsError> {
    if sample.is_empty() {
        return Err(StatsError::EmptySample(which));
    }
    if sample.len() < 2 {
        return Err(StatsError::InvalidParameter(format!(
            "the Cramér–von Mises test needs at least two values in {which}, got 1"
        )));
    }
    if sample.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite(which));
    }
    Ok(())
}

/// `U` from doubled midranks (integers), so that it is exact whenever it is representable.
fn u_statistic(x: &[f64], y: &[f64]) -> f64 {
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    xs.sort_by(f64::total_cmp);
    ys.sort_by(f64::total_cmp);
    // Walk the merged order; each tie group [start, end) (0-based) has doubled midrank start+1+end.
    let (mut i, mut j) = (0usize, 0usize);
    let (mut sum_x, mut sum_y) = (0u128, 0u128);
    while i < xs.len() || j < ys.len() {
        let value = match (xs.get(i), ys.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let start = (i + j) as i128;
        let (i0, j0) = (i, j);
        while i < xs.len() && xs[i] == value {
            i += 1;
        }
        while j < ys.len() && ys[j] == value {
            j += 1;
        }
        let doubled_rank = start + 1 + (i + j) as i128;
        for idx in i0..i {
            let diff = doubled_rank - 2 * (idx as i128 + 1);
            sum_x += (diff * diff) as u128;
        }
        for idx in j0..j {
            let diff = doubled_rank - 2 * (idx as i128 + 1);
            sum_y += (diff * diff) as u128;
        }
    }
    let quadruple_u = x.len() as u128 * sum_x + y.len() as u128 * sum_y;
    quadruple_u as f64 / 4.0
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn binomial(n: u64, k: u64) -> Option<u128> {
    let k = k.min(n - k);
    let mut acc: u128 = 1;
    for i in 0..k {
        // acc * (n − i) / (i + 1) stays integral; divide by the gcd first to delay overflow.
        let num = (n - i) as u128;
        let den = (i + 1) as u128;
        let g = gcd128(acc, den);
        let (acc_r, den_r) = (acc / g, den / g);
        // gcd(acc_r, den_r) = 1 and den_r divides acc_r·num, so den_r divides num.
        acc = acc_r.checked_mul(num / den_r)?;
    }
    Some(acc)
}

fn gcd128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// numpy's float `floor_divide` (`npy_divmod`): floor of `(a − fmod(a, b))/b` with its
/// adjustments, for `b > 0`.
fn numpy_floor_divide(a: f64, b: f64) -> f64 {
    let mut modulus = a % b;
    let mut div = (a - modulus) / b;
    if modulus != 0.0 && ((b < 0.0) != (modulus < 0.0)) {
        modulus += b;
        div -= 1.0;
    }
    let _ = modulus;
    if div != 0.0 {
        let mut floordiv = div.floor();
        if div - floordiv > 0.5 {
            floordiv += 1.0;
        }
        floordiv
    } else {
        0.0f64.copysign(a / b)
    }
}

/// scipy's `_pval_cvm_2samp_exact(u, m, n)`.
fn exact_p_value(u: f64, m: u64, n: u64) -> Result<f64, StatsError> {
    let combinations = binomial(m + n, m).ok_or_else(|| {
        StatsError::InvalidParameter(format!(
            "the exact Cramér–von Mises distribution for sizes {m} and {n} is too large; use the \
             asymptotic method"
        ))
    })?;
    let lcm = m / gcd(m, n) * n;
    let a = lcm / m;
    let b = lcm / n;
    let mn = m * n;
    // zeta = lcm²(m+n)(6U − mn(4mn − 1)) // (6 m²n²), in float64 as scipy.
    let factor = (lcm as f64) * (lcm as f64) * ((m + n) as f64);
    let zeta = numpy_floor_divide(
        factor * (6.0 * u - (mn as f64) * ((4 * mn - 1) as f64)),
        6.0 * (mn as f64) * (mn as f64),
    );
    // gs[v]: sorted (value, frequency) pairs of g_{u,v}.
    let mut gs: Vec<Vec<(u64, u128)>> = vec![Vec::new(); m as usize + 1];
    gs[0].push((0, 1));
    for uu in 0..=n {
        let mut next: Vec<Vec<(u64, u128)>> = Vec::with_capacity(gs.len());
        let mut tmp: Vec<(u64, u128)> = Vec::new();
        for (v, g) in gs.iter().enumerate() {
            tmp = merge_frequencies(&tmp, g);
            let diff = (a * v as u64) as i128 - (b * uu) as i128;
            let res = (diff * diff) as u64;
            for entry in tmp.iter_mut() {
                entry.0 += res;
            }
            next.push(tmp.clone());
        }
        gs = next;
    }
    let tail: u128 = gs[m as usize]
        .iter()
        .filter(|(value, _)| *value as f64 >= zeta)
        .map(|e| e.1)
        .sum();
    Ok(tail as f64 / combinations as f64)
}

fn merge_frequencies(a: &[(u64, u128)], b: &[(u64, u128)]) -> Vec<(u64, u128)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// scipy's `_pval_cvm_2samp_asymptotic`.
fn asymptotic_p_value(t: f64, nx: usize, ny: usize) -> Result<f64, StatsError> {
    let (nx_i, ny_i) = (nx as i128, ny as i128);
    let k = nx_i * ny_i;
    let n = nx_i + ny_i;
    let et = (1.0 + 1.0 / n as f64) / 6.0;
    let vt_num = (n + 1) * (4 * k * n - 3 * (nx_i * nx_i + ny_i * ny_i) - 2 * k);
    let vt = vt_num as f64 / (45 * n * n * 4 * k) as f64;
    if vt.is_nan() || vt <= 0.0 {
        return Err(StatsError::Undefined(format!(
            "the Cramér–von Mises variance is not positive for sizes {nx} and {ny}"
        )));
    }
    let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
    if tn < 0.003 {
        return Ok(1.0);
    }
    Ok((1.0 - cvm_limit_cdf(tn)).max(0.0))
}

/// CDF of the limiting (infinite-sample) Cramér–von Mises distribution, as scipy's
/// `_cdf_cvm_inf` (Csörgő & Faraway 1996, eq. 1.2):
///
/// ```text
/// F(x) = Σ_{k≥0} Γ(k+½)/(Γ(½) k!) · √(4k+1)/(π √x) · exp(−q_k) K_{1/4}(q_k),   q_k = (4k+1)²/(16x)
/// ```
///
/// (written as scipy does: `Γ(k+½)/Γ(k+1) / (π^{3/2} √x)`), summing terms until one is below
/// 1e-7 in absolute value (that term included). `K_{1/4}` is the modified Bessel function of the
/// second kind, evaluated here by the trapezoidal rule on `∫_0^∞ e^{−q cosh t} cosh(t/4) dt`
/// (about 1e-14 relative to scipy's `kv`). Returns 0 for `x ≤ 0` and NaN for NaN; as scipy notes,
/// it is not accurate when the CDF is within ~1e-7 of 1 (x > 4 or so).
pub fn cvm_limit_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return 1.0;
    }
    let mut total = 0.0;
    // ratio = Γ(k+½)/Γ(k+1), starting from Γ(½)/Γ(1) = √π.
    let mut ratio = std::f64::consts::PI.sqrt();
    let prefactor = std::f64::consts::PI.powf(1.5) * x.sqrt();
    let mut k = 0u32;
    loop {
        let y = (4 * k + 1) as f64;
        let q = y * y / (16.0 * x);
        // exp(−q) K_{1/4}(q) = exp(−2q) · (e^q K_{1/4}(q)).
        let term = ratio / prefactor * y.sqrt() * ((-2.0 * q).exp() * scaled_bessel_k_quarter(q));
        total += term;
        if term.abs() < 1e-7 || k > 10_000 {
            break;
        }
        ratio *= (k as f64 + 0.5) / (k as f64 + 1.0);
        k += 1;
    }
    total
}

/// `e^q K_{1/4}(q) = ∫_0^∞ exp(−2q sinh²(t/2)) cosh(t/4) dt` for `q > 0`, by the trapezoidal rule
/// with step `h = min(1/16, 0.5/√q)`: the integrand is analytic in the strip |Im t| < π/2 and, for
/// large q, a Gaussian of width 1/√q, so the relative error is below exp(−π²/(2h))
/// respectively exp(−2π²/(q h²)) ≈ 1e-34.
fn scaled_bessel_k_quarter(q: f64) -> f64 {
    if q > 1e300 {
        // e^q K_ν(q) → √(π/(2q)).
        return (std::f64::consts::FRAC_PI_2 / q).sqrt();
    }
    let h = (0.5 / q.sqrt()).min(1.0 / 16.0);
    let mut sum = 0.5; // the integrand at t = 0
    let mut j = 1u32;
    loop {
        let t = j as f64 * h;
        let s = (t / 2.0).sinh();
        let exponent = 2.0 * q * s * s;
        let value = (-exponent).exp() * (t / 4.0).cosh();
        sum += value;
        if exponent > 745.0 || (exponent > 1.0 && value < 1e-18 * sum) || j > 100_000 {
            break;
        }
        j += 1;
    }
    sum * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bessel_k_quarter_matches_scipy_kv() {
        // scipy.special.kv(0.25, q), scipy 1.17.1.
        let reference = [
            (1e-06, 68.1072278897349),
            (0.0001, 21.351915864398094),
            (0.001, 11.756476271934451),
            (0.01, 6.165741264139234),
            (0.1, 2.6851568718760555),
            (0.5, 0.9603163249318826),
            (1.0, 0.4307397744485814),
            (2.0, 0.11537827684084918),
            (5.0, 0.0037123027320318403),
            (10.0, 1.7833184439806395e-05),
            (20.0, 5.750002072403683e-10),
            (50.0, 3.412278887574886e-23),
            (100.0, 4.65807645150984e-45),
            (300.0, 3.7240821157308343e-132),
            (600.0, 1.355899090158334e-262),
        ];
        for (q, expected) in reference {
            let got = scaled_bessel_k_quarter(q) * (-q).exp();
            let rel = ((got - expected) / expected).abs();
            assert!(
                rel < 1e-13,
                "K_1/4({q}) = {got}, scipy {expected}, rel {rel}"
            );
        }
    }

    #[test]
    fn floor_divide_like_numpy() {
        assert_eq!(numpy_floor_divide(7.0, 2.0), 3.0);
        assert_eq!(numpy_floor_divide(-7.0, 2.0), -4.0);
        assert_eq!(numpy_floor_divide(6.0, 2.0), 3.0);
        assert_eq!(numpy_floor_divide(-1.5, 6.0), -1.0);
    }

    #[test]
    fn binomial_values() {
        assert_eq!(binomial(40, 20), Some(137_846_528_820));
        assert_eq!(binomial(5, 0), Some(1));
        assert_eq!(binomial(300, 150), None);
    }

    #[test]
    fn errors() {
        assert_eq!(
            cramervonmises_2samp(&[], &[1.0, 2.0], CvmMethod::Auto),
            Err(StatsError::EmptySample("x"))
        );
        assert!(matches!(
            cramervonmises_2samp(&[1.0], &[1.0, 2.0], CvmMethod::Auto),
            Err(StatsError::InvalidParameter(_))
        ));
        assert_eq!(
            cramervonmises_2samp(&[1.0, 2.0], &[f64::NAN, 2.0], CvmMethod::Auto),
            Err(StatsError::NotFinite("y"))
        );
        assert_eq!(
            cramervonmises_2samp(&[1.0, f64::NEG_INFINITY], &[1.0, 2.0], CvmMethod::Auto),
            Err(StatsError::NotFinite("x"))
        );
        let big: Vec<f64> = (0..200).map(f64::from).collect();
        assert!(matches!(
            cramervonmises_2samp(&big, &big, CvmMethod::Exact),
            Err(StatsError::InvalidParameter(_))
        ));
    }

    #[test]
    fn scipy_small_examples() {
        // scipy 1.17.1: cramervonmises_2samp([1,2,2,3],[2,3,3,4,5]) and ([1,2],[3,4]).
        let r = cramervonmises_2samp(
            &[1.0, 2.0, 2.0, 3.0],
            &[2.0, 3.0, 3.0, 4.0, 5.0],
            CvmMethod::Auto,
        )
        .unwrap();
        assert!((r.statistic - 0.34259259259259256).abs() < 1e-15);
        assert!((r.p_value - 0.14285714285714285).abs() < 1e-15);
        let r = cramervonmises_2samp(&[1.0, 2.0], &[3.0, 4.0], CvmMethod::Auto).unwrap();
        assert!((r.statistic - 0.375).abs() < 1e-15);
        assert!((r.p_value - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!(r.method, CvmMethod::Exact);
    }
}
