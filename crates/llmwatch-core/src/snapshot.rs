//! A neutral copy of every metric at one moment, for any exposition (Prometheus text, JSON,
//! OTLP push). Built off the ingest path.

use crate::catalog::{MetricDef, MetricKind};
use crate::histogram::HistogramSnapshot;

#[derive(Debug, Clone, PartialEq)]
pub struct FamilySnapshot {
    pub def: &'static MetricDef,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label name and value pairs; an empty value means the label is absent.
    pub labels: Vec<(String, String)>,
    pub value: SampleValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Counter(f64),
    Gauge(f64),
    Histogram(HistogramSnapshot),
}

impl FamilySnapshot {
    pub fn new(def: &'static MetricDef) -> FamilySnapshot {
        FamilySnapshot {
            def,
            samples: Vec::new(),
        }
    }

    /// Adds a counter or gauge sample, by the family's kind.
    pub fn push_scalar(&mut self, labels: Vec<(String, String)>, value: f64) {
        let value = match self.def.kind {
            MetricKind::Counter => SampleValue::Counter(value),
            MetricKind::Gauge => SampleValue::Gauge(value),
            MetricKind::Histogram => panic!("{} is a histogram", self.def.name),
        };
        self.samples.push(Sample { labels, value });
    }
}

impl FamilySnapshot {
    pub fn push_histogram(&mut self, labels: Vec<(String, String)>, histogram: HistogramSnapshot) {
        assert_eq!(
            self.def.kind,
            MetricKind::Histogram,
            "{} is not a histogram",
            self.def.name
        );
        self.samples.push(Sample {
            labels,
            value: SampleValue::Histogram(histogram),
        });
    }
}

/// Finds a family by name in a snapshot.
pub fn family<'s>(families: &'s [FamilySnapshot], name: &str) -> Option<&'s FamilySnapshot> {
    families.iter().find(|family| family.def.name == name)
}

impl Sample {
    /// Whether the sample carries every one of these label values (it may carry others).
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        labels
            .iter()
            .all(|(n, v)| self.labels.iter().any(|(ln, lv)| ln == n && lv == v))
    }

    /// A counter's or gauge's value; panics on a histogram sample.
    pub fn scalar(&self) -> f64 {
        match &self.value {
            SampleValue::Counter(v) | SampleValue::Gauge(v) => *v,
            SampleValue::Histogram(_) => panic!("a histogram sample has no single value"),
        }
    }
}

/// The samples of family `name` that carry these label values; none when the family is absent.
pub fn matching<'s>(
    families: &'s [FamilySnapshot],
    name: &str,
    labels: &'s [(&'s str, &'s str)],
) -> impl Iterator<Item = &'s Sample> + 's {
    family(families, name)
        .into_iter()
        .flat_map(|f| &f.samples)
        .filter(move |s| s.has_labels(labels))
}
