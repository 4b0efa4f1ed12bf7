//! The finite-n Kolmogorov distribution (`scipy.stats.kstwo`) and the exact one-sided Smirnov
//! distribution (`scipy.special.smirnov`).
//!
//! `kstwo(n)` is the distribution of the two-sided one-sample statistic
//! D_n = sup_t |F_n(t) − F(t)| for a sample of n points from a continuous F. ks_2samp uses its
//! survival function at n = round-half-even(n1·n2/(n1+n2)) as its large-sample two-sided p-value.
//!
//! The evaluation follows scipy (`scipy/stats/_ksstats.py`), which follows Simard & L'Ecuyer
//! (2011, "Computing the two-sided Kolmogorov–Smirnov distribution", J. Stat. Softw. 39(11)):
//!
//! * d ≤ 1/(2n) or d ≥ 1: the distribution is 0 or 1 there;
//! * n·d ≤ 1 and n·d ≥ n − 1: the closed forms of Ruben & Gambino (1982);
//! * d ≥ 0.5: 2·smirnov(n, d), exact because the two one-sided events cannot both happen;
//! * n ≤ 140: the Durbin matrix (Marsaglia–Tsang–Wang, with power-of-two rescaling) when
//!   n·d² ≤ 0.754693, Pomeranz's recursion when n·d² ≤ 4, else 2·smirnov(n, d);
//! * n > 140, survival function: 0 when n·d² ≥ 370, 2·smirnov(n, d) when n·d² ≥ 2.2;
//!   otherwise 1 − CDF with the CDF being 1 when n·d² ≥ 18, the Durbin matrix when
//!   n ≤ 100 000 and n·d^1.5 ≤ 1.4, and the Pelz–Good asymptotic series otherwise.
//!
//! Everything is computed in `f64` with explicit exponent bookkeeping; the one-sided Smirnov sum
//! uses double-double arithmetic for its bases, binomial coefficients and running sum, as scipy's
//! C++ implementation (`xsf/cephes/kolmogorov.h`) does.

use crate::StatsError;

/// The rescaling step of the matrix and Pomeranz algorithms: 2^128, 2^-128.
const E128: i32 = 128;
const P128: f64 = (1u128 << 127) as f64 * 2.0;
const M128: f64 = 1.0 / P128;
/// Stirling series coefficients B_{2j}/(2j)/(2j−1) for j = 8, …, 1 (highest degree first).
const STIRLING: [f64; 8] = [
    -3617.0 / 122_400.0,
    1.0 / 156.0,
    -691.0 / 360_360.0,
    1.0 / 1188.0,
    -1.0 / 1680.0,
    1.0 / 1260.0,
    -1.0 / 360.0,
    1.0 / 12.0,
];

fn sqrt_2pi() -> f64 {
    (2.0 * std::f64::consts::PI).sqrt()
}

/// Survival function P(D_n ≥ d) of the two-sided one-sample Kolmogorov–Smirnov statistic for a
/// sample of size `n`: `scipy.stats.kstwo.sf(d, n)`.
///
/// Errors: `n == 0` (scipy returns NaN) and a NaN `d`.
pub fn kstwo_sf(n: u64, d: f64) -> Result<f64, StatsError> {
    check(n, d)?;
    Ok(kolmogn(n, d, false))
}

/// Distribution function P(D_n ≤ d) of the two-sided one-sample Kolmogorov–Smirnov statistic
/// for a sample of size `n`: `scipy.stats.kstwo.cdf(d, n)`.
///
/// Errors: `n == 0` (scipy returns NaN) and a NaN `d`.
pub fn kstwo_cdf(n: u64, d: f64) -> Result<f64, StatsError> {
    check(n, d)?;
    Ok(kolmogn(n, d, true))
}

/// Survival function P(D⁺_n ≥ d) of the one-sided one-sample statistic
/// D⁺_n = sup_t (F_n(t) − F(t)): `scipy.special.smirnov(n, d)` (exact Birnbaum–Tingey sum, the
/// approximation exp(−(6nd+1)²/(18n)) above n = 1 000 000 as in scipy).
///
/// Errors: `n == 0`, a NaN `d`. Values of `d` outside [0, 1] are clamped (the probability is 1
/// below 0 and 0 above 1; scipy returns NaN there).
pub fn smirnov_sf(n: u64, d: f64) -> Result<f64, StatsError> {
    check(n, d)?;
    Ok(smirnov(n, d.clamp(0.0, 1.0)))
}

