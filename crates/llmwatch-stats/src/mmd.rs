//! Maximum mean discrepancy (MMD²) between two samples of vectors with the Gaussian RBF kernel
//! `k(a, b) = exp(−‖a − b‖² / (2σ²))`.
//!
//! With `x_1..x_m`, `y_1..y_n`:
//!
//! ```text
//! biased (V-statistic):   MMD²_b = 1/m² Σ_ij k(x_i,x_j) + 1/n² Σ_ij k(y_i,y_j) − 2/(mn) Σ_ij k(x_i,y_j)
//! unbiased (U-statistic): MMD²_u = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(n(n−1)) − 2/(mn) Σ_ij k(x_i,y_j)
//! ```
//!
//! (`MMD²_u` can be slightly negative.) Bandwidth: given, or the pooled median heuristic
//! [`median_heuristic_sigma`]: `σ = sqrt(med / 2)` where `med` is the median (numpy's: the mean of
//! the two middle values for an even count) of the squared euclidean distances `‖z_i − z_j‖²` over
//! all pairs `i < j` of the pooled sample `z = x ∪ y`, so that `2σ² = med` and
//! `k = exp(−d²/med)` (the Alibi Detect recipe, applied to the pooled sample instead of the
//! reference only).
//!
//! The permutation test ([`mmd2_permutation_test`]) pools the samples, and for `b = 1..B`
//! shuffles the pooled index list in place with [`SplitMix64::shuffle`] seeded once with `seed`
//! (each shuffle continues from the previous order and generator state), takes the first `m`
//! indices as x and the rest as y, and recomputes the chosen estimate with the same σ (the
//! pooled median is permutation-invariant). `p = (1 + #{b : MMD²_b ≥ MMD²_obs}) / (1 + B)`.
//! Time O((m+n)² (d + B)), memory O((m+n)²) for the kernel matrix.

use serde::{Deserialize, Serialize};

use crate::StatsError;
use crate::summary::SplitMix64;

/// How σ is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub enum Bandwidth {
    /// `σ = sqrt(median pooled pairwise squared distance / 2)`; see [`median_heuristic_sigma`].
    #[default]
    MedianHeuristic,
    /// A given σ (> 0, finite).
    Sigma(f64),
}

/// Which MMD² estimate a permutation test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MmdEstimator {
    /// The U-statistic (diagonals dropped).
    #[default]
    Unbiased,
    /// The V-statistic.
    Biased,
}

/// Both estimates and the σ used ([`mmd2_rbf`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mmd2 {
    /// The U-statistic estimate of MMD².
    pub unbiased: f64,
    /// The V-statistic estimate of MMD².
    pub biased: f64,
    /// The kernel bandwidth σ.
    pub sigma: f64,
}

/// Result of [`mmd2_permutation_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MmdTest {
    /// The observed estimate (of the chosen estimator).
    pub statistic: f64,
    /// `(1 + #{MMD²_b ≥ statistic}) / (1 + permutations)`.
    pub p_value: f64,
    /// The kernel bandwidth σ.
    pub sigma: f64,
    /// The estimator used.
    pub estimator: MmdEstimator,
    /// The number of permutations B.
    pub permutations: usize,
}

/// Pooled vectors after validation: row-major, `dim` columns.
struct Pooled {
    data: Vec<f64>,
    dim: usize,
    m: usize,
    n: usize,
}

fn pool<V: AsRef<[f64]>>(x: &[V], y: &[V]) -> Result<Pooled, StatsError> {
    if x.len() < 2 {
        return if x.is_empty() {
            Err(StatsError::EmptySample("x"))
        } else {
            Err(StatsError::InvalidParameter(
                "MMD² needs at least two vectors in x".to_string(),
            ))
        };
    }
    if y.len() < 2 {
        return if y.is_empty() {
            Err(StatsError::EmptySample("y"))
        } else {
            Err(StatsError::InvalidParameter(
                "MMD² needs at least two vectors in y".to_string(),
            ))
        };
    }
    let dim = x[0].as_ref().len();
    if dim == 0 {
        return Err(StatsError::InvalidParameter(
            "MMD² needs vectors with at least one dimension".to_string(),
        ));
    }
    let mut data = Vec::with_capacity((x.len() + y.len()) * dim);
    for (which, sample) in [("x", x), ("y", y)] {
        for v in sample {
            let v = v.as_ref();
            if v.len() != dim {
                return Err(StatsError::DimensionMismatch {
                    expected: dim,
                    found: v.len(),
                });
            }
            if v.iter().any(|c| !c.is_finite()) {
                return Err(StatsError::NotFinite(which));
            }
            data.extend_from_slice(v);
        }
    }
    Ok(Pooled {
        data,
        dim,
        m: x.len(),
        n: y.len(),
    })
}

