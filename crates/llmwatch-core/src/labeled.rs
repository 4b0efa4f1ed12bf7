//! Bounded metric families keyed by free label values, for the metrics whose labels are not the
//! GenAI label set: evaluations, feedback, safety flags, sessions, canaries, the judge.
//!
//! Each family holds at most a fixed number of label sets; records past the limit fold into one
//! series labelled `otel_metric_overflow="true"` and are counted, so memory never grows with
//! traffic. Some are updated per content-carrying span (the safety monitor's scanned calls), so a
//! lookup builds its key in a reused per-thread buffer and allocates only for a new label set.

use std::cell::RefCell;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rustc_hash::FxHashMap;

use crate::atomic::AtomicF64;
use crate::catalog::{self, MetricDef, MetricKind, OVERFLOW_LABEL};
use crate::histogram::AtomicHistogram;
use crate::snapshot::FamilySnapshot;

/// Longest label value kept; longer values are cut at a character boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;

/// Separates label values inside a map key; never part of a kept value.
const SEPARATOR: char = '\u{1f}';

#[derive(Debug)]
enum Cell {
    Scalar(AtomicF64),
    Histogram(AtomicHistogram),
}

impl Cell {
    fn new(def: &MetricDef) -> Cell {
        match def.kind {
            MetricKind::Histogram => Cell::Histogram(AtomicHistogram::new(def.buckets)),
            MetricKind::Counter | MetricKind::Gauge => Cell::Scalar(AtomicF64::new(0.0)),
        }
    }
}

/// One catalog metric with a bounded number of label sets.
#[derive(Debug)]
pub struct LabeledFamily {
    def: &'static MetricDef,
    max_label_sets: usize,
    cells: RwLock<FxHashMap<Box<str>, Cell>>,
    overflow: Cell,
    overflowed: AtomicU64,
}

impl LabeledFamily {
    /// The family of catalog metric `name`, holding at most `max_label_sets` label sets.
    ///
    /// # Panics
    /// When `name` is not in the catalog (a programming error every test run catches).
    pub fn new(name: &str, max_label_sets: usize) -> LabeledFamily {
        let def = catalog::def(name);
        LabeledFamily {
            def,
            max_label_sets,
            cells: RwLock::new(FxHashMap::default()),
            overflow: Cell::new(def),
            overflowed: AtomicU64::new(0),
        }
    }

    pub fn def(&self) -> &'static MetricDef {
        self.def
    }

    /// Adds to a counter (or gauge) series.
    pub fn add(&self, values: &[&str], delta: f64) {
        self.with_cell(values, |cell| {
            if let Cell::Scalar(value) = cell {
                value.add(delta)
            }
        });
    }

    /// Sets a gauge series.
    pub fn set(&self, values: &[&str], value: f64) {
        self.with_cell(values, |cell| {
            if let Cell::Scalar(cell) = cell {
                cell.set(value)
            }
        });
    }

    /// Records one observation in a histogram series.
    pub fn observe(&self, values: &[&str], value: f64) {
        self.with_cell(values, |cell| {
            if let Cell::Histogram(histogram) = cell {
                histogram.observe(value, 1)
            }
        });
    }

    /// The current value of a counter or gauge series (0 when it does not exist).
    pub fn get(&self, values: &[&str]) -> f64 {
        with_key(values, |key| {
            let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
            match cells.get(key) {
                Some(Cell::Scalar(value)) => value.get(),
                _ => 0.0,
            }
        })
    }

    /// Removes a series (a gauge whose subject went away).
    pub fn remove(&self, values: &[&str]) {
        with_key(values, |key| {
            let mut cells = self.cells.write().unwrap_or_else(|e| e.into_inner());
            cells.remove(key);
        });
    }

    /// Records that overflowed the label-set limit since start.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Relaxed)
    }

    pub fn label_sets(&self) -> usize {
        self.cells.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn with_cell(&self, values: &[&str], update: impl FnOnce(&Cell)) {
        debug_assert_eq!(
            values.len(),
            self.def.labels.len(),
            "{}: label values do not match the catalog",
            self.def.name
        );
        with_key(values, |key| {
            {
                let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
                if let Some(cell) = cells.get(key) {
                    return update(cell);
                }
            }
            let mut cells = self.cells.write().unwrap_or_else(|e| e.into_inner());
            if let Some(cell) = cells.get(key) {
                return update(cell);
            }
            if cells.len() >= self.max_label_sets {
                drop(cells);
                self.overflowed.fetch_add(1, Relaxed);
                return update(&self.overflow);
            }
            let cell = cells
                .entry(Box::from(key))
                .or_insert_with(|| Cell::new(self.def));
            update(cell);
        })
    }

    /// Appends this family's samples, sorted by label values so expositions are stable.
    pub fn snapshot_into(&self, families: &mut Vec<FamilySnapshot>) {
        let mut family = FamilySnapshot::new(self.def);
        let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<&Box<str>> = cells.keys().collect();
        keys.sort_unstable();
        for key in keys {
            let labels = self
                .def
                .labels
                .iter()
                .zip(key.split(SEPARATOR))
                .map(|(name, value)| ((*name).to_owned(), value.to_owned()))
                .collect();
            push(&mut family, labels, &cells[key]);
        }
        drop(cells);
        if self.overflowed() > 0 {
            let mut labels: Vec<(String, String)> = self
                .def
                .labels
                .iter()
                .map(|name| ((*name).to_owned(), String::new()))
                .collect();
            labels.push((OVERFLOW_LABEL.to_owned(), "true".to_owned()));
            push(&mut family, labels, &self.overflow);
        }
        families.push(family);
    }
}

