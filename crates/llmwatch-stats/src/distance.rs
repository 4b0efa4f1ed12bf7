//! Distances between two samples from their empirical CDFs: Wasserstein-1
//! (`scipy.stats.wasserstein_distance`) and the energy distance (`scipy.stats.energy_distance`),
//! both exact, in O(N log N) for N = n_u + n_v (two sorts and one merge walk).
//!
//! With U, V the empirical CDFs of `u` (size n_u) and `v` (size n_v), both step functions, the
//! integrals are sums over the gaps between consecutive distinct pooled values t_k:
//! ∫ |U − V|^p = Σ_k |U(t_k) − V(t_k)|^p (t_{k+1} − t_k). The CDF difference is taken from integer
//! counts, |n_v·c_u − n_u·c_v| / (n_u·n_v), and the division is done once at the end.

use crate::StatsError;

/// Wasserstein-1 (earth mover's) distance between two samples with equal weights:
/// `scipy.stats.wasserstein_distance(u, v)`.
///
/// Definition (scipy): W1 = ∫ |U(t) − V(t)| dt, which equals inf over couplings of E|X − Y|.
/// It has the unit of the data (scale it, e.g. by the reference standard deviation as
/// Evidently does, for a unit-free threshold).
///
/// Errors: an empty sample, a NaN or infinite value. If the pooled range exceeds the largest
/// f64 the result is +∞.
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64, StatsError> {
    let (sum, nu, nv) = cdf_gap_sum(u, v, |d| d.abs())?;
    Ok(sum / (nu * nv))
}

/// Energy distance between two samples with equal weights: `scipy.stats.energy_distance(u, v)`.
///
/// Definition (scipy, Székely): D = (2E|X − Y| − E|X − X'| − E|Y − Y'|)^{1/2}
/// = √2 · (∫ (U(t) − V(t))² dt)^{1/2}.
///
/// Errors: an empty sample, a NaN or infinite value. If the pooled range exceeds the largest
/// f64 the result is +∞.
pub fn energy_distance(u: &[f64], v: &[f64]) -> Result<f64, StatsError> {
    let (sum, nu, nv) = cdf_gap_sum(u, v, |d| d * d)?;
    Ok(std::f64::consts::SQRT_2 * (sum / (nu * nv * nu * nv)).sqrt())
}

/// Σ_k f(n_v·c_u − n_u·c_v)·(t_{k+1} − t_k) over consecutive distinct pooled values, with
/// n_u and n_v as f64.
fn cdf_gap_sum(
    u: &[f64],
    v: &[f64],
    f: impl Fn(f64) -> f64,
) -> Result<(f64, f64, f64), StatsError> {
    let u = sorted_sample(u, "u_values")?;
    let v = sorted_sample(v, "v_values")?;
    let (nu, nv) = (u.len(), v.len());
    let (nui, nvi) = (nu as i128, nv as i128);
    let (mut i, mut j) = (0usize, 0usize);
    let mut sum = 0.0;
    let mut previous: Option<(f64, i128)> = None;
    loop {
        let t = match (u.get(i), v.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        if let Some((t_prev, num)) = previous
            && num != 0
        {
            sum += f(num as f64) * (t - t_prev);
        }
        while i < nu && u[i] == t {
            i += 1;
        }
        while j < nv && v[j] == t {
            j += 1;
        }
        previous = Some((t, nvi * i as i128 - nui * j as i128));
    }
    Ok((sum, nu as f64, nv as f64))
}

fn sorted_sample(data: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if data.is_empty() {
        return Err(StatsError::EmptySample(which));
    }
    if data.iter().any(|x| !x.is_finite()) {
        return Err(StatsError::NotFinite(which));
    }
    let mut sorted = data.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        assert_eq!(
            wasserstein_distance(&[], &[1.0]),
            Err(StatsError::EmptySample("u_values"))
        );
        assert_eq!(
            energy_distance(&[1.0], &[f64::NAN]),
            Err(StatsError::NotFinite("v_values"))
        );
        assert_eq!(
            energy_distance(&[f64::NEG_INFINITY], &[1.0]),
            Err(StatsError::NotFinite("u_values"))
        );
    }

    #[test]
    fn simple_values() {
        // scipy docs: wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert_eq!(
            wasserstein_distance(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).unwrap(),
            5.0
        );
        assert_eq!(wasserstein_distance(&[2.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
        // Two points: energy = sqrt(2 * |x - y|).
        assert!((energy_distance(&[0.0], &[2.0]).unwrap() - 2.0).abs() < 1e-15);
        // Huge range: +inf, not NaN.
        assert_eq!(
            wasserstein_distance(&[-f64::MAX, f64::MAX], &[f64::MAX]).unwrap(),
            f64::INFINITY
        );
    }
}
