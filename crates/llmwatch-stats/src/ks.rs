//! Two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp`.
//!
//! Definition (scipy): with F1, F2 the empirical CDFs of `data1` (size n1) and `data2`
//! (size n2), evaluated at every observed value,
//!
//! * two-sided: D = max_t |F1(t) − F2(t)|; H0: the two distributions are equal;
//! * `Greater`: D⁺ = max_t (F1(t) − F2(t)); H1: the CDF of data1 lies above that of data2 somewhere
//!   (data1 tends to be smaller);
//! * `Less`: D⁻ = max_t (F2(t) − F1(t)); H1: the CDF of data1 lies below that of data2 somewhere.
//!
//! D is computed from integer counts: at each value, n2·c1 − n1·c2 (c = how many values of the
//! sample are ≤ t) is compared exactly and divided once, D = |n2·c1 − n1·c2| / (n1·n2) rounded
//! once. Ties need no correction (none is applied by scipy either).
//!
//! p-values, as scipy (`method`):
//!
//! * exact: the lattice-path probability that a path from (0, 0) to (n1, n2) leaves the band
//!   |x/n1 − y/n2| < h/lcm(n1, n2), h = D·lcm. Two-sided: the alternating closed form when
//!   n1 = n2, Viehmann's "1 − p" recursion of Hodges' inside method otherwise; one-sided:
//!   ∏ (n−j)/(n+j+1) when n1 = n2, Hodges' outside count ÷ C(n1+n2, n1) otherwise. When the
//!   computation overflows or leaves [0, 1] scipy warns and switches to asymp; so does this
//!   code, and says so in [`KsResult::exact_failed`].
//! * asymp: two-sided `kstwo.sf(D, round_half_even(n1·n2/(n1+n2)))` (see [`crate::kstwo`]);
//!   one-sided Hodges (1958) eq. 5.3: exp(−2z² − 2z(m+2n)/(3√(mn(m+n)))), z = D√(mn/(m+n)),
//!   m = max(n1, n2), n = min(n1, n2).
//! * auto: exact iff max(n1, n2) <= 10 000, else asymp.

use crate::StatsError;
use crate::kstwo::{Dd, Scaled, frexp, kolmogn, ldexp};

/// Which alternative hypothesis (scipy's `alternative`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Alternative {
    /// D = max |F1 − F2|.
    #[default]
    TwoSided,
    /// D = max (F2 − F1): the CDF of data1 lies below that of data2 (data1 tends to be larger).
    Less,
    /// D = max (F1 − F2): the CDF of data1 lies above that of data2 (data1 tends to be smaller).
    Greater,
}

/// How to compute the p-value (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KsMethod {
    /// Exact iff max(n1, n2) <= 10 000, else asymptotic.
    #[default]
    Auto,
    /// Exact lattice-path probability (falls back to asymptotic when it cannot be computed,
    /// or when lcm(n1, n2) would not fit scipy's int32 limit).
    Exact,
    /// The large-sample distribution.
    Asymp,
}

/// The p-value method actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KsPValueMethod {
    Exact,
    Asymp,
}

impl KsPValueMethod {
    /// `"exact"` or `"asymp"`, scipy's names.
    pub fn as_str(self) -> &'static str {
        match self {
            KsPValueMethod::Exact => "exact",
            KsPValueMethod::Asymp => "asymp",
        }
    }
}

/// The result of [`ks_2samp`]; the fields scipy's `KstestResult` has, plus the method used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// D (two-sided), D⁺ (`Greater`) or D⁻ (`Less`), in [0, 1].
    pub statistic: f64,
    pub p_value: f64,
    /// The observed value at which the statistic is attained (scipy's `statistic_location`:
    /// the first such value in sorted(data1) followed by sorted(data2)).
    pub statistic_location: f64,
    /// +1 if F1 − F2 is positive there (or zero), −1 if negative (scipy's `statistic_sign`;
    /// always −1 for `Less`, +1 for `Greater`).
    pub statistic_sign: i8,
    /// The method that produced `p_value`.
    pub method: KsPValueMethod,
    /// An exact p-value was requested (explicitly or by `Auto`) but could not be computed, so
    /// the asymptotic one is given (scipy issues a RuntimeWarning in that case).
    pub exact_failed: bool,
}