fn push(family: &mut FamilySnapshot, labels: Vec<(String, String)>, cell: &Cell) {
    match cell {
        Cell::Scalar(value) => family.push_scalar(labels, value.get()),
        Cell::Histogram(histogram) => family.push_histogram(labels, histogram.snapshot()),
    }
}

thread_local! {
    /// The key buffer of [`with_key`], reused so that a lookup of an existing label set does not
    /// allocate.
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f` with the map key of these label values.
fn with_key<R>(values: &[&str], f: impl FnOnce(&str) -> R) -> R {
    KEY.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut key) => {
            write_key(&mut key, values);
            f(&key)
        }
        // Only if `f` itself looked up a key: fall back to a fresh buffer.
        Err(_) => f(&key(values)),
    })
}

fn key(values: &[&str]) -> String {
    let mut key = String::new();
    write_key(&mut key, values);
    key
}

/// The map key of a label set: values cut to [`MAX_LABEL_VALUE_BYTES`], separator removed.
fn write_key(key: &mut String, values: &[&str]) {
    key.clear();
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            key.push(SEPARATOR);
        }
        let mut end = value.len().min(MAX_LABEL_VALUE_BYTES);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        key.extend(value[..end].chars().filter(|&c| c != SEPARATOR));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::names;
    use crate::snapshot::SampleValue;

    #[test]
    fn label_sets_past_the_limit_fold_into_one_counted_series() {
        let family = LabeledFamily::new(names::SESSION_SIGNALS, 2);
        family.add(&["a", "retry"], 1.0);
        family.add(&["b", "retry"], 2.0);
        family.add(&["c", "retry"], 4.0);
        family.add(&["d", "retry"], 8.0);
        family.add(&["a", "retry"], 16.0);
        assert_eq!(family.label_sets(), 2);
        assert_eq!(family.overflowed(), 2);
        assert_eq!(family.get(&["a", "retry"]), 17.0);
        let mut families = Vec::new();
        family.snapshot_into(&mut families);
        let samples = &families[0].samples;
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[2].value, SampleValue::Counter(12.0));
        assert!(
            samples[2]
                .labels
                .contains(&(OVERFLOW_LABEL.to_owned(), "true".to_owned()))
        );
    }

    #[test]
    fn long_values_are_cut_and_separators_cannot_split_a_key() {
        let long = "é".repeat(100);
        assert_eq!(key(&[&long, "x"]).len(), MAX_LABEL_VALUE_BYTES + 2);
        assert_eq!(key(&["a\u{1f}b", "c"]), key(&["ab", "c"]));
    }

    #[test]
    fn histograms_and_gauges() {
        let scores = LabeledFamily::new(names::EVALUATION_SCORE, 10);
        scores.observe(&["svc", "m", "correctness", "judge"], 0.25);
        scores.observe(&["svc", "m", "correctness", "judge"], 0.75);
        let passing = LabeledFamily::new(names::CANARY_PASSING, 10);
        passing.set(&["json", "m"], 1.0);
        passing.set(&["json", "m"], 0.0);
        let mut families = Vec::new();
        scores.snapshot_into(&mut families);
        passing.snapshot_into(&mut families);
        match &families[0].samples[0].value {
            SampleValue::Histogram(h) => {
                assert_eq!(h.count, 2);
                assert_eq!(h.sum, 1.0);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(families[1].samples[0].value, SampleValue::Gauge(0.0));
    }
}
