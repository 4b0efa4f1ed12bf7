//! Binned comparisons: the population stability index and the Jensen–Shannon distance, on bins
//! frozen from a reference sample or on categories.
//!
//! Binning recipe (numeric values):
//!
//! * edges: the type-7 (numpy's default, "linear") quantiles of the reference at
//!   0.1, 0.2, …, 0.9, duplicates merged (`np.unique(np.quantile(reference, levels))`);
//! * bins are left-closed, [e_i, e_{i+1}), with open outer bins (−∞, e_0) and [e_last, +∞), so
//!   a value's bin is the number of edges <= it (`np.searchsorted(edges, x, side="right")`) and
//!   current values outside the reference range land in the outer bins (none is dropped).
//!
//! A [`Bins`] is frozen from the reference once; [`Bins::counts`] and [`Bins::accumulate`] then
//! bin live windows incrementally, and count vectors add, so windows merge.

use std::collections::BTreeMap;

use crate::StatsError;

/// The share every bin is floored at before the PSI logarithm.
pub const PSI_FLOOR: f64 = 1e-4;

/// The quantile levels of the default bins: 0.1, …, 0.9.
pub const DECILE_LEVELS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Bin edges frozen from a reference sample (see the module documentation).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bins {
    edges: Vec<f64>,
}

impl Bins {
    /// Edges at the reference deciles (type-7 quantiles at 0.1..0.9), duplicates merged: at
    /// most 10 bins, fewer when the reference has ties across deciles (a constant reference
    /// gives two bins, below and from its value).
    ///
    /// Errors: an empty reference, a NaN or infinite value.
    pub fn deciles(reference: &[f64]) -> Result<Self, StatsError> {
        Self::from_quantiles(reference, &DECILE_LEVELS)
    }

    /// Edges at the given type-7 quantile levels of the reference, duplicates merged.
    ///
    /// Errors: an empty reference, a NaN or infinite value, no levels, a level outside [0, 1].
    pub fn from_quantiles(reference: &[f64], levels: &[f64]) -> Result<Self, StatsError> {
        let sorted = sorted_finite(reference, "reference")?;
        if levels.is_empty() {
            return Err(StatsError::InvalidParameter(
                "at least one quantile level is needed".into(),
            ));
        }
        if let Some(level) = levels.iter().find(|l| !(0.0..=1.0).contains(*l)) {
            return Err(StatsError::InvalidParameter(format!(
                "quantile levels lie in [0, 1], got {level}"
            )));
        }
        let edges = levels.iter().map(|&l| quantile_type7(&sorted, l)).collect();
        Self::from_edges(edges)
    }

    /// Bins from explicit edges (sorted and de-duplicated here).
    ///
    /// Errors: no edges, a NaN or infinite edge.
    pub fn from_edges(mut edges: Vec<f64>) -> Result<Self, StatsError> {
        if edges.is_empty() {
            return Err(StatsError::InvalidParameter(
                "at least one bin edge is needed".into(),
            ));
        }
        if edges.iter().any(|e| !e.is_finite()) {
            return Err(StatsError::NotFinite("edges"));
        }
        edges.sort_unstable_by(f64::total_cmp);
        edges.dedup_by(|a, b| a == b);
        Ok(Bins { edges })
    }

    /// The edges, sorted and distinct.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// The number of bins: one more than the number of edges.
    pub fn bin_count(&self) -> usize {
        self.edges.len() + 1
    }

    /// The bin of a value: how many edges are <= it.
    ///
    /// Errors: a NaN or infinite value.
    pub fn index(&self, value: f64) -> Result<usize, StatsError> {
        if !value.is_finite() {
            return Err(StatsError::NotFinite("value"));
        }
        Ok(self.edges.partition_point(|&e| e <= value))
    }

    /// Counts per bin of `values` (a vector of [`Bins::bin_count`] entries).
    ///
    /// Errors: a NaN or infinite value.
    pub fn counts(&self, values: &[f64]) -> Result<Vec<u64>, StatsError> {
        let mut counts = vec![0; self.bin_count()];
        self.accumulate(&mut counts, values)?;
        Ok(counts)
    }

    /// Adds the bins of `values` to `counts`. On error `counts` is left unchanged.
    ///
    /// Errors: `counts` does not have [`Bins::bin_count`] entries; a NaN or infinite value.
    pub fn accumulate(&self, counts: &mut [u64], values: &[f64]) -> Result<(), StatsError> {
        if counts.len() != self.bin_count() {
            return Err(StatsError::DimensionMismatch {
                expected: self.bin_count(),
                found: counts.len(),
            });
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(StatsError::NotFinite("values"));
        }
        for &v in values {
            counts[self.edges.partition_point(|&e| e <= v)] += 1;
        }
        Ok(())
    }
}

