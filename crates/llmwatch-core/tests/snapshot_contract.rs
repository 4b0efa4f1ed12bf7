//! The snapshot every exposition renders: one family per catalog metric name, so Prometheus text
//! never repeats a `# TYPE` line and OTLP push never sends two metrics of one name.

use std::collections::BTreeSet;

use llmwatch_core::catalog;
use llmwatch_core::{Processor, ProcessorConfig};

#[test]
fn every_family_is_a_catalog_metric_and_appears_once() {
    let processor = Processor::new(&ProcessorConfig::default()).unwrap();
    let families = processor.snapshot();
    let mut seen = BTreeSet::new();
    for family in &families {
        assert!(
            catalog::lookup(family.def.name).is_some(),
            "{} is not in the catalog",
            family.def.name
        );
        assert!(
            seen.insert(family.def.name),
            "{} appears twice in one snapshot",
            family.def.name
        );
    }
}