/// Two-sample Kolmogorov–Smirnov test: `scipy.stats.ks_2samp(data1, data2, alternative, method)`.
/// See the module documentation for the definitions.
///
/// Errors: an empty sample, a NaN or infinite value, and the one input for which scipy returns
/// a NaN p-value: `Asymp` two-sided with n1 = n2 = 1 (kstwo with n = round(0.5) = 0).
pub fn ks_2samp(
    data1: &[f64],
    data2: &[f64],
    alternative: Alternative,
    method: KsMethod,
) -> Result<KsResult, StatsError> {
    let a = sorted_sample(data1, "data1")?;
    let b = sorted_sample(data2, "data2")?;
    let stat = statistic(&a, &b, alternative);
    let n1 = a.len() as u64;
    let n2 = b.len() as u64;
    let g = gcd(n1, n2);
    let h = stat.numerator / u128::from(g);
    let lcm = u128::from(n1 / g) * u128::from(n2);
    let d = h as f64 / lcm as f64;
    let p = p_value(d, h, n1, n2, alternative, method)?;
    Ok(KsResult {
        statistic: d,
        p_value: p.p_value,
        statistic_location: stat.location,
        statistic_sign: stat.sign,
        method: p.method,
        exact_failed: p.exact_failed,
    })
}

/// The p-value part of a Kolmogorov–Smirnov result (see [`ks_2samp_p_value`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsPValue {
    /// The statistic used: for the exact method scipy's rounding h/lcm(n1, n2),
    /// h = round(D·lcm); otherwise D as given.
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsPValueMethod,
    pub exact_failed: bool,
}

/// The p-value of a two-sample statistic D for sample sizes n1, n2, as `ks_2samp` computes it
/// (for windows whose D was obtained some other way, e.g. merged counts).
///
/// Errors: n1 or n2 zero, D NaN or outside [0, 1], and `Asymp` two-sided with n1 = n2 = 1.
pub fn ks_2samp_p_value(
    statistic: f64,
    n1: u64,
    n2: u64,
    alternative: Alternative,
    method: KsMethod,
) -> Result<KsPValue, StatsError> {
    if n1 == 0 {
        return Err(StatsError::EmptySample("data1"));
    }
    if n2 == 0 {
        return Err(StatsError::EmptySample("data2"));
    }
    if !(0.0..=1.0).contains(&statistic) {
        return Err(StatsError::InvalidParameter(format!(
            "a Kolmogorov–Smirnov statistic lies in [0, 1], got {statistic}"
        )));
    }
    let g = gcd(n1, n2);
    let lcm = u128::from(n1 / g) * u128::from(n2);
    let h = (statistic * lcm as f64).round() as u128;
    let mut p = p_value(statistic, h, n1, n2, alternative, method)?;
    if p.method == KsPValueMethod::Exact || p.exact_failed {
        p.statistic = h as f64 / lcm as f64;
    }
    Ok(p)
}