impl Pooled {
    fn len(&self) -> usize {
        self.m + self.n
    }

    /// Squared distances for pairs i < j, packed row by row.
    fn pairwise_squared(&self) -> Vec<f64> {
        let total = self.len();
        let mut out = Vec::with_capacity(total * (total - 1) / 2);
        for i in 0..total {
            let a = &self.data[i * self.dim..(i + 1) * self.dim];
            for j in i + 1..total {
                let b = &self.data[j * self.dim..(j + 1) * self.dim];
                out.push(a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum());
            }
        }
        out
    }
}

/// numpy's median of a non-empty slice (reorders it).
fn median(values: &mut [f64]) -> f64 {
    let len = values.len();
    let mid = len / 2;
    let (_, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if len % 2 == 1 {
        upper
    } else {
        let lower = values[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

fn sigma_from_squared(squared: &mut [f64]) -> Result<f64, StatsError> {
    let med = median(squared);
    if !med.is_finite() {
        return Err(StatsError::Undefined(
            "the median pairwise squared distance overflows: rescale the vectors".to_string(),
        ));
    }
    if med <= 0.0 {
        return Err(StatsError::Undefined(
            "the median pairwise distance is 0 (mostly identical vectors): give a bandwidth"
                .to_string(),
        ));
    }
    Ok((med / 2.0).sqrt())
}

/// The pooled median heuristic: `σ = sqrt(median{‖z_i − z_j‖² : i < j} / 2)` over `z = x ∪ y`
/// (numpy median). Errors as [`mmd2_rbf`], and `Undefined` when that median is 0.
pub fn median_heuristic_sigma<V: AsRef<[f64]>>(x: &[V], y: &[V]) -> Result<f64, StatsError> {
    let pooled = pool(x, y)?;
    sigma_from_squared(&mut pooled.pairwise_squared())
}

/// The median heuristic over distinct pairs: `σ = sqrt(median{‖z_i − z_j‖² > 0 : i < j} / 2)`
/// over `z = x ∪ y`, for samples where many vectors are identical (a deterministic model asked
/// the same prompt), whose plain median is 0. `Ok(None)` when every vector is the same (there is
/// no difference to test); errors as [`mmd2_rbf`] otherwise.
pub fn distinct_median_heuristic_sigma<V: AsRef<[f64]>>(
    x: &[V],
    y: &[V],
) -> Result<Option<f64>, StatsError> {
    let pooled = pool(x, y)?;
    let mut squared: Vec<f64> = pooled
        .pairwise_squared()
        .into_iter()
        .filter(|d| *d > 0.0)
        .collect();
    if squared.is_empty() {
        return Ok(None);
    }
    sigma_from_squared(&mut squared).map(Some)
}

/// Kernel matrix entries for pairs i < j, with the σ resolved.
fn kernel(pooled: &Pooled, bandwidth: Bandwidth) -> Result<(Vec<f64>, f64), StatsError> {
    let mut squared = pooled.pairwise_squared();
    let sigma = match bandwidth {
        Bandwidth::Sigma(s) if s.is_finite() && s > 0.0 => s,
        Bandwidth::Sigma(s) => {
            return Err(StatsError::InvalidParameter(format!(
                "the RBF bandwidth must be finite and > 0, got {s}"
            )));
        }
        Bandwidth::MedianHeuristic => sigma_from_squared(&mut squared.clone())?,
    };
    let two_sigma_sq = 2.0 * sigma * sigma;
    for d in squared.iter_mut() {
        *d = (-*d / two_sigma_sq).exp();
    }
    Ok((squared, sigma))
}

/// Sums of the kernel over pairs i < j within x, within y, and across, for a labelling
/// (`in_x[i]`), then both estimates.
fn estimates(k: &[f64], in_x: &[bool], m: usize, n: usize) -> (f64, f64) {
    let total = in_x.len();
    let mut sums = [0.0f64; 3]; // [both y, mixed, both x]
    let mut idx = 0;
    for i in 0..total {
        let li = usize::from(in_x[i]);
        for &xj in &in_x[i + 1..] {
            sums[li + usize::from(xj)] += k[idx];
            idx += 1;
        }
    }
    let (sxx, sxy, syy) = (sums[2], sums[1], sums[0]);
    let (mf, nf) = (m as f64, n as f64);
    let cross = 2.0 * sxy / (mf * nf);
    let unbiased = 2.0 * sxx / (mf * (mf - 1.0)) + 2.0 * syy / (nf * (nf - 1.0)) - cross;
    let biased = (2.0 * sxx + mf) / (mf * mf) + (2.0 * syy + nf) / (nf * nf) - cross;
    (unbiased, biased)
}

/// Biased and unbiased MMD² with the RBF kernel (definitions in the [module documentation](self)).
///
/// `x` and `y` are lists of vectors of one common dimension ≥ 1 (e.g. `&[Vec<f64>]` or
/// `&[&[f64]]`; for scalars use one-element vectors). Errors: fewer than two vectors in a sample,
/// mismatched dimensions, NaN/infinite components, a non-positive σ, or a zero median distance.
pub fn mmd2_rbf<V: AsRef<[f64]>>(
    x: &[V],
    y: &[V],
    bandwidth: Bandwidth,
) -> Result<Mmd2, StatsError> {
    let pooled = pool(x, y)?;
    let (k, sigma) = kernel(&pooled, bandwidth)?;
    let labels: Vec<bool> = (0..pooled.len()).map(|i| i < pooled.m).collect();
    let (unbiased, biased) = estimates(&k, &labels, pooled.m, pooled.n);
    Ok(Mmd2 {
        unbiased,
        biased,
        sigma,
    })
}

/// Permutation test of equal distributions with the MMD² estimate `estimator` (procedure and
/// RNG in the [module documentation](self)). `permutations` must be ≥ 1; other errors as
/// [`mmd2_rbf`]. Deterministic for a given seed on every platform.
pub fn mmd2_permutation_test<V: AsRef<[f64]>>(
    x: &[V],
    y: &[V],
    bandwidth: Bandwidth,
    estimator: MmdEstimator,
    permutations: usize,
    seed: u64,
) -> Result<MmdTest, StatsError> {
    if permutations == 0 {
        return Err(StatsError::InvalidParameter(
            "a permutation test needs at least one permutation".to_string(),
        ));
    }
    let pooled = pool(x, y)?;
    let (k, sigma) = kernel(&pooled, bandwidth)?;
    let total = pooled.len();
    let pick = |pair: (f64, f64)| match estimator {
        MmdEstimator::Unbiased => pair.0,
        MmdEstimator::Biased => pair.1,
    };
    let mut labels: Vec<bool> = (0..total).map(|i| i < pooled.m).collect();
    let statistic = pick(estimates(&k, &labels, pooled.m, pooled.n));
    let mut order: Vec<usize> = (0..total).collect();
    let mut rng = SplitMix64::new(seed);
    let mut at_least = 0usize;
    for _ in 0..permutations {
        rng.shuffle(&mut order);
        labels.iter_mut().for_each(|l| *l = false);
        for &i in &order[..pooled.m] {
            labels[i] = true;
        }
        if pick(estimates(&k, &labels, pooled.m, pooled.n)) >= statistic {
            at_least += 1;
        }
    }
    let p_value = (1 + at_least) as f64 / (1 + permutations) as f64;
    Ok(MmdTest {
        statistic,
        p_value,
        sigma,
        estimator,
        permutations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_pairs_median_ignores_identical_vectors() {
        let a = vec![0.0, 0.0];
        let b = vec![3.0, 4.0];
        let c = vec![0.0, 1.0];
        let x = vec![a.clone(), a.clone(), b.clone()];
        let y = vec![a.clone(), c.clone()];
        // Pairs: a a a b c → distinct-pair squared distances 25, 25, 1, 25, 1, 1, 18 (a–a
        // pairs dropped); median 18 → σ = 3.
        assert_eq!(distinct_median_heuristic_sigma(&x, &y), Ok(Some(3.0)));
        // Mostly identical: the plain median is 0, the distinct-pairs one is not.
        let same = [a.clone(), a.clone(), a.clone()];
        let one_off = [a.clone(), b.clone()];
        assert!(median_heuristic_sigma(&same, &one_off).is_err());
        assert_eq!(
            distinct_median_heuristic_sigma(&same, &one_off),
            Ok(Some((25.0f64 / 2.0).sqrt()))
        );
        assert_eq!(
            distinct_median_heuristic_sigma(&same, &[a.clone(), a.clone()]),
            Ok(None)
        );
    }

    #[test]
    fn errors() {
        let two = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        let empty: Vec<Vec<f64>> = vec![];
        assert_eq!(
            mmd2_rbf(&empty, &two, Bandwidth::MedianHeuristic),
            Err(StatsError::EmptySample("x"))
        );
        assert_eq!(
            mmd2_rbf(&two, &empty, Bandwidth::MedianHeuristic),
            Err(StatsError::EmptySample("y"))
        );
        assert!(matches!(
            mmd2_rbf(&two[..1], &two, Bandwidth::MedianHeuristic),
            Err(StatsError::InvalidParameter(_))
        ));
        let ragged = vec![vec![0.0, 1.0], vec![1.0]];
        assert_eq!(
            mmd2_rbf(&two, &ragged, Bandwidth::MedianHeuristic),
            Err(StatsError::DimensionMismatch {
                expected: 2,
                found: 1
            })
        );
        let nan = vec![vec![0.0, f64::NAN], vec![1.0, 0.0]];
        assert_eq!(
            mmd2_rbf(&two, &nan, Bandwidth::MedianHeuristic),
            Err(StatsError::NotFinite("y"))
        );
        let inf = vec![vec![0.0, f64::INFINITY], vec![1.0, 0.0]];
        assert_eq!(
            mmd2_rbf(&inf, &two, Bandwidth::MedianHeuristic),
            Err(StatsError::NotFinite("x"))
        );
        assert!(matches!(
            mmd2_rbf(&two, &two, Bandwidth::Sigma(0.0)),
            Err(StatsError::InvalidParameter(_))
        ));
        assert!(matches!(
            mmd2_rbf(&two, &two, Bandwidth::Sigma(f64::NAN)),
            Err(StatsError::InvalidParameter(_))
        ));
        let same = vec![vec![1.0], vec![1.0], vec![1.0]];
        assert!(matches!(
            mmd2_rbf(&same, &same, Bandwidth::MedianHeuristic),
            Err(StatsError::Undefined(_))
        ));
        let zero_dim: Vec<Vec<f64>> = vec![vec![], vec![]];
        assert!(matches!(
            mmd2_rbf(&zero_dim, &zero_dim, Bandwidth::Sigma(1.0)),
            Err(StatsError::InvalidParameter(_))
        ));
        assert!(matches!(
            mmd2_permutation_test(
                &two,
                &two,
                Bandwidth::Sigma(1.0),
                MmdEstimator::Unbiased,
                0,
                1
            ),
            Err(StatsError::InvalidParameter(_))
        ));
    }

    #[test]
    fn median_like_numpy() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn shifted_samples_are_detected_and_identical_ones_not() {
        let x: Vec<[f64; 1]> = (0..30).map(|i| [f64::from(i) / 30.0]).collect();
        let shifted: Vec<[f64; 1]> = (0..30).map(|i| [f64::from(i) / 30.0 + 0.8]).collect();
        let t = mmd2_permutation_test(
            &x,
            &shifted,
            Bandwidth::MedianHeuristic,
            MmdEstimator::Unbiased,
            200,
            3,
        )
        .unwrap();
        assert!(t.p_value < 0.01, "{t:?}");
        let same = mmd2_permutation_test(
            &x,
            &x,
            Bandwidth::MedianHeuristic,
            MmdEstimator::Biased,
            200,
            3,
        )
        .unwrap();
        assert!(same.p_value > 0.5, "{same:?}");
        assert!(same.statistic.abs() < 1e-12);
    }
}
