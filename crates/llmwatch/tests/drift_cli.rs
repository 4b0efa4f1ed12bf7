//! `llmwatch drift`, `llmwatch spc` and `llmwatch report` as a user runs them: the real binary on
//! files in a temporary folder. The statistics must equal scipy's (the llmwatch-stats fixtures,
//! computed with scipy 1.17.1) to 1e-9 relative, and the output field names are a contract.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_llmwatch");

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../llmwatch-stats/tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn run_json(args: &[&str]) -> Value {
    serde_json::from_str(&stdout(&run(args))).unwrap()
}

/// Fails with exit code 1 and a message on stderr containing `message`.
fn fails(args: &[&str], message: &str) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}");
    assert!(
        stderr.starts_with("llmwatch: ") && stderr.contains(message),
        "{args:?}: {stderr:?} lacks {message:?}"
    );
}

/// Equal to 1e-9 relative (the llmwatch-stats agreement tests' tolerance).
fn close(what: &str, actual: &Value, expected: &Value) {
    close_abs(what, actual, expected, 0.0);
}

/// `|Δ| ≤ 1e-9·|expected| + abs`: the stats tests' allowance where cancellation limits the
/// absolute accuracy (asymptotic CvM p-values ~1e-9, MMD² estimates near zero).
fn close_abs(what: &str, actual: &Value, expected: &Value, abs: f64) {
    let (a, e) = (actual.as_f64(), expected.as_f64());
    let (Some(a), Some(e)) = (a, e) else {
        panic!("{what}: {actual} vs {expected}");
    };
    assert!(
        a == e || (a - e).abs() <= 1e-9 * e.abs() + abs,
        "{what}: {a} != {e} (scipy)"
    );
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

struct Files {
    dir: tempfile::TempDir,
    count: usize,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
            count: 0,
        }
    }

    fn write(&mut self, text: &str) -> String {
        self.count += 1;
        let path = self.dir.path().join(format!("sample-{}", self.count));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// A JSON array of the values.
    fn json(&mut self, values: &Value) -> String {
        self.write(&values.to_string())
    }

    /// One number per line, in Rust's shortest round-trip form (exact).
    fn lines(&mut self, values: &Value) -> String {
        let lines: Vec<String> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{:?}", v.as_f64().unwrap()))
            .collect();
        self.write(&lines.join("\n"))
    }

    /// Category `c{i}` repeated `counts[i]` times, as a JSON array of strings.
    fn categories(&mut self, counts: &Value) -> String {
        let mut out = Vec::new();
        for (i, n) in counts.as_array().unwrap().iter().enumerate() {
            for _ in 0..n.as_u64().unwrap() {
                out.push(format!("c{i}"));
            }
        }
        self.json(&json!(out))
    }

    /// Categories from `[[name, count], ...]`, as a JSON array of strings (one per line would
    /// read names such as "0" as numbers).
    fn named_categories(&mut self, pairs: &Value) -> String {
        let mut out = Vec::new();
        for pair in pairs.as_array().unwrap() {
            for _ in 0..pair[1].as_u64().unwrap() {
                out.push(pair[0].clone());
            }
        }
        self.json(&Value::Array(out))
    }
}

fn drift(test: &str, reference: &str, current: &str, set: &[&str]) -> Value {
    let mut args = vec![
        "drift",
        "--test",
        test,
        "--reference",
        reference,
        "--current",
        current,
        "--json",
    ];
    for s in set {
        args.extend(["--set", s]);
    }
    run_json(&args)
}