fn sorted_sample(data: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if data.is_empty() {
        return Err(StatsError::EmptySample(which));
    }
    if data.iter().any(|x| !x.is_finite()) {
        return Err(StatsError::NotFinite(which));
    }
    let mut v = data.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    Ok(v)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

struct Statistic {
    /// |n2·c1 − n1·c2| at the chosen point.
    numerator: u128,
    location: f64,
    sign: i8,
}

/// F1 − F2 at one distinct pooled value.
struct Point {
    value: f64,
    float: f64,
    num: i128,
    in_a: bool,
    in_b: bool,
}

/// One extreme of F1 − F2 as scipy's argmax/argmin over sorted(data1) ++ sorted(data2) finds it.
struct Extreme {
    /// c1/n1 − c2/n2 evaluated in floating point exactly as numpy does, used only to break ties
    /// the way numpy's argmax does.
    float: f64,
    /// First value attaining it that occurs in data1, with its exact numerator n2·c1 − n1·c2.
    in_a: Option<(f64, i128)>,
    /// First value attaining it that occurs in data2.
    in_b: Option<(f64, i128)>,
}

impl Extreme {
    fn new(init: f64) -> Self {
        Extreme {
            float: init,
            in_a: None,
            in_b: None,
        }
    }

    /// Considers one distinct value; `maximum` selects argmax (else argmin) semantics.
    fn offer(&mut self, maximum: bool, p: &Point) {
        let better = if maximum {
            p.float > self.float
        } else {
            p.float < self.float
        };
        if better {
            self.float = p.float;
            self.in_a = None;
            self.in_b = None;
        }
        if better || p.float == self.float {
            if p.in_a && self.in_a.is_none() {
                self.in_a = Some((p.value, p.num));
            }
            if p.in_b && self.in_b.is_none() {
                self.in_b = Some((p.value, p.num));
            }
        }
    }

    /// numpy's argmax returns the first index: data1's part of the concatenation comes first.
    fn pick(&self) -> (f64, i128) {
        self.in_a.or(self.in_b).unwrap_or((f64::NAN, 0))
    }
}

fn statistic(a: &[f64], b: &[f64], alternative: Alternative) -> Statistic {
    let (n1, n2) = (a.len(), b.len());
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (n1i, n2i) = (n1 as i128, n2 as i128);
    let mut max = Extreme::new(f64::NEG_INFINITY);
    let mut min = Extreme::new(f64::INFINITY);
    let (mut i, mut j) = (0usize, 0usize);
    while i < n1 || j < n2 {
        let value = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        let in_a = i < n1 && a[i] == value;
        let in_b = j < n2 && b[j] == value;
        while i < n1 && a[i] == value {
            i += 1;
        }
        while j < n2 && b[j] == value {
            j += 1;
        }
        let point = Point {
            value,
            float: i as f64 / n1f - j as f64 / n2f,
            num: n2i * i as i128 - n1i * j as i128,
            in_a,
            in_b,
        };
        max.offer(true, &point);
        min.offer(false, &point);
    }
    let (max_loc, max_num) = max.pick();
    let (min_loc, min_num) = min.pick();
    // scipy: minS = clip(−min, 0, 1), maxS = max; two-sided takes minS only if strictly larger.
    let min_s = (-min.float).clamp(0.0, 1.0);
    let use_min = match alternative {
        Alternative::Less => true,
        Alternative::Greater => false,
        Alternative::TwoSided => min_s > max.float,
    };
    if use_min {
        Statistic {
            numerator: (-min_num).max(0) as u128,
            location: min_loc,
            sign: -1,
        }
    } else {
        Statistic {
            numerator: max_num.max(0) as u128,
            location: max_loc,
            sign: 1,
        }
    }
}

/// scipy's `MAX_AUTO_N`.
const MAX_AUTO_N: u64 = 10_000;

fn p_value(
    d: f64,
    h: u128,
    n1: u64,
    n2: u64,
    alternative: Alternative,
    method: KsMethod,
) -> Result<KsPValue, StatsError> {
    let g = gcd(n1, n2);
    let (n1g, n2g) = (n1 / g, n2 / g);
    let mut exact_failed = false;
    let exact = match method {
        KsMethod::Auto => n1.max(n2) <= MAX_AUTO_N,
        KsMethod::Exact => {
            // scipy: if lcm(n1, n2) is too big for int32, switch to asymp (with a warning).
            let ok = (n1g as f64) < f64::from(i32::MAX) / n2g as f64;
            exact_failed = !ok;
            ok
        }
        KsMethod::Asymp => false,
    };
    if exact {
        if h == 0 {
            return Ok(KsPValue {
                statistic: d,
                p_value: 1.0,
                method: KsPValueMethod::Exact,
                exact_failed: false,
            });
        }
        match exact_p(n1, n2, g, h, alternative) {
            Some(p) => {
                return Ok(KsPValue {
                    statistic: d,
                    p_value: p,
                    method: KsPValueMethod::Exact,
                    exact_failed: false,
                });
            }
            None => exact_failed = true,
        }
    }
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    let p = if alternative == Alternative::TwoSided {
        let rounded = en.round_ties_even();
        if rounded < 1.0 {
            return Err(StatsError::Undefined(
                "the asymptotic two-sided Kolmogorov–Smirnov p-value needs \
                 round(n1·n2/(n1+n2)) >= 1, which fails for two samples of size 1 \
                 (scipy returns NaN)"
                    .into(),
            ));
        }
        kolmogn(rounded as u64, d, false)
    } else {
        let z = en.sqrt() * d;
        let expt = -2.0 * (z * z) - 2.0 * z * (m + 2.0 * n) / (m * n * (m + n)).sqrt() / 3.0;
        expt.exp()
    };
    Ok(KsPValue {
        statistic: d,
        p_value: p.clamp(0.0, 1.0),
        method: KsPValueMethod::Asymp,
        exact_failed,
    })
}

/// scipy `_attempt_exact_2kssamp` for h >= 1: `None` where scipy reports failure.
fn exact_p(n1: u64, n2: u64, g: u64, h: u128, alternative: Alternative) -> Option<f64> {
    let h = u64::try_from(h).ok()?;
    let prob = if alternative == Alternative::TwoSided {
        if n1 == n2 {
            prob_outside_square(n1, h)
        } else {
            outer_prob_inside(n1, n2, g, h)?
        }
    } else if n1 == n2 {
        // binom(2n, n−h)/binom(2n, n) = ∏_{j<h} (n − j)/(n + j + 1).
        let nf = n1 as f64;
        (0..h).fold(1.0, |acc, j| {
            acc * ((nf - j as f64) / (nf + j as f64 + 1.0))
        })
    } else {
        let table = Factorials::new(n1 + n2);
        let total = table.binom(n1 + n2, n1.min(n2));
        if !total.is_finite() {
            return None;
        }
        let paths = count_paths_outside(n1, n2, g, h, &table)?;
        if paths > total {
            return None;
        }
        paths / total
    };
    (0.0..=1.0).contains(&prob).then_some(prob)
}

/// Pr(D_{n,n} >= h/n) = 2·Σ_k (−1)^{k−1} C(2n, n−kh)/C(2n, n), evaluated as scipy does with a
/// Horner-like nesting of the ratios to avoid cancellation.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let nf = n as f64;
    let mut p = 0.0;
    let kmax = (n as f64 / h as f64).floor() as u64;
    for k in (0..=kmax).rev() {
        let kh = (k * h) as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let jf = j as f64;
            p1 = (nf - kh - jf) * p1 / (nf + kh + jf + 1.0);
        }
        p = p1 * (1.0 - p);
    }
    2.0 * p
}

