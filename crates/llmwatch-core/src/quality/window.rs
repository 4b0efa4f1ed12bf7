//! Counts per service over a trailing window of fixed time buckets, for the feedback and session
//! ratios. Memory is services × buckets × counters whatever the traffic: a bucket is reused once
//! its time has passed, and services past the limit are not counted (the drops are).

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// What the ratios are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Model calls (the coverage denominator).
    Calls,
    /// Feedback on a call that had none yet, and feedback that matched no call.
    Covered,
    Feedback,
    Positive,
    Turns,
    FollowUp,
    Retry,
    Correction,
    Abandonment,
    /// Sessions that ended (the abandonment denominator).
    Ended,
}

pub const COUNTS: usize = Count::Ended as usize + 1;

/// Window totals of one service, indexed by [`Count`].
pub type Totals = [u64; COUNTS];

/// The window's shape: `buckets` buckets of `bucket_seconds`; the window covers the current,
/// partial bucket and the `buckets - 1` before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub bucket_seconds: u64,
    pub buckets: usize,
}

impl WindowSpec {
    /// `window` seconds in `buckets` buckets (at least one second and one bucket each).
    pub fn new(window: u64, buckets: usize) -> WindowSpec {
        let buckets = buckets.max(1);
        WindowSpec {
            bucket_seconds: (window / buckets as u64).max(1),
            buckets,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    epoch: u64,
    counts: [u32; COUNTS],
}

/// Bucketed counts per service.
#[derive(Debug)]
pub struct ServiceWindows {
    spec: WindowSpec,
    max_services: usize,
    services: Vec<(Arc<str>, Box<[Bucket]>)>,
    index: FxHashMap<Arc<str>, usize>,
    /// The service of the last count and its place: calls of one service come in runs, and
    /// names are shared `Arc`s, so a pointer comparison usually spares the map lookup.
    last: Option<(Arc<str>, usize)>,
    dropped: u64,
}

impl ServiceWindows {
    pub fn new(spec: WindowSpec, max_services: usize) -> ServiceWindows {
        ServiceWindows {
            spec,
            max_services,
            services: Vec::new(),
            index: FxHashMap::default(),
            last: None,
            dropped: 0,
        }
    }

    /// Adds `n` to a count of `service` at time `now` (Unix seconds).
    pub fn add(&mut self, service: &Arc<str>, count: Count, n: u32, now: u64) {
        let at = match &self.last {
            Some((last, at)) if Arc::ptr_eq(last, service) => *at,
            _ => {
                let at = match self.index.get(&**service) {
                    Some(&at) => at,
                    None if self.services.len() >= self.max_services => {
                        self.dropped += u64::from(n);
                        return;
                    }
                    None => {
                        let buckets = vec![Bucket::default(); self.spec.buckets].into();
                        self.services.push((service.clone(), buckets));
                        self.index.insert(service.clone(), self.services.len() - 1);
                        self.services.len() - 1
                    }
                };
                self.last = Some((service.clone(), at));
                at
            }
        };
        let buckets = &mut self.services[at].1;
        let epoch = now / self.spec.bucket_seconds;
        let bucket = &mut buckets[(epoch % self.spec.buckets as u64) as usize];
        if bucket.epoch != epoch {
            // A bucket from a passed round: its time left the window.
            *bucket = Bucket {
                epoch,
                counts: [0; COUNTS],
            };
        }
        let cell = &mut bucket.counts[count as usize];
        *cell = cell.saturating_add(n);
    }

    /// Adds every service's totals within the window ending at `now` into `out`.
    pub fn merge_into(&self, now: u64, out: &mut FxHashMap<Arc<str>, Totals>) {
        let current = now / self.spec.bucket_seconds;
        for (service, buckets) in &self.services {
            let mut totals = [0u64; COUNTS];
            let mut any = false;
            for bucket in buckets.iter().filter(|b| self.in_window(b, current)) {
                any = true;
                for (total, &n) in totals.iter_mut().zip(&bucket.counts) {
                    *total += u64::from(n);
                }
            }
            if any {
                let entry = out.entry(service.clone()).or_insert([0; COUNTS]);
                for (sum, n) in entry.iter_mut().zip(totals) {
                    *sum += n;
                }
            }
        }
    }

    fn in_window(&self, bucket: &Bucket, current: u64) -> bool {
        bucket.epoch <= current
            && bucket.epoch + self.spec.buckets as u64 > current
            && bucket.counts.iter().any(|&n| n > 0)
    }

    /// Forgets services with nothing left in the window, so a service that went away frees its
    /// place.
    pub fn prune(&mut self, now: u64) {
        let current = now / self.spec.bucket_seconds;
        let spec = self.spec;
        self.services.retain(|(_, buckets)| {
            buckets.iter().any(|b| {
                b.epoch <= current
                    && b.epoch + spec.buckets as u64 > current
                    && b.counts.iter().any(|&n| n > 0)
            })
        });
        self.index = self
            .services
            .iter()
            .enumerate()
            .map(|(at, (service, _))| (service.clone(), at))
            .collect();
        self.last = None;
    }

    /// Counts not kept because the service limit was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn services(&self) -> usize {
        self.services.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(windows: &ServiceWindows, now: u64) -> FxHashMap<Arc<str>, Totals> {
        let mut out = FxHashMap::default();
        windows.merge_into(now, &mut out);
        out
    }

    #[test]
    fn counts_leave_the_window_bucket_by_bucket() {
        // One hour in 12 buckets of 300 s; epoch = now / 300.
        let mut windows = ServiceWindows::new(WindowSpec::new(3600, 12), 10);
        let svc: Arc<str> = Arc::from("svc");
        let calls = |w: &ServiceWindows, now| totals(w, now)[&svc][Count::Calls as usize];
        windows.add(&svc, Count::Calls, 4, 1_000); // epoch 3
        windows.add(&svc, Count::Calls, 1, 1_299); // epoch 4
        windows.add(&svc, Count::Feedback, 2, 2_000); // epoch 6
        assert_eq!(calls(&windows, 2_000), 5);
        // Epoch 3 is in the window while the current epoch is below 3 + 12 = 15 (4500 s).
        assert_eq!(calls(&windows, 4_499), 5);
        assert_eq!(calls(&windows, 4_500), 1);
        assert_eq!(calls(&windows, 4_800), 0);
        assert_eq!(totals(&windows, 4_800)[&svc][Count::Feedback as usize], 2);
        assert!(!totals(&windows, 6_000).contains_key(&svc));
        // Epoch 15 reuses epoch 3's bucket, which starts again from zero.
        windows.add(&svc, Count::Calls, 7, 4_600);
        assert_eq!(calls(&windows, 4_600), 8);
        // Counts later than `now` are not in its window (epoch 3's 4 calls were overwritten).
        assert_eq!(calls(&windows, 1_299), 1);
    }

    #[test]
    fn services_past_the_limit_are_dropped_and_idle_ones_pruned() {
        let mut windows = ServiceWindows::new(WindowSpec::new(600, 2), 2);
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            windows.add(&Arc::from(name), Count::Turns, 1 + i as u32, 0);
        }
        assert_eq!(windows.services(), 2);
        assert_eq!(windows.dropped(), 3);
        windows.prune(10_000);
        assert_eq!(windows.services(), 0);
        windows.add(&Arc::from("c"), Count::Turns, 1, 10_000);
        assert_eq!(windows.services(), 1);
    }
}
