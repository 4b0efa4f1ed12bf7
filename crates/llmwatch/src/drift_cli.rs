//! `llmwatch drift` and `llmwatch spc`: the statistics on files, as a contract other tools and
//! our own checks rely on (the output fields are stable; see docs/drift.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use llmwatch_stats::anderson::{PValueBound, anderson_ksamp};
use llmwatch_stats::binned::{self, Bins, align_categories};
use llmwatch_stats::chi2::{chi2_contingency, chisquare_gof};
use llmwatch_stats::cvm::{CvmMethod, cramervonmises_2samp};
use llmwatch_stats::distance::{energy_distance, wasserstein_distance};
use llmwatch_stats::ks::{Alternative, KsMethod, ks_2samp};
use llmwatch_stats::mmd::{Bandwidth, MmdEstimator, mmd2_permutation_test, mmd2_rbf};
use serde_json::{Map, Value, json};

/// A sample read from a file: numbers, categories or vectors.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Numbers(Vec<f64>),
    Categories(Vec<String>),
    Vectors(Vec<Vec<f64>>),
}

impl Sample {
    /// What the sample holds, as error messages say it.
    pub fn kind(&self) -> &'static str {
        match self {
            Sample::Numbers(_) => "numbers",
            Sample::Categories(_) => "strings",
            Sample::Vectors(_) => "number arrays",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Sample::Numbers(v) => v.len(),
            Sample::Categories(v) => v.len(),
            Sample::Vectors(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a sample file (see [`parse_sample`]); errors name the file.
pub fn read_sample(path: &Path) -> anyhow::Result<Sample> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_sample(&text).with_context(|| format!("{}", path.display()))
}

/// One value before the sample's kind is settled, with where it was found.
enum Item {
    Number(f64),
    Text(String),
    Vector(Vec<f64>),
}

/// Parses a sample: a JSON array (of numbers, of strings or of number arrays), or one value per
/// line (a number, a JSON array of numbers, or else the line as a string category; blank lines
/// are skipped). Errors: no values, NaN or an infinite value, kinds mixed, vectors of different
/// dimensions or of no dimension.
pub fn parse_sample(text: &str) -> anyhow::Result<Sample> {
    let trimmed = text.trim();
    let mut lines = trimmed.lines().map(str::trim).filter(|l| !l.is_empty());
    let json_document = trimmed.starts_with('[') && {
        // A file of one JSON array per line is vectors by line, not one JSON document.
        let first = lines.next().unwrap_or_default();
        let more = lines.next().is_some();
        !(more && serde_json::from_str::<Vec<Value>>(first).is_ok())
    };
    let items: Vec<(String, Item)> = if json_document {
        let values: Vec<Value> = serde_json::from_str(trimmed).map_err(|e| {
            let hint = if contains_non_finite_token(trimmed) {
                " (NaN and infinite values are not allowed)"
            } else {
                ""
            };
            anyhow::anyhow!("invalid JSON array: {e}{hint}")
        })?;
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let place = format!("item {i}");
                let item = json_item(&value).with_context(|| place.clone())?;
                Ok((place, item))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        trimmed
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let place = format!("line {}", i + 1);
                let item = line_item(line.trim()).with_context(|| place.clone())?;
                Ok((place, item))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let Some((_, first)) = items.first() else {
        bail!("the sample is empty");
    };
    match first {
        Item::Number(_) => {
            let mut numbers = Vec::with_capacity(items.len());
            for (place, item) in &items {
                match item {
                    Item::Number(n) => numbers.push(*n),
                    other => bail!("{place}: {} among numbers", item_kind(other)),
                }
            }
            Ok(Sample::Numbers(numbers))
        }
        Item::Text(_) => {
            let mut categories = Vec::with_capacity(items.len());
            for (place, item) in items {
                match item {
                    Item::Text(s) => categories.push(s),
                    other => bail!(
                        "{place}: {} among strings (write a JSON array of strings for categories \
                         that look like numbers)",
                        item_kind(&other)
                    ),
                }
            }
            Ok(Sample::Categories(categories))
        }
        Item::Vector(first) => {
            let dimension = first.len();
            let mut vectors = Vec::with_capacity(items.len());
            for (place, item) in items {
                match item {
                    Item::Vector(v) if v.len() == dimension => vectors.push(v),
                    Item::Vector(v) => bail!(
                        "{place}: a vector of {} dimensions, expected {dimension} as the first one",
                        v.len()
                    ),
                    other => bail!("{place}: {} among number arrays", item_kind(&other)),
                }
            }
            Ok(Sample::Vectors(vectors))
        }
    }
}

fn item_kind(item: &Item) -> &'static str {
    match item {
        Item::Number(_) => "a number",
        Item::Text(_) => "a string",
        Item::Vector(_) => "a number array",
    }
}

fn contains_non_finite_token(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("nan") || lower.contains("infinity")
}

fn finite(n: f64) -> anyhow::Result<f64> {
    if n.is_finite() {
        Ok(n)
    } else {
        bail!("NaN or an infinite value ({n}) is not allowed")
    }
}

fn json_item(value: &Value) -> anyhow::Result<Item> {
    Ok(match value {
        Value::Number(n) => Item::Number(finite(n.as_f64().context("not a number")?)?),
        Value::String(s) => Item::Text(s.clone()),
        Value::Array(items) => Item::Vector(vector(items)?),
        other => bail!("expected a number, a string or an array of numbers, found {other}"),
    })
}

fn vector(items: &[Value]) -> anyhow::Result<Vec<f64>> {
    if items.is_empty() {
        bail!("an empty vector (vectors need at least one dimension)");
    }
    items
        .iter()
        .enumerate()
        .map(|(j, v)| match v {
            Value::Number(n) => finite(n.as_f64().context("not a number")?),
            other => bail!("component {j}: expected a number, found {other}"),
        })
        .collect()
}

fn line_item(line: &str) -> anyhow::Result<Item> {
    if line.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(line).map_err(|e| {
            let hint = if contains_non_finite_token(line) {
                " (NaN and infinite values are not allowed)"
            } else {
                ""
            };
            anyhow::anyhow!("invalid JSON array: {e}{hint}")
        })?;
        return Ok(Item::Vector(vector(&items)?));
    }
    match line.parse::<f64>() {
        Ok(n) => Ok(Item::Number(finite(n)?)),
        Err(_) => Ok(Item::Text(line.to_owned())),
    }
}

/// `--set KEY=VALUE` options; every one must be used by the command, so a typo is an error.
#[derive(Debug, Default)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    pub fn parse(pairs: &[String]) -> anyhow::Result<Settings> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("--set {pair:?}: expected KEY=VALUE"))?;
            let key = key.trim();
            if key.is_empty() {
                bail!("--set {pair:?}: expected KEY=VALUE");
            }
            if map
                .insert(key.to_owned(), value.trim().to_owned())
                .is_some()
            {
                bail!("--set {key} given twice");
            }
        }
        Ok(Settings(map))
    }

    pub fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    pub fn number(&mut self, key: &str) -> anyhow::Result<Option<f64>> {
        self.take(key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .with_context(|| format!("--set {key}: expected a finite number, got {v:?}"))
            })
            .transpose()
    }

    pub fn integer(&mut self, key: &str) -> anyhow::Result<Option<u64>> {
        self.take(key)
            .map(|v| {
                v.parse::<u64>()
                    .with_context(|| format!("--set {key}: expected a whole number, got {v:?}"))
            })
            .transpose()
    }

    pub fn boolean(&mut self, key: &str) -> anyhow::Result<Option<bool>> {
        self.take(key)
            .map(|v| match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => bail!("--set {key}: expected true or false, got {v:?}"),
            })
            .transpose()
    }

    /// One of `choices` (the first is the default).
    pub fn choice(&mut self, key: &str, choices: &[&'static str]) -> anyhow::Result<&'static str> {
        match self.take(key) {
            None => Ok(choices[0]),
            Some(v) => choices.iter().copied().find(|c| *c == v).with_context(|| {
                format!("--set {key}: expected {}, got {v:?}", choices.join(", "))
            }),
        }
    }

    /// Fails on any setting the command did not use, so a typo is never silently ignored.
    pub fn finish(self, what: &str, known: &[&str]) -> anyhow::Result<()> {
        match self.0.keys().next() {
            Some(key) if known.is_empty() => bail!("--set {key}: {what} takes no settings"),
            Some(key) => bail!(
                "--set {key}: not a setting of {what} (known: {})",
                known.join(", ")
            ),
            None => Ok(()),
        }
    }
}

/// The tests `llmwatch drift --test` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftTest {
    /// Two-sample Kolmogorov–Smirnov (scipy.stats.ks_2samp); numbers.
    Ks,
    /// Chi-square 2×k contingency, reference against current (scipy.stats.chi2_contingency); strings.
    Chi2,
    /// Chi-square goodness of fit of current to the reference shares (scipy.stats.chisquare); strings.
    Chisquare,
    /// Population stability index; numbers (reference-decile bins) or strings.
    Psi,
    /// Jensen–Shannon distance, base 2; numbers (reference-decile bins) or strings.
    Js,
    /// Wasserstein-1 distance (scipy.stats.wasserstein_distance); numbers.
    Wasserstein,
    /// Energy distance (scipy.stats.energy_distance); numbers.
    Energy,
    /// Anderson–Darling k-sample test, k = 2 (scipy.stats.anderson_ksamp); numbers.
    Anderson,
    /// Cramér–von Mises two-sample test (scipy.stats.cramervonmises_2samp); numbers.
    Cvm,
    /// MMD² with an RBF kernel and a permutation test; number arrays (or numbers, as 1-d).
    Mmd,
}

