//! `llmwatch report`: two sets of OTLP files (read exactly as `replay` reads them), one drift
//! report over every signal of every (service, provider, request model) key.
//!
//! The rules (also in docs/drift.md and printed in every report):
//!
//! * numeric signal: two-sample KS (two-sided, scipy's auto method), PSI on reference-decile
//!   bins, and Wasserstein-1 normalised by the reference standard deviation (population, ddof 0;
//!   null for a constant reference). It *moved* when PSI ≥ `psi` (0.2) and KS p < `alpha` (0.01);
//! * categorical signal: chi-square 2×k contingency (Yates at dof 1, as scipy's default) and the
//!   base-2 Jensen–Shannon distance over the union of categories, both after pooling the
//!   categories too sparse for the chi-square approximation (expected count under 5 on either
//!   side, as the live monitors do), so that a rare error type moving by a count or two is not
//!   reported as drift. It *moved* when JS ≥ `js` (0.1) and chi-square p < `alpha`; the
//!   `categories` table keeps every category as counted;
//! * either needs at least `min_count` (30) values on each side, else `insufficient_data`.
//!
//! Every value a call has counts once (sampling weights are not applied: uniform sampling does
//! not change a distribution's shape). Log records are read but contribute nothing: every signal
//! comes from the spans.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::bail;
use llmwatch_core::Pricer;
use llmwatch_core::drift::signals::{CategoricalSignal, NumericSignal};
use llmwatch_semconv::Normalizer;
use llmwatch_stats::binned::{align_categories, jensen_shannon_from_counts, psi};
use llmwatch_stats::chi2::{MIN_EXPECTED_COUNT, chi2_contingency, pool_sparse_categories};
use llmwatch_stats::distance::wasserstein_distance;
use llmwatch_stats::ks::{Alternative, KsMethod, ks_2samp};
use serde::Serialize;

use crate::config::Config;
use crate::drift_cli::Settings;
use crate::replay::{OtlpRequest, SignalHint, for_each_request};

/// When a signal counts as moved (`--set psi= js= alpha= min_count=`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rules {
    /// Numeric: PSI at or above this.
    pub psi: f64,
    /// Categorical: Jensen–Shannon distance (base 2) at or above this.
    pub js: f64,
    /// The test's p-value strictly below this.
    pub alpha: f64,
    /// Values needed on each side.
    pub min_count: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            psi: 0.2,
            js: 0.1,
            alpha: 0.01,
            min_count: 30,
        }
    }
}

impl Rules {
    pub fn from_settings(mut settings: Settings) -> anyhow::Result<Rules> {
        let defaults = Rules::default();
        let rules = Rules {
            psi: settings.number("psi")?.unwrap_or(defaults.psi),
            js: settings.number("js")?.unwrap_or(defaults.js),
            alpha: settings.number("alpha")?.unwrap_or(defaults.alpha),
            min_count: settings.integer("min_count")?.unwrap_or(defaults.min_count),
        };
        settings.finish("report", &["psi", "js", "alpha", "min_count"])?;
        if rules.psi < 0.0 {
            bail!("--set psi: must be ≥ 0, got {}", rules.psi);
        }
        if !(0.0..=1.0).contains(&rules.js) {
            bail!("--set js: must be in [0, 1], got {}", rules.js);
        }
        if !(rules.alpha > 0.0 && rules.alpha <= 1.0) {
            bail!("--set alpha: must be in (0, 1], got {}", rules.alpha);
        }
        if rules.min_count == 0 {
            bail!("--set min_count: must be at least 1");
        }
        Ok(rules)
    }

    fn describe(&self) -> String {
        format!(
            "a numeric signal moved when PSI ≥ {} and the two-sample KS p-value < {}; a \
             categorical signal moved when the Jensen–Shannon distance ≥ {} and the chi-square \
             contingency p-value < {}; both need at least {} values on each side. W1/σ is the \
             Wasserstein-1 distance divided by the reference standard deviation.",
            self.psi, self.alpha, self.js, self.alpha, self.min_count
        )
    }
}

