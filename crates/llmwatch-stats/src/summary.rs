//! Bounded summaries of live windows, serde-serialisable so they can be persisted, and the
//! seeded generator they (and the MMD permutation test) use.
//!
//! What is exact on them:
//! * [`Reservoir`]: a uniform random sample (without replacement) of at most `capacity` of the
//!   items seen, plus the exact count seen. Any statistic computed on it (KS, Anderson–Darling,
//!   Cramér–von Mises, MMD, quantiles, means) is a *sample estimate* of the statistic on the whole
//!   stream; a test's p-value is exact for the sample, not for the stream. Only the count is exact.
//! * [`FrozenHistogram`]: the counts per bin are exact, so PSI, Jensen–Shannon, KL, Hellinger,
//!   total variation and chi-square computed from two histograms with the same cut points are
//!   exact *for those bins* (merging is exact and associative). Anything finer than the bins
//!   (quantiles, means, KS) is only approximated.
//! * [`CategoryCounter`]: counts are exact for every category that has a slot; categories beyond
//!   the cap are pooled in the [`OTHER_CATEGORY`] slot, so chi-square / PSI / JS on the counts are
//!   exact for that coarsened partition. With a frozen vocabulary ([`CategoryCounter::with_vocabulary`])
//!   merges are exact and order-independent; with first-come slots the set of categories that get
//!   a slot depends on arrival (and merge) order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::StatsError;
use crate::binned::{Bins, align_categories};

/// SplitMix64 (Steele, Lea & Flood 2014; the seeding generator of xoshiro), a fixed, documented
/// 64-bit generator so that seeded results are identical on every platform and crate version:
///
/// ```text
/// state += 0x9E3779B97F4A7C15
/// z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB
/// output z ^ (z >> 31)                          (wrapping u64 arithmetic)
/// ```
///
/// Bounded integers use Lemire's multiply-and-reject method ([`SplitMix64::below`]) and shuffles
/// are Fisher–Yates from the top ([`SplitMix64::shuffle`]). Not cryptographic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (0 when `n == 0`), by Lemire's method: `m = x·n` as 128 bits;
    /// if the low 64 bits of `m` are below `(2^64 − n) mod n`, draw `x` again; return the high
    /// 64 bits.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Fisher–Yates shuffle: for `i` from `len − 1` down to 1, swap `items[i]` with
    /// `items[below(i + 1)]`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// A uniform sample of at most `capacity` items from a stream (Vitter's Algorithm R) with a
/// seeded [`SplitMix64`], and the exact number of items seen.
///
/// The `t`-th item (1-based) is appended while fewer than `capacity` are held; afterwards
/// `j = below(t)` is drawn and the item replaces slot `j` if `j < capacity`. The same seed and
/// stream give the same sample everywhere. Statistics on the sample are estimates (see the
/// [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservoir<T> {
    capacity: usize,
    seen: u64,
    items: Vec<T>,
    rng: SplitMix64,
}

impl<T> Reservoir<T> {
    /// An empty reservoir; errors when `capacity` is 0.
    pub fn new(capacity: usize, seed: u64) -> Result<Self, StatsError> {
        if capacity == 0 {
            return Err(StatsError::InvalidParameter(
                "a reservoir needs a capacity of at least 1".to_string(),
            ));
        }
        Ok(Self {
            capacity,
            seen: 0,
            items: Vec::with_capacity(capacity.min(1 << 16)),
            rng: SplitMix64::new(seed),
        })
    }

    /// Offers one item.
    pub fn push(&mut self, item: T) {
        self.push_with(|| item);
    }

    /// Offers an item built only if the reservoir keeps it (the same draws as [`Reservoir::push`]),
    /// so an expensive item costs nothing once the reservoir mostly refuses.
    pub fn push_with(&mut self, make: impl FnOnce() -> T) {
        let seen_before = self.seen;
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push(make());
        } else {
            let j = self.rng.below(seen_before + 1);
            if j < self.capacity as u64 {
                self.items[j as usize] = make();
            }
        }
    }

    /// Offers every item of an iterator, in order.
    pub fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }

    /// The sampled items (in slot order, not arrival order).
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// How many items were offered since creation or the last [`Reservoir::clear`] (exact).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The maximum number of items kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the sample and the count; the generator continues from its current state.
    pub fn clear(&mut self) {
        self.items.clear();
        self.seen = 0;
    }
}

