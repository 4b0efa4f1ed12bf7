//! llmwatch's own catalog format, in TOML or JSON:
//!
//! ```toml
//! [[model]]
//! name = "gpt-4o"
//! vendor = "openai"
//! aliases = ["gpt-4o-2024-08-06"]
//! match = [{ starts_with = "ft:gpt-4o" }]
//! checked = "2025-10-01"
//! [[model.prices]]
//! since = "2024-10-02"
//! input = 2.5          # USD per million tokens
//! cache_read = 1.25
//! output = 10.0
//! ```

use serde::Deserialize;

use crate::date::Date;
use crate::error::CatalogError;
use crate::model::{MatchRule, ModelEntry, PricePeriod, Prices, Tier};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    model: Vec<Model>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    name: String,
    vendor: String,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default, rename = "match")]
    rules: Vec<Rule>,
    #[serde(default)]
    checked: Option<String>,
    prices: Vec<Period>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Period {
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    input: f64,
    #[serde(default)]
    output: Option<f64>,
    #[serde(default)]
    cache_read: Option<f64>,
    /// Same as `cache_write_5m`.
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    cache_write_5m: Option<f64>,
    #[serde(default)]
    cache_write_1h: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
    #[serde(default)]
    tiers: Vec<TierSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierSpec {
    above_input_tokens: u64,
    #[serde(default)]
    input: Option<f64>,
    #[serde(default)]
    output: Option<f64>,
    #[serde(default)]
    cache_read: Option<f64>,
    #[serde(default)]
    cache_write: Option<f64>,
    #[serde(default)]
    cache_write_5m: Option<f64>,
    #[serde(default)]
    cache_write_1h: Option<f64>,
    #[serde(default)]
    reasoning: Option<f64>,
}

/// A matching rule, written as a one-key table: `{ starts_with = "…" }`, `{ regex = "…" }`,
/// `{ equals = … }`, `{ ends_with = … }`, `{ contains = … }`, `{ any = [...] }`, `{ all = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Rule {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Regex(String),
    Any(Vec<Rule>),
    All(Vec<Rule>),
}

/// Parses a native catalog (TOML, or JSON when the text starts with `{`).
pub fn parse(text: &str, source: &str) -> Result<Vec<ModelEntry>, CatalogError> {
    let file: File = if text.trim_start().starts_with('{') {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| type_error(source, &e.path().to_string(), &e.into_inner().to_string()))?
    } else {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| CatalogError::new(source, None, "", e.message().trim()))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            type_error(
                source,
                &e.path().to_string(),
                e.into_inner().message().trim(),
            )
        })?
    };
    file.model
        .into_iter()
        .enumerate()
        .map(|(index, model)| model.validate(source, index))
        .collect()
}

fn type_error(source: &str, path: &str, message: &str) -> CatalogError {
    CatalogError::new(source, None, if path == "." { "" } else { path }, message)
}