/// (service_name, gen_ai_provider_name, gen_ai_request_model).
type Key = (String, String, String);

/// What one set of files contributed to one key.
#[derive(Debug, Default)]
struct Values {
    calls: u64,
    numeric: BTreeMap<NumericSignal, Vec<f64>>,
    categorical: BTreeMap<CategoricalSignal, BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct Collected {
    keys: BTreeMap<Key, Values>,
    files: BTreeSet<PathBuf>,
    calls: u64,
    rejected_spans: u64,
}

fn collect(
    paths: &[PathBuf],
    hint: Option<SignalHint>,
    normalizer: &Normalizer,
    pricer: &Pricer,
) -> anyhow::Result<Collected> {
    let mut out = Collected::default();
    for_each_request(paths, hint, |path, request| {
        out.files.insert(path.to_owned());
        let OtlpRequest::Traces(request) = request else {
            return;
        };
        let mut rejected = 0u64;
        for resource_spans in &request.resource_spans {
            let resource = normalizer.resource(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                let call = match normalizer.span(&resource, span) {
                    Ok(Some(call)) => call,
                    Ok(None) => continue,
                    Err(error) => {
                        if rejected == 0 {
                            tracing::warn!(file = %path.display(), "{error}");
                        }
                        rejected += 1;
                        continue;
                    }
                };
                let price = pricer.price(&call);
                let response_length = call.content.output.map(|c| c.to_text().chars().count());
                let key = (
                    call.service_name.to_owned(),
                    call.provider.to_owned(),
                    call.request_model.to_owned(),
                );
                let values = out.keys.entry(key).or_default();
                values.calls += 1;
                out.calls += 1;
                for signal in NumericSignal::ALL {
                    if let Some(v) = signal.value(&call, &price, response_length)
                        && v.is_finite()
                    {
                        values.numeric.entry(signal).or_default().push(v);
                    }
                }
                for signal in CategoricalSignal::ALL {
                    signal.categories(&call, |category, n| {
                        *values
                            .categorical
                            .entry(signal)
                            .or_default()
                            .entry(category.to_owned())
                            .or_default() += n;
                    });
                }
            }
        }
        out.rejected_spans += rejected;
    })?;
    Ok(out)
}

/// The whole report; its JSON form is `llmwatch report --json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub reference: SideSummary,
    pub current: SideSummary,
    pub rules: Rules,
    /// Every moved signal, in key then signal order.
    pub moved: Vec<Moved>,
    /// Every key seen on either side, sorted.
    pub keys: Vec<KeyReport>,
}

#[derive(Debug, Serialize)]
pub struct SideSummary {
    pub files: usize,
    pub calls: u64,
    pub rejected_spans: u64,
}

#[derive(Debug, Serialize)]
pub struct Moved {
    pub service_name: String,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
    pub signal: &'static str,
    pub kind: &'static str,
    /// `ks` (numeric) or `chi2` (categorical): the test whose p-value is given.
    pub test: &'static str,
    pub p_value: f64,
    /// `psi` (numeric) or `js` (categorical): the size of the move.
    pub measure: &'static str,
    pub value: f64,
    /// For people: the means, or the category whose share changed most.
    pub change: String,
}

#[derive(Debug, Serialize)]
pub struct KeyReport {
    pub service_name: String,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
    pub reference_calls: u64,
    pub current_calls: u64,
    /// `both`, `reference_only` or `current_only`; signals are compared only for `both`.
    pub presence: &'static str,
    /// The names of the signals that moved.
    pub moved: Vec<&'static str>,
    pub signals: Vec<SignalReport>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SignalReport {
    Numeric(NumericReport),
    Categorical(CategoricalReport),
}

impl SignalReport {
    fn name(&self) -> &'static str {
        match self {
            SignalReport::Numeric(r) => r.signal,
            SignalReport::Categorical(r) => r.signal,
        }
    }