fn check(n: u64, d: f64) -> Result<(), StatsError> {
    if n == 0 {
        return Err(StatsError::InvalidParameter(
            "the Kolmogorov distribution needs a sample size n of at least 1".into(),
        ));
    }
    if d.is_nan() {
        return Err(StatsError::InvalidParameter(
            "the Kolmogorov–Smirnov statistic is NaN".into(),
        ));
    }
    Ok(())
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

fn select(cdf_prob: f64, sf_prob: f64, cdf: bool) -> f64 {
    clip(if cdf { cdf_prob } else { sf_prob })
}

/// log(n!/n^n) by Stirling's series with n·log(n) removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, &c| acc * x + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}

/// The CDF (`cdf == true`) or survival function of kstwo(n) at x (scipy `_kolmogn`).
pub(crate) fn kolmogn(n: u64, x: f64, cdf: bool) -> f64 {
    if x >= 1.0 {
        return select(1.0, 0.0, cdf);
    }
    if x <= 0.0 {
        return select(0.0, 1.0, cdf);
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        // Ruben–Gambino: 1/(2n) <= x <= 1/n.
        if t <= 0.5 {
            return select(0.0, 1.0, cdf);
        }
        let prob = if n <= 140 {
            let base = 2.0 * t - 1.0;
            let inv_n = 1.0 / nf;
            (1..=n).fold(1.0, |acc, i| acc * (i as f64 * inv_n * base))
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return select(prob, 1.0 - prob, cdf);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino.
        let prob = 2.0 * (1.0 - x).powf(nf);
        return select(1.0 - prob, prob, cdf);
    }
    if x >= 0.5 {
        // Exact: the two one-sided events are disjoint.
        let prob = 2.0 * smirnov(n, x);
        return select(1.0 - prob, prob, cdf);
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            let prob = durbin_mtw_cdf(n, x);
            return select(prob, 1.0 - prob, cdf);
        }
        if nxsquared <= 4.0 {
            let prob = pomeranz_cdf(n, x);
            return select(prob, 1.0 - prob, cdf);
        }
        let prob = 2.0 * smirnov(n, x);
        return select(1.0 - prob, prob, cdf);
    }
    if !cdf {
        if nxsquared >= 370.0 {
            return 0.0;
        }
        if nxsquared >= 2.2 {
            return clip(2.0 * smirnov(n, x));
        }
    }
    let cdf_prob = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        durbin_mtw_cdf(n, x)
    } else {
        pelz_good_cdf(n, x)
    };
    select(cdf_prob, 1.0 - cdf_prob, cdf)
}

/// x · 2^e without intermediate overflow or premature underflow.
pub(crate) fn ldexp(mut x: f64, mut e: i64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
        if x.is_infinite() {
            return x;
        }
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    // |e| <= 1000 here, so the factor is a normal number.
    x * 2f64.powi(e as i32)
}

/// Splits a finite non-zero x into (m, e) with x = m·2^e and 0.5 <= |m| < 1; zero, infinities
/// and NaN come back unchanged with e = 0.
pub(crate) fn frexp(x: f64) -> (f64, i64) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let (x, shift) = if x.abs() < f64::MIN_POSITIVE {
        (x * 2f64.powi(64), -64)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64;
    let mantissa = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (mantissa, exponent - 1022 + shift)
}

type Matrix = Vec<Vec<f64>>;

fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    let m = a.len();
    let mut out = vec![vec![0.0; m]; m];
    for (row_out, row_a) in out.iter_mut().zip(a) {
        for (&aik, row_b) in row_a.iter().zip(b) {
            if aik != 0.0 {
                for (o, &bkj) in row_out.iter_mut().zip(row_b) {
                    *o += aik * bkj;
                }
            }
        }
    }
    out
}

