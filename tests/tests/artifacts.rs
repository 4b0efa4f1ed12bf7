//! The SRE artifacts against the metric catalog: every PromQL expression in `alert-rules/` and
//! `dashboards/` is parsed (promql-parser) and may only name metrics and labels that
//! `llmwatch_core::catalog` defines (histograms as `_bucket`/`_sum`/`_count` with `le`), that
//! Prometheus adds (`job`, `instance`, `up`, `scrape_*`, `ALERTS`), that a recording rule
//! records, or that the example configuration adds as a dimension. Dashboards must carry the
//! fields an importable, navigable dashboard needs; alerts must follow the naming, severity and
//! annotation conventions, have a runbook section and promtool unit tests that fire them at
//! each severity and keep them silent.
//!
//! promtool itself (lint, unit tests) runs in `tests/alerting/check.sh`; this test needs no
//! Prometheus binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use llmwatch_core::catalog::{
    CATALOG, DRIFT_KEY_LABELS, GENAI_LABELS, LabelPrefix, MetricKind, OVERFLOW_LABEL,
};
use promql_parser::label::Matchers;
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality};
use serde::Deserialize;
use serde_json::Value as Json;

const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];
/// Grafana unit ids the dashboards may use (all in dashboard-linter's list).
const UNITS: [&str; 8] = [
    "short",
    "none",
    "percentunit",
    "reqps",
    "s",
    "currencyUSD",
    "bytes",
    "dateTimeFromNow",
];
/// Stand-ins for Grafana's interval variables, so their ranges can be told apart after parsing.
const RATE_INTERVAL: &str = "61s";
const RANGE: &str = "62s";
const INTERVAL: &str = "63s";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no {suffix} files in {dir}");
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

// ------------------------------------------------------------------------------------------------
// What may be named
// ------------------------------------------------------------------------------------------------

/// Labels a series may carry; `None` = any (ALERTS carries the alerts' own labels).
type LabelSet = Option<BTreeSet<String>>;

#[derive(Debug)]
struct Names {
    metrics: HashMap<String, LabelSet>,
    /// Every label some metric has: what a recording rule's output may carry.
    universe: BTreeSet<String>,
}