    fn moved(&self) -> bool {
        match self {
            SignalReport::Numeric(r) => r.moved,
            SignalReport::Categorical(r) => r.moved,
        }
    }
}

/// Status of a compared signal.
const MOVED: &str = "moved";
const STABLE: &str = "stable";
const INSUFFICIENT: &str = "insufficient_data";
const ONLY_REFERENCE: &str = "only_in_reference";
const ONLY_CURRENT: &str = "only_in_current";

#[derive(Debug, Serialize)]
pub struct NumericReport {
    pub signal: &'static str,
    pub kind: &'static str,
    /// `moved`, `stable`, `insufficient_data`, `only_in_reference` or `only_in_current`.
    pub status: &'static str,
    pub moved: bool,
    pub n_reference: usize,
    pub n_current: usize,
    pub reference_mean: Option<f64>,
    pub current_mean: Option<f64>,
    pub reference_median: Option<f64>,
    pub current_median: Option<f64>,
    /// current_mean / reference_mean − 1 (null when the reference mean is 0).
    pub mean_change: Option<f64>,
    pub ks_statistic: Option<f64>,
    pub ks_p_value: Option<f64>,
    pub ks_method: Option<&'static str>,
    pub psi: Option<f64>,
    pub wasserstein: Option<f64>,
    /// Wasserstein-1 / reference standard deviation (ddof 0); null for a constant reference.
    pub wasserstein_normalized: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct CategoricalReport {
    pub signal: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub moved: bool,
    /// Category observations (a call with two finish reasons gives two).
    pub n_reference: u64,
    pub n_current: u64,
    pub chi2_statistic: Option<f64>,
    pub chi2_p_value: Option<f64>,
    pub chi2_dof: Option<usize>,
    pub js: Option<f64>,
    /// The category whose share changed most (the first in name order on ties).
    pub largest_change: Option<CategoryChange>,
    /// Every category of either side, in name order.
    pub categories: Vec<CategoryCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryChange {
    pub category: String,
    pub reference_share: f64,
    pub current_share: f64,
}

#[derive(Debug, Serialize)]
pub struct CategoryCount {
    pub category: String,
    pub reference: u64,
    pub current: u64,
}

/// Reads both sets of files and compares them.
pub fn build(
    config: &Config,
    reference: &[PathBuf],
    current: &[PathBuf],
    hint: Option<SignalHint>,
    rules: Rules,
) -> anyhow::Result<Report> {
    let processor = config.processor_config()?;
    let normalizer = Normalizer::new(processor.dimensions.clone())?;
    let pricer = Pricer::new(processor.pricing.clone());
    let reference = collect(reference, hint, &normalizer, &pricer)?;
    let current = collect(current, hint, &normalizer, &pricer)?;
    if reference.calls == 0 {
        bail!("the reference files hold no model calls");
    }
    if current.calls == 0 {
        bail!("the current files hold no model calls");
    }
    let empty = Values::default();
    let all_keys: BTreeSet<&Key> = reference.keys.keys().chain(current.keys.keys()).collect();
    let mut keys = Vec::new();
    let mut moved = Vec::new();
    for key in all_keys {
        let r = reference.keys.get(key);
        let c = current.keys.get(key);
        let presence = match (r, c) {
            (Some(_), Some(_)) => "both",
            (Some(_), None) => "reference_only",
            _ => "current_only",
        };
        let (r, c) = (r.unwrap_or(&empty), c.unwrap_or(&empty));
        let mut signals = Vec::new();
        if presence == "both" {
            for signal in NumericSignal::ALL {
                let none = Vec::new();
                let rv = r.numeric.get(&signal).unwrap_or(&none);
                let cv = c.numeric.get(&signal).unwrap_or(&none);
                if rv.is_empty() && cv.is_empty() {
                    continue;
                }
                signals.push(SignalReport::Numeric(numeric(
                    signal.name(),
                    rv,
                    cv,
                    &rules,
                )?));
            }
            for signal in CategoricalSignal::ALL {
                let none = BTreeMap::new();
                let rc = r.categorical.get(&signal).unwrap_or(&none);
                let cc = c.categorical.get(&signal).unwrap_or(&none);
                if rc.is_empty() && cc.is_empty() {
                    continue;
                }
                signals.push(SignalReport::Categorical(categorical(
                    signal.name(),
                    rc,
                    cc,
                    &rules,
                )?));
            }
        }
        for s in signals.iter().filter(|s| s.moved()) {
            moved.push(moved_entry(key, s));
        }
        keys.push(KeyReport {
            service_name: key.0.clone(),
            gen_ai_provider_name: key.1.clone(),
            gen_ai_request_model: key.2.clone(),
            reference_calls: r.calls,
            current_calls: c.calls,
            presence,
            moved: signals
                .iter()
                .filter(|s| s.moved())
                .map(|s| s.name())
                .collect(),
            signals,
        });
    }
    let summary = |side: &Collected| SideSummary {
        files: side.files.len(),
        calls: side.calls,
        rejected_spans: side.rejected_spans,
    };
    Ok(Report {
        reference: summary(&reference),
        current: summary(&current),
        rules,
        moved,
        keys,
    })
}

fn moved_entry(key: &Key, signal: &SignalReport) -> Moved {
    let (kind, test, p_value, measure, value, change) = match signal {
        SignalReport::Numeric(r) => (
            "numeric",
            "ks",
            r.ks_p_value.unwrap_or(f64::NAN),
            "psi",
            r.psi.unwrap_or(f64::NAN),
            mean_text(r),
        ),
        SignalReport::Categorical(r) => (
            "categorical",
            "chi2",
            r.chi2_p_value.unwrap_or(f64::NAN),
            "js",
            r.js.unwrap_or(f64::NAN),
            share_text(r.largest_change.as_ref()),
        ),
    };
    Moved {
        service_name: key.0.clone(),
        gen_ai_provider_name: key.1.clone(),
        gen_ai_request_model: key.2.clone(),
        signal: signal.name(),
        kind,
        test,
        p_value,
        measure,
        value,
        change,
    }
}

fn numeric(
    signal: &'static str,
    reference: &[f64],
    current: &[f64],
    rules: &Rules,
) -> anyhow::Result<NumericReport> {
    let mut report = NumericReport {
        signal,
        kind: "numeric",
        status: STABLE,
        moved: false,
        n_reference: reference.len(),
        n_current: current.len(),
        reference_mean: mean(reference),
        current_mean: mean(current),
        reference_median: median(reference),
        current_median: median(current),
        mean_change: None,
        ks_statistic: None,
        ks_p_value: None,
        ks_method: None,
        psi: None,
        wasserstein: None,
        wasserstein_normalized: None,
    };
    if reference.is_empty() || current.is_empty() {
        report.status = if reference.is_empty() {
            ONLY_CURRENT
        } else {
            ONLY_REFERENCE
        };
        return Ok(report);
    }
    if let (Some(r), Some(c)) = (report.reference_mean, report.current_mean)
        && r != 0.0
    {
        report.mean_change = Some(c / r - 1.0);
    }
    let ks = ks_2samp(reference, current, Alternative::TwoSided, KsMethod::Auto)?;
    report.ks_statistic = Some(ks.statistic);
    report.ks_p_value = Some(ks.p_value);
    report.ks_method = Some(ks.method.as_str());
    let psi_value = psi(reference, current)?;
    report.psi = Some(psi_value);
    let w1 = wasserstein_distance(reference, current)?;
    report.wasserstein = Some(w1);
    let sd = population_sd(reference);
    report.wasserstein_normalized = (sd > 0.0).then(|| w1 / sd);
    let enough =
        reference.len() as u64 >= rules.min_count && current.len() as u64 >= rules.min_count;
    report.moved = enough && psi_value >= rules.psi && ks.p_value < rules.alpha;
    report.status = if !enough {
        INSUFFICIENT
    } else if report.moved {
        MOVED
    } else {
        STABLE
    };
    Ok(report)
}

fn categorical(
    signal: &'static str,
    reference: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
    rules: &Rules,
) -> anyhow::Result<CategoricalReport> {
    let aligned = align_categories(
        reference.iter().map(|(k, &n)| (k.as_str(), n)),
        current.iter().map(|(k, &n)| (k.as_str(), n)),
    );
    let n_reference: u64 = aligned.reference.iter().sum();
    let n_current: u64 = aligned.current.iter().sum();
    let mut report = CategoricalReport {
        signal,
        kind: "categorical",
        status: STABLE,
        moved: false,
        n_reference,
        n_current,
        chi2_statistic: None,
        chi2_p_value: None,
        chi2_dof: None,
        js: None,
        largest_change: None,
        categories: aligned
            .categories
            .iter()
            .zip(aligned.reference.iter().zip(&aligned.current))
            .map(|(category, (&r, &c))| CategoryCount {
                category: (*category).to_owned(),
                reference: r,
                current: c,
            })
            .collect(),
    };
    if n_reference == 0 || n_current == 0 {
        report.status = if n_reference == 0 {
            ONLY_CURRENT
        } else {
            ONLY_REFERENCE
        };
        return Ok(report);
    }
    let share = |n: u64, total: u64| n as f64 / total as f64;
    let mut largest: Option<CategoryChange> = None;
    for count in &report.categories {
        let change = CategoryChange {
            category: count.category.clone(),
            reference_share: share(count.reference, n_reference),
            current_share: share(count.current, n_current),
        };
        let size = |c: &CategoryChange| (c.current_share - c.reference_share).abs();
        if largest.as_ref().is_none_or(|l| size(&change) > size(l)) {
            largest = Some(change);
        }
    }
    report.largest_change = largest;
    let (reference, current) =
        pool_sparse_categories(&aligned.reference, &aligned.current, MIN_EXPECTED_COUNT);
    let chi2 = chi2_contingency(&reference, &current, true)?;
    report.chi2_statistic = Some(chi2.statistic);
    report.chi2_p_value = Some(chi2.p_value);
    report.chi2_dof = Some(chi2.dof);
    let js = jensen_shannon_from_counts(&reference, &current)?;
    report.js = Some(js);
    let enough = n_reference >= rules.min_count && n_current >= rules.min_count;
    report.moved = enough && js >= rules.js && chi2.p_value < rules.alpha;
    report.status = if !enough {
        INSUFFICIENT
    } else if report.moved {
        MOVED
    } else {
        STABLE
    };
    Ok(report)
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// numpy's median: the mean of the two middle values for an even count.
fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

fn population_sd(values: &[f64]) -> f64 {
    let Some(m) = mean(values) else {
        return 0.0;
    };
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64).sqrt()
}

/// A number for people: up to 4 significant digits, scientific outside [0.001, 1e6).
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let magnitude = x.abs();
    if !(1e-3..1e6).contains(&magnitude) {
        return format!("{x:.2e}");
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), number)
}

