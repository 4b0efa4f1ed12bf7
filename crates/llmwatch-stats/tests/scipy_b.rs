//! Agreement with scipy / numpy reference values made by `tests/fixtures/make_fixtures_b.py`
//! (versions recorded in each `b_*.json`).
//!
//! Tolerance: 1e-9 relative for every closed form (statistics, critical values, interpolated
//! p-values, exact CvM p-values, MMD², σ, chart values). Looser, and why:
//! * asymptotic CvM p-values: `|Δp| ≤ 1e-9·p + 1e-14`, because `p = 1 − F(t_n)` loses the
//!   relative accuracy of `F` (~1e-16 absolute) when `p` is tiny (3e-9 in one case);
//! * MMD² estimates that are near zero by construction: `|Δ| ≤ 1e-9·|ref| + 1e-13` (cancellation
//!   of kernel means of order 1);
//! * embeddings: 1e-12 absolute per component.
//!
//! Permutation p-values (same count of permutations at least as large), chart alarm flags and
//! indices must match exactly.

use std::path::PathBuf;

use llmwatch_stats::anderson::{PValueBound, anderson_ksamp};
use llmwatch_stats::cvm::{CvmMethod, cramervonmises_2samp, cvm_limit_cdf};
use llmwatch_stats::embed::HashingEmbedder;
use llmwatch_stats::mmd::{Bandwidth, MmdEstimator, mmd2_permutation_test, mmd2_rbf};
use llmwatch_stats::spc::{
    BaselineConfig, ControlChart, CusumChart, CusumConfig, EwmaChart, EwmaConfig,
};
use llmwatch_stats::summary::SplitMix64;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn close(got: f64, expected: f64, rel: f64, abs: f64, what: &str) {
    let err = (got - expected).abs();
    assert!(
        err <= rel * expected.abs() + abs,
        "{what}: got {got:e}, expected {expected:e}, |Δ| = {err:e}"
    );
}

#[test]
fn anderson_ksamp_matches_scipy() {
    let data = fixture("b_anderson.json");
    let mut bounds = [0usize; 3];
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let samples: Vec<Vec<f64>> = case["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(f64s)
            .collect();
        let r = anderson_ksamp(&samples).unwrap_or_else(|e| panic!("{name}: {e}"));
        close(
            r.statistic,
            case["statistic"].as_f64().unwrap(),
            1e-9,
            0.0,
            &format!("{name} statistic"),
        );
        for (got, want) in r.critical_values.iter().zip(f64s(&case["critical_values"])) {
            close(*got, want, 1e-12, 0.0, &format!("{name} critical value"));
        }
        close(
            r.p_value,
            case["pvalue"].as_f64().unwrap(),
            1e-9,
            0.0,
            &format!("{name} p-value"),
        );
        bounds[match r.bound {
            PValueBound::Interpolated => 0,
            PValueBound::CappedAt025 => 1,
            PValueBound::FlooredAt0001 => 2,
        }] += 1;
    }
    assert!(
        bounds.iter().all(|&n| n > 0),
        "fixtures cover interpolation and both caps: {bounds:?}"
    );
}

#[test]
fn cramervonmises_2samp_matches_scipy() {
    let data = fixture("b_cvm.json");
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (x, y) = (f64s(&case["x"]), f64s(&case["y"]));
        let method = match case["method"].as_str().unwrap() {
            "auto" => CvmMethod::Auto,
            "exact" => CvmMethod::Exact,
            _ => CvmMethod::Asymptotic,
        };
        let r = cramervonmises_2samp(&x, &y, method).unwrap_or_else(|e| panic!("{name}: {e}"));
        close(
            r.statistic,
            case["statistic"].as_f64().unwrap(),
            1e-9,
            0.0,
            &format!("{name} statistic"),
        );
        let expected_p = case["pvalue"].as_f64().unwrap();
        let exact = r.method == CvmMethod::Exact;
        assert_eq!(
            exact,
            name.contains("exact"),
            "{name}: method {:?}",
            r.method
        );
        let abs = if exact { 0.0 } else { 1e-14 };
        close(r.p_value, expected_p, 1e-9, abs, &format!("{name} p-value"));
    }
    for point in data["limit_cdf"].as_array().unwrap() {
        let x = point["x"].as_f64().unwrap();
        close(
            cvm_limit_cdf(x),
            point["cdf"].as_f64().unwrap(),
            1e-9,
            0.0,
            &format!("limit cdf at {x}"),
        );
    }
}

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(f64s).collect()
}

