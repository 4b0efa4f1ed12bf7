//! Agreement with scipy 1.17 / numpy 2.4 on the fixtures made by
//! `tests/fixtures/make_fixtures_a.py` (KS two-sample and kstwo, chi-square, PSI and
//! Jensen–Shannon, Wasserstein-1 and energy distance).
//!
//! Tolerance: 1e-9 relative, or 1e-12 absolute for values near 0, for everything.

use std::collections::HashMap;
use std::path::PathBuf;

use llmwatch_stats::binned::{
    Bins, jensen_shannon, jensen_shannon_categorical, jensen_shannon_from_counts, psi,
    psi_categorical, psi_from_counts,
};
use llmwatch_stats::chi2::{chi2_contingency, chisquare_gof};
use llmwatch_stats::distance::{energy_distance, wasserstein_distance};
use llmwatch_stats::ks::{Alternative, KsMethod, ks_2samp};
use llmwatch_stats::kstwo::{kstwo_cdf, kstwo_sf, smirnov_sf};
use serde_json::Value;

const REL: f64 = 1e-9;
const ABS: f64 = 1e-12;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).unwrap();
    let meta = &value["meta"];
    assert!(
        meta["scipy"].is_string() && meta["numpy"].is_string(),
        "{name}: versions recorded"
    );
    value
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        Value::String(s) if s == "nan" => f64::NAN,
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn samples(file: &Value) -> HashMap<String, Vec<f64>> {
    file["samples"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), floats(v)))
        .collect()
}

fn close(actual: f64, expected: f64) -> bool {
    if expected.is_infinite() || actual.is_infinite() {
        return actual == expected;
    }
    let diff = (actual - expected).abs();
    diff <= ABS || diff <= REL * expected.abs()
}

/// Collects mismatches so that one run reports all of them.
#[derive(Default)]
struct Report {
    failures: Vec<String>,
    checked: usize,
}

impl Report {
    fn check(&mut self, what: &str, actual: f64, expected: f64) {
        self.checked += 1;
        if !close(actual, expected) {
            let rel = ((actual - expected) / expected).abs();
            self.failures.push(format!(
                "{what}: got {actual:e}, scipy {expected:e} (rel {rel:.1e})"
            ));
        }
    }

    fn check_eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, actual: T, expected: T) {
        self.checked += 1;
        if actual != expected {
            self.failures
                .push(format!("{what}: got {actual:?}, scipy {expected:?}"));
        }
    }

    fn finish(self, name: &str) {
        assert!(self.checked > 0);
        assert!(
            self.failures.is_empty(),
            "{name}: {} of {} checks differ from scipy:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
    }
}

#[test]
fn ks_2samp_matches_scipy() {
    let file = load("a_ks.json");
    let data = samples(&file);
    let mut report = Report::default();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let d1 = &data[case["data1"].as_str().unwrap()];
        let d2 = &data[case["data2"].as_str().unwrap()];
        let alternative = match case["alternative"].as_str().unwrap() {
            "two-sided" => Alternative::TwoSided,
            "less" => Alternative::Less,
            "greater" => Alternative::Greater,
            other => panic!("{other}"),
        };
        let method = match case["method"].as_str().unwrap() {
            "auto" => KsMethod::Auto,
            "exact" => KsMethod::Exact,
            "asymp" => KsMethod::Asymp,
            other => panic!("{other}"),
        };
        let r = match ks_2samp(d1, d2, alternative, method) {
            Ok(r) => r,
            Err(e) => {
                report.failures.push(format!("{name}: error {e}"));
                continue;
            }
        };
        report.check(
            &format!("{name} statistic"),
            r.statistic,
            num(&case["statistic"]),
        );
        report.check(&format!("{name} pvalue"), r.p_value, num(&case["pvalue"]));
        report.check_eq(
            &format!("{name} location"),
            r.statistic_location,
            num(&case["statistic_location"]),
        );
        report.check_eq(
            &format!("{name} sign"),
            i64::from(r.statistic_sign),
            case["statistic_sign"].as_i64().unwrap(),
        );
        report.check_eq(
            &format!("{name} method"),
            r.method.as_str(),
            case["method_used"].as_str().unwrap(),
        );
        report.check_eq(
            &format!("{name} exact_failed"),
            r.exact_failed,
            case["exact_failed"].as_bool().unwrap(),
        );
    }
    report.finish("ks_2samp");
}

#[test]
fn kstwo_matches_scipy() {
    let file = load("a_kstwo.json");
    let mut report = Report::default();
    for case in file["cases"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap();
        let d = num(&case["d"]);
        let what = format!("n={n} d={d}");
        report.check(
            &format!("{what} sf"),
            kstwo_sf(n, d).unwrap(),
            num(&case["sf"]),
        );
        report.check(
            &format!("{what} cdf"),
            kstwo_cdf(n, d).unwrap(),
            num(&case["cdf"]),
        );
        report.check(
            &format!("{what} smirnov"),
            smirnov_sf(n, d).unwrap(),
            num(&case["smirnov"]),
        );
    }
    report.finish("kstwo");
}

