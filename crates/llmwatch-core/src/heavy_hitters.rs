//! Weighted Space-Saving (Metwally, Agrawal, El Abbadi 2005): the heaviest keys of a stream in
//! memory fixed by `capacity`, whatever the number of distinct keys.
//!
//! Guarantees, with W the total weight added and k the capacity:
//! - every key whose true weight exceeds W/k is in the summary;
//! - each estimate over-counts by at most its recorded `error`, itself at most W/k:
//!   `estimate − error ≤ true weight ≤ estimate`.
//!
//! The smallest counter is found with an indexed min-heap, so an update costs O(log k).

use rustc_hash::FxHashMap;

#[derive(Debug, Clone)]
struct Counter {
    key: Box<str>,
    count: f64,
    error: f64,
}

/// One key's estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate<'a> {
    pub key: &'a str,
    /// Upper bound of the key's true weight.
    pub count: f64,
    /// How much `count` may exceed the true weight.
    pub error: f64,
}

impl Estimate<'_> {
    /// Lower bound of the key's true weight.
    pub fn guaranteed(&self) -> f64 {
        self.count - self.error
    }
}

#[derive(Debug, Clone)]
pub struct SpaceSaving {
    capacity: usize,
    counters: Vec<Counter>,
    index: FxHashMap<Box<str>, usize>,
    /// Counter ids ordered as a min-heap by count.
    heap: Vec<usize>,
    /// Counter id → its position in `heap`.
    position: Vec<usize>,
    total: f64,
}

impl SpaceSaving {
    pub fn new(capacity: usize) -> SpaceSaving {
        let capacity = capacity.max(1);
        SpaceSaving {
            capacity,
            counters: Vec::with_capacity(capacity),
            index: FxHashMap::default(),
            heap: Vec::with_capacity(capacity),
            position: Vec::with_capacity(capacity),
            total: 0.0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Total weight added since the last clear.
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The most any estimate can over-count: W/k.
    pub fn error_bound(&self) -> f64 {
        self.total / self.capacity as f64
    }

    pub fn add(&mut self, key: &str, weight: f64) {
        self.total += weight;
        if let Some(&id) = self.index.get(key) {
            self.counters[id].count += weight;
            self.sift_down(self.position[id]);
            return;
        }
        if self.counters.len() < self.capacity {
            let id = self.counters.len();
            self.counters.push(Counter {
                key: key.into(),
                count: weight,
                error: 0.0,
            });
            self.index.insert(key.into(), id);
            self.position.push(self.heap.len());
            self.heap.push(id);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        // Replace the smallest counter: the newcomer inherits its count as possible error.
        let id = self.heap[0];
        let minimum = self.counters[id].count;
        let evicted = std::mem::replace(
            &mut self.counters[id],
            Counter {
                key: key.into(),
                count: minimum + weight,
                error: minimum,
            },
        );
        self.index.remove(&evicted.key);
        self.index.insert(key.into(), id);
        self.sift_down(0);
    }

    pub fn get(&self, key: &str) -> Option<Estimate<'_>> {
        self.index.get(key).map(|&id| self.estimate(id))
    }

    /// The `n` largest estimates, largest first.
    pub fn top(&self, n: usize) -> Vec<Estimate<'_>> {
        let mut all: Vec<Estimate<'_>> = (0..self.counters.len())
            .map(|id| self.estimate(id))
            .collect();
        all.sort_by(|a, b| b.count.total_cmp(&a.count).then_with(|| a.key.cmp(b.key)));
        all.truncate(n);
        all
    }

    pub fn clear(&mut self) {
        self.counters.clear();
        self.index.clear();
        self.heap.clear();
        self.position.clear();
        self.total = 0.0;
    }

    fn estimate(&self, id: usize) -> Estimate<'_> {
        let c = &self.counters[id];
        Estimate {
            key: &c.key,
            count: c.count,
            error: c.error,
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.counters[self.heap[a]].count < self.counters[self.heap[b]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a]] = a;
        self.position[self.heap[b]] = b;
    }

    fn sift_up(&mut self, mut at: usize) {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.less(at, parent) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
    }

    fn sift_down(&mut self, mut at: usize) {
        loop {
            let (left, right) = (2 * at + 1, 2 * at + 2);
            let mut smallest = at;
            if left < self.heap.len() && self.less(left, smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.less(right, smallest) {
                smallest = right;
            }
            if smallest == at {
                break;
            }
            self.swap(at, smallest);
            at = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic skewed stream: 100,000 users, spend per call following a Zipf-like law.
    fn skewed_stream() -> Vec<(String, f64)> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..400_000)
            .map(|_| {
                // Rank r drawn with probability ∝ 1/r over 100,000 users (inverse-CDF approximation).
                let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
                let rank = (100_000f64.powf(u)).floor() as u64;
                let cents = 1 + next() % 100;
                (format!("user-{rank}"), cents as f64 / 100.0)
            })
            .collect()
    }

    #[test]
    fn finds_the_true_top_ten_within_the_documented_bound() {
        let stream = skewed_stream();
        let mut truth: FxHashMap<&str, f64> = FxHashMap::default();
        let mut summary = SpaceSaving::new(1_000);
        for (user, spend) in &stream {
            *truth.entry(user).or_default() += spend;
            summary.add(user, *spend);
        }
        assert!(truth.len() > 50_000, "{} distinct users", truth.len());
        let mut true_top: Vec<(&str, f64)> = truth.iter().map(|(k, v)| (*k, *v)).collect();
        true_top.sort_by(|a, b| b.1.total_cmp(&a.1));
        let reported = summary.top(10);
        let bound = summary.error_bound();
        for ((true_key, true_spend), estimate) in true_top[..10].iter().zip(&reported) {
            assert_eq!(estimate.key, *true_key);
            assert!(
                estimate.count >= *true_spend - 1e-6,
                "{} under-counted",
                estimate.key
            );
            assert!(estimate.count - true_spend <= estimate.error + 1e-6);
            assert!(estimate.error <= bound + 1e-6);
        }
        // Memory is fixed by capacity, not by the 50,000+ distinct users.
        assert_eq!(summary.counters.len(), 1_000);
        assert_eq!(summary.index.len(), 1_000);
    }

    #[test]
    fn exact_while_under_capacity_and_clears() {
        let mut summary = SpaceSaving::new(3);
        summary.add("a", 1.0);
        summary.add("b", 5.0);
        summary.add("a", 2.0);
        assert_eq!(
            summary.get("a"),
            Some(Estimate {
                key: "a",
                count: 3.0,
                error: 0.0
            })
        );
        summary.add("c", 1.0);
        summary.add("d", 0.5);
        // "c" (1.0) was the smallest: "d" takes its place with error 1.0.
        assert_eq!(
            summary.get("d"),
            Some(Estimate {
                key: "d",
                count: 1.5,
                error: 1.0
            })
        );
        assert!(summary.get("c").is_none());
        assert_eq!(summary.top(1)[0].key, "b");
        summary.clear();
        assert!(summary.top(5).is_empty());
        assert_eq!(summary.total(), 0.0);
    }
}
