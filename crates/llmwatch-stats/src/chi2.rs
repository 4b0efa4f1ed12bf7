//! Chi-square tests on category counts: the 2×k contingency test of reference against current
//! (`scipy.stats.chi2_contingency`) and the goodness-of-fit test of current against the
//! reference shares (`scipy.stats.chisquare`).
//!
//! Both take two count vectors over the same categories (index i of `reference` and `current`
//! is the same category; [`crate::binned::align_categories`] builds them from keyed counts).
//! p-values are the chi-squared survival function (statrs `ChiSquared::sf`, which agrees with
//! scipy's `chi2.sf` to about 1e-15 relative).

use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::StatsError;

/// The result of [`chi2_contingency`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chi2Contingency {
    /// Pearson's X² (with Yates' correction when it was applied).
    pub statistic: f64,
    pub p_value: f64,
    /// (2 − 1)·(k' − 1), k' = the number of categories kept.
    pub dof: usize,
    /// Whether Yates' continuity correction was applied (requested and dof = 1).
    pub yates: bool,
    /// Indices (into the input) of the categories kept: those with a non-zero total.
    pub categories: Vec<usize>,
    /// Expected counts R_i·C_j/N for the kept categories: `[reference, current]` per category.
    pub expected: Vec<[f64; 2]>,
}

/// Pearson's chi-square test of independence on the 2×k table whose rows are `reference` and
/// `current`: `scipy.stats.chi2_contingency(table, correction=correction)` with
/// `lambda_=None`.
///
/// Definition (scipy): E_ij = R_i·C_j/N (row totals R, column totals C, grand total N),
/// X² = Σ_ij (O_ij − E_ij)²/E_ij, dof = (rows − 1)(columns − 1) = k − 1, p = P(χ²_dof ≥ X²).
/// With `correction` and dof = 1, Yates' correction moves each observed count towards its
/// expected count by min(0.5, |O − E|) first. When dof = 0 (a single category left) scipy
/// returns X² = 0 and p = 1; so does this function.
///
/// Categories whose reference and current counts are both zero are dropped first (scipy raises
/// on the zero expected counts they would give); [`Chi2Contingency::categories`] lists the ones
/// kept.
///
/// Errors: the slices differ in length or are empty; the reference or the current counts are
/// all zero (scipy raises: a row of zero expected counts).
pub fn chi2_contingency(
    reference: &[u64],
    current: &[u64],
    correction: bool,
) -> Result<Chi2Contingency, StatsError> {
    check_counts(reference, current)?;
    let categories: Vec<usize> = (0..reference.len())
        .filter(|&i| reference[i] + current[i] > 0)
        .collect();
    let rows = [
        categories.iter().map(|&i| reference[i]).sum::<u64>() as f64,
        categories.iter().map(|&i| current[i]).sum::<u64>() as f64,
    ];
    let total = rows[0] + rows[1];
    let expected: Vec<[f64; 2]> = categories
        .iter()
        .map(|&i| {
            let column = (reference[i] + current[i]) as f64;
            [rows[0] * column / total, rows[1] * column / total]
        })
        .collect();
    let dof = categories.len() - 1;
    if dof == 0 {
        return Ok(Chi2Contingency {
            statistic: 0.0,
            p_value: 1.0,
            dof,
            yates: false,
            categories,
            expected,
        });
    }
    let yates = correction && dof == 1;
    let mut statistic = 0.0;
    for row in 0..2 {
        for (&i, e) in categories.iter().zip(&expected) {
            let mut observed = if row == 0 { reference[i] } else { current[i] } as f64;
            let e = e[row];
            if yates {
                let diff = e - observed;
                observed += diff.abs().min(0.5) * diff.signum_or_zero();
            }
            statistic += (observed - e).powi(2) / e;
        }
    }
    Ok(Chi2Contingency {
        statistic,
        p_value: chi2_sf(statistic, dof)?,
        dof,
        yates,
        categories,
        expected,
    })
}

/// Cochran's rule for Pearson's chi-square approximation: every expected count at least 5.
pub const MIN_EXPECTED_COUNT: f64 = 5.0;

