//! A least-recently-used cache of fixed capacity, keyed by a 64-bit hash: the embeddings
//! client's memory of texts it has embedded. Pure bookkeeping, O(log n) per operation.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
pub(crate) struct LruCache<V> {
    capacity: usize,
    /// key → (value, the tick it was last used at).
    entries: HashMap<u64, (V, u64)>,
    /// tick → key, oldest first.
    order: BTreeMap<u64, u64>,
    tick: u64,
}

impl<V> LruCache<V> {
    /// A cache of at most `capacity` entries; 0 keeps nothing.
    pub(crate) fn new(capacity: usize) -> LruCache<V> {
        LruCache {
            capacity,
            entries: HashMap::with_capacity(capacity.min(1 << 16)),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get(&mut self, key: u64) -> Option<&V> {
        let tick = self.next_tick();
        let (value, used) = self.entries.get_mut(&key)?;
        self.order.remove(used);
        self.order.insert(tick, key);
        *used = tick;
        Some(value)
    }

    /// Keeps `value` under `key` as the most recently used, evicting the least recently used
    /// entry when full.
    pub(crate) fn insert(&mut self, key: u64, value: V) {
        if self.capacity == 0 {
            return;
        }
        let tick = self.next_tick();
        if let Some((_, used)) = self.entries.insert(key, (value, tick)) {
            self.order.remove(&used);
        } else if self.entries.len() > self.capacity
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.entries.remove(&oldest);
        }
        self.order.insert(tick, key);
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let mut cache = LruCache::new(2);
        cache.insert(1, "one");
        cache.insert(2, "two");
        // Using 1 makes 2 the oldest.
        assert_eq!(cache.get(1), Some(&"one"));
        cache.insert(3, "three");
        assert_eq!(cache.entries.len(), 2);
        assert_eq!(cache.get(2), None);
        assert_eq!(cache.get(1), Some(&"one"));
        assert_eq!(cache.get(3), Some(&"three"));
        // Replacing a value refreshes it without evicting anything.
        cache.insert(1, "uno");
        cache.insert(4, "four");
        assert_eq!(cache.get(3), None);
        assert_eq!(cache.get(1), Some(&"uno"));
        assert_eq!(cache.get(4), Some(&"four"));
        assert_eq!(cache.order.len(), 2);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let mut cache = LruCache::new(0);
        cache.insert(1, 1.0);
        assert_eq!(cache.get(1), None);
        assert!(cache.entries.is_empty());
    }
}