#[test]
fn chi2_matches_scipy() {
    let file = load("a_chi2.json");
    let mut report = Report::default();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reference = counts(&case["reference"]);
        let current = counts(&case["current"]);
        for (key, correction) in [("contingency", true), ("contingency_nocorr", false)] {
            let expected = &case[key];
            let r = chi2_contingency(&reference, &current, correction).unwrap();
            report.check(
                &format!("{name} {key} statistic"),
                r.statistic,
                num(&expected["statistic"]),
            );
            report.check(
                &format!("{name} {key} pvalue"),
                r.p_value,
                num(&expected["pvalue"]),
            );
            report.check_eq(
                &format!("{name} {key} dof"),
                r.dof as u64,
                expected["dof"].as_u64().unwrap(),
            );
        }
        let gof = chisquare_gof(&reference, &current);
        if case["gof"].is_null() {
            report.check_eq(&format!("{name} gof is an error"), gof.is_err(), true);
        } else {
            let expected = &case["gof"];
            let r = gof.unwrap();
            report.check(
                &format!("{name} gof statistic"),
                r.statistic,
                num(&expected["statistic"]),
            );
            report.check(
                &format!("{name} gof pvalue"),
                r.p_value,
                num(&expected["pvalue"]),
            );
            report.check_eq(
                &format!("{name} gof dof"),
                r.dof as u64,
                expected["dof"].as_u64().unwrap(),
            );
            report.check_eq(
                &format!("{name} gof unseen flag"),
                r.unseen_in_reference,
                r.statistic.is_infinite(),
            );
        }
    }
    report.finish("chi2");
}

#[test]
fn psi_and_jensen_shannon_match_numpy_and_scipy() {
    let file = load("a_binned.json");
    let data = samples(&file);
    let mut report = Report::default();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reference = &data[case["reference"].as_str().unwrap()];
        let current = &data[case["current"].as_str().unwrap()];
        let bins = Bins::deciles(reference).unwrap();
        let edges = floats(&case["edges"]);
        report.check_eq(
            &format!("{name} edge count"),
            bins.edges().len(),
            edges.len(),
        );
        for (i, (&a, &e)) in bins.edges().iter().zip(&edges).enumerate() {
            report.check(&format!("{name} edge {i}"), a, e);
        }
        let rc = bins.counts(reference).unwrap();
        let cc = bins.counts(current).unwrap();
        report.check_eq(
            &format!("{name} reference counts"),
            rc.clone(),
            counts(&case["reference_counts"]),
        );
        report.check_eq(
            &format!("{name} current counts"),
            cc.clone(),
            counts(&case["current_counts"]),
        );
        // Incremental binning gives the same counts.
        let mut live = vec![0; bins.bin_count()];
        for chunk in current.chunks(7) {
            bins.accumulate(&mut live, chunk).unwrap();
        }
        report.check_eq(&format!("{name} incremental counts"), live, cc.clone());
        report.check(
            &format!("{name} psi"),
            psi(reference, current).unwrap(),
            num(&case["psi"]),
        );
        report.check(
            &format!("{name} psi counts"),
            psi_from_counts(&rc, &cc).unwrap(),
            num(&case["psi"]),
        );
        report.check(
            &format!("{name} js"),
            jensen_shannon(reference, current).unwrap(),
            num(&case["js"]),
        );
        report.check(
            &format!("{name} js counts"),
            jensen_shannon_from_counts(&rc, &cc).unwrap(),
            num(&case["js"]),
        );
    }
    for case in file["categorical"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let pairs = |v: &Value| -> Vec<(String, u64)> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_u64().unwrap()))
                .collect()
        };
        let (reference, current) = (pairs(&case["reference"]), pairs(&case["current"]));
        report.check(
            &format!("{name} categorical psi"),
            psi_categorical(reference.clone(), current.clone()).unwrap(),
            num(&case["psi"]),
        );
        report.check(
            &format!("{name} categorical js"),
            jensen_shannon_categorical(reference, current).unwrap(),
            num(&case["js"]),
        );
    }
    report.finish("binned");
}

#[test]
fn distances_match_scipy() {
    let file = load("a_distance.json");
    let data = samples(&file);
    let mut report = Report::default();
    for case in file["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let u = &data[case["u"].as_str().unwrap()];
        let v = &data[case["v"].as_str().unwrap()];
        report.check(
            &format!("{name} wasserstein"),
            wasserstein_distance(u, v).unwrap(),
            num(&case["wasserstein"]),
        );
        report.check(
            &format!("{name} energy"),
            energy_distance(u, v).unwrap(),
            num(&case["energy"]),
        );
        // Symmetric in its arguments.
        report.check(
            &format!("{name} wasserstein swapped"),
            wasserstein_distance(v, u).unwrap(),
            num(&case["wasserstein"]),
        );
    }
    report.finish("distance");
}