#[test]
fn mmd_matches_numpy_reference() {
    let data = fixture("b_mmd.json");
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (x, y) = (vectors(&case["x"]), vectors(&case["y"]));
        let bandwidth = case["given_sigma"]
            .as_f64()
            .map_or(Bandwidth::MedianHeuristic, Bandwidth::Sigma);
        let r = mmd2_rbf(&x, &y, bandwidth).unwrap_or_else(|e| panic!("{name}: {e}"));
        close(
            r.sigma,
            case["sigma"].as_f64().unwrap(),
            1e-9,
            0.0,
            &format!("{name} sigma"),
        );
        close(
            r.biased,
            case["biased"].as_f64().unwrap(),
            1e-9,
            1e-13,
            &format!("{name} biased"),
        );
        close(
            r.unbiased,
            case["unbiased"].as_f64().unwrap(),
            1e-9,
            1e-13,
            &format!("{name} unbiased"),
        );
        if let Some(permutations) = case["permutations"].as_u64() {
            let estimator = match case["estimator"].as_str().unwrap() {
                "biased" => MmdEstimator::Biased,
                _ => MmdEstimator::Unbiased,
            };
            let seed = case["seed"].as_u64().unwrap();
            let t =
                mmd2_permutation_test(&x, &y, bandwidth, estimator, permutations as usize, seed)
                    .unwrap();
            // Same permutations, so the same count: equal up to serde_json's last-bit parsing.
            close(
                t.p_value,
                case["pvalue"].as_f64().unwrap(),
                1e-15,
                0.0,
                &format!("{name} permutation p"),
            );
        }
    }
    let sm = &data["splitmix64"];
    let mut rng = SplitMix64::new(0);
    for expected in sm["seed0_first"].as_array().unwrap() {
        assert_eq!(rng.next_u64().to_string(), expected.as_str().unwrap());
    }
    let mut rng = SplitMix64::new(12345);
    for expected in sm["seed12345_below_10"].as_array().unwrap() {
        assert_eq!(rng.below(10), expected.as_u64().unwrap());
    }
    let mut order: Vec<u64> = (0..12).collect();
    SplitMix64::new(2024).shuffle(&mut order);
    let expected: Vec<u64> = sm["seed2024_shuffle_12"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(order, expected);
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect()
}

#[test]
fn control_charts_match_numpy_reference() {
    let data = fixture("b_spc.json");
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let values = f64s(&data["series"][case["series"].as_str().unwrap()]);
        let baseline = BaselineConfig {
            mean: case["mean"].as_f64(),
            sigma: case["sigma"].as_f64(),
            warmup: case["warmup"].as_u64().unwrap() as usize,
        };
        let reset = case["reset"].as_bool().unwrap();
        let points = if case["chart"] == "ewma" {
            let config = EwmaConfig {
                lambda: case["lambda"].as_f64().unwrap(),
                l: case["l"].as_f64().unwrap(),
                baseline,
                reset_after_alarm: reset,
            };
            EwmaChart::new(config).unwrap().run_chart(&values).unwrap()
        } else {
            let config = CusumConfig {
                k: case["k"].as_f64().unwrap(),
                h: case["h"].as_f64().unwrap(),
                baseline,
                reset_after_alarm: reset,
            };
            CusumChart::new(config).unwrap().run_chart(&values).unwrap()
        };
        let index: Vec<u64> = case["index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(
            points.iter().map(|p| p.index).collect::<Vec<_>>(),
            index,
            "{name} indices"
        );
        let value = f64s(&case["value"]);
        let (high, low) = (bools(&case["high"]), bools(&case["low"]));
        for (i, p) in points.iter().enumerate() {
            let what = format!("{name} point {i}");
            close(p.value, value[i], 1e-9, 1e-12, &what);
            assert_eq!(
                (p.high, p.low, p.alarm),
                (high[i], low[i], high[i] || low[i]),
                "{what} alarms"
            );
            if case["chart"] == "ewma" {
                close(p.center, case["center"].as_f64().unwrap(), 1e-9, 0.0, &what);
                close(p.upper, f64s(&case["upper"])[i], 1e-9, 0.0, &what);
                close(p.lower, f64s(&case["lower"])[i], 1e-9, 0.0, &what);
                assert_eq!(p.value_low, p.value);
            } else {
                close(p.value_low, f64s(&case["value_low"])[i], 1e-9, 1e-12, &what);
                close(
                    p.upper,
                    case["threshold"].as_f64().unwrap(),
                    1e-9,
                    0.0,
                    &what,
                );
                assert_eq!(p.lower, -p.upper);
            }
        }
    }
}

#[test]
fn embedder_matches_python_reference() {
    let data = fixture("b_embed.json");
    for case in data["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let embedder = HashingEmbedder {
            dim: case["dim"].as_u64().unwrap() as usize,
            ..HashingEmbedder::default()
        };
        let got = embedder.embed(text).unwrap();
        let expected = f64s(&case["vector"]);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            close(*g, *e, 0.0, 1e-12, &format!("embedding of {text:?}"));
        }
    }
}