/// Counts of values in bins frozen once (typically from a reference window): a [`Bins`] and a
/// count per bin.
///
/// Bins are left-closed with open outer ends (see [`crate::binned`]); counts are exact, so binned
/// distances on two histograms with the same bins are exact for those bins, and
/// [`FrozenHistogram::merge`] is exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrozenHistogram {
    bins: Bins,
    counts: Vec<u64>,
}

impl FrozenHistogram {
    /// An empty histogram over these bins.
    pub fn new(bins: Bins) -> Self {
        let counts = vec![0; bins.bin_count()];
        Self { bins, counts }
    }

    /// An empty histogram with these cut points (finite, strictly increasing, at least one).
    pub fn from_cuts(cuts: Vec<f64>) -> Result<Self, StatsError> {
        if cuts.windows(2).any(|w| w[0] >= w[1]) {
            return Err(StatsError::InvalidParameter(
                "cut points must be strictly increasing".to_string(),
            ));
        }
        Ok(Self::new(Bins::from_edges(cuts)?))
    }

    /// Cut points at the reference's type-7 quantiles `i/bins` for `i = 1..bins−1`, duplicates
    /// merged ([`Bins::from_quantiles`]), holding the reference's own counts. Use
    /// [`FrozenHistogram::empty_like`] for the windows to compare.
    /// Errors: empty reference, NaN/infinite values, fewer than two bins.
    pub fn from_reference_quantiles(reference: &[f64], bins: usize) -> Result<Self, StatsError> {
        if bins < 2 {
            return Err(StatsError::InvalidParameter(
                "a reference histogram needs at least two bins".to_string(),
            ));
        }
        let levels: Vec<f64> = (1..bins).map(|i| i as f64 / bins as f64).collect();
        let bins = Bins::from_quantiles(reference, &levels)?;
        let counts = bins.counts(reference)?;
        Ok(Self { bins, counts })
    }

    /// The same bins with all counts zero.
    pub fn empty_like(&self) -> Self {
        Self::new(self.bins.clone())
    }

    /// The bin index of a value (`NaN` goes to the last bin; [`FrozenHistogram::add`] refuses it).
    pub fn bin_of(&self, x: f64) -> usize {
        self.bins.edges().partition_point(|&c| c <= x)
    }

    /// Counts one value; errors (and counts nothing) for NaN or an infinite value.
    pub fn add(&mut self, x: f64) -> Result<(), StatsError> {
        let bin = self
            .bins
            .index(x)
            .map_err(|_| StatsError::NotFinite("histogram input"))?;
        self.counts[bin] += 1;
        Ok(())
    }

    /// Counts every value; if any is NaN or infinite, errors and counts none of them.
    pub fn add_all(&mut self, xs: &[f64]) -> Result<(), StatsError> {
        self.bins
            .accumulate(&mut self.counts, xs)
            .map_err(|_| StatsError::NotFinite("histogram input"))
    }

    /// Adds another histogram's counts; errors unless the bins are identical.
    pub fn merge(&mut self, other: &FrozenHistogram) -> Result<(), StatsError> {
        let same = self.bins.edges().len() == other.bins.edges().len()
            && self
                .bins
                .edges()
                .iter()
                .zip(other.bins.edges())
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(StatsError::InvalidParameter(
                "histograms with different cut points cannot be merged".to_string(),
            ));
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// The bins.
    pub fn bins(&self) -> &Bins {
        &self.bins
    }

    /// The interior cut points.
    pub fn cuts(&self) -> &[f64] {
        self.bins.edges()
    }

    /// Counts per bin (`cuts().len() + 1` of them).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Total count.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sets every count to zero.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
    }
}

/// The overflow slot of a [`CategoryCounter`].
pub const OTHER_CATEGORY: &str = "__other__";

/// Counts of categories (finish reasons, model names, …) with a cap on the number of distinct
/// categories; anything beyond it (and the literal category `"__other__"`) is counted in the
/// [`OTHER_CATEGORY`] slot.
///
/// Two modes: first-come (`new`): the first `max_categories` distinct categories get slots;
/// frozen (`with_vocabulary`): exactly the given categories have slots, so counters made from
/// the same vocabulary merge exactly and in any order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCounter {
    max_categories: usize,
    frozen: bool,
    counts: BTreeMap<String, u64>,
    other: u64,
}