/// Pools the sparse categories of a 2×k table (rows `reference` and `current`) into one
/// category, so that every category left has an expected count `E_ij = R_i·C_j/N` of at least
/// `min_expected` in both rows (Cochran's rule, [`MIN_EXPECTED_COUNT`], for the chi-square
/// approximation to hold), and returns the pooled table: the categories kept, in input order,
/// then the pooled one (if any). Categories zero in both rows are dropped.
///
/// A category is sparse when its column total `C_j` is below `min_expected · N / min(R_i)`.
/// All sparse categories are pooled; while the pool is still sparse and other categories are
/// left, the smallest of them joins it. Everything may end in one category (nothing left to
/// compare: dof 0). Counts are conserved.
///
/// Why: a rare category (an error type on 0.5% of calls, ~2 per window) moves by chance by a
/// few counts, which the chi-square approximation turns into a p-value far too small, and
/// which the Jensen–Shannon *distance* (the square root of the divergence) amplifies: a change
/// of Δ in a share m counts as Δ/√m. Pooling is a coarsening, so it never increases JS or PSI
/// (data processing), and a category that appears or grows past the rule stands on its own.
pub fn pool_sparse_categories(
    reference: &[u64],
    current: &[u64],
    min_expected: f64,
) -> (Vec<u64>, Vec<u64>) {
    let rows = [
        reference.iter().sum::<u64>() as f64,
        current.iter().sum::<u64>() as f64,
    ];
    let columns: Vec<usize> = (0..reference.len().min(current.len()))
        .filter(|&i| reference[i] + current[i] > 0)
        .collect();
    let total = |i: usize| reference[i] + current[i];
    if rows[0] == 0.0 || rows[1] == 0.0 {
        return (
            columns.iter().map(|&i| reference[i]).collect(),
            columns.iter().map(|&i| current[i]).collect(),
        );
    }
    let enough = min_expected * (rows[0] + rows[1]) / rows[0].min(rows[1]);
    let mut ascending = columns.clone();
    ascending.sort_by_key(|&i| (total(i), i));
    let mut pooled = vec![false; reference.len()];
    let mut pool = 0u64;
    for &i in &ascending {
        // Sparse categories join; then, while the pool is sparse, the next smallest does too.
        if (total(i) as f64) < enough || (pool > 0 && (pool as f64) < enough) {
            pooled[i] = true;
            pool += total(i);
        } else {
            break;
        }
    }
    let (mut r, mut c): (Vec<u64>, Vec<u64>) = columns
        .iter()
        .filter(|&&i| !pooled[i])
        .map(|&i| (reference[i], current[i]))
        .unzip();
    if pool > 0 {
        let sum = |counts: &[u64]| {
            (0..counts.len())
                .filter(|&i| pooled[i])
                .map(|i| counts[i])
                .sum()
        };
        r.push(sum(reference));
        c.push(sum(current));
    }
    (r, c)
}

/// The result of [`chisquare_gof`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChiSquareGof {
    /// Σ (O − E)²/E; +∞ when a category has current counts but no reference counts.
    pub statistic: f64,
    /// P(χ²_dof ≥ statistic); 0 when the statistic is +∞.
    pub p_value: f64,
    /// k − 1 over the union of categories.
    pub dof: usize,
    /// Indices of the categories of the union (non-zero in reference or current).
    pub categories: Vec<usize>,
    /// Expected current counts: reference share × current total, per kept category.
    pub expected: Vec<f64>,
    /// Whether some category was seen in the current counts but never in the reference.
    pub unseen_in_reference: bool,
}

/// Goodness of fit of the current counts to the reference shares over the union of categories:
/// `scipy.stats.chisquare(f_obs=current, f_exp=reference/sum(reference)·sum(current))`, as
/// Evidently's `chisquare` drift test calls it.
///
/// Definition (scipy): X² = Σ_i (O_i − E_i)²/E_i, dof = k − 1, p = P(χ²_dof ≥ X²).
/// The union is the categories with a non-zero count in either input (categories zero in both
/// are dropped: scipy would give 0/0 = NaN for them).
///
/// A category seen in the current counts but never in the reference has E = 0 < O: scipy's
/// statistic is then +∞ and its p-value 0 (the current distribution cannot come from the
/// reference one). This function returns exactly that, `statistic = f64::INFINITY` and
/// `p_value = 0.0`, and sets [`ChiSquareGof::unseen_in_reference`].
///
/// Errors: the slices differ in length or are empty; the reference or the current counts are
/// all zero; fewer than two categories in the union (dof = 0, scipy returns a NaN p-value).
pub fn chisquare_gof(reference: &[u64], current: &[u64]) -> Result<ChiSquareGof, StatsError> {
    check_counts(reference, current)?;
    let categories: Vec<usize> = (0..reference.len())
        .filter(|&i| reference[i] + current[i] > 0)
        .collect();
    if categories.len() < 2 {
        return Err(StatsError::Undefined(
            "the chi-square goodness-of-fit test needs at least two categories with counts \
             (dof would be 0; scipy returns a NaN p-value)"
                .into(),
        ));
    }
    let ref_total = categories.iter().map(|&i| reference[i]).sum::<u64>() as f64;
    let cur_total = categories.iter().map(|&i| current[i]).sum::<u64>() as f64;
    let expected: Vec<f64> = categories
        .iter()
        .map(|&i| reference[i] as f64 / ref_total * cur_total)
        .collect();
    let mut unseen_in_reference = false;
    let mut statistic = 0.0;
    for (&i, &e) in categories.iter().zip(&expected) {
        let observed = current[i] as f64;
        if e == 0.0 {
            // Only reachable with reference[i] == 0 < current[i].
            unseen_in_reference = true;
            continue;
        }
        statistic += (observed - e).powi(2) / e;
    }
    let dof = categories.len() - 1;
    let (statistic, p_value) = if unseen_in_reference {
        (f64::INFINITY, 0.0)
    } else {
        (statistic, chi2_sf(statistic, dof)?)
    };
    Ok(ChiSquareGof {
        statistic,
        p_value,
        dof,
        categories,
        expected,
        unseen_in_reference,
    })
}