impl DriftTest {
    pub fn name(self) -> &'static str {
        match self {
            DriftTest::Ks => "ks",
            DriftTest::Chi2 => "chi2",
            DriftTest::Chisquare => "chisquare",
            DriftTest::Psi => "psi",
            DriftTest::Js => "js",
            DriftTest::Wasserstein => "wasserstein",
            DriftTest::Energy => "energy",
            DriftTest::Anderson => "anderson",
            DriftTest::Cvm => "cvm",
            DriftTest::Mmd => "mmd",
        }
    }
}

/// The MMD permutation test's defaults.
pub const MMD_DEFAULT_PERMUTATIONS: u64 = 1000;
pub const MMD_DEFAULT_SEED: u64 = 0;

/// `llmwatch drift`: one test on two samples, as one JSON object (fields in docs/drift.md).
pub fn drift(
    test: DriftTest,
    mut settings: Settings,
    reference: &Sample,
    current: &Sample,
) -> anyhow::Result<Value> {
    let name = test.name();
    if reference.kind() != current.kind() {
        bail!(
            "the reference holds {} but the current sample holds {}",
            reference.kind(),
            current.kind()
        );
    }
    let wrong_kind = |accepted: &str| {
        anyhow::anyhow!(
            "{name} compares {accepted}; these samples hold {}",
            reference.kind()
        )
    };
    let numbers = || match (reference, current) {
        (Sample::Numbers(r), Sample::Numbers(c)) => Ok((r.as_slice(), c.as_slice())),
        _ => Err(wrong_kind("numbers")),
    };
    let categories = || match (reference, current) {
        (Sample::Categories(r), Sample::Categories(c)) => Ok(counts(r, c)),
        _ => Err(wrong_kind("strings (categories)")),
    };
    let mut out = Map::new();
    out.insert("test".into(), json!(name));
    out.insert("n_reference".into(), json!(reference.len()));
    out.insert("n_current".into(), json!(current.len()));
    match test {
        DriftTest::Ks => {
            let (r, c) = numbers()?;
            let alternative =
                match settings.choice("alternative", &["two-sided", "less", "greater"])? {
                    "less" => Alternative::Less,
                    "greater" => Alternative::Greater,
                    _ => Alternative::TwoSided,
                };
            let method = match settings.choice("method", &["auto", "exact", "asymp"])? {
                "exact" => KsMethod::Exact,
                "asymp" => KsMethod::Asymp,
                _ => KsMethod::Auto,
            };
            settings.finish(name, &["alternative", "method"])?;
            let result = ks_2samp(r, c, alternative, method)?;
            out.insert("statistic".into(), json!(result.statistic));
            out.insert("p_value".into(), json!(result.p_value));
            out.insert("method".into(), json!(result.method.as_str()));
            out.insert("exact_failed".into(), json!(result.exact_failed));
            out.insert(
                "alternative".into(),
                json!(match alternative {
                    Alternative::TwoSided => "two-sided",
                    Alternative::Less => "less",
                    Alternative::Greater => "greater",
                }),
            );
            out.insert(
                "statistic_location".into(),
                json!(result.statistic_location),
            );
            out.insert("statistic_sign".into(), json!(result.statistic_sign));
        }
        DriftTest::Chi2 => {
            let aligned = categories()?;
            let correction = settings.boolean("correction")?.unwrap_or(true);
            settings.finish(name, &["correction"])?;
            let result = chi2_contingency(&aligned.reference, &aligned.current, correction)?;
            out.insert("statistic".into(), json!(result.statistic));
            out.insert("p_value".into(), json!(result.p_value));
            out.insert("dof".into(), json!(result.dof));
            out.insert("yates".into(), json!(result.yates));
            out.insert("categories".into(), json!(aligned.categories.len()));
        }
        DriftTest::Chisquare => {
            let aligned = categories()?;
            settings.finish(name, &[])?;
            let result = chisquare_gof(&aligned.reference, &aligned.current)?;
            // JSON has no infinity: a category unseen in the reference gives a null statistic.
            out.insert(
                "statistic".into(),
                if result.statistic.is_finite() {
                    json!(result.statistic)
                } else {
                    Value::Null
                },
            );
            out.insert("p_value".into(), json!(result.p_value));
            out.insert("dof".into(), json!(result.dof));
            out.insert(
                "unseen_in_reference".into(),
                json!(result.unseen_in_reference),
            );
            out.insert("categories".into(), json!(aligned.categories.len()));
        }
        DriftTest::Psi | DriftTest::Js => {
            settings.finish(name, &[])?;
            let (r, c, binning) = match (reference, current) {
                (Sample::Numbers(r), Sample::Numbers(c)) => {
                    let bins = Bins::deciles(r)?;
                    let (rc, cc) = (bins.counts(r)?, bins.counts(c)?);
                    (rc, cc, "reference_deciles")
                }
                (Sample::Categories(_), Sample::Categories(_)) => {
                    let aligned = categories()?;
                    (aligned.reference, aligned.current, "categories")
                }
                _ => return Err(wrong_kind("numbers or strings")),
            };
            let statistic = if test == DriftTest::Psi {
                binned::psi_from_counts(&r, &c)?
            } else {
                binned::jensen_shannon_from_counts(&r, &c)?
            };
            out.insert("statistic".into(), json!(statistic));
            out.insert("binning".into(), json!(binning));
            out.insert("bins".into(), json!(r.len()));
        }
        DriftTest::Wasserstein | DriftTest::Energy => {
            let (r, c) = numbers()?;
            settings.finish(name, &[])?;
            let statistic = if test == DriftTest::Wasserstein {
                wasserstein_distance(r, c)?
            } else {
                energy_distance(r, c)?
            };
            out.insert("statistic".into(), json!(statistic));
        }
        DriftTest::Anderson => {
            let (r, c) = numbers()?;
            settings.finish(name, &[])?;
            let result = anderson_ksamp(&[r, c])?;
            out.insert("statistic".into(), json!(result.statistic));
            out.insert("p_value".into(), json!(result.p_value));
            out.insert(
                "p_value_bound".into(),
                json!(match result.bound {
                    PValueBound::Interpolated => "interpolated",
                    PValueBound::CappedAt025 => "capped_at_0.25",
                    PValueBound::FlooredAt0001 => "floored_at_0.001",
                }),
            );
            out.insert("critical_values".into(), json!(result.critical_values));
        }
        DriftTest::Cvm => {
            let (r, c) = numbers()?;
            let method = match settings.choice("method", &["auto", "exact", "asymptotic"])? {
                "exact" => CvmMethod::Exact,
                "asymptotic" => CvmMethod::Asymptotic,
                _ => CvmMethod::Auto,
            };
            settings.finish(name, &["method"])?;
            let result = cramervonmises_2samp(r, c, method)?;
            out.insert("statistic".into(), json!(result.statistic));
            out.insert("p_value".into(), json!(result.p_value));
            out.insert(
                "method".into(),
                json!(match result.method {
                    CvmMethod::Exact => "exact",
                    _ => "asymptotic",
                }),
            );
        }
        DriftTest::Mmd => {
            let as_vectors = |sample: &Sample| match sample {
                Sample::Vectors(v) => Ok(v.clone()),
                Sample::Numbers(v) => Ok(v.iter().map(|&x| vec![x]).collect()),
                Sample::Categories(_) => Err(wrong_kind("number arrays or numbers")),
            };
            let (x, y) = (as_vectors(reference)?, as_vectors(current)?);
            if let (Some(a), Some(b)) = (x.first(), y.first())
                && a.len() != b.len()
            {
                bail!(
                    "the reference vectors have {} dimensions but the current ones {}",
                    a.len(),
                    b.len()
                );
            }
            let bandwidth = match settings.number("sigma")? {
                Some(sigma) => Bandwidth::Sigma(sigma),
                None => Bandwidth::MedianHeuristic,
            };
            let permutations = settings
                .integer("permutations")?
                .unwrap_or(MMD_DEFAULT_PERMUTATIONS);
            let seed = settings.integer("seed")?.unwrap_or(MMD_DEFAULT_SEED);
            settings.finish(name, &["sigma", "permutations", "seed"])?;
            let estimates = mmd2_rbf(&x, &y, bandwidth)?;
            let p_value = if permutations == 0 {
                Value::Null
            } else {
                let test = mmd2_permutation_test(
                    &x,
                    &y,
                    bandwidth,
                    MmdEstimator::Unbiased,
                    usize::try_from(permutations).context("--set permutations: too large")?,
                    seed,
                )?;
                json!(test.p_value)
            };
            out.insert("statistic".into(), json!(estimates.unbiased));
            out.insert("mmd2_biased".into(), json!(estimates.biased));
            out.insert("bandwidth".into(), json!(estimates.sigma));
            out.insert("p_value".into(), p_value);
            out.insert("permutations".into(), json!(permutations));
            out.insert("seed".into(), json!(seed));
            out.insert("dimensions".into(), json!(x[0].len()));
        }
    }
    Ok(Value::Object(out))
}