impl CategoryCounter {
    /// A first-come counter with at most `max_categories` slots (plus the overflow slot).
    pub fn new(max_categories: usize) -> Self {
        Self {
            max_categories,
            frozen: false,
            counts: BTreeMap::new(),
            other: 0,
        }
    }

    /// A counter whose slots are exactly these categories (duplicates ignored; `"__other__"`
    /// names the overflow slot and gets no slot of its own).
    pub fn with_vocabulary<I, S>(categories: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let counts: BTreeMap<String, u64> = categories
            .into_iter()
            .map(Into::into)
            .filter(|c| c != OTHER_CATEGORY)
            .map(|c| (c, 0))
            .collect();
        Self {
            max_categories: counts.len(),
            frozen: true,
            counts,
            other: 0,
        }
    }

    /// A counter with the same slots (and mode) and all counts zero: for current windows compared
    /// with a reference.
    pub fn empty_like(&self) -> Self {
        Self {
            max_categories: self.max_categories,
            frozen: self.frozen,
            counts: if self.frozen {
                self.counts.keys().map(|k| (k.clone(), 0)).collect()
            } else {
                BTreeMap::new()
            },
            other: 0,
        }
    }

    /// Counts one occurrence.
    pub fn add(&mut self, category: &str) {
        self.add_n(category, 1);
    }

    /// Counts `n` occurrences.
    pub fn add_n(&mut self, category: &str, n: u64) {
        if category == OTHER_CATEGORY {
            self.other += n;
        } else if let Some(count) = self.counts.get_mut(category) {
            *count += n;
        } else if !self.frozen && self.counts.len() < self.max_categories {
            self.counts.insert(category.to_string(), n);
        } else {
            self.other += n;
        }
    }

    /// Adds another counter's counts category by category (in its sorted order), then its
    /// overflow count. Exact when both share a frozen vocabulary.
    pub fn merge(&mut self, other: &CategoryCounter) {
        for (category, &n) in &other.counts {
            if n > 0 {
                self.add_n(category, n);
            }
        }
        self.other += other.other;
    }

    /// The count of a category (the overflow count for `"__other__"`; 0 for one never seen or
    /// pooled into the overflow slot).
    pub fn count(&self, category: &str) -> u64 {
        if category == OTHER_CATEGORY {
            self.other
        } else {
            self.counts.get(category).copied().unwrap_or(0)
        }
    }

    /// The overflow count.
    pub fn other(&self) -> u64 {
        self.other
    }

    /// Total count, overflow included.
    pub fn total(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.other
    }