/// P(D_n <= d) by Durbin's matrix algorithm as organised by Marsaglia, Tsang & Wang (2003):
/// write d = (k − h)/n, build the (2k−1)×(2k−1) matrix H and take the (k, k) entry of
/// (n!/n^n)·H^n, rescaling by powers of two to stay within range (scipy `_kolmogn_DMTW`).
fn durbin_mtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powf(j as f64)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powf(m as f64) - 2.0 * h.powf(m as f64);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm: Matrix = vec![vec![0.0; m]; m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r][i] = w[r - (i - 1)];
        }
    }
    for (r, row) in hm.iter_mut().enumerate() {
        row[0] = v[r];
    }
    for c in 0..m {
        hm[m - 1][c] = v[m - 1 - c];
    }

    let mut power: Matrix = (0..m)
        .map(|r| (0..m).map(|c| if r == c { 1.0 } else { 0.0 }).collect())
        .collect();
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut h_expnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            power = matmul(&power, &hm);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm);
        h_expnt *= 2;
        if hm[k - 1][k - 1].abs() > P128 {
            for row in hm.iter_mut() {
                for x in row.iter_mut() {
                    *x /= P128;
                }
            }
            h_expnt += i64::from(E128);
        }
        nn /= 2;
    }

    let mut p = power[k - 1][k - 1];
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < M128 {
            p *= P128;
            expnt -= i64::from(E128);
        }
    }
    clip(ldexp(p, expnt))
}

/// The window [j1, j2] of non-zero entries in row i of Pomeranz's recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        if (i + 1) % 2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// P(D_n <= x) by Pomeranz's (1974) recursion: rows are convolutions of the previous row with
/// truncated Poisson weights; only a sliding window of each row is non-zero
/// (scipy `_kolmogn_Pomeranz`). `None` if the windows are inconsistent (never seen; the
/// caller then falls back to NaN-free 0/1 clipping through `unwrap_or`).
fn pomeranz_inner(n: u64, x: f64) -> Option<f64> {
    let nf = n as f64;
    let ni = i64::try_from(n).ok()?;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = usize::try_from(2 * (ll + 1)).ok()?;
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_over_n, two_g_over_n, one_minus_two_g_over_n) =
        (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_over_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_over_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_minus_two_g_over_n / mf;
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt: i64 = 0;
    let (mut j1, _) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    for i in 1..=(2 * ni + 1) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (nj1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let start = usize::try_from(k1 - v0s).ok()?;
            let ln2 = usize::try_from(ln2).ok()?;
            let a = v0.get(start..(start + ln2).min(npwrs))?;
            let b = pwrs.get(..ln2.min(npwrs))?;
            if a.is_empty() || b.is_empty() {
                return None;
            }
            let conv_start = usize::try_from(j1 - k1).ok()?;
            let conv_len = usize::try_from(j2 - j1 + 1).ok()?;
            if conv_len > npwrs || conv_start + conv_len > a.len() + b.len() - 1 {
                return None;
            }
            for (out, idx) in v1.iter_mut().zip(conv_start..conv_start + conv_len) {
                // Full convolution entry idx: sum over a[p]·b[idx − p].
                let lo = idx.saturating_sub(b.len() - 1);
                let hi = idx.min(a.len() - 1);
                let mut s = 0.0;
                for p in lo..=hi {
                    s += a[p] * b[idx - p];
                }
                *out = s;
            }
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < max && max < M128 {
                for x in v1.iter_mut() {
                    *x *= P128;
                }
                expnt -= i64::from(E128);
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = *v1.get(usize::try_from(ni - v1s).ok()?)?;
    for m in 1..=n {
        if ans.abs() > P128 {
            ans *= M128;
            expnt += i64::from(E128);
        }
        ans *= m as f64;
    }
    Some(ldexp(ans, expnt))
}

fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    // The windows are always consistent for 0 < x < 1; should they not be, the Durbin matrix
    // gives the same probability.
    pomeranz_inner(n, x).map_or_else(|| durbin_mtw_cdf(n, x), clip)
}

/// The Pelz–Good (1976) approximation to P(D_n <= x): the Li-Chien/Korolyuk expansion
/// K0 + K1/√n + K2/n + K3/n^1.5 in z = x√n, transformed with Jacobi theta identities into
/// series that converge for small z (scipy `_kolmogn_PelzGood`).
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let z = nf.sqrt() * x;
    let zsquared = z.powf(2.0);
    let zthree = z.powf(3.0);
    let zfour = z.powf(4.0);
    let zsix = z.powf(6.0);
    let pi2 = PI * PI;
    let pi4 = PI.powf(4.0);
    let pi6 = PI.powf(6.0);

    let qlog = -pi2 / 8.0 / zsquared;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();

    let k1a = -zsquared;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * zsix + 2.0 * zfour;
    let k2b = (2.0 * zfour - 5.0 * zsquared) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * zsquared) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * zsquared) / 64.0;
    let k3c = pi4 * (-60.0 * zsquared + 212.0 * zfour) / 16.0;
    let k3b = pi2 * (135.0 * zfour - 96.0 * zsix) / 4.0;
    let k3a = -30.0 * zsix - 90.0 * z.powf(8.0);

    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powf(4.0), m.powf(6.0));
        let qpower = q.powf((8 * kk) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in k.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let divisors = [z, 6.0 * zfour, 72.0 * z.powf(7.0), 6480.0 * z.powf(10.0)];
    for (acc, div) in k.iter_mut().zip(divisors) {
        *acc = *acc * q * sqrt_2pi() / div;
    }

    let q2 = (-pi2 / 2.0 / zsquared).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for kk in (1..=maxk).rev() {
        let ksq = (kk * kk) as f64;
        let qp = q2.powf(ksq);
        let kspi = PI * kk as f64;
        k2extra += ksq * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ksq * qp;
    }
    k[2] += k2extra * (pi2 * sqrt_2pi() / (-36.0 * zthree));
    k[3] += k3extra * (pi2 * sqrt_2pi() / (216.0 * zsix));
    for (i, acc) in k.iter_mut().enumerate() {
        *acc /= nf.powf(i as f64 / 2.0);
    }
    k.iter().sum()
}