fn counts(reference: &[String], current: &[String]) -> binned::AlignedCounts<String> {
    align_categories(
        reference.iter().map(|c| (c.clone(), 1)),
        current.iter().map(|c| (c.clone(), 1)),
    )
}

/// The charts `llmwatch spc --chart` draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Chart {
    /// EWMA with exact time-varying limits (settings lambda, L).
    Ewma,
    /// Two-sided tabular CUSUM (settings k, h).
    Cusum,
    /// Standardized binomial EWMA of per-interval proportions, the live monitors' ratio chart
    /// (settings lambda, L, warmup); the file holds `[events, trials]` pairs.
    BinomialEwma,
}

/// `llmwatch spc`: charts a series; returns the alarm indices and every charted point.
pub fn spc(chart: Chart, mut settings: Settings, values: &Sample) -> anyhow::Result<Value> {
    use llmwatch_stats::spc::{
        BaselineConfig, ControlChart, CusumChart, CusumConfig, EwmaChart, EwmaConfig, alarm_indices,
    };
    if chart == Chart::BinomialEwma {
        return binomial_spc(settings, values);
    }
    let Sample::Numbers(values) = values else {
        bail!("spc charts numbers; this file holds {}", values.kind());
    };
    let baseline = BaselineConfig {
        mean: settings.number("mean")?,
        sigma: settings.number("sigma")?,
        warmup: match settings.integer("warmup")? {
            Some(n) => usize::try_from(n).context("--set warmup: too large")?,
            None => BaselineConfig::default().warmup,
        },
    };
    let reset = settings.boolean("reset")?.unwrap_or(true);
    let (name, points) = match chart {
        Chart::Ewma => {
            let defaults = EwmaConfig::default();
            let config = EwmaConfig {
                lambda: settings.number("lambda")?.unwrap_or(defaults.lambda),
                l: settings.number("L")?.unwrap_or(defaults.l),
                baseline,
                reset_after_alarm: reset,
            };
            settings.finish(
                "the EWMA chart",
                &["mean", "sigma", "warmup", "reset", "lambda", "L"],
            )?;
            ("ewma", EwmaChart::new(config)?.run_chart(values)?)
        }
        Chart::BinomialEwma => unreachable!("charted by binomial_spc"),
        Chart::Cusum => {
            let defaults = CusumConfig::default();
            let config = CusumConfig {
                k: settings.number("k")?.unwrap_or(defaults.k),
                h: settings.number("h")?.unwrap_or(defaults.h),
                baseline,
                reset_after_alarm: reset,
            };
            settings.finish(
                "the CUSUM chart",
                &["mean", "sigma", "warmup", "reset", "k", "h"],
            )?;
            ("cusum", CusumChart::new(config)?.run_chart(values)?)
        }
    };
    let alarms = alarm_indices(&points);
    Ok(json!({
        "chart": name,
        "n": values.len(),
        "alarm_indices": alarms,
        "first_alarm_index": alarms.first(),
        "points": points,
    }))
}