#[test]
fn ks_matches_scipy_ks_2samp() {
    let fixture = fixture("a_ks.json");
    let mut files = Files::new();
    let cases = [
        ("medium_25_40_two-sided_auto", &[][..]),
        ("medium_50_50_greater_auto", &["alternative=greater"][..]),
        (
            "medium_100_37_less_exact",
            &["alternative=less", "method=exact"],
        ),
        ("medium_100_37_two-sided_asymp", &["method=asymp"]),
        ("pareto_two-sided", &[]),
        ("scores_greater", &["alternative=greater"]),
        // scipy's auto picks the asymptotic distribution above 10 000 values.
        ("large_10001_600_two-sided", &[]),
        // Auto asked for exact, which fails here; scipy falls back to asymp.
        ("overflow_1100_900_greater", &["alternative=greater"]),
    ];
    for (name, set) in cases {
        let case = fixture["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        let data1 = &fixture["samples"][case["data1"].as_str().unwrap()];
        let data2 = &fixture["samples"][case["data2"].as_str().unwrap()];
        // Both file forms: a JSON array and one number per line.
        let (reference, current) = (files.json(data1), files.lines(data2));
        let out = drift("ks", &reference, &current, set);
        close(
            &format!("{name} statistic"),
            &out["statistic"],
            &case["statistic"],
        );
        close(&format!("{name} p_value"), &out["p_value"], &case["pvalue"]);
        assert_eq!(out["method"], case["method_used"], "{name}");
        assert_eq!(out["exact_failed"], case["exact_failed"], "{name}");
        assert_eq!(out["alternative"], case["alternative"], "{name}");
        assert_eq!(out["n_reference"], json!(data1.as_array().unwrap().len()));
        assert_eq!(out["n_current"], json!(data2.as_array().unwrap().len()));
    }
}

#[test]
fn chi2_and_chisquare_match_scipy() {
    let fixture = fixture("a_chi2.json");
    let mut files = Files::new();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reference = files.categories(&case["reference"]);
        let current = files.categories(&case["current"]);
        for (set, expected) in [
            (&[][..], &case["contingency"]),
            (&["correction=false"][..], &case["contingency_nocorr"]),
        ] {
            let out = drift("chi2", &reference, &current, set);
            close(
                &format!("{name} chi2"),
                &out["statistic"],
                &expected["statistic"],
            );
            close(
                &format!("{name} chi2 p"),
                &out["p_value"],
                &expected["pvalue"],
            );
            assert_eq!(out["dof"], expected["dof"], "{name}");
        }
        let gof = &case["gof"];
        if gof.is_null() {
            // One category: dof 0, scipy's p-value is NaN.
            fails(
                &[
                    "drift",
                    "--test",
                    "chisquare",
                    "--reference",
                    &reference,
                    "--current",
                    &current,
                ],
                "at least two categories",
            );
            continue;
        }
        let out = drift("chisquare", &reference, &current, &[]);
        if gof["statistic"] == "inf" {
            // JSON has no infinity.
            assert_eq!(out["statistic"], Value::Null, "{name}");
            assert_eq!(out["unseen_in_reference"], true, "{name}");
        } else {
            close(&format!("{name} gof"), &out["statistic"], &gof["statistic"]);
            assert_eq!(out["unseen_in_reference"], false, "{name}");
        }
        close(&format!("{name} gof p"), &out["p_value"], &gof["pvalue"]);
        assert_eq!(out["dof"], gof["dof"], "{name}");
    }
}

#[test]
fn psi_js_wasserstein_and_energy_match_the_fixtures() {
    let binned = fixture("a_binned.json");
    let mut files = Files::new();
    for case in binned["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reference = files.json(&binned["samples"][case["reference"].as_str().unwrap()]);
        let current = files.json(&binned["samples"][case["current"].as_str().unwrap()]);
        for test in ["psi", "js"] {
            let out = drift(test, &reference, &current, &[]);
            close(&format!("{name} {test}"), &out["statistic"], &case[test]);
            assert_eq!(out["binning"], "reference_deciles");
            assert_eq!(
                out["bins"],
                json!(case["edges"].as_array().unwrap().len() + 1)
            );
        }
    }
    for case in binned["categorical"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let reference = files.named_categories(&case["reference"]);
        let current = files.named_categories(&case["current"]);
        for test in ["psi", "js"] {
            let out = drift(test, &reference, &current, &[]);
            close(&format!("{name} {test}"), &out["statistic"], &case[test]);
            assert_eq!(out["binning"], "categories");
        }
    }
    let distance = fixture("a_distance.json");
    for case in distance["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let u = files.json(&distance["samples"][case["u"].as_str().unwrap()]);
        let v = files.lines(&distance["samples"][case["v"].as_str().unwrap()]);
        for test in ["wasserstein", "energy"] {
            let out = drift(test, &u, &v, &[]);
            close(&format!("{name} {test}"), &out["statistic"], &case[test]);
        }
    }
}

#[test]
fn anderson_and_cvm_match_scipy() {
    let anderson = fixture("b_anderson.json");
    let mut files = Files::new();
    let mut checked = 0;
    for case in anderson["cases"].as_array().unwrap() {
        let samples = case["samples"].as_array().unwrap();
        if samples.len() != 2 {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let out = drift(
            "anderson",
            &files.json(&samples[0]),
            &files.json(&samples[1]),
            &[],
        );
        close(&format!("{name} A"), &out["statistic"], &case["statistic"]);
        close(&format!("{name} p"), &out["p_value"], &case["pvalue"]);
        for (i, c) in case["critical_values"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            close(
                &format!("{name} critical {i}"),
                &out["critical_values"][i],
                c,
            );
        }
        checked += 1;
    }
    assert!(checked >= 10);
    let cvm = fixture("b_cvm.json");
    for case in cvm["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let set = match case["method"].as_str().unwrap() {
            "exact" => vec!["method=exact"],
            "asymptotic" => vec!["method=asymptotic"],
            _ => vec![],
        };
        let out = drift(
            "cvm",
            &files.json(&case["x"]),
            &files.json(&case["y"]),
            &set,
        );
        close(&format!("{name} T"), &out["statistic"], &case["statistic"]);
        let abs = if out["method"] == "exact" { 0.0 } else { 1e-14 };
        close_abs(&format!("{name} p"), &out["p_value"], &case["pvalue"], abs);
    }
}