// ---------------------------------------------------------------------------------------------
// One-sided Smirnov distribution, with a small double-double type.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Dd {
    pub(crate) hi: f64,
    pub(crate) lo: f64,
}

fn two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    Dd { hi: s, lo: err }
}

fn quick_two_sum(a: f64, b: f64) -> Dd {
    let s = a + b;
    Dd {
        hi: s,
        lo: b - (s - a),
    }
}

impl Dd {
    pub(crate) fn new(x: f64) -> Self {
        Dd { hi: x, lo: 0.0 }
    }

    /// a / b to double-double precision for exactly representable integers a, b.
    pub(crate) fn ratio(a: f64, b: f64) -> Self {
        let q = a / b;
        let r = (-q).mul_add(b, a);
        quick_two_sum(q, r / b)
    }

    pub(crate) fn add(self, o: Dd) -> Dd {
        let s = two_sum(self.hi, o.hi);
        let t = two_sum(self.lo, o.lo);
        let s = quick_two_sum(s.hi, s.lo + t.hi);
        quick_two_sum(s.hi, s.lo + t.lo)
    }

    pub(crate) fn add_f64(self, o: f64) -> Dd {
        let s = two_sum(self.hi, o);
        quick_two_sum(s.hi, s.lo + self.lo)
    }

    pub(crate) fn mul(self, o: Dd) -> Dd {
        let p = self.hi * o.hi;
        let e = self.hi.mul_add(o.hi, -p);
        quick_two_sum(p, e + (self.hi * o.lo + self.lo * o.hi))
    }

    pub(crate) fn mul_f64(self, o: f64) -> Dd {
        let p = self.hi * o;
        let e = self.hi.mul_add(o, -p);
        quick_two_sum(p, e + self.lo * o)
    }

    pub(crate) fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// Scales to a mantissa of magnitude in [0.5, 1) and an exponent.
    pub(crate) fn frexp(self) -> (Dd, i64) {
        let (_, e) = frexp(self.hi);
        let s = ldexp(1.0, -e);
        (
            Dd {
                hi: self.hi * s,
                lo: self.lo * s,
            },
            e,
        )
    }
}

/// A positive number as a double-double mantissa and a binary exponent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scaled {
    pub(crate) man: Dd,
    pub(crate) exp: i64,
}

impl Scaled {
    pub(crate) fn one() -> Self {
        Scaled {
            man: Dd::new(1.0),
            exp: 0,
        }
    }

    pub(crate) fn mul(self, o: Scaled) -> Scaled {
        let (man, e) = self.man.mul(o.man).frexp();
        Scaled {
            man,
            exp: self.exp + o.exp + e,
        }
    }

    pub(crate) fn mul_dd(self, o: Dd) -> Scaled {
        let (man, e) = self.man.mul(o).frexp();
        Scaled {
            man,
            exp: self.exp + e,
        }
    }