/// The type-7 quantile of a sorted, non-empty sample, evaluated as numpy's `quantile(…,
/// method="linear")` does (virtual index (n−1)·q, interpolation from the nearer end).
fn quantile_type7(sorted: &[f64], level: f64) -> f64 {
    let n = sorted.len();
    let last = sorted[n - 1];
    let virtual_index = (n - 1) as f64 * level;
    if virtual_index >= (n - 1) as f64 {
        return last;
    }
    let below = virtual_index.floor();
    let gamma = virtual_index - below;
    let i = below as usize;
    let (a, b) = (sorted[i], sorted[i + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

fn sorted_finite(values: &[f64], which: &'static str) -> Result<Vec<f64>, StatsError> {
    if values.is_empty() {
        return Err(StatsError::EmptySample(which));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite(which));
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    Ok(sorted)
}

fn check_counts(reference: &[u64], current: &[u64]) -> Result<(f64, f64), StatsError> {
    if reference.len() != current.len() {
        return Err(StatsError::DimensionMismatch {
            expected: reference.len(),
            found: current.len(),
        });
    }
    let r: u64 = reference.iter().sum();
    let c: u64 = current.iter().sum();
    if r == 0 {
        return Err(StatsError::EmptySample("reference"));
    }
    if c == 0 {
        return Err(StatsError::EmptySample("current"));
    }
    Ok((r as f64, c as f64))
}

/// Population stability index of two count vectors over the same bins or categories.
///
/// Definition: with shares p_i = max(r_i/Σr, 10⁻⁴) (reference) and q_i = max(c_i/Σc, 10⁻⁴)
/// (current), PSI = Σ_i (q_i − p_i)·ln(q_i/p_i) (natural log, so ≥ 0; symmetric in p and q).
/// The floor is applied to both distributions and the shares are not renormalised afterwards
/// (the common script recipe: clip only). A category or bin empty on one side thus contributes
/// (share − 10⁻⁴)·ln(share/10⁻⁴) instead of +∞.
///
/// Errors: different lengths; all-zero reference or current counts (including empty slices).
pub fn psi_from_counts(reference: &[u64], current: &[u64]) -> Result<f64, StatsError> {
    let (r_total, c_total) = check_counts(reference, current)?;
    Ok(reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let p = (r as f64 / r_total).max(PSI_FLOOR);
            let q = (c as f64 / c_total).max(PSI_FLOOR);
            (q - p) * (q / p).ln()
        })
        .sum())
}

/// Jensen–Shannon distance, base 2, of two count vectors over the same bins or categories:
/// `scipy.spatial.distance.jensenshannon(reference, current, base=2)`.
///
/// Definition (scipy): p = r/Σr, q = c/Σc, m = (p + q)/2,
/// JS = sqrt((KL(p‖m) + KL(q‖m)) / (2·ln 2)) with KL(a‖b) = Σ a_i ln(a_i/b_i) (0·ln 0 = 0):
/// the square root of the Jensen–Shannon divergence in bits, in [0, 1]; 1 for disjoint
/// supports. No flooring. Where rounding makes the divergence a tiny negative number (nearly
/// identical inputs), scipy returns NaN; this returns 0.
///
/// Errors: different lengths; all-zero reference or current counts (including empty slices).
pub fn jensen_shannon_from_counts(reference: &[u64], current: &[u64]) -> Result<f64, StatsError> {
    let (r_total, c_total) = check_counts(reference, current)?;
    let mut left = 0.0;
    let mut right = 0.0;
    for (&r, &c) in reference.iter().zip(current) {
        let p = r as f64 / r_total;
        let q = c as f64 / c_total;
        let m = (p + q) / 2.0;
        left += rel_entr(p, m);
        right += rel_entr(q, m);
    }
    let js = (left + right) / std::f64::consts::LN_2;
    Ok((js / 2.0).max(0.0).sqrt())
}

/// scipy.special.rel_entr for x >= 0, y >= 0 with y > 0 whenever x > 0.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else {
        0.0
    }
}

/// PSI of two samples on the reference-decile bins ([`Bins::deciles`] then
/// [`psi_from_counts`]).
///
/// Errors: an empty sample, a NaN or infinite value.
pub fn psi(reference: &[f64], current: &[f64]) -> Result<f64, StatsError> {
    let bins = Bins::deciles(reference)?;
    let (r, c) = both_counts(&bins, reference, current)?;
    psi_from_counts(&r, &c)
}

/// Jensen–Shannon distance (base 2) of two samples on the reference-decile bins
/// ([`Bins::deciles`] then [`jensen_shannon_from_counts`]).
///
/// Errors: an empty sample, a NaN or infinite value.
pub fn jensen_shannon(reference: &[f64], current: &[f64]) -> Result<f64, StatsError> {
    let bins = Bins::deciles(reference)?;
    let (r, c) = both_counts(&bins, reference, current)?;
    jensen_shannon_from_counts(&r, &c)
}

fn both_counts(
    bins: &Bins,
    reference: &[f64],
    current: &[f64],
) -> Result<(Vec<u64>, Vec<u64>), StatsError> {
    if current.is_empty() {
        return Err(StatsError::EmptySample("current"));
    }
    let r = bins.counts(reference)?;
    let c = bins
        .counts(current)
        .map_err(|_| StatsError::NotFinite("current"))?;
    Ok((r, c))
}