#[test]
fn mmd_matches_the_fixtures() {
    let mmd = fixture("b_mmd.json");
    let mut files = Files::new();
    for case in mmd["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case["estimator"] == "biased" {
            // The CLI's permutation test uses the unbiased estimate.
            continue;
        }
        let mut set = Vec::new();
        if let Some(sigma) = case["given_sigma"].as_f64() {
            set.push(format!("sigma={sigma:?}"));
        }
        match case["permutations"].as_u64() {
            Some(n) => {
                set.push(format!("permutations={n}"));
                set.push(format!("seed={}", case["seed"]));
            }
            None => set.push("permutations=0".into()),
        }
        let set: Vec<&str> = set.iter().map(String::as_str).collect();
        let out = drift(
            "mmd",
            &files.json(&case["x"]),
            &files.json(&case["y"]),
            &set,
        );
        let (u, b) = (&case["unbiased"], &case["biased"]);
        close_abs(&format!("{name} unbiased"), &out["statistic"], u, 1e-13);
        close_abs(&format!("{name} biased"), &out["mmd2_biased"], b, 1e-13);
        close(&format!("{name} sigma"), &out["bandwidth"], &case["sigma"]);
        if case["permutations"].is_null() {
            assert_eq!(out["p_value"], Value::Null, "{name}");
        } else {
            close(&format!("{name} p"), &out["p_value"], &case["pvalue"]);
        }
    }
}

#[test]
fn output_field_names_are_the_contract() {
    let mut files = Files::new();
    let a = files.json(&json!([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]));
    let b = files.json(&json!([2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5]));
    let cats_a = files.write("stop\nstop\nlength\nstop\n");
    let cats_b = files.write("stop\nlength\nlength\nstop\n");
    let vec_a = files.write("[0, 1]\n[1, 0]\n[1, 1]\n[0, 0.5]\n");
    let vec_b = files.json(&json!([[2, 1], [1, 2], [2, 2], [1.5, 1]]));
    let common = ["test", "n_reference", "n_current"];
    let expect = |out: &Value, test: &str, fields: &[&str]| {
        let want: BTreeSet<&str> = common.iter().chain(fields).copied().collect();
        assert_eq!(keys(out), want, "{test}");
        assert_eq!(out["test"], test);
    };
    expect(
        &drift("ks", &a, &b, &[]),
        "ks",
        &[
            "statistic",
            "p_value",
            "method",
            "alternative",
            "exact_failed",
            "statistic_location",
            "statistic_sign",
        ],
    );
    expect(
        &drift("chi2", &cats_a, &cats_b, &[]),
        "chi2",
        &["statistic", "p_value", "dof", "yates", "categories"],
    );
    expect(
        &drift("chisquare", &cats_a, &cats_b, &[]),
        "chisquare",
        &[
            "statistic",
            "p_value",
            "dof",
            "unseen_in_reference",
            "categories",
        ],
    );
    for test in ["psi", "js"] {
        expect(
            &drift(test, &a, &b, &[]),
            test,
            &["statistic", "binning", "bins"],
        );
        expect(
            &drift(test, &cats_a, &cats_b, &[]),
            test,
            &["statistic", "binning", "bins"],
        );
    }
    for test in ["wasserstein", "energy"] {
        expect(&drift(test, &a, &b, &[]), test, &["statistic"]);
    }
    expect(
        &drift("anderson", &a, &b, &[]),
        "anderson",
        &["statistic", "p_value", "p_value_bound", "critical_values"],
    );
    expect(
        &drift("cvm", &a, &b, &[]),
        "cvm",
        &["statistic", "p_value", "method"],
    );
    let mmd_fields = [
        "statistic",
        "mmd2_biased",
        "bandwidth",
        "p_value",
        "permutations",
        "seed",
        "dimensions",
    ];
    let out = drift("mmd", &vec_a, &vec_b, &["permutations=50", "seed=3"]);
    expect(&out, "mmd", &mmd_fields);
    assert_eq!(out["dimensions"], 2);
    assert_eq!(out["permutations"], 50);
    // Numbers are 1-dimensional vectors; the default is 1000 permutations with seed 0.
    let out = drift("mmd", &a, &b, &[]);
    expect(&out, "mmd", &mmd_fields);
    assert_eq!(out["dimensions"], 1);
    assert_eq!(out["permutations"], 1000);
    assert_eq!(out["seed"], 0);
    // Without --json: `key: value` lines.
    let text = stdout(&run(&[
        "drift",
        "--test",
        "ks",
        "--reference",
        &a,
        "--current",
        &b,
    ]));
    assert!(text.contains("\nmethod: exact\n"), "{text}");
    assert!(text.contains("\ntest: ks\n"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("p_value: 0.")), "{text}");
}