/// P(χ²_dof ≥ x), scipy's `chi2.sf(x, dof)` for dof >= 1.
pub fn chi2_sf(x: f64, dof: usize) -> Result<f64, StatsError> {
    if x.is_nan() {
        return Err(StatsError::InvalidParameter(
            "the chi-square statistic is NaN".into(),
        ));
    }
    if x == f64::INFINITY {
        return Ok(0.0);
    }
    let dist = ChiSquared::new(dof as f64).map_err(|e| {
        StatsError::InvalidParameter(format!("chi-squared with {dof} degrees of freedom: {e}"))
    })?;
    Ok(dist.sf(x).clamp(0.0, 1.0))
}

fn check_counts(reference: &[u64], current: &[u64]) -> Result<(), StatsError> {
    if reference.len() != current.len() {
        return Err(StatsError::DimensionMismatch {
            expected: reference.len(),
            found: current.len(),
        });
    }
    if reference.iter().all(|&c| c == 0) {
        return Err(StatsError::EmptySample("reference"));
    }
    if current.iter().all(|&c| c == 0) {
        return Err(StatsError::EmptySample("current"));
    }
    Ok(())
}

trait SignumOrZero {
    fn signum_or_zero(self) -> f64;
}

impl SignumOrZero for f64 {
    /// numpy's sign: −1, 0 or +1.
    fn signum_or_zero(self) -> f64 {
        if self > 0.0 {
            1.0
        } else if self < 0.0 {
            -1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_categories_are_pooled_until_the_pool_is_not() {
        // 600 reference and 480 current calls: a column needs 5·1080/480 = 11.25 in total.
        let reference = [582, 12, 4, 2, 0];
        let current = [463, 10, 5, 2, 0];
        // Columns of 9 and 4 in total are sparse; pooled they make 13: enough.
        assert_eq!(
            pool_sparse_categories(&reference, &current, MIN_EXPECTED_COUNT),
            (vec![582, 12, 6], vec![463, 10, 7])
        );
        // A pool of 4 is still sparse: the next smallest column (22) joins it.
        assert_eq!(
            pool_sparse_categories(&[582, 12, 2, 0], &[463, 10, 2, 0], MIN_EXPECTED_COUNT),
            (vec![582, 14], vec![463, 12])
        );
        // A rare category that grows stands on its own.
        let current = [440, 10, 28, 2, 0];
        assert_eq!(
            pool_sparse_categories(&reference, &current, MIN_EXPECTED_COUNT),
            (vec![582, 4, 14], vec![440, 28, 12])
        );
        // Nothing sparse: unchanged but for the empty category.
        assert_eq!(
            pool_sparse_categories(&[50, 60, 0], &[55, 45, 0], MIN_EXPECTED_COUNT),
            (vec![50, 60], vec![55, 45])
        );
        // Everything sparse: one category, nothing to compare.
        assert_eq!(
            pool_sparse_categories(&[3, 2], &[1, 4], MIN_EXPECTED_COUNT),
            (vec![5], vec![5])
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            chi2_contingency(&[1, 2], &[1], true),
            Err(StatsError::DimensionMismatch {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            chi2_contingency(&[], &[], true),
            Err(StatsError::EmptySample("reference"))
        );
        assert_eq!(
            chi2_contingency(&[0, 0], &[1, 2], true),
            Err(StatsError::EmptySample("reference"))
        );
        assert_eq!(
            chisquare_gof(&[1, 2], &[0, 0]),
            Err(StatsError::EmptySample("current"))
        );
        assert!(matches!(
            chisquare_gof(&[5, 0], &[3, 0]),
            Err(StatsError::Undefined(_))
        ));
        assert!(chi2_sf(f64::NAN, 2).is_err());
        assert!(chi2_sf(1.0, 0).is_err());
    }

    #[test]
    fn unseen_category_is_infinite() {
        let r = chisquare_gof(&[10, 0, 5], &[8, 1, 5]).unwrap();
        assert_eq!(r.statistic, f64::INFINITY);
        assert_eq!(r.p_value, 0.0);
        assert!(r.unseen_in_reference);
        // The contingency table stays finite.
        let c = chi2_contingency(&[10, 0, 5], &[8, 1, 5], true).unwrap();
        assert!(c.statistic.is_finite() && c.p_value > 0.0);
    }

    #[test]
    fn single_category_is_dof_zero() {
        let c = chi2_contingency(&[5, 0], &[7, 0], true).unwrap();
        assert_eq!((c.statistic, c.p_value, c.dof), (0.0, 1.0, 0));
        assert_eq!(c.categories, vec![0]);
    }
}