fn mean_text(r: &NumericReport) -> String {
    let mut text = format!(
        "mean {} → {}",
        optional(r.reference_mean),
        optional(r.current_mean)
    );
    if let Some(change) = r.mean_change {
        let _ = write!(text, " ({:+.1}%)", change * 100.0);
    }
    text
}

fn share_text(change: Option<&CategoryChange>) -> String {
    match change {
        Some(c) => format!(
            "{} {:.1}% → {:.1}%",
            cell(&c.category),
            c.reference_share * 100.0,
            c.current_share * 100.0
        ),
        None => "—".to_owned(),
    }
}

/// A table cell: `|` escaped, empty shown as `(none)`.
fn cell(text: &str) -> String {
    if text.is_empty() {
        "(none)".to_owned()
    } else {
        text.replace('|', "\\|").replace('\n', " ")
    }
}

fn top(categories: &[CategoryCount], total: u64, side: fn(&CategoryCount) -> u64) -> String {
    if total == 0 {
        return "—".to_owned();
    }
    let mut sorted: Vec<&CategoryCount> = categories.iter().filter(|c| side(c) > 0).collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(side(c)));
    sorted
        .iter()
        .take(2)
        .map(|c| {
            format!(
                "{} {:.1}%",
                cell(&c.category),
                side(c) as f64 / total as f64 * 100.0
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown form of the report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let side = |s: &SideSummary| {
        let mut text = format!("{} calls in {} file(s)", s.calls, s.files);
        if s.rejected_spans > 0 {
            let _ = write!(text, ", {} span(s) rejected", s.rejected_spans);
        }
        text
    };
    let _ = writeln!(out, "# Drift report\n");
    let _ = writeln!(
        out,
        "Reference: {}. Current: {}.\n",
        side(&report.reference),
        side(&report.current)
    );
    let _ = writeln!(out, "Rule: {}\n", report.rules.describe());
    let _ = writeln!(out, "## Moved signals\n");
    if report.moved.is_empty() {
        let _ = writeln!(out, "No signal moved.\n");
    } else {
        let _ = writeln!(
            out,
            "| service | provider | model | signal | test | p-value | PSI / JS | change |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for m in &report.moved {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} {} | {} |",
                cell(&m.service_name),
                cell(&m.gen_ai_provider_name),
                cell(&m.gen_ai_request_model),
                m.signal,
                if m.test == "ks" {
                    "KS + PSI"
                } else {
                    "chi² + JS"
                },
                number(m.p_value),
                m.measure.to_uppercase(),
                number(m.value),
                m.change
            );
        }
        out.push('\n');
    }
    for key in &report.keys {
        let _ = writeln!(
            out,
            "## {} · {} · {}\n",
            cell(&key.service_name),
            cell(&key.gen_ai_provider_name),
            cell(&key.gen_ai_request_model)
        );
        match key.presence {
            "reference_only" => {
                let _ = writeln!(
                    out,
                    "Only in the reference ({} calls); not compared.\n",
                    key.reference_calls
                );
                continue;
            }
            "current_only" => {
                let _ = writeln!(
                    out,
                    "Only in the current files ({} calls); not compared.\n",
                    key.current_calls
                );
                continue;
            }
            _ => {}
        }
        let _ = writeln!(
            out,
            "{} reference calls, {} current calls. Moved: {}.\n",
            key.reference_calls,
            key.current_calls,
            if key.moved.is_empty() {
                "none".to_owned()
            } else {
                key.moved.join(", ")
            }
        );
        let numeric: Vec<Vec<String>> = key
            .signals
            .iter()
            .filter_map(|s| match s {
                SignalReport::Numeric(r) => Some(vec![
                    r.signal.to_string(),
                    r.n_reference.to_string(),
                    r.n_current.to_string(),
                    optional(r.reference_mean),
                    optional(r.current_mean),
                    r.mean_change
                        .map_or_else(|| "—".to_owned(), |c| format!("{:+.1}%", c * 100.0)),
                    optional(r.ks_statistic),
                    optional(r.ks_p_value),
                    optional(r.psi),
                    optional(r.wasserstein_normalized),
                    status_text(r.status),
                ]),
                SignalReport::Categorical(_) => None,
            })
            .collect();
        markdown_table(
            &mut out,
            &[
                "signal", "n ref", "n cur", "mean ref", "mean cur", "change", "KS D", "KS p",
                "PSI", "W1/σ", "status",
            ],
            &numeric,
        );
        let categorical: Vec<Vec<String>> = key
            .signals
            .iter()
            .filter_map(|s| match s {
                SignalReport::Categorical(r) => Some(vec![
                    r.signal.to_string(),
                    r.n_reference.to_string(),
                    r.n_current.to_string(),
                    top(&r.categories, r.n_reference, |c| c.reference),
                    top(&r.categories, r.n_current, |c| c.current),
                    share_text(r.largest_change.as_ref()),
                    optional(r.chi2_p_value),
                    optional(r.js),
                    status_text(r.status),
                ]),
                SignalReport::Numeric(_) => None,
            })
            .collect();
        markdown_table(
            &mut out,
            &[
                "signal",
                "n ref",
                "n cur",
                "top ref",
                "top cur",
                "largest change",
                "chi² p",
                "JS",
                "status",
            ],
            &categorical,
        );
    }
    out
}

/// A Markdown table followed by a blank line; nothing when there are no rows.
fn markdown_table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn status_text(status: &str) -> String {
    if status == MOVED {
        "**moved**".to_owned()
    } else {
        status.replace('_', " ")
    }
}

/// `llmwatch report`: the report as Markdown, or as JSON with `json`.
pub fn run(
    config: &Config,
    reference: &[PathBuf],
    current: &[PathBuf],
    hint: Option<SignalHint>,
    rules: Rules,
    json: bool,
) -> anyhow::Result<String> {
    let report = build(config, reference, current, hint, rules)?;
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        markdown(&report)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(100.26), "100.3");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(0.012345), "0.01235");
        assert_eq!(number(1.2e-30), "1.20e-30");
        assert_eq!(number(2_500_000.0), "2.50e6");
        assert_eq!(number(-12.0), "-12");
        assert_eq!(number(f64::NAN), "—");
    }

    fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, n)| (k.to_owned(), n)).collect()
    }

    #[test]
    fn rare_categories_are_pooled_before_testing_but_listed_as_counted() {
        // Two error types on 1 and 2 calls of ~200: expected counts far under 5, so they pool,
        // and the pool (3) is still sparse, so it takes `stop` too: nothing left to compare.
        let reference = counts(&[("stop", 200), ("timeout", 1)]);
        let current = counts(&[("stop", 200), ("rate_limit", 2)]);
        let report = categorical("error_type", &reference, &current, &Rules::default()).unwrap();
        assert_eq!(report.chi2_dof, Some(0));
        assert_eq!(report.chi2_p_value, Some(1.0));
        assert_eq!(report.js, Some(0.0));
        assert_eq!(report.status, STABLE);
        let listed: Vec<(&str, u64, u64)> = report
            .categories
            .iter()
            .map(|c| (c.category.as_str(), c.reference, c.current))
            .collect();
        assert_eq!(
            listed,
            [("rate_limit", 0, 2), ("stop", 200, 200), ("timeout", 1, 0)]
        );
    }

    #[test]
    fn a_category_past_the_rule_stands_on_its_own() {
        // `length` appears on 50 of 200 calls and stands; the two rare ones (5 and 6 calls in
        // all, under the 10 that Cochran's rule asks here) pool into one column of 11.
        let reference = counts(&[("stop", 195), ("content_filter", 3), ("tool_call", 2)]);
        let current = counts(&[
            ("stop", 144),
            ("length", 50),
            ("content_filter", 3),
            ("tool_call", 3),
        ]);
        let report = categorical("finish_reason", &reference, &current, &Rules::default()).unwrap();
        // Kept columns in name order (length, stop), then the pool.
        let (r, c) = ([0, 195, 5], [50, 144, 6]);
        assert_eq!(report.chi2_dof, Some(2));
        let pooled = chi2_contingency(&r, &c, true).unwrap();
        assert_eq!(report.chi2_statistic, Some(pooled.statistic));
        assert!(pooled.p_value < 1e-10, "{report:?}");
        assert_eq!(report.js, Some(jensen_shannon_from_counts(&r, &c).unwrap()));
        assert_eq!(report.status, MOVED);
    }

    #[test]
    fn medians_as_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