#[test]
fn spc_alarms_on_a_step() {
    let mut files = Files::new();
    // In control at 0 (σ = 1) for indices 0..=9, then a step to +3 at index 10.
    let series: Vec<f64> = (0..20).map(|i| if i < 10 { 0.0 } else { 3.0 }).collect();
    let file = files.lines(&json!(series));
    // CUSUM (k = 0.5, h = 5): C⁺ grows by 3 − 0.5 = 2.5 per step: 2.5 at 10, 5.0 at 11 (not
    // > 5), 7.5 at 12 → alarm; reset to 0, so again at 15 and 18.
    let out = run_json(&[
        "spc", "--chart", "cusum", "--set", "mean=0", "--set", "sigma=1", &file, "--json",
    ]);
    assert_eq!(
        keys(&out),
        BTreeSet::from(["chart", "n", "alarm_indices", "first_alarm_index", "points"])
    );
    assert_eq!(out["alarm_indices"], json!([12, 15, 18]));
    assert_eq!(out["first_alarm_index"], 12);
    assert_eq!(out["chart"], "cusum");
    let points = out["points"].as_array().unwrap();
    assert_eq!(points.len(), 20);
    assert_eq!(points[11]["value"], 5.0);
    assert_eq!(points[12]["value"], 7.5);
    assert_eq!(points[12]["upper"], 5.0);
    assert_eq!(
        keys(&points[0]),
        BTreeSet::from([
            "index",
            "observation",
            "value",
            "value_low",
            "center",
            "upper",
            "lower",
            "high",
            "low",
            "alarm"
        ])
    );
    // h = 8: 2.5, 5, 7.5, 10 → first alarm at 13.
    let out = run_json(&[
        "spc", "--chart", "cusum", "--set", "mean=0", "--set", "sigma=1", "--set", "h=8", &file,
        "--json",
    ]);
    assert_eq!(out["first_alarm_index"], 13);
    // EWMA (λ = 0.2, L = 3): z = 0.6 at 10 (limit 0.9963), 1.08 at 11 (limit 0.9976) → alarm;
    // without reset z keeps climbing towards 3 and alarms at every later point.
    let out = run_json(&[
        "spc",
        "--chart",
        "ewma",
        "--set",
        "mean=0",
        "--set",
        "sigma=1",
        "--set",
        "reset=false",
        &file,
        "--json",
    ]);
    assert_eq!(out["alarm_indices"], json!((11..20).collect::<Vec<_>>()));
    assert_eq!(out["first_alarm_index"], 11);
    // λ = 0.5, L = 3: z = 1.5 at 10 vs limit 3·sqrt(1/3·(1 − 0.5^22)) = 1.732; 2.25 at 11.
    let out = run_json(&[
        "spc",
        "--chart",
        "ewma",
        "--set",
        "mean=0",
        "--set",
        "sigma=1",
        "--set",
        "lambda=0.5",
        "--set",
        "L=3",
        &file,
        "--json",
    ]);
    assert_eq!(out["first_alarm_index"], 11);
    // No alarm: null.
    let flat = files.json(&json!([0.0, 0.5, -0.5, 0.0]));
    let out = run_json(&[
        "spc", "--chart", "ewma", "--set", "mean=0", "--set", "sigma=1", &flat, "--json",
    ]);
    assert_eq!(out["alarm_indices"], json!([]));
    assert_eq!(out["first_alarm_index"], Value::Null);
    // For people: the fields, then the series.
    let text = stdout(&run(&[
        "spc", "--chart", "cusum", "--set", "mean=0", "--set", "sigma=1", &file,
    ]));
    assert!(text.contains("alarm_indices: [12,15,18]\n"), "{text}");
    assert!(text.contains("first_alarm_index: 12\n"), "{text}");
    assert!(text.contains("high"), "{text}");
}