/// The proportion of lattice paths from (0, 0) to (m, n) that do not stay strictly inside
/// |x/m − y/n| < h/lcm(m, n), by Viehmann's (2021) recursion for 1 − p inside Hodges' method
/// (scipy `_compute_outer_prob_inside_method`). `None` only if an index leaves the working
/// vector, which scipy's algorithm never does.
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (
        i64::try_from(m).ok()?,
        i64::try_from(n).ok()?,
        i64::try_from(g).ok()?,
        i64::try_from(h).ok()?,
    );
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = usize::try_from((2 * maxj + 2).min(n + 1)).ok()?;
    let mut a = vec![1.0f64; len_a];
    for x in a.get_mut(0..usize::try_from(maxj).ok()?)? {
        *x = 0.0;
    }
    for i in 1..=m {
        let lastminj = minj;
        let lastlen = curlen;
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return Some(1.0);
        }
        let fi = i as f64;
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let src = *a.get(usize::try_from(jj + minj - lastminj).ok()?)?;
            val = (src * fi + val * j) / (fi + j);
            *a.get_mut(usize::try_from(jj).ok()?)? = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = usize::try_from(maxj - minj).ok()?;
            let end = usize::try_from(maxj - minj + (lastlen - curlen))
                .ok()?
                .min(len_a);
            if start < end {
                a[start..end].fill(1.0);
            }
        }
    }
    a.get(usize::try_from(maxj - minj - 1).ok()?).copied()
}

/// Binomial coefficients for the lattice-path count: factorials up to N as double-double
/// mantissas with binary exponents (accurate to a few units in the last place, no overflow),
/// or, above a million, products of k ratios (only reachable with a small second sample, since
/// C(N, n) must stay finite).
struct Factorials {
    table: Option<Vec<Scaled>>,
}

/// The largest N for which the factorial table is built (24 MB).
const FACTORIAL_TABLE_MAX: u64 = 1_000_000;

impl Factorials {
    fn new(max: u64) -> Self {
        if max > FACTORIAL_TABLE_MAX {
            return Factorials { table: None };
        }
        let mut table = Vec::with_capacity(max as usize + 1);
        let mut f = Scaled::one();
        table.push(f);
        for k in 1..=max {
            f = f.mul_dd(Dd::new(k as f64));
            table.push(f);
        }
        Factorials { table: Some(table) }
    }

