//! `docs/metrics.md` must say exactly what the catalog defines.

use std::path::PathBuf;

#[test]
fn metric_reference_matches_the_catalog() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/metrics.md");
    let expected = llmwatch_core::catalog::markdown_reference();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/metrics.md is out of date; regenerate with UPDATE_DOCS=1 cargo test -p llmwatch-core --test docs"
    );
}