#[test]
fn binomial_chart_replays_the_live_ratio_chart() {
    let mut files = Files::new();
    // Two warm-up intervals give p0 = 2/200 = 0.01 (N = 200); then 10 errors in 100 calls.
    let intervals = json!([[1, 100], [1, 100], [10, 100], [1, 100], [0, 50], [0, 50]]);
    let file = files.json(&intervals);
    let out = run_json(&[
        "spc",
        "--chart",
        "binomial-ewma",
        "--set",
        "warmup=2",
        &file,
        "--json",
    ]);
    assert_eq!(out["chart"], "binomial_ewma");
    assert_eq!(out["n"], 6);
    close("p0", &out["p0"], &json!(0.01));
    assert_eq!(out["alarm_indices"], json!([2]));
    assert_eq!(out["first_alarm_index"], 2);
    let points = out["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    // Interval 2 (λ 0.2, L 4.5, the live defaults): s = sqrt(0.01·0.99/100), u = 0.09 / s,
    // z = λu; Var z = λ/(2−λ)(1 − (1−λ)²) + p0(1−p0)/N · (λ/s)².
    assert_eq!(points[0]["index"], 2);
    close("u_2", &points[0]["observation"], &json!(9.04534033733291));
    close("z_2", &points[0]["value"], &json!(1.809068067466582));
    close("limit_2", &points[0]["upper"], &json!(1.10227038425243));
    assert_eq!(points[0]["alarm"], true);
    // Back to p0: z decays (0.8 z) under a limit that widens as a_t and t grow.
    close("z_3", &points[1]["value"], &json!(1.4472544539732657));
    close("limit_3", &points[1]["upper"], &json!(1.624992307674101));
    assert_eq!(points[1]["alarm"], false);
    // With the default warm-up (60 intervals) nothing is charted yet.
    let out = run_json(&["spc", "--chart", "binomial-ewma", &file, "--json"]);
    assert_eq!(out["p0"], Value::Null);
    assert_eq!(out["points"], json!([]));

    fails(
        &[
            "spc",
            "--chart",
            "binomial-ewma",
            &files.json(&json!([1.0, 2.0])),
        ],
        "the binomial chart reads [events, trials] pairs; this file holds numbers",
    );
    fails(
        &[
            "spc",
            "--chart",
            "binomial-ewma",
            &files.json(&json!([[1, 10], [11, 10]])),
        ],
        "interval 1: an interval needs 0 ≤ events ≤ trials and trials > 0, got 11 of 10",
    );
    fails(
        &[
            "spc",
            "--chart",
            "binomial-ewma",
            &files.json(&json!([[0.5, 10]])),
        ],
        "interval 0: events and trials must be whole numbers ≥ 0, got [0.5, 10]",
    );
    fails(
        &[
            "spc",
            "--chart",
            "binomial-ewma",
            &files.json(&json!([[1, 10, 3]])),
        ],
        "interval 0: expected [events, trials], got 3 numbers",
    );
    fails(
        &["spc", "--chart", "binomial-ewma", "--set", "k=1", &file],
        "k",
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let mut files = Files::new();
    let numbers = files.json(&json!([1.0, 2.0, 3.0]));
    let empty = files.write("");
    let empty_array = files.write("[]");
    let nan_line = files.write("1\nNaN\n3\n");
    let nan_json = files.write("[1, NaN, 3]");
    let strings = files.write("stop\nlength\n");
    let vectors_2 = files.json(&json!([[1, 2], [3, 4], [5, 6]]));
    let vectors_3 = files.json(&json!([[1, 2, 3], [3, 4, 5]]));
    let ragged = files.json(&json!([[1, 2], [3]]));
    let mixed = files.json(&json!([1, "a"]));
    let drift_args = |test: &'static str, r: &str, c: &str| -> Vec<String> {
        ["drift", "--test", test, "--reference", r, "--current", c]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let fails_drift = |args: Vec<String>, message: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails(&args, message);
    };
    fails_drift(
        drift_args("ks", &empty, &numbers),
        &format!("{empty}: the sample is empty"),
    );
    fails_drift(
        drift_args("ks", &numbers, &empty_array),
        "the sample is empty",
    );
    fails_drift(
        drift_args("ks", &nan_line, &numbers),
        &format!("{nan_line}: line 2: NaN or an infinite value"),
    );
    fails_drift(
        drift_args("ks", &numbers, &nan_json),
        "NaN and infinite values are not allowed",
    );
    fails_drift(
        drift_args("ks", &strings, &strings),
        "ks compares numbers; these samples hold strings",
    );
    fails_drift(
        drift_args("chi2", &numbers, &numbers),
        "chi2 compares strings (categories); these samples hold numbers",
    );
    fails_drift(
        drift_args("wasserstein", &vectors_2, &vectors_2),
        "wasserstein compares numbers; these samples hold number arrays",
    );
    fails_drift(
        drift_args("mmd", &strings, &strings),
        "mmd compares number arrays or numbers; these samples hold strings",
    );
    fails_drift(
        drift_args("ks", &numbers, &strings),
        "the reference holds numbers but the current sample holds strings",
    );
    fails_drift(
        drift_args("mmd", &vectors_2, &vectors_3),
        "the reference vectors have 2 dimensions but the current ones 3",
    );
    fails_drift(
        drift_args("mmd", &ragged, &vectors_2),
        "item 1: a vector of 1 dimensions, expected 2",
    );
    fails_drift(
        drift_args("ks", &mixed, &numbers),
        "item 1: a string among numbers",
    );
    let mut args = drift_args("ks", &numbers, &numbers);
    args.extend(["--set".into(), "alpha=0.05".into()]);
    fails_drift(
        args,
        "--set alpha: not a setting of ks (known: alternative, method)",
    );
    let mut args = drift_args("psi", &numbers, &numbers);
    args.extend(["--set".into(), "bins=5".into()]);
    fails_drift(args, "--set bins: psi takes no settings");
    let mut args = drift_args("ks", &numbers, &numbers);
    args.extend(["--set".into(), "alternative=bigger".into()]);
    fails_drift(
        args,
        "--set alternative: expected two-sided, less, greater, got \"bigger\"",
    );
    let mut args = drift_args("chi2", &strings, &strings);
    args.extend(["--set".into(), "correction=no".into()]);
    fails_drift(args, "--set correction: expected true or false");
    let mut args = drift_args("ks", &numbers, &numbers);
    args.extend(["--set".into(), "method".into()]);
    fails_drift(args, "expected KEY=VALUE");
    let missing = files.dir.path().join("missing.json");
    fails_drift(
        drift_args("ks", missing.to_str().unwrap(), &numbers),
        "cannot read",
    );
    fails(
        &["spc", "--chart", "ewma", "--set", "k=1", &numbers],
        "--set k: not a setting of the EWMA chart",
    );
    fails(
        &[
            "spc", "--chart", "ewma", "--set", "sigma=-1", "--set", "mean=0", &numbers,
        ],
        "σ must be finite and > 0",
    );
    fails(
        &["spc", "--chart", "cusum", &strings],
        "spc charts numbers; this file holds strings",
    );
    // An unknown test or chart is a usage error (clap's exit code 2).
    let output = run(&drift_args("t", &numbers, &numbers)
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 't' for '--test"));
}

/// A deterministic generator (PCG-style LCG) with Box–Muller normals.
struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// An OTLP/JSON traces document of chat calls: (output tokens, input tokens, finish reason).
fn otlp(service: &str, model: &str, seed: u64, calls: &[(u64, u64, &str)]) -> String {
    let spans: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (output, input, finish))| {
            let start = 1_700_000_000_000_000_000u64 + (seed * 10_000 + i as u64) * 1_000_000_000;
            let text = "x".repeat(*output as usize * 4);
            json!({
                "traceId": format!("{:032x}", seed * 100_000 + i as u64 + 1),
                "spanId": format!("{:016x}", seed * 100_000 + i as u64 + 1),
                "name": format!("chat {model}"),
                "kind": "SPAN_KIND_CLIENT",
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 500_000_000 + output * 10_000_000).to_string(),
                "attributes": [
                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                    {"key": "gen_ai.request.model", "value": {"stringValue": model}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": input.to_string()}},
                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": output.to_string()}},
                    {"key": "gen_ai.response.finish_reasons",
                     "value": {"arrayValue": {"values": [{"stringValue": finish}]}}},
                    {"key": "gen_ai.output.messages", "value": {"stringValue": json!([
                        {"role": "assistant", "parts": [{"type": "text", "content": text}]}
                    ]).to_string()}}
                ]
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    }]})
    .to_string()
}