/// `llmwatch spc --chart binomial-ewma`: intervals of `[events, trials]`; the first `warmup` give
/// the in-control proportion `p0` (reported as `p0`) and are not charted. The defaults are the
/// live monitors' (`[drift.spc]`), so a ratio alarm seen on `/metrics` can be replayed here.
fn binomial_spc(mut settings: Settings, values: &Sample) -> anyhow::Result<Value> {
    use llmwatch_core::drift::SpcConfig;
    use llmwatch_stats::spc::{BinomialEwmaChart, BinomialEwmaConfig, alarm_indices};
    let Sample::Vectors(intervals) = values else {
        bail!(
            "the binomial chart reads [events, trials] pairs; this file holds {}",
            values.kind()
        );
    };
    let defaults = SpcConfig::default();
    let config = BinomialEwmaConfig {
        lambda: settings.number("lambda")?.unwrap_or(defaults.lambda),
        l: settings.number("L")?.unwrap_or(defaults.l),
        warmup: match settings.integer("warmup")? {
            Some(n) => usize::try_from(n).context("--set warmup: too large")?,
            None => defaults.warmup_intervals,
        },
    };
    settings.finish("the binomial EWMA chart", &["lambda", "L", "warmup"])?;
    let mut chart = BinomialEwmaChart::new(config)?;
    let mut points = Vec::new();
    for (index, interval) in intervals.iter().enumerate() {
        let count = |x: f64| (x >= 0.0 && x.fract() == 0.0 && x <= u64::MAX as f64).then_some(x);
        let (events, trials) = match interval.as_slice() {
            &[events, trials] => match (count(events), count(trials)) {
                (Some(events), Some(trials)) => (events as u64, trials as u64),
                _ => bail!(
                    "interval {index}: events and trials must be whole numbers ≥ 0, got \
                     [{events}, {trials}]"
                ),
            },
            other => bail!(
                "interval {index}: expected [events, trials], got {} numbers",
                other.len()
            ),
        };
        let point = chart
            .update(events, trials)
            .with_context(|| format!("interval {index}"))?;
        points.extend(point);
    }
    let alarms = alarm_indices(&points);
    Ok(json!({
        "chart": "binomial_ewma",
        "n": intervals.len(),
        "p0": chart.baseline().map(|(p0, _)| p0),
        "alarm_indices": alarms,
        "first_alarm_index": alarms.first(),
        "points": points,
    }))
}