/// Labels the example configuration adds to every GenAI and drift metric (`[[dimensions]]`).
fn dimension_labels() -> Vec<String> {
    let text = read(&root().join("llmwatch.example.toml"));
    let value: toml::Value = toml::from_str(&text).expect("llmwatch.example.toml parses");
    value
        .get("dimensions")
        .and_then(|d| d.as_array())
        .map(|dims| {
            dims.iter()
                .filter_map(|d| d.get("label").and_then(|l| l.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Names {
    fn from_catalog(rules: &[RuleFile]) -> Names {
        let dims = dimension_labels();
        assert!(
            dims.iter().any(|d| d == "feature"),
            "the dashboards' feature variable needs a `feature` dimension in llmwatch.example.toml"
        );
        let target = ["job", "instance"];
        let mut metrics: HashMap<String, LabelSet> = HashMap::new();
        let mut universe: BTreeSet<String> = BTreeSet::new();
        for def in CATALOG {
            let mut labels: BTreeSet<String> = target.iter().map(|l| l.to_string()).collect();
            let prefix: &[&str] = match def.prefix {
                LabelPrefix::None => &[],
                LabelPrefix::GenAi => &GENAI_LABELS,
                LabelPrefix::DriftKey => &DRIFT_KEY_LABELS,
            };
            labels.extend(prefix.iter().map(|l| l.to_string()));
            if def.prefix != LabelPrefix::None {
                labels.extend(dims.iter().cloned());
            }
            labels.extend(def.labels.iter().map(|l| l.to_string()));
            labels.insert(OVERFLOW_LABEL.to_owned());
            universe.extend(labels.iter().cloned());
            if def.kind == MetricKind::Histogram {
                let mut bucket = labels.clone();
                bucket.insert("le".to_owned());
                universe.insert("le".to_owned());
                metrics.insert(format!("{}_bucket", def.name), Some(bucket));
                metrics.insert(format!("{}_sum", def.name), Some(labels.clone()));
                metrics.insert(format!("{}_count", def.name), Some(labels));
            } else {
                metrics.insert(def.name.to_owned(), Some(labels));
            }
        }
        // Series Prometheus writes itself.
        for name in [
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            metrics.insert(
                name.to_owned(),
                Some(target.iter().map(|l| l.to_string()).collect()),
            );
        }
        metrics.insert("ALERTS".to_owned(), None);
        metrics.insert("ALERTS_FOR_STATE".to_owned(), None);
        // Recording rules: their outputs, with any label a metric or a rule's `labels:` has.
        for file in rules {
            for group in &file.groups {
                for rule in &group.rules {
                    universe.extend(rule.labels.keys().cloned());
                }
            }
        }
        for file in rules {
            for group in &file.groups {
                for rule in &group.rules {
                    if let Some(record) = &rule.record {
                        metrics.insert(record.clone(), Some(universe.clone()));
                    }
                }
            }
        }
        Names { metrics, universe }
    }
}

// ------------------------------------------------------------------------------------------------
// Checking one expression
// ------------------------------------------------------------------------------------------------

/// What a checked (sub)expression yields: the labels its series can carry.
#[derive(Debug, Clone, Default)]
struct Avail {
    any: bool,
    labels: BTreeSet<String>,
}

impl Avail {
    fn has(&self, label: &str) -> bool {
        self.any || self.labels.contains(label)
    }
    fn union(mut self, other: Avail) -> Avail {
        self.any |= other.any;
        self.labels.extend(other.labels);
        self
    }
}

#[derive(Debug, Default)]
struct Findings {
    errors: Vec<String>,
    /// Range durations of range selectors, with the function applied to them.
    ranges: Vec<(String, Duration)>,
    /// Counters (`_total`) used outside rate/increase/irate.
    raw_counters: Vec<String>,
    /// Every metric name a selector named.
    used: BTreeSet<String>,
}

struct Checker<'a> {
    names: &'a Names,
    findings: Findings,
}

impl Checker<'_> {
    fn selector(&mut self, name: Option<&String>, matchers: &Matchers, in_range_fn: bool) -> Avail {
        let metric_name = name.cloned().or_else(|| {
            matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        let Some(metric) = metric_name else {
            self.findings
                .errors
                .push("a selector without a metric name".to_owned());
            return Avail::default();
        };
        let Some(allowed) = self.names.metrics.get(&metric) else {
            self.findings
                .errors
                .push(format!("metric `{metric}` is not in the catalog"));
            return Avail::default();
        };
        self.findings.used.insert(metric.clone());
        if metric.ends_with("_total") && !in_range_fn {
            self.findings.raw_counters.push(metric.clone());
        }
        let all = matchers
            .matchers
            .iter()
            .chain(matchers.or_matchers.iter().flatten());
        for m in all {
            if m.name == "__name__" {
                continue;
            }
            if let Some(allowed) = allowed
                && !allowed.contains(&m.name)
            {
                self.findings
                    .errors
                    .push(format!("metric `{metric}` has no label `{}`", m.name));
            }
        }
        match allowed {
            None => Avail {
                any: true,
                labels: BTreeSet::new(),
            },
            Some(labels) => Avail {
                any: false,
                labels: labels.clone(),
            },
        }
    }

    fn modifier_labels(&mut self, labels: &[String], avail: &Avail, what: &str) {
        for label in labels {
            if !avail.has(label) {
                self.findings.errors.push(format!(
                    "`{what} ({label})` names a label its operands do not have"
                ));
            }
        }
    }

    fn expr(&mut self, expr: &Expr, in_range_fn: bool) -> Avail {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs.name.as_ref(), &vs.matchers, in_range_fn),
            Expr::MatrixSelector(ms) => {
                self.findings
                    .ranges
                    .push((ms.vs.name.clone().unwrap_or_default(), ms.range));
                self.selector(ms.vs.name.as_ref(), &ms.vs.matchers, in_range_fn)
            }
            Expr::Aggregate(agg) => {
                if let Some(param) = &agg.param {
                    self.expr(param, false);
                }
                let inner = self.expr(&agg.expr, false);
                match &agg.modifier {
                    Some(LabelModifier::Include(labels)) => {
                        self.modifier_labels(&labels.labels, &inner, "by");
                        Avail {
                            any: false,
                            labels: labels.labels.iter().cloned().collect(),
                        }
                    }
                    Some(LabelModifier::Exclude(labels)) => {
                        self.modifier_labels(&labels.labels, &inner, "without");
                        inner
                    }
                    None => {
                        // topk/bottomk/limitk keep their input's labels.
                        if agg.param.is_some() {
                            inner
                        } else {
                            Avail::default()
                        }
                    }
                }
            }
            Expr::Unary(u) => self.expr(&u.expr, false),
            Expr::Paren(p) => self.expr(&p.expr, false),
            Expr::Subquery(s) => self.expr(&s.expr, false),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {
                Avail::default()
            }
            Expr::Binary(b) => {
                let lhs = self.expr(&b.lhs, false);
                let rhs = self.expr(&b.rhs, false);
                let both = lhs.clone().union(rhs.clone());
                if let Some(modifier) = &b.modifier {
                    if let Some(matching) = &modifier.matching {
                        let what = if matching.is_include() {
                            "on"
                        } else {
                            "ignoring"
                        };
                        self.modifier_labels(&matching.labels().labels, &both, what);
                    }
                    match &modifier.card {
                        VectorMatchCardinality::ManyToOne(labels) => {
                            self.modifier_labels(&labels.labels, &rhs, "group_left");
                        }
                        VectorMatchCardinality::OneToMany(labels) => {
                            self.modifier_labels(&labels.labels, &lhs, "group_right");
                        }
                        _ => {}
                    }
                }
                both
            }
            Expr::Call(call) => {
                let name = call.func.name;
                let range_fn = matches!(name, "rate" | "increase" | "irate");
                let args = &call.args.args;
                let mut avail = Avail::default();
                for arg in args {
                    avail = avail.union(self.expr(arg, range_fn));
                }
                if name == "label_replace" && args.len() == 5 {
                    let text = |e: &Expr| match e {
                        Expr::StringLiteral(s) => Some(s.val.clone()),
                        _ => None,
                    };
                    if let (Some(dst), Some(src)) = (text(&args[1]), text(&args[3])) {
                        if !avail.has(&src) {
                            self.findings.errors.push(format!(
                                "label_replace reads label `{src}` its input does not have"
                            ));
                        }
                        avail.labels.insert(dst);
                    }
                }
                if name == "absent" {
                    // absent() carries the equality matchers' labels: a subset of its input's.
                    return avail;
                }
                avail
            }
        }
    }
}

/// Parses and checks one expression; `context` names where it came from.
fn check_expr(names: &Names, expr: &str, context: &str, errors: &mut Vec<String>) -> Findings {
    let parsed = match parser::parse(expr) {
        Ok(parsed) => parsed,
        Err(e) => {
            errors.push(format!("{context}: does not parse: {e}\n    {expr}"));
            return Findings::default();
        }
    };
    let mut checker = Checker {
        names,
        findings: Findings::default(),
    };
    checker.expr(&parsed, false);
    for error in &checker.findings.errors {
        errors.push(format!("{context}: {error}\n    {expr}"));
    }
    checker.findings
}

// ------------------------------------------------------------------------------------------------
// Rule files and their unit tests
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<Group>,
}

/// Only what Prometheus 2.42 accepts (no group `labels:`, no `query_offset:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    interval: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    limit: Option<u64>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn rule_files() -> Vec<(PathBuf, RuleFile)> {
    files("alert-rules", ".rules.yml")
        .into_iter()
        .map(|path| {
            let file: RuleFile = serde_norway::from_str(&read(&path))
                .unwrap_or_else(|e| panic!("{}: {e}", rel(&path)));
            (path, file)
        })
        .collect()
}

/// Every `query` a description template runs, e.g. {{ with query `slo:objective:ratio` }}.
fn template_queries(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("query `") {
        let after = &rest[start + "query `".len()..];
        let end = after
            .find('`')
            .expect("closing backtick of a template query");
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

fn is_camel_case(name: &str) -> bool {
    // mixtool's alert-name-camelcase: ^([A-Z]+[a-z0-9]+)+$
    let bytes = name.as_bytes();
    let mut i = 0;
    if bytes.is_empty() {
        return false;
    }
    while i < bytes.len() {
        let upper = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase())
            .count();
        if upper == 0 {
            return false;
        }
        i += upper;
        let lower = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            .count();
        if lower == 0 {
            return false;
        }
        i += lower;
    }
    true
}

#[test]
fn alert_rules_name_only_catalog_metrics_and_follow_the_conventions() {
    let rules = rule_files();
    let files: Vec<RuleFile> = rules.iter().map(|(_, f)| f.clone()).collect();
    let names = Names::from_catalog(&files);
    let runbook = read(&root().join("alert-rules/runbook.md"));
    let sections: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let mut errors = Vec::new();
    let mut alerts: BTreeSet<String> = BTreeSet::new();
    let mut records = 0;
    for (path, file) in &rules {
        for group in &file.groups {
            for rule in &group.rules {
                let what = rule
                    .alert
                    .as_deref()
                    .or(rule.record.as_deref())
                    .unwrap_or("?");
                let ctx = format!("{} / {} / {what}", rel(path), group.name);
                check_expr(&names, &rule.expr, &ctx, &mut errors);
                match (&rule.record, &rule.alert) {
                    (Some(record), None) => {
                        records += 1;
                        let parts: Vec<&str> = record.split(':').collect();
                        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                            errors.push(format!(
                                "{ctx}: recording rule names are level:metric:operations"
                            ));
                        }
                        if rule.for_.is_some() || !rule.annotations.is_empty() {
                            errors.push(format!("{ctx}: a recording rule with for/annotations"));
                        }
                    }
                    (None, Some(alert)) => {
                        alerts.insert(alert.clone());
                        check_alert(alert, rule, &ctx, &sections, &names, &mut errors);
                    }
                    _ => errors.push(format!("{ctx}: a rule needs exactly one of record, alert")),
                }
            }
        }
    }
    for section in &sections {
        if section.starts_with("Llmwatch") && !alerts.contains(*section) {
            errors.push(format!("runbook.md: section `{section}` names no alert"));
        }
    }
    assert!(alerts.len() >= 15 && records >= 10, "{alerts:?}");
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn check_alert(
    alert: &str,
    rule: &Rule,
    ctx: &str,
    sections: &BTreeSet<&str>,
    names: &Names,
    errors: &mut Vec<String>,
) {
    if !alert.starts_with("Llmwatch") || !is_camel_case(alert) {
        errors.push(format!(
            "{ctx}: alert names are CamelCase with the Llmwatch prefix"
        ));
    }
    match rule.labels.get("severity").map(String::as_str) {
        Some(s) if SEVERITIES.contains(&s) => {}
        other => errors.push(format!(
            "{ctx}: severity {other:?} is not one of {SEVERITIES:?}"
        )),
    }
    for (key, value) in &rule.labels {
        if value.contains("{{") {
            errors.push(format!(
                "{ctx}: label {key} is templated (labels must be stable)"
            ));
        }
    }
    if rule.for_.is_none() && rule.keep_firing_for.is_none() {
        errors.push(format!(
            "{ctx}: neither `for` nor `keep_firing_for` against flapping"
        ));
    }
    for key in rule.annotations.keys() {
        if !["summary", "description", "runbook_url", "dashboard_url"].contains(&key.as_str()) {
            errors.push(format!("{ctx}: unexpected annotation {key}"));
        }
    }
    let summary = rule
        .annotations
        .get("summary")
        .map(String::as_str)
        .unwrap_or("");
    let one_sentence = summary.trim_end_matches('.').matches(". ").count() == 0;
    if !(summary.starts_with(|c: char| c.is_ascii_uppercase())
        && summary.ends_with('.')
        && one_sentence
        && !summary.contains("{{"))
    {
        errors.push(format!(
            "{ctx}: summary must be one static sentence, capitalised, ending with a period: {summary:?}"
        ));
    }
    let description = rule
        .annotations
        .get("description")
        .map(String::as_str)
        .unwrap_or("");
    if !description.contains("{{") {
        errors.push(format!(
            "{ctx}: description must be templated (value and labels)"
        ));
    }
    for query in template_queries(description) {
        check_expr(names, &query, &format!("{ctx} description query"), errors);
    }
    let anchor = format!("alert-rules/runbook.md#{}", alert.to_lowercase());
    match rule.annotations.get("runbook_url") {
        Some(url) if url.starts_with("https://") && url.ends_with(&anchor) => {}
        other => errors.push(format!(
            "{ctx}: runbook_url {other:?} must end with {anchor}"
        )),
    }
    if !sections.contains(alert) {
        errors.push(format!(
            "{ctx}: alert-rules/runbook.md has no `## {alert}` section"
        ));
    }
}

#[test]
fn every_alert_has_promtool_tests_that_fire_it_at_each_severity_and_keep_it_silent() {
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut alert_names: BTreeSet<String> = BTreeSet::new();
    for (_, file) in rule_files() {
        for rule in file.groups.iter().flat_map(|g| &g.rules) {
            if let Some(alert) = &rule.alert {
                alert_names.insert(alert.clone());
                wanted.insert((alert.clone(), rule.labels["severity"].clone()));
            }
        }
    }
    let mut fired: BTreeSet<(String, String)> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for path in files("alert-rules/tests", ".test.yml") {
        let doc: serde_norway::Value =
            serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", rel(&path)));
        for rule_file in doc["rule_files"].as_sequence().expect("rule_files") {
            let target = path.parent().unwrap().join(rule_file.as_str().unwrap());
            assert!(
                target.exists(),
                "{}: {} does not exist",
                rel(&path),
                target.display()
            );
        }
        for test in doc["tests"].as_sequence().expect("tests") {
            let Some(cases) = test.get("alert_rule_test").and_then(|c| c.as_sequence()) else {
                continue;
            };
            for case in cases {
                let name = case["alertname"].as_str().expect("alertname").to_owned();
                let expected = case["exp_alerts"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                if expected.is_empty() {
                    silent.insert(name.clone());
                }
                for alert in expected {
                    let severity = alert["exp_labels"]["severity"].as_str().unwrap_or_else(|| {
                        panic!("{}: {name}: exp_labels without severity", rel(&path))
                    });
                    fired.insert((name.clone(), severity.to_owned()));
                }
            }
        }
    }
    let not_fired: Vec<_> = wanted.difference(&fired).collect();
    let not_silent: Vec<_> = alert_names.difference(&silent).collect();
    let unknown: Vec<_> = fired.difference(&wanted).collect();
    assert!(
        not_fired.is_empty() && not_silent.is_empty() && unknown.is_empty(),
        "alerts never fired at a severity by a unit test: {not_fired:?}\n\
         alerts never tested silent: {not_silent:?}\n\
         tests expecting an alert/severity no rule has: {unknown:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// Dashboards
// ------------------------------------------------------------------------------------------------

/// Replaces Grafana's variables so the expression parses, keeping the interval variables
/// recognisable by their stand-in durations.
fn substitute(expr: &str) -> String {
    let mut out = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("${__rate_interval}", RATE_INTERVAL)
        .replace("$__range", RANGE)
        .replace("${__range}", RANGE)
        .replace("$__interval", INTERVAL)
        .replace("${__interval}", INTERVAL);
    // $var and ${var} (only inside label matcher values here) -> a regex matching anything.
    while let Some(start) = out.find('$') {
        let rest = &out[start + 1..];
        let (len, _) = if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').expect("closing brace of ${var}");
            (end + 3, &inner[..end])
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (end + 1, &rest[..end])
        };
        out.replace_range(start..start + len, ".*");
    }
    out
}

fn str_at<'a>(v: &'a Json, key: &str) -> &'a str {
    v.get(key).and_then(Json::as_str).unwrap_or("")
}

fn uses_datasource_variable(v: &Json) -> bool {
    v.get("datasource")
        .and_then(|d| d.get("uid"))
        .and_then(Json::as_str)
        == Some("${datasource}")
}

#[test]
fn dashboards_name_only_catalog_metrics_and_carry_the_required_fields() {
    let rules: Vec<RuleFile> = rule_files().into_iter().map(|(_, f)| f).collect();
    let names = Names::from_catalog(&rules);
    let paths = files("dashboards", ".json");
    let mut errors = Vec::new();
    let mut uids = BTreeSet::new();
    let mut links_to: Vec<(String, String)> = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for path in &paths {
        let file = rel(path);
        let d: Json = serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut err = |msg: String| errors.push(format!("{file}: {msg}"));
        let uid = str_at(&d, "uid").to_owned();
        let well_formed = uid.starts_with("llmwatch-") && uid.len() <= 40;
        if !(well_formed && uids.insert(uid.clone())) {
            err(format!(
                "uid {uid:?} must be unique, llmwatch-…, at most 40 characters"
            ));
        }
        if file != format!("dashboards/{uid}.json") {
            err(format!("file name must be the uid ({uid}.json)"));
        }
        if !str_at(&d, "title").starts_with("llmwatch / ") || str_at(&d, "description").is_empty() {
            err("title `llmwatch / …` and a description are required".to_owned());
        }
        if d["schemaVersion"] != 39 {
            err("schemaVersion must be 39".to_owned());
        }
        if d["editable"] != false {
            err("dashboards are code: editable must be false".to_owned());
        }
        for key in ["__inputs", "__requires", "__elements", "id"] {
            if d.get(key).is_some_and(|v| !v.is_null()) {
                err(format!("`{key}` breaks file provisioning or re-import"));
            }
        }
        let tags: Vec<&str> = d["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        if !tags.contains(&"llmwatch") {
            err("tag `llmwatch` is required (the dashboards link each other by it)".to_owned());
        }
        let linked = d["links"].as_array().into_iter().flatten().any(|l| {
            str_at(l, "type") == "dashboards"
                && l["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t == "llmwatch"))
                && l["includeVars"] == true
                && l["keepTime"] == true
        });
        if !linked {
            err(
                "a `dashboards` link by tag llmwatch keeping time and variables is required"
                    .to_owned(),
            );
        }
        for annotation in d["annotations"]["list"].as_array().into_iter().flatten() {
            if let Some(expr) = annotation.get("expr").and_then(Json::as_str) {
                check_expr(
                    &names,
                    &substitute(expr),
                    &format!("{file} annotation"),
                    &mut errors,
                );
            }
        }

        // Variables.
        let vars: Vec<&Json> = d["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let var = |name: &str| vars.iter().find(|v| str_at(v, "name") == name).copied();
        match var("datasource") {
            Some(v) if str_at(v, "type") == "datasource" && str_at(v, "query") == "prometheus" => {}
            _ => errors.push(format!(
                "{file}: a `datasource` variable of type datasource (prometheus) is required"
            )),
        }
        let mut wanted = vec![("job", "job", ".+"), ("instance", "instance", ".+")];
        if uid != "llmwatch-self" {
            wanted.extend([
                ("service", "service_name", ".*"),
                ("provider", "gen_ai_provider_name", ".*"),
                ("model", "gen_ai_request_model", ".*"),
                ("feature", "feature", ".*"),
            ]);
        }
        for (name, label, all) in wanted {
            let Some(v) = var(name) else {
                errors.push(format!("{file}: variable `{name}` is missing"));
                continue;
            };
            let query = str_at(v, "query");
            let ok = str_at(v, "type") == "query"
                && uses_datasource_variable(v)
                && v["multi"] == true
                && v["includeAll"] == true
                && str_at(v, "allValue") == all
                && v["refresh"] == 2
                && query.starts_with("label_values(")
                && query.ends_with(&format!(", {label})"));
            if !ok {
                errors.push(format!(
                    "{file}: variable `{name}` must be a multi, include-all query on $datasource with allValue {all:?}, refresh on time change, label_values(…, {label})"
                ));
            }
        }
        for v in vars.iter().filter(|v| str_at(v, "type") == "query") {
            let query = str_at(v, "query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .and_then(|q| q.rsplit_once(", "));
            match inner {
                Some((selector, label)) => {
                    let ctx = format!("{file} variable {}", str_at(v, "name"));
                    check_expr(&names, &substitute(selector), &ctx, &mut errors);
                    let metric = selector.split('{').next().unwrap_or("");
                    match names.metrics.get(metric) {
                        Some(Some(labels)) if !labels.contains(label) => {
                            errors.push(format!("{ctx}: `{metric}` has no label `{label}`"));
                        }
                        _ => {}
                    }
                }
                None => errors.push(format!(
                    "{file}: variable query {query:?} is not label_values(selector, label)"
                )),
            }
        }

        // Panels.
        let mut ids = BTreeSet::new();
        let mut cells: BTreeSet<(i64, i64)> = BTreeSet::new();
        for panel in d["panels"].as_array().into_iter().flatten() {
            let title = str_at(panel, "title").to_owned();
            let id = panel["id"].as_i64().unwrap_or(-1);
            if !ids.insert(id) {
                errors.push(format!("{file}: panel id {id} is not unique"));
            }
            let g = &panel["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_i64(),
                g["y"].as_i64(),
                g["w"].as_i64(),
                g["h"].as_i64(),
            );
            match (x, y, w, h) {
                (Some(x), Some(y), Some(w), Some(h)) if x >= 0 && w > 0 && x + w <= 24 && h > 0 => {
                    for cx in x..x + w {
                        for cy in y..y + h {
                            if !cells.insert((cx, cy)) {
                                errors.push(format!("{file}: panel {title:?} overlaps another"));
                            }
                        }
                    }
                }
                _ => errors.push(format!(
                    "{file}: panel {title:?} has no valid gridPos in 24 columns"
                )),
            }
            if str_at(panel, "type") == "row" {
                continue;
            }
            let ctx = format!("{file} panel {title:?}");
            if title.is_empty() || str_at(panel, "description").len() < 40 {
                errors.push(format!(
                    "{ctx}: a title and a description saying what it means and what to do"
                ));
            }
            if !uses_datasource_variable(panel) {
                errors.push(format!("{ctx}: datasource must be ${{datasource}}"));
            }
            let unit = str_at(&panel["fieldConfig"]["defaults"], "unit");
            if !UNITS.contains(&unit) {
                errors.push(format!("{ctx}: unit {unit:?} is not one of {UNITS:?}"));
            }
            for link in panel["links"].as_array().into_iter().flatten() {
                let url = str_at(link, "url");
                let target = url
                    .strip_prefix("/d/")
                    .and_then(|u| u.split('?').next())
                    .unwrap_or(url);
                links_to.push((ctx.clone(), target.to_owned()));
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                errors.push(format!("{ctx}: no targets"));
            }
            for t in &targets {
                if !uses_datasource_variable(t) {
                    errors.push(format!("{ctx}: target datasource must be ${{datasource}}"));
                }
                let expr = str_at(t, "expr");
                let findings = check_expr(&names, &substitute(expr), &ctx, &mut errors);
                used.extend(findings.used.iter().cloned());
                for (metric, range) in &findings.ranges {
                    let variable = [RATE_INTERVAL, RANGE, INTERVAL]
                        .iter()
                        .any(|s| humantime_secs(s) == range.as_secs());
                    if !variable && range.as_secs() < 3600 {
                        errors.push(format!(
                            "{ctx}: `{metric}[{}s]`: use $__rate_interval (or $__range for totals, or a window of an hour or more for trends)",
                            range.as_secs()
                        ));
                    }
                }
                for counter in &findings.raw_counters {
                    // Each new value is a series at 1: a presence marker, never rated.
                    if counter != "llmwatch_model_changes_total" {
                        errors.push(format!(
                            "{ctx}: counter `{counter}` used outside rate/increase/irate"
                        ));
                    }
                }
            }
        }
    }
    for (ctx, target) in links_to {
        if !uids.contains(&target) {
            errors.push(format!("{ctx}: links to unknown dashboard {target:?}"));
        }
    }
    // Every metric llmwatch exposes is on some dashboard: an issue that adds a metric leaves the
    // dashboards complete for it.
    for def in CATALOG {
        // The virtual size of a process says nothing about its memory use (resident memory does).
        if def.name == "process_virtual_memory_bytes" {
            continue;
        }
        let shown = if def.kind == MetricKind::Histogram {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| used.contains(&format!("{}{suffix}", def.name)))
        } else {
            used.contains(def.name)
        };
        if !shown {
            errors.push(format!("metric {} is on no dashboard", def.name));
        }
    }
    for wanted in [
        "overview", "cost", "latency", "quality", "drift", "safety", "self",
    ] {
        if !uids.contains(&format!("llmwatch-{wanted}")) {
            errors.push(format!("dashboard llmwatch-{wanted} is missing"));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn humantime_secs(s: &str) -> u64 {
    s.trim_end_matches('s')
        .parse()
        .expect("stand-in durations are whole seconds")
}

// ------------------------------------------------------------------------------------------------
// The checker itself
// ------------------------------------------------------------------------------------------------

#[test]
fn the_checker_rejects_unknown_metrics_and_labels() {
    let names = Names::from_catalog(&[]);
    assert!(names.universe.contains("gen_ai_request_model"));
    let bad = [
        "rate(llmwatch_llm_call_total[5m])",
        "rate(llmwatch_llm_calls_total{model=\"x\"}[5m])",
        "sum by (le) (rate(llmwatch_cost_usd_total[5m]))",
        "histogram_quantile(0.9, rate(llmwatch_call_cost_usd{le=\"1\"}[5m]))",
        "sum by (service) (rate(llmwatch_llm_calls_total[5m]))",
        "llmwatch_budget_spend_usd / on (nope) llmwatch_budget_limit_usd",
        "llmwatch_budget_spend_usd{service_name=\"x\"}",
        "rate(llmwatch_llm_calls_total{feature=\"x\"}[5m]) +",
    ];
    for expr in bad {
        let mut errors = Vec::new();
        check_expr(&names, expr, "t", &mut errors);
        assert!(!errors.is_empty(), "accepted: {expr}");
    }
    let good = [
        "sum by (le, feature) (rate(llmwatch_call_cost_usd_bucket{job=\"x\", feature=\"a\"}[5m]))",
        "sum by (budget) (llmwatch_budget_spend_usd) / on (budget) max by (budget) (llmwatch_budget_limit_usd)",
        "up{job=\"llmwatch\"} == 0 or absent(up{job=\"llmwatch\"})",
        "ALERTS{alertstate=\"firing\", service_name=\"chat\"}",
        "label_replace(llmwatch_spc_alarm, \"evaluation_name\", \"$1\", \"signal\", \"evaluation_score:(.+)\")",
    ];
    for expr in good {
        let mut errors = Vec::new();
        check_expr(&names, expr, "t", &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }
    assert_eq!(
        substitute("rate(x{a=~\"$job\", b=~\"${model}\"}[$__rate_interval])"),
        "rate(x{a=~\".*\", b=~\".*\"}[61s])"
    );
    assert!(is_camel_case("LlmwatchErrorBudgetBurn") && !is_camel_case("llmwatchDown"));
}