/// `n` calls: output tokens ~ N(100·scale, 10·scale), input tokens ~ N(500, 50), finish reasons
/// `stop` except where `length(i)`.
fn calls(
    seed: u64,
    n: usize,
    scale: f64,
    length: impl Fn(usize) -> bool,
) -> Vec<(u64, u64, &'static str)> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let output = rng.normal(100.0 * scale, 10.0 * scale).round().max(1.0) as u64;
            let input = rng.normal(500.0, 50.0).round().max(1.0) as u64;
            (output, input, if length(i) { "length" } else { "stop" })
        })
        .collect()
}

struct Captures {
    _dir: tempfile::TempDir,
    reference: PathBuf,
    current: Vec<PathBuf>,
}

fn captures() -> Captures {
    let dir = tempfile::tempdir().unwrap();
    // Reference: a folder of two files (200 calls of gpt-4o), plus a model only it has.
    let reference = dir.path().join("reference");
    std::fs::create_dir(&reference).unwrap();
    let ref_calls = calls(1, 200, 1.0, |_| false);
    std::fs::write(
        reference.join("a.json"),
        otlp("chat-api", "gpt-4o", 1, &ref_calls[..120]),
    )
    .unwrap();
    // The second file is JSON lines, as the Collector's file exporter writes.
    std::fs::write(
        reference.join("b.jsonl"),
        format!(
            "{}\n{}\n",
            otlp("chat-api", "gpt-4o", 2, &ref_calls[120..]),
            otlp("chat-api", "gpt-4o-mini", 3, &calls(4, 40, 1.0, |_| false))
        ),
    )
    .unwrap();
    // Current: output tokens ×1.5, input tokens from the same distribution; every third call
    // ends on `length`.
    let cur_calls = calls(5, 200, 1.5, |i| i % 3 == 0);
    let current = vec![dir.path().join("c1.json"), dir.path().join("c2.json")];
    std::fs::write(
        &current[0],
        otlp("chat-api", "gpt-4o", 6, &cur_calls[..100]),
    )
    .unwrap();
    std::fs::write(
        &current[1],
        otlp("chat-api", "gpt-4o", 7, &cur_calls[100..]),
    )
    .unwrap();
    Captures {
        _dir: dir,
        reference,
        current,
    }
}