    /// C(n, k) as f64 (inf when it overflows), the way `scipy.special.binom` evaluates it for
    /// small k (the product loop, bit for bit), else from the factorial table (or the product
    /// of k ratios beyond it).
    fn binom(&self, n: u64, k: u64) -> f64 {
        if k > n {
            return 0.0;
        }
        let nf = n as f64;
        let mut kx = k as f64;
        if kx > nf / 2.0 && nf > 0.0 {
            kx = nf - kx;
        }
        if kx < 20.0 {
            let mut num = 1.0f64;
            let mut den = 1.0f64;
            for i in 1..=(kx as u64) {
                num *= i as f64 + nf - kx;
                den *= i as f64;
                if num.abs() > 1e50 {
                    num /= den;
                    den = 1.0;
                }
            }
            return num / den;
        }
        let k = kx as u64;
        let entries = self.table.as_ref().and_then(|table| {
            Some((
                table.get(usize::try_from(n).ok()?)?,
                table.get(usize::try_from(k).ok()?)?,
                table.get(usize::try_from(n - k).ok()?)?,
            ))
        });
        if let Some((fnn, fk, fnk)) = entries {
            let man = fnn.man.to_f64() / (fk.man.to_f64() * fnk.man.to_f64());
            let (man, e) = frexp(man);
            return ldexp(man, e + fnn.exp - fk.exp - fnk.exp);
        }
        let scaled = (1..=k).fold(Scaled::one(), |acc, i| {
            acc.mul_dd(Dd::ratio((n - k + i) as f64, i as f64))
        });
        scaled.to_dd().to_f64()
    }
}

