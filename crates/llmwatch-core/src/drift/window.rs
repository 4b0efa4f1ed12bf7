//! A ring of time buckets: the current window slides by whole buckets, and a trailing reference
//! reads the buckets an offset earlier. Memory is the ring's length times one bucket, whatever
//! the traffic.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ring<T> {
    bucket_seconds: u64,
    /// (bucket number, contents); a slot holds the newest bucket that maps to it.
    slots: Vec<(i64, T)>,
}

impl<T> Ring<T> {
    pub fn new(len: usize, bucket_seconds: u64, empty: impl Fn() -> T) -> Ring<T> {
        Ring {
            bucket_seconds: bucket_seconds.max(1),
            slots: (0..len.max(1)).map(|_| (i64::MIN, empty())).collect(),
        }
    }

    /// Number of buckets the ring holds.
    pub fn bucket_count(&self) -> usize {
        self.slots.len()
    }

    pub fn bucket_of(&self, t: i64) -> i64 {
        t.div_euclid(self.bucket_seconds as i64)
    }

    /// The bucket for time `t` (seconds), emptied first if it held an older bucket; `None` for a
    /// time older than the ring remembers.
    pub fn at(&mut self, t: i64, clear: impl FnOnce(&mut T)) -> Option<&mut T> {
        let bucket = self.bucket_of(t);
        let len = self.slots.len() as i64;
        let slot = &mut self.slots[bucket.rem_euclid(len) as usize];
        if slot.0 > bucket {
            return None;
        }
        if slot.0 < bucket {
            clear(&mut slot.1);
            slot.0 = bucket;
        }
        Some(&mut slot.1)
    }

    /// The buckets numbered `first..=last` that are present.
    pub fn range(&self, first: i64, last: i64) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .filter(move |(b, _)| *b >= first && *b <= last)
            .map(|(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_slide_and_old_times_are_refused() {
        let mut ring: Ring<u32> = Ring::new(3, 10, || 0);
        *ring.at(5, |c| *c = 0).unwrap() += 1;
        *ring.at(15, |c| *c = 0).unwrap() += 1;
        *ring.at(25, |c| *c = 0).unwrap() += 1;
        *ring.at(27, |c| *c = 0).unwrap() += 1;
        assert_eq!(ring.range(0, 2).copied().collect::<Vec<_>>(), [1, 1, 2]);
        // Bucket 3 reuses bucket 0's slot.
        *ring.at(31, |c| *c = 0).unwrap() += 5;
        assert_eq!(ring.range(1, 3).copied().sum::<u32>(), 1 + 2 + 5);
        assert!(ring.at(4, |c| *c = 0).is_none());
    }
}