/// Counts of two samples over the union of their categories, in the categories' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlignedCounts<K> {
    pub categories: Vec<K>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

/// Aligns keyed counts on the union of categories (sorted by key; a key given more than once
/// has its counts added). A category missing on one side gets 0 there.
pub fn align_categories<K: Ord>(
    reference: impl IntoIterator<Item = (K, u64)>,
    current: impl IntoIterator<Item = (K, u64)>,
) -> AlignedCounts<K> {
    let mut union: BTreeMap<K, [u64; 2]> = BTreeMap::new();
    for (k, c) in reference {
        union.entry(k).or_default()[0] += c;
    }
    for (k, c) in current {
        union.entry(k).or_default()[1] += c;
    }
    let mut out = AlignedCounts {
        categories: Vec::with_capacity(union.len()),
        reference: Vec::with_capacity(union.len()),
        current: Vec::with_capacity(union.len()),
    };
    for (k, [r, c]) in union {
        out.categories.push(k);
        out.reference.push(r);
        out.current.push(c);
    }
    out
}

/// PSI over the union of categories of keyed counts (e.g. finish reasons): [`align_categories`]
/// then [`psi_from_counts`]. A category unseen on one side gets the floored share 10⁻⁴ there.
///
/// Errors: all-zero reference or current counts.
pub fn psi_categorical<K: Ord>(
    reference: impl IntoIterator<Item = (K, u64)>,
    current: impl IntoIterator<Item = (K, u64)>,
) -> Result<f64, StatsError> {
    let a = align_categories(reference, current);
    psi_from_counts(&a.reference, &a.current)
}

/// Jensen–Shannon distance (base 2) over the union of categories of keyed counts:
/// [`align_categories`] then [`jensen_shannon_from_counts`].
///
/// Errors: all-zero reference or current counts.
pub fn jensen_shannon_categorical<K: Ord>(
    reference: impl IntoIterator<Item = (K, u64)>,
    current: impl IntoIterator<Item = (K, u64)>,
) -> Result<f64, StatsError> {
    let a = align_categories(reference, current);
    jensen_shannon_from_counts(&a.reference, &a.current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        assert_eq!(
            Bins::deciles(&[]),
            Err(StatsError::EmptySample("reference"))
        );
        assert_eq!(
            Bins::deciles(&[1.0, f64::NAN]),
            Err(StatsError::NotFinite("reference"))
        );
        assert!(Bins::from_quantiles(&[1.0], &[1.5]).is_err());
        assert!(Bins::from_quantiles(&[1.0], &[]).is_err());
        assert!(Bins::from_edges(vec![]).is_err());
        assert!(Bins::from_edges(vec![f64::INFINITY]).is_err());
        let bins = Bins::from_edges(vec![1.0, 2.0]).unwrap();
        assert!(bins.index(f64::NAN).is_err());
        let mut counts = vec![0; 3];
        assert!(bins.accumulate(&mut counts, &[1.0, f64::NAN]).is_err());
        assert_eq!(counts, vec![0, 0, 0]);
        assert!(bins.accumulate(&mut [0; 2], &[1.0]).is_err());
        assert_eq!(psi(&[1.0], &[]), Err(StatsError::EmptySample("current")));
        assert_eq!(
            psi(&[1.0], &[f64::INFINITY]),
            Err(StatsError::NotFinite("current"))
        );
        assert_eq!(
            psi_from_counts(&[1, 2], &[1]),
            Err(StatsError::DimensionMismatch {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            jensen_shannon_from_counts(&[0, 0], &[1, 1]),
            Err(StatsError::EmptySample("reference"))
        );
        assert_eq!(
            psi_categorical(Vec::<(&str, u64)>::new(), [("a", 1)]),
            Err(StatsError::EmptySample("reference"))
        );
    }

    #[test]
    fn left_closed_bins() {
        let bins = Bins::from_edges(vec![2.0, 1.0, 2.0]).unwrap();
        assert_eq!(bins.edges(), &[1.0, 2.0]);
        assert_eq!(bins.bin_count(), 3);
        assert_eq!(
            bins.counts(&[0.5, 1.0, 1.5, 2.0, 9.0]).unwrap(),
            vec![1, 2, 2]
        );
    }

    #[test]
    fn identical_and_disjoint() {
        assert_eq!(jensen_shannon_from_counts(&[3, 4], &[3, 4]).unwrap(), 0.0);
        assert_eq!(psi_from_counts(&[3, 4], &[6, 8]).unwrap(), 0.0);
        assert!((jensen_shannon_from_counts(&[3, 0], &[0, 4]).unwrap() - 1.0).abs() < 1e-15);
        let a = align_categories([("stop", 5), ("length", 1), ("stop", 1)], [("tool", 2)]);
        assert_eq!(a.categories, vec!["length", "stop", "tool"]);
        assert_eq!(a.reference, vec![1, 6, 0]);
        assert_eq!(a.current, vec![0, 0, 2]);
    }
}