/// The number of lattice paths from (0, 0) to (m, n) that reach m·y <= n·x − h·g somewhere
/// (Hodges 1958 after Drion/Gnedenko/Korolyuk; scipy `_count_paths_outside_method`), in
/// floating point. `None` where scipy's floating-point checks would raise.
fn count_paths_outside(m: u64, n: u64, g: u64, h: u64, table: &Factorials) -> Option<f64> {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    // lxj = n + (mg − h) // mg with Python's floor division.
    let lxj = i128::from(n) + (i128::from(mg) - i128::from(h)).div_euclid(i128::from(mg));
    if lxj <= 0 {
        return Some(table.binom(m + n, n));
    }
    let lxj = usize::try_from(lxj).ok()?;
    let xj: Vec<u64> = (0..lxj as u64).map(|j| (h + mg * j).div_ceil(ng)).collect();
    let mut b = vec![0.0f64; lxj];
    b[0] = 1.0;
    for j in 1..lxj {
        let ju = j as u64;
        let mut bj = table.binom(xj[j] + ju, ju);
        for i in 0..j {
            let iu = i as u64;
            let bin = table.binom((xj[j] + ju).checked_sub(xj[i] + iu)?, ju - iu);
            bj -= bin * b[i];
        }
        if !bj.is_finite() {
            return None;
        }
        b[j] = bj;
    }
    let mut num_paths = 0.0;
    for (j, &bj) in b.iter().enumerate() {
        let ju = j as u64;
        let rest = n.checked_sub(ju)?;
        let bin = table.binom(m.checked_sub(xj[j])? + rest, rest);
        num_paths += bj * bin;
    }
    num_paths.is_finite().then_some(num_paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        let a = [1.0, 2.0];
        assert_eq!(
            ks_2samp(&[], &a, Alternative::TwoSided, KsMethod::Auto),
            Err(StatsError::EmptySample("data1"))
        );
        assert_eq!(
            ks_2samp(&a, &[], Alternative::TwoSided, KsMethod::Auto),
            Err(StatsError::EmptySample("data2"))
        );
        assert_eq!(
            ks_2samp(&[f64::NAN], &a, Alternative::TwoSided, KsMethod::Auto),
            Err(StatsError::NotFinite("data1"))
        );
        assert_eq!(
            ks_2samp(&a, &[f64::INFINITY], Alternative::Less, KsMethod::Auto),
            Err(StatsError::NotFinite("data2"))
        );
        assert!(matches!(
            ks_2samp(&[1.0], &[2.0], Alternative::TwoSided, KsMethod::Asymp),
            Err(StatsError::Undefined(_))
        ));
        assert!(ks_2samp_p_value(1.5, 3, 4, Alternative::TwoSided, KsMethod::Auto).is_err());
        assert!(ks_2samp_p_value(f64::NAN, 3, 4, Alternative::TwoSided, KsMethod::Auto).is_err());
        assert!(ks_2samp_p_value(0.5, 0, 4, Alternative::TwoSided, KsMethod::Auto).is_err());
    }

    #[test]
    fn identical_samples() {
        let a = [3.0, 1.0, 2.0, 2.0];
        for alt in [
            Alternative::TwoSided,
            Alternative::Less,
            Alternative::Greater,
        ] {
            for method in [KsMethod::Auto, KsMethod::Exact, KsMethod::Asymp] {
                let r = ks_2samp(&a, &a, alt, method).unwrap();
                assert_eq!(r.statistic, 0.0);
                assert_eq!(r.p_value, 1.0);
            }
        }
    }

    #[test]
    fn exact_binomial_small_k_matches_integer() {
        let t = Factorials::new(60);
        assert_eq!(t.binom(10, 3), 120.0);
        assert_eq!(t.binom(40, 20), 137_846_528_820.0);
        let exact = 118_264_581_564_861_424u64 as f64; // C(60, 30)
        assert!((t.binom(60, 30) / exact - 1.0).abs() < 1e-15);
        let products = Factorials { table: None };
        assert!((products.binom(60, 30) / exact - 1.0).abs() < 1e-15);
        assert_eq!(products.binom(40, 20), 137_846_528_820.0);
        assert_eq!(Factorials::new(3000).binom(3000, 1500), f64::INFINITY);
        assert_eq!(t.binom(3000, 1500), f64::INFINITY);
    }

    #[test]
    fn p_value_from_statistic_agrees_with_samples() {
        let a: Vec<f64> = (0..37).map(|i| f64::from(i) * 0.37 % 5.0).collect();
        let b: Vec<f64> = (0..23).map(|i| f64::from(i) * 0.61 % 5.5 + 0.4).collect();
        for alt in [
            Alternative::TwoSided,
            Alternative::Less,
            Alternative::Greater,
        ] {
            for method in [KsMethod::Auto, KsMethod::Exact, KsMethod::Asymp] {
                let r = ks_2samp(&a, &b, alt, method).unwrap();
                let p = ks_2samp_p_value(r.statistic, 37, 23, alt, method).unwrap();
                assert_eq!(p.statistic, r.statistic);
                assert_eq!(p.p_value, r.p_value);
                assert_eq!(p.method, r.method);
            }
        }
    }

    #[test]
    fn exact_falls_back_when_lcm_exceeds_int32() {
        // lcm(50 000, 49 999) ≈ 2.5e9 > 2^31 − 1: scipy switches to asymp with a warning.
        let p =
            ks_2samp_p_value(0.01, 50_000, 49_999, Alternative::TwoSided, KsMethod::Exact).unwrap();
        assert_eq!(p.method, KsPValueMethod::Asymp);
        assert!(p.exact_failed);
        let en = (50_000.0f64 * 49_999.0 / 99_999.0).round_ties_even() as u64;
        assert_eq!(p.p_value, crate::kstwo::kstwo_sf(en, 0.01).unwrap());
        // Auto with max(n1, n2) > 10 000 is asymptotic without any failure.
        let p = ks_2samp_p_value(0.01, 10_001, 5, Alternative::Less, KsMethod::Auto).unwrap();
        assert_eq!(p.method, KsPValueMethod::Asymp);
        assert!(!p.exact_failed);
    }

    #[test]
    fn one_sided_exact_with_a_huge_first_sample() {
        // C(2 000 020, 20) is finite, so the exact count runs (without a 2-million-entry table).
        let p =
            ks_2samp_p_value(0.3, 2_000_000, 20, Alternative::Greater, KsMethod::Exact).unwrap();
        assert_eq!(p.method, KsPValueMethod::Exact);
        // Hodges' asymptotic value is close for such unbalanced sizes.
        let asymp =
            ks_2samp_p_value(0.3, 2_000_000, 20, Alternative::Greater, KsMethod::Asymp).unwrap();
        assert!((p.p_value - asymp.p_value).abs() < 0.02, "{p:?} {asymp:?}");
    }

    #[test]
    fn gcd_works() {
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(gcd(7, 1), 1);
    }
}