    pub(crate) fn to_dd(self) -> Dd {
        let hi = ldexp(self.man.hi, self.exp);
        if !hi.is_finite() || hi == 0.0 {
            return Dd::new(hi);
        }
        Dd {
            hi,
            lo: ldexp(self.man.lo, self.exp),
        }
    }
}

/// y^m for y in [0.5, 1) as a scaled number, in pieces small enough not to underflow.
fn pow_mantissa(y: f64, m: u64) -> Scaled {
    if m == 0 {
        return Scaled::one();
    }
    let lg2 = y.log2();
    if (m as f64) * lg2 >= -960.0 || lg2 == 0.0 {
        let (man, e) = Dd::new(y.powf(m as f64)).frexp();
        return Scaled { man, exp: e };
    }
    // y^chunk >= 2^-960; y^m = (y^chunk)^q · y^r.
    let chunk = ((-960.0 / lg2).floor() as u64).max(1);
    let (q, r) = (m / chunk, m % chunk);
    let (ym, e) = frexp(y.powf(chunk as f64));
    let mut out = pow_mantissa(ym, q);
    out.exp += e * q as i64;
    out.mul(pow_mantissa(y, r))
}

/// a^m for a positive double-double a: the power of the leading part from `powf`, corrected by
/// (1 + lo/hi)^m as scipy's `pow_D` does.
fn pow_scaled(a: Dd, m: u64) -> Scaled {
    if m == 0 {
        return Scaled::one();
    }
    if a.hi <= 0.0 {
        return Scaled {
            man: Dd::new(0.0),
            exp: 0,
        };
    }
    let (y, ey) = frexp(a.hi);
    let mut out = pow_mantissa(y, m);
    out.exp += ey * m as i64;
    let r = a.lo / a.hi;
    let mf = m as f64;
    let mut adj = mf * r;
    if adj.abs() > 1e-8 {
        if adj.abs() < 1e-4 {
            adj += (mf * r) * ((mf - 1.0) / 2.0 * r);
        } else {
            adj = (mf * r.ln_1p()).exp_m1();
        }
    }
    out.mul_dd(Dd::new(1.0).add_f64(adj))
}

/// a^m for a double-double a of moderate size, as f64.
fn pow_dd(a: Dd, m: u64) -> f64 {
    pow_scaled(a, m).to_dd().to_f64()
}