/// Renders a result object as `key: value` lines for people; a chart's points as a table.
pub fn human(value: &Value) -> String {
    let mut out = String::new();
    let Value::Object(map) = value else {
        return value.to_string();
    };
    for (key, v) in map {
        if key == "points" {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "{key}: {text}");
    }
    if let Some(Value::Array(points)) = map.get("points") {
        let _ = writeln!(
            out,
            "\n{:>6} {:>14} {:>14} {:>14} {:>14} {:>14}  alarm",
            "index", "observation", "value", "value_low", "lower", "upper"
        );
        for p in points {
            let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
            let alarm = match (p["high"].as_bool(), p["low"].as_bool()) {
                (Some(true), _) => "high",
                (_, Some(true)) => "low",
                _ => "",
            };
            let _ = writeln!(
                out,
                "{:>6} {:>14.6} {:>14.6} {:>14.6} {:>14.6} {:>14.6}  {alarm}",
                p["index"].as_u64().unwrap_or_default(),
                f("observation"),
                f("value"),
                f("value_low"),
                f("lower"),
                f("upper")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_sample_form() {
        assert_eq!(
            parse_sample("[1, 2.5, -3]").unwrap(),
            Sample::Numbers(vec![1.0, 2.5, -3.0])
        );
        assert_eq!(
            parse_sample("1\n\n2.5\n-3\n").unwrap(),
            Sample::Numbers(vec![1.0, 2.5, -3.0])
        );
        assert_eq!(
            parse_sample(r#"["stop", "length", "1"]"#).unwrap(),
            Sample::Categories(vec!["stop".into(), "length".into(), "1".into()])
        );
        assert_eq!(
            parse_sample("stop\nlength\n").unwrap(),
            Sample::Categories(vec!["stop".into(), "length".into()])
        );
        assert_eq!(
            parse_sample("[[1, 2], [3, 4]]").unwrap(),
            Sample::Vectors(vec![vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        assert_eq!(
            parse_sample("[1, 2]\n[3, 4]\n").unwrap(),
            Sample::Vectors(vec![vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        // A single line holding one array is a JSON array of numbers.
        assert_eq!(
            parse_sample("[1, 2]").unwrap(),
            Sample::Numbers(vec![1.0, 2.0])
        );
    }

    #[test]
    fn rejects_bad_samples() {
        let error = |text: &str| format!("{:#}", parse_sample(text).unwrap_err());
        assert_eq!(error(""), "the sample is empty");
        assert_eq!(error("[]"), "the sample is empty");
        assert!(
            error("1\nNaN\n").contains("line 2: NaN"),
            "{}",
            error("1\nNaN\n")
        );
        assert!(error("[1, NaN]").contains("NaN and infinite values are not allowed"));
        assert!(error("1\ninf").contains("line 2"));
        assert!(error("[[1, 2], [3]]").contains("item 1: a vector of 1 dimensions, expected 2"));
        assert!(error("[1, \"a\"]").contains("item 1: a string among numbers"));
        assert!(error("a\n2\n").contains("line 2: a number among strings"));
        assert!(error("[[]]").contains("at least one dimension"));
        assert!(error("[null]").contains("item 0"));
    }

    #[test]
    fn settings_are_checked() {
        let pairs = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(Settings::parse(&pairs(&["a"])).is_err());
        assert!(Settings::parse(&pairs(&["a=1", "a=2"])).is_err());
        let mut s = Settings::parse(&pairs(&["a=1", "b=x"])).unwrap();
        assert_eq!(s.number("a").unwrap(), Some(1.0));
        assert!(
            s.finish("ks", &["alternative"])
                .unwrap_err()
                .to_string()
                .contains("--set b: not a setting of ks")
        );
    }
}