impl Model {
    fn validate(self, source: &str, index: usize) -> Result<ModelEntry, CatalogError> {
        let entry = self.name.clone();
        let error = |field: String, message: String| {
            CatalogError::new(source, Some(&entry), field, message)
        };
        let at = |field: &str| format!("model[{index}].{field}");
        if self.name.trim().is_empty() {
            return Err(error(at("name"), "expected a non-empty model name".into()));
        }
        if self.vendor.trim().is_empty() {
            return Err(error(
                at("vendor"),
                "expected the model's maker, e.g. \"openai\"".into(),
            ));
        }
        let checked = match &self.checked {
            None => None,
            Some(text) => Some(Date::parse(text).ok_or_else(|| {
                error(
                    at("checked"),
                    format!("expected a date YYYY-MM-DD, got {text:?}"),
                )
            })?),
        };
        if self.prices.is_empty() {
            return Err(error(
                at("prices"),
                "expected at least one price period".into(),
            ));
        }
        let mut periods = Vec::with_capacity(self.prices.len());
        for (p, period) in self.prices.into_iter().enumerate() {
            let field = |name: &str| at(&format!("prices[{p}].{name}"));
            let date = |name: &str, value: &Option<String>| -> Result<Option<Date>, CatalogError> {
                value
                    .as_ref()
                    .map(|text| {
                        Date::parse(text).ok_or_else(|| {
                            error(
                                field(name),
                                format!("expected a date YYYY-MM-DD, got {text:?}"),
                            )
                        })
                    })
                    .transpose()
            };
            let since = date("since", &period.since)?;
            let until = date("until", &period.until)?;
            if let (Some(since), Some(until)) = (since, until)
                && since >= until
            {
                return Err(error(
                    field("until"),
                    format!("expected a date after since ({since}), got {until}"),
                ));
            }
            let rate = |name: &str, value: Option<f64>| -> Result<Option<f64>, CatalogError> {
                match value {
                    Some(v) if !(v.is_finite() && v >= 0.0) => Err(error(
                        field(name),
                        format!("expected a non-negative price in USD per million tokens, got {v}"),
                    )),
                    other => Ok(other),
                }
            };
            if period.cache_write.is_some() && period.cache_write_5m.is_some() {
                return Err(error(
                    field("cache_write"),
                    "give cache_write or cache_write_5m, not both".into(),
                ));
            }
            let mut tiers = Vec::with_capacity(period.tiers.len());
            for (t, tier) in period.tiers.into_iter().enumerate() {
                let tier_field = |name: &str| format!("tiers[{t}].{name}");
                if tiers
                    .last()
                    .is_some_and(|last: &Tier| last.above_input_tokens >= tier.above_input_tokens)
                {
                    return Err(error(
                        field(&tier_field("above_input_tokens")),
                        "expected tiers in ascending order".into(),
                    ));
                }
                let tier_rate = |name: &str, value| rate(&tier_field(name), value);
                tiers.push(Tier {
                    above_input_tokens: tier.above_input_tokens,
                    input: tier_rate("input", tier.input)?,
                    output: tier_rate("output", tier.output)?,
                    cache_read: tier_rate("cache_read", tier.cache_read)?,
                    cache_write_5m: tier_rate(
                        "cache_write_5m",
                        tier.cache_write_5m.or(tier.cache_write),
                    )?,
                    cache_write_1h: tier_rate("cache_write_1h", tier.cache_write_1h)?,
                    reasoning: tier_rate("reasoning", tier.reasoning)?,
                });
            }
            periods.push(PricePeriod {
                since,
                until,
                prices: Prices {
                    input: rate("input", Some(period.input))?.unwrap_or_default(),
                    output: rate("output", period.output)?,
                    cache_read: rate("cache_read", period.cache_read)?,
                    cache_write_5m: rate(
                        "cache_write_5m",
                        period.cache_write_5m.or(period.cache_write),
                    )?,
                    cache_write_1h: rate("cache_write_1h", period.cache_write_1h)?,
                    reasoning: rate("reasoning", period.reasoning)?,
                    tiers,
                },
            });
        }
        periods.sort_by_key(|p| p.since);
        if let Some(pair) = periods.windows(2).find(|w| overlaps(&w[0], &w[1])) {
            return Err(error(
                at("prices"),
                format!(
                    "price periods overlap ({} .. {} and {} .. {})",
                    show(pair[0].since),
                    show(pair[0].until),
                    show(pair[1].since),
                    show(pair[1].until)
                ),
            ));
        }
        let rules = self
            .rules
            .into_iter()
            .enumerate()
            .map(|(r, rule)| {
                rule.compile()
                    .map_err(|message| error(at(&format!("match[{r}]")), message))
            })
            .collect::<Result<_, _>>()?;
        Ok(ModelEntry {
            name: self.name.trim().to_ascii_lowercase(),
            vendor: self.vendor.trim().to_ascii_lowercase(),
            provider: self.provider.map(|p| p.trim().to_ascii_lowercase()),
            aliases: self
                .aliases
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
            rules,
            checked,
            periods,
            source: source.to_owned(),
        })
    }
}

fn overlaps(a: &PricePeriod, b: &PricePeriod) -> bool {
    // Sorted by `since`: they overlap unless `a` ends no later than `b` starts.
    match (a.until, b.since) {
        (Some(until), Some(since)) => until > since,
        _ => true,
    }
}

fn show(date: Option<Date>) -> String {
    date.map_or_else(|| "open".to_owned(), |d| d.to_string())
}

impl Rule {
    fn compile(self) -> Result<MatchRule, String> {
        let lower = |s: String| s.to_ascii_lowercase();
        Ok(match self {
            Rule::Equals(s) => MatchRule::Equals(lower(s)),
            Rule::StartsWith(s) => MatchRule::StartsWith(lower(s)),
            Rule::EndsWith(s) => MatchRule::EndsWith(lower(s)),
            Rule::Contains(s) => MatchRule::Contains(lower(s)),
            Rule::Regex(pattern) => MatchRule::Regex(
                regex::RegexBuilder::new(&pattern)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?,
            ),
            Rule::Any(rules) => MatchRule::Any(
                rules
                    .into_iter()
                    .map(Rule::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Rule::All(rules) => MatchRule::All(
                rules
                    .into_iter()
                    .map(Rule::compile)
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}