/// `scipy.special.smirnov(n, x)` for 0 <= x <= 1: P(D⁺_n >= x) by the Birnbaum–Tingey sum
/// x · Σ_{v=0}^{⌊n(1−x)⌋} C(n, v) (x + v/n)^{v−1} (1 − x − v/n)^{n−v}, plus scipy's special
/// cases (x <= 1/n, x >= 1 − 1/n, underflow, n > 10⁶).
pub(crate) fn smirnov(n: u64, x: f64) -> f64 {
    if n == 1 {
        return 1.0 - x;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    // floor(n·x) and its fractional part, exactly.
    let p = nf * x;
    let e = nf.mul_add(x, -p);
    let nx = quick_two_sum(p, e);
    let mut fl = nx.hi.floor();
    let mut frac = Dd {
        hi: nx.hi - fl,
        lo: nx.lo,
    };
    if frac.hi == 0.0 && frac.lo < 0.0 {
        fl -= 1.0;
        frac = Dd {
            hi: 1.0,
            lo: frac.lo,
        };
    }
    let mut alpha = quick_two_sum(frac.hi, frac.lo).hi;
    let mut nxfl = fl as u64;
    if alpha >= 1.0 {
        nxfl += 1;
        alpha = 0.0;
    }
    let alpha_zero = alpha == 0.0;
    let mut n1mxfl = n as i64 - nxfl as i64 - i64::from(!alpha_zero);
    if alpha_zero {
        n1mxfl -= 1;
    }

    if nxfl == 0 || (nxfl == 1 && alpha_zero) {
        // x <= 1/n: 1 − sf = x (1 + x)^{n−1}.
        let t = pow_dd(two_sum(1.0, x), n - 1);
        return clip(1.0 - x * t);
    }
    if -2.0 * nf * x * x < -7.083_964_185_322_641e2 {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return clip(pow_dd(two_sum(1.0, -x), n));
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powf(2.0) / 18.0 / nf;
        let sf = if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
        return clip(sf);
    }

    // scipy sums the few upper terms (alternating in sign) instead of the many lower ones when
    // n >= 10, there are at most 3 of them and x <= 0.5/√n (or a single one and x < 0.5).
    let n1mxceil = n as i64 - nxfl as i64 + i64::from(alpha_zero);
    let n_upper_terms = n as i64 - n1mxceil + 1;
    let use_upper =
        (n_upper_terms <= 1 && x < 0.5) || (n >= 10 && n_upper_terms <= 3 && x <= 0.5 / nf.sqrt());
    let (start, step, n_terms) = if use_upper {
        (n as i64, -1i64, n_upper_terms)
    } else {
        (0, 1, n1mxfl + 1)
    };
    // The v = start term: (1 + x)^{n−1} (upper) or (1 − x)^n / x (lower).
    let mut aj_sum = if use_upper {
        pow_scaled(two_sum(1.0, x), n - 1).to_dd()
    } else {
        pow_scaled(two_sum(1.0, -x), n)
            .to_dd()
            .mul(Dd::ratio(1.0, x))
    };
    let vmid = (n / 2) as i64;
    // C(n, 1) = C(n, n − 1) = n.
    let (man, e) = Dd::new(nf).frexp();
    let mut binom = Scaled { man, exp: e };
    let mut j: i64 = 1;
    while j < n_terms {
        let v = start + j * step;
        let vf = v as f64;
        // A_v = C(n, v) (x + v/n)^{v−1} (1 − x − v/n)^{n−v}, bases in double-double; the
        // second base is negative in the upper sum.
        let t1x = Dd::ratio(vf, nf).add_f64(x);
        let t2x = Dd::ratio(nf - vf, nf).add_f64(-x);
        let term = pow_scaled_signed(t1x, (v - 1) as u64)
            .mul(pow_scaled_signed(t2x, (n as i64 - v) as u64))
            .mul(binom)
            .to_dd();
        let aj = term.to_f64();
        if aj.is_finite() && aj != 0.0 {
            aj_sum = aj_sum.add(term);
        }
        if aj != 0.0 {
            if 4.0 * (n_terms - j) as f64 * aj.abs() < f64::EPSILON * aj_sum.to_f64()
                && j != n_terms - 1
            {
                break;
            }
        } else if j > vmid {
            break;
        }
        let jf = j as f64;
        binom = binom.mul_dd(Dd::ratio(nf - jf, jf + 1.0));
        j += 1;
    }
    let prob = aj_sum.mul_f64(x).to_f64();
    // The upper sum gives the CDF, the lower one the survival function.
    clip(if use_upper { 1.0 - prob } else { prob })
}

/// a^m for any sign of a: |a|^m with the sign of (−1)^m when a < 0.
fn pow_scaled_signed(a: Dd, m: u64) -> Scaled {
    if a.hi >= 0.0 {
        return pow_scaled(a, m);
    }
    let mut out = pow_scaled(
        Dd {
            hi: -a.hi,
            lo: -a.lo,
        },
        m,
    );
    if m % 2 == 1 {
        out.man = Dd {
            hi: -out.man.hi,
            lo: -out.man.lo,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_ldexp_round_trip() {
        for &x in &[1.0, 0.75, 3.0e-310, 1.5e300, -2.5] {
            let (m, e) = frexp(x);
            assert!((0.5..1.0).contains(&m.abs()), "{x}: {m}");
            assert_eq!(ldexp(m, e), x);
        }
        assert_eq!(ldexp(1.0, -1100), 0.0);
        assert_eq!(ldexp(1.0, 1100), f64::INFINITY);
    }

    #[test]
    fn edges() {
        assert_eq!(kstwo_sf(10, 0.0).unwrap(), 1.0);
        assert_eq!(kstwo_sf(10, 1.0).unwrap(), 0.0);
        assert_eq!(kstwo_sf(10, 0.04).unwrap(), 1.0);
        assert!(kstwo_sf(0, 0.5).is_err());
        assert!(kstwo_sf(3, f64::NAN).is_err());
        // n = 1: D_1 is uniform on [1/2, 1]: P(D >= d) = 2(1 − d).
        assert!((kstwo_sf(1, 0.7).unwrap() - 0.6).abs() < 1e-15);
        assert!((smirnov_sf(1, 0.3).unwrap() - 0.7).abs() < 1e-15);
    }
}