fn report_args<'a>(captures: &'a Captures, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "report",
        "--reference",
        captures.reference.to_str().unwrap(),
    ];
    args.push("--current");
    args.extend(captures.current.iter().map(|p| p.to_str().unwrap()));
    args.extend(extra);
    args
}

fn signal<'a>(key: &'a Value, name: &str) -> &'a Value {
    key["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == name)
        .unwrap_or_else(|| panic!("no {name} in {key}"))
}

#[test]
fn report_finds_the_signals_that_moved_as_json() {
    let captures = captures();
    let raw = stdout(&run(&report_args(&captures, &["--json"])));
    let out: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        keys(&out),
        BTreeSet::from(["reference", "current", "rules", "moved", "keys"])
    );
    assert_eq!(
        out["reference"],
        json!({"files": 2, "calls": 240, "rejected_spans": 0})
    );
    assert_eq!(
        out["current"],
        json!({"files": 2, "calls": 200, "rejected_spans": 0})
    );
    assert_eq!(
        out["rules"],
        json!({"psi": 0.2, "js": 0.1, "alpha": 0.01, "min_count": 30})
    );
    let keys_ = out["keys"].as_array().unwrap();
    assert_eq!(keys_.len(), 2);
    let key = &keys_[0];
    assert_eq!(key["service_name"], "chat-api");
    assert_eq!(key["gen_ai_provider_name"], "openai");
    assert_eq!(key["gen_ai_request_model"], "gpt-4o");
    assert_eq!(key["presence"], "both");
    assert_eq!(key["reference_calls"], 200);
    assert_eq!(key["current_calls"], 200);
    assert_eq!(
        keys_[1]["gen_ai_request_model"], "gpt-4o-mini",
        "keys are sorted"
    );
    assert_eq!(keys_[1]["presence"], "reference_only");
    assert_eq!(keys_[1]["signals"], json!([]));

    let output = signal(key, "output_tokens");
    assert_eq!(
        keys(output),
        BTreeSet::from([
            "signal",
            "kind",
            "status",
            "moved",
            "n_reference",
            "n_current",
            "reference_mean",
            "current_mean",
            "reference_median",
            "current_median",
            "mean_change",
            "ks_statistic",
            "ks_p_value",
            "ks_method",
            "psi",
            "wasserstein",
            "wasserstein_normalized",
        ])
    );
    assert_eq!(output["kind"], "numeric");
    assert_eq!(output["status"], "moved");
    assert_eq!(output["moved"], true);
    assert_eq!(output["n_reference"], 200);
    assert_eq!(output["ks_method"], "exact");
    assert!(output["ks_p_value"].as_f64().unwrap() < 1e-10, "{output}");
    assert!(output["psi"].as_f64().unwrap() >= 0.2, "{output}");
    let change = output["mean_change"].as_f64().unwrap();
    assert!((change - 0.5).abs() < 0.05, "{output}");
    // Wasserstein-1 ≈ the 50-token mean shift, normalised by σ_ref ≈ 10.
    let w1 = output["wasserstein_normalized"].as_f64().unwrap();
    assert!((3.0..8.0).contains(&w1), "{output}");

    let input = signal(key, "input_tokens");
    assert_eq!(input["status"], "stable", "{input}");
    assert_eq!(input["moved"], false);
    assert!(input["ks_p_value"].as_f64().unwrap() >= 0.01, "{input}");
    assert!(input["psi"].as_f64().unwrap() < 0.2, "{input}");

    // Response length follows the output (4 characters a token), so it moved too.
    assert_eq!(signal(key, "response_length_chars")["status"], "moved");
    assert_eq!(signal(key, "duration_seconds")["status"], "moved");

    let finish = signal(key, "finish_reason");
    assert_eq!(
        keys(finish),
        BTreeSet::from([
            "signal",
            "kind",
            "status",
            "moved",
            "n_reference",
            "n_current",
            "chi2_statistic",
            "chi2_p_value",
            "chi2_dof",
            "js",
            "largest_change",
            "categories",
        ])
    );
    assert_eq!(finish["kind"], "categorical");
    assert_eq!(finish["status"], "moved");
    assert_eq!(finish["chi2_dof"], 1);
    assert_eq!(
        finish["categories"],
        json!([
            {"category": "length", "reference": 0, "current": 67},
            {"category": "stop", "reference": 200, "current": 133},
        ])
    );
    assert_eq!(finish["largest_change"]["category"], "length");
    assert_eq!(finish["largest_change"]["current_share"], 0.335);
    assert_eq!(signal(key, "error_type")["status"], "stable");
    // Signals no call has (cached tokens, time to first token and so time per output token:
    // no streaming here) are left out.
    let names: Vec<&str> = key["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["signal"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "input_tokens",
            "output_tokens",
            "duration_seconds",
            "cost_usd",
            "response_length_chars",
            "finish_reason",
            "error_type",
            "output_type",
        ]
    );
    let moved: Vec<&str> = key["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(moved.contains(&"output_tokens") && !moved.contains(&"input_tokens"));
    assert!(moved.contains(&"finish_reason"));
    // The top-level list holds the same moves, in the same order, with the test that decided.
    let top: Vec<(&str, &str, &str)> = out["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["signal"].as_str().unwrap(),
                m["test"].as_str().unwrap(),
                m["measure"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top.iter().map(|m| m.0).collect::<Vec<_>>(),
        moved,
        "{top:?}"
    );
    assert!(top.contains(&("output_tokens", "ks", "psi")));
    assert!(top.contains(&("finish_reason", "chi2", "js")));
    let first = &out["moved"][0];
    assert_eq!(
        keys(first),
        BTreeSet::from([
            "service_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
            "signal",
            "kind",
            "test",
            "p_value",
            "measure",
            "value",
            "change",
        ])
    );

    // The output is deterministic, byte for byte.
    assert_eq!(stdout(&run(&report_args(&captures, &["--json"]))), raw);
}

/// The table row of a signal in a Markdown report.
fn row(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap_or_else(|| panic!("no {name} row in {text}"))
        .to_owned()
}

#[test]
fn report_as_markdown() {
    let captures = captures();
    let text = stdout(&run(&report_args(&captures, &[])));
    assert!(text.starts_with("# Drift report\n"), "{text}");
    assert!(
        text.contains("Reference: 240 calls in 2 file(s). Current: 200 calls in 2 file(s)."),
        "{text}"
    );
    assert!(
        text.contains("PSI ≥ 0.2 and the two-sample KS p-value < 0.01"),
        "{text}"
    );
    assert!(
        text.contains("| chat-api | openai | gpt-4o | output_tokens | KS + PSI | "),
        "{text}"
    );
    assert!(
        text.contains("| chat-api | openai | gpt-4o | finish_reason | chi² + JS | "),
        "{text}"
    );
    assert!(!text.contains("| gpt-4o | input_tokens | KS"), "{text}");
    assert!(text.contains("## chat-api · openai · gpt-4o\n"), "{text}");
    assert!(
        row(&text, "output_tokens").ends_with("| **moved** |"),
        "{text}"
    );
    assert!(row(&text, "input_tokens").ends_with("| stable |"), "{text}");
    let finish = row(&text, "finish_reason");
    assert!(
        finish.contains("| stop 100.0% | stop 66.5%, length 33.5% | length 0.0% → 33.5% |"),
        "{finish}"
    );
    assert!(
        text.contains(
            "## chat-api · openai · gpt-4o-mini\n\nOnly in the reference (40 calls); not compared."
        ),
        "{text}"
    );

    // Thresholds are settings: nothing moves at PSI ≥ 100 and JS ≥ 1.
    let text = stdout(&run(&report_args(
        &captures,
        &["--set", "psi=100", "--set", "js=1"],
    )));
    assert!(
        text.contains("## Moved signals\n\nNo signal moved.\n"),
        "{text}"
    );
    assert!(
        row(&text, "output_tokens").ends_with("| stable |"),
        "{text}"
    );
    // Fewer than min_count values on a side: not judged.
    let out = run_json(&report_args(
        &captures,
        &["--json", "--set", "min_count=201"],
    ));
    assert_eq!(out["moved"], json!([]));
    assert_eq!(
        signal(&out["keys"][0], "output_tokens")["status"],
        "insufficient_data"
    );
}

#[test]
fn report_errors() {
    let captures = captures();
    let dir = tempfile::tempdir().unwrap();
    let logs_only = dir.path().join("logs.json");
    std::fs::write(&logs_only, r#"{"resourceLogs":[]}"#).unwrap();
    let reference = captures.reference.to_str().unwrap();
    fails(
        &[
            "report",
            "--reference",
            reference,
            "--current",
            logs_only.to_str().unwrap(),
        ],
        "the current files hold no model calls",
    );
    fails(
        &report_args(&captures, &["--set", "threshold=1"]),
        "--set threshold: not a setting of report (known: psi, js, alpha, min_count)",
    );
    fails(
        &report_args(&captures, &["--set", "alpha=0"]),
        "--set alpha: must be in (0, 1]",
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"neither\": 1}").unwrap();
    fails(
        &[
            "report",
            "--reference",
            reference,
            "--current",
            bad.to_str().unwrap(),
        ],
        "JSON document has neither resourceSpans nor resourceLogs",
    );
}
