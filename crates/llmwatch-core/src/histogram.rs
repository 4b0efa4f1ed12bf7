//! A fixed-bucket histogram updated with atomics, so recording never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::atomic::AtomicF64;

/// Counts per bucket (non-cumulative, one extra for +Inf), total count and sum.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicF64,
}

/// A consistent-enough copy for exposition: cumulative bucket counts as Prometheus wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [f64],
    /// Cumulative counts, one per bound (the +Inf bucket is `count`).
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicF64::new(0.0),
        }
    }

    /// Records `value` `times` times (times > 1 for spans that stand for several under sampling).
    /// Buckets are upper-inclusive, as Prometheus `le` means.
    pub fn observe(&self, value: f64, times: u64) {
        let index = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[index].fetch_add(times, Relaxed);
        self.count.fetch_add(times, Relaxed);
        self.sum.add(value * times as f64);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self.buckets[..self.bounds.len()]
            .iter()
            .map(|bucket| {
                running += bucket.load(Relaxed);
                running
            })
            .collect();
        let count = running + self.buckets[self.bounds.len()].load(Relaxed);
        HistogramSnapshot {
            bounds: self.bounds,
            cumulative,
            count,
            sum: self.sum.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_upper_inclusive_and_cumulative() {
        static BOUNDS: [f64; 3] = [1.0, 2.0, 4.0];
        let h = AtomicHistogram::new(&BOUNDS);
        h.observe(1.0, 1);
        h.observe(1.5, 2);
        h.observe(4.0, 1);
        h.observe(9.0, 1);
        let s = h.snapshot();
        assert_eq!(s.cumulative, vec![1, 3, 4]);
        assert_eq!(s.count, 5);
        assert_eq!(s.sum, 1.0 + 3.0 + 4.0 + 9.0);
    }
}