    /// Categories with slots and their counts, in byte order of the names (the overflow slot is
    /// not included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// Aligns two counters on the union of their categories in byte order, `"__other__"`
    /// included when either has an overflow count ([`align_categories`]):
    /// `(categories, counts of a, counts of b)`, ready for chi-square, PSI or JS on counts.
    pub fn aligned_counts(
        a: &CategoryCounter,
        b: &CategoryCounter,
    ) -> (Vec<String>, Vec<u64>, Vec<u64>) {
        let with_other = |c: &CategoryCounter| {
            let other = (c.other > 0).then(|| (OTHER_CATEGORY.to_string(), c.other));
            c.counts
                .iter()
                .map(|(k, &v)| (k.clone(), v))
                .chain(other)
                .collect::<Vec<_>>()
        };
        let aligned = align_categories(with_other(a), with_other(b));
        (aligned.categories, aligned.reference, aligned.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // The reference outputs of splitmix64.c for seed 0 (also reproduced by the fixture script).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = SplitMix64::new(42);
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[rng.below(7) as usize] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn reservoir_keeps_capacity_and_exact_count() {
        assert!(Reservoir::<u32>::new(0, 1).is_err());
        let mut r = Reservoir::new(10, 7).unwrap();
        r.extend(0..5u32);
        assert_eq!(r.items(), &[0, 1, 2, 3, 4]);
        r.extend(5..10_000u32);
        assert_eq!(r.items().len(), 10);
        assert_eq!(r.seen(), 10_000);
        // Deterministic for a seed, and survives a serde round trip mid-stream.
        let mut a = Reservoir::new(10, 7).unwrap();
        a.extend(0..5_000u32);
        let json = serde_json::to_string(&a).unwrap();
        let mut b: Reservoir<u32> = serde_json::from_str(&json).unwrap();
        b.extend(5_000..10_000u32);
        assert_eq!(b, r);
    }

    #[test]
    fn reservoir_is_uniform() {
        // Each of 20 items should be kept with probability 5/20 over many seeds.
        let mut kept = [0u32; 20];
        for seed in 0..4_000u64 {
            let mut r = Reservoir::new(5, seed).unwrap();
            r.extend(0..20usize);
            for &i in r.items() {
                kept[i] += 1;
            }
        }
        for k in kept {
            assert!((900..1_100).contains(&k), "{kept:?}");
        }
    }

    #[test]
    fn histogram_bins_and_merge() {
        let mut h = FrozenHistogram::from_cuts(vec![1.0, 2.0]).unwrap();
        h.add_all(&[0.5, 1.0, 1.5, 2.0, 7.0]).unwrap();
        assert_eq!(h.counts(), &[1, 2, 2]);
        assert!(h.add(f64::NAN).is_err());
        assert!(h.add_all(&[1.0, f64::INFINITY]).is_err());
        assert_eq!(h.total(), 5);
        let mut other = h.empty_like();
        other.add(-3.0).unwrap();
        h.merge(&other).unwrap();
        assert_eq!(h.counts(), &[2, 2, 2]);
        let different = FrozenHistogram::from_cuts(vec![1.0, 3.0]).unwrap();
        assert!(h.merge(&different).is_err());
        assert!(FrozenHistogram::from_cuts(vec![2.0, 1.0]).is_err());
        assert!(FrozenHistogram::from_cuts(vec![f64::NAN]).is_err());
    }

    #[test]
    fn histogram_from_reference_quantiles() {
        let reference: Vec<f64> = (1..=10).map(f64::from).collect();
        let h = FrozenHistogram::from_reference_quantiles(&reference, 4).unwrap();
        // numpy.quantile(1..10, [0.25, 0.5, 0.75]) = 3.25, 5.5, 7.75
        assert_eq!(h.cuts(), &[3.25, 5.5, 7.75]);
        assert_eq!(h.counts(), &[3, 2, 2, 3]);
        let ties = FrozenHistogram::from_reference_quantiles(&[1.0, 1.0, 1.0, 2.0], 4).unwrap();
        assert_eq!(ties.cuts(), &[1.0, 1.25]);
        assert!(FrozenHistogram::from_reference_quantiles(&[], 4).is_err());
        assert!(FrozenHistogram::from_reference_quantiles(&[1.0], 0).is_err());
        assert!(FrozenHistogram::from_reference_quantiles(&[f64::NAN], 2).is_err());
    }

    #[test]
    fn category_counter_caps_and_merges() {
        let mut c = CategoryCounter::new(2);
        for s in [
            "stop",
            "length",
            "stop",
            "tool_calls",
            "content_filter",
            "__other__",
        ] {
            c.add(s);
        }
        assert_eq!(c.count("stop"), 2);
        assert_eq!(c.count("length"), 1);
        assert_eq!(c.count("tool_calls"), 0);
        assert_eq!(c.other(), 3);
        assert_eq!(c.total(), 6);

        let vocabulary = CategoryCounter::with_vocabulary(["stop", "length"]);
        let mut a = vocabulary.empty_like();
        let mut b = vocabulary.empty_like();
        a.add("stop");
        a.add("error");
        b.add("length");
        b.add_n("stop", 3);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.count("stop"), 4);
        assert_eq!(ab.other(), 1);
        let (names, ca, cb) = CategoryCounter::aligned_counts(&a, &b);
        assert_eq!(names, ["__other__", "length", "stop"]);
        assert_eq!(ca, [1, 0, 1]);
        assert_eq!(cb, [0, 1, 3]);
        let json = serde_json::to_string(&ab).unwrap();
        assert_eq!(serde_json::from_str::<CategoryCounter>(&json).unwrap(), ab);
    }
}
