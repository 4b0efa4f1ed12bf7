//! Reads pydantic's genai-prices `data.json` as users download it: a list of providers, each
//! with models, match rules and prices in USD per million tokens (flat, tiered or dated).

use serde_json::Value;

use crate::date::Date;
use crate::error::CatalogError;
use crate::model::{MatchRule, ModelEntry, PricePeriod, Prices, Tier};

pub fn parse(text: &str, source: &str) -> Result<Vec<ModelEntry>, CatalogError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        CatalogError::new(source, None, "", format!("invalid genai-prices JSON: {e}"))
    })?;
    let providers = root
        .as_array()
        .ok_or_else(|| CatalogError::new(source, None, "", "expected a list of providers"))?;
    let mut entries = Vec::new();
    for (p, provider) in providers.iter().enumerate() {
        let provider_id = provider.get("id").and_then(Value::as_str).unwrap_or("");
        let models = provider
            .get("models")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                CatalogError::new(
                    source,
                    None,
                    format!("[{p}].models"),
                    "expected a list of models",
                )
            })?;
        for (m, model) in models.iter().enumerate() {
            let field = |name: &str| format!("[{p}].models[{m}].{name}");
            let id = model.get("id").and_then(Value::as_str).ok_or_else(|| {
                CatalogError::new(source, None, field("id"), "expected a model id")
            })?;
            let error = |name: &str, message: String| {
                CatalogError::new(source, Some(id), field(name), message)
            };
            let rules = match model.get("match") {
                Some(logic) => vec![rule(logic).map_err(|message| error("match", message))?],
                None => Vec::new(),
            };
            let periods = periods(model.get("prices").unwrap_or(&Value::Null))
                .map_err(|message| error("prices", message))?;
            if periods.is_empty() {
                continue; // Only time-of-day prices, which llmwatch does not model.
            }
            let (vendor, host) = placement(provider_id, id);
            entries.push(ModelEntry {
                name: id.to_ascii_lowercase(),
                vendor,
                provider: host,
                aliases: Vec::new(),
                rules,
                checked: None,
                periods,
                source: source.to_owned(),
            });
        }
    }
    Ok(entries)
}

/// `prices` is one price set, or a list of conditional ones: the unconstrained one applies from
/// the beginning and each `start_date` one from its date on.
fn periods(prices: &Value) -> Result<Vec<PricePeriod>, String> {
    let conditional: Vec<(Option<Date>, &Value)> = match prices {
        Value::Object(_) => vec![(None, prices)],
        Value::Array(list) => {
            let mut out = Vec::new();
            for item in list {
                let set = item
                    .get("prices")
                    .ok_or("conditional price without prices")?;
                match item.get("constraint") {
                    None | Some(Value::Null) => out.push((None, set)),
                    Some(constraint) => {
                        if let Some(start) = constraint.get("start_date").and_then(Value::as_str) {
                            let date = Date::parse(start)
                                .ok_or_else(|| format!("invalid start_date {start:?}"))?;
                            out.push((Some(date), set));
                        }
                        // Time-of-day constraints (off-peak prices) are skipped: the base applies.
                    }
                }
            }
            out
        }
        _ => return Err("expected a price object or a list of conditional prices".into()),
    };
    let mut sorted = conditional;
    sorted.sort_by_key(|(since, _)| *since);
    let mut periods = Vec::with_capacity(sorted.len());
    for (i, (since, set)) in sorted.iter().enumerate() {
        let until = sorted.get(i + 1).and_then(|(next, _)| *next);
        periods.push(PricePeriod {
            since: *since,
            until,
            prices: price_set(set)?,
        });
    }
    Ok(periods)
}

/// A base price and its `(start, price)` tiers.
type TieredField = Option<(f64, Vec<(u64, f64)>)>;

/// One `ModelPrice`: each field a number or `{base, tiers: [{start, price}]}` (cliff tiers).
fn price_set(set: &Value) -> Result<Prices, String> {
    let read = |name: &str| -> Result<TieredField, String> {
        match set.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(Some((
                n.as_f64().ok_or(format!("{name}: not a number"))?,
                Vec::new(),
            ))),
            Some(Value::Object(tiered)) => {
                let base = tiered
                    .get("base")
                    .and_then(Value::as_f64)
                    .ok_or(format!("{name}.base: expected a number"))?;
                let mut tiers = Vec::new();
                for tier in tiered
                    .get("tiers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let start = tier
                        .get("start")
                        .and_then(Value::as_u64)
                        .ok_or(format!("{name}.tiers: start"))?;
                    let price = tier
                        .get("price")
                        .and_then(Value::as_f64)
                        .ok_or(format!("{name}.tiers: price"))?;
                    tiers.push((start, price));
                }
                Ok(Some((base, tiers)))
            }
            Some(other) => Err(format!(
                "{name}: expected a number or tiered prices, got {other}"
            )),
        }
    };
    let input = read("input_mtok")?;
    let output = read("output_mtok")?;
    let cache_read = read("cache_read_mtok")?;
    let cache_write = read("cache_write_mtok")?;
    let fields = [&input, &output, &cache_read, &cache_write];
    let mut thresholds: Vec<u64> = fields
        .iter()
        .filter_map(|f| f.as_ref())
        .flat_map(|(_, t)| t.iter().map(|(s, _)| *s))
        .collect();
    thresholds.sort_unstable();
    thresholds.dedup();
    // At each threshold a field pays its highest tier at or below it (cliff pricing per field).
    let at = |field: &TieredField, threshold: u64| {
        field.as_ref().and_then(|(_, tiers)| {
            tiers
                .iter()
                .rev()
                .find(|(start, _)| *start <= threshold)
                .map(|(_, p)| *p)
        })
    };
    let tiers = thresholds
        .into_iter()
        .map(|threshold| Tier {
            above_input_tokens: threshold,
            input: at(&input, threshold),
            output: at(&output, threshold),
            cache_read: at(&cache_read, threshold),
            cache_write_5m: at(&cache_write, threshold),
            cache_write_1h: None,
            reasoning: None,
        })
        .collect();
    Ok(Prices {
        input: input.as_ref().map_or(0.0, |(base, _)| *base),
        output: output.map(|(base, _)| base),
        cache_read: cache_read.map(|(base, _)| base),
        cache_write_5m: cache_write.map(|(base, _)| base),
        cache_write_1h: None,
        reasoning: None,
        tiers,
    })
}

/// genai-prices match logic: `{equals|starts_with|ends_with|contains|regex: …}`, `{or|and: [...]}`.
fn rule(logic: &Value) -> Result<MatchRule, String> {
    let (key, value) = logic
        .as_object()
        .and_then(|o| o.iter().next())
        .ok_or_else(|| format!("expected a match clause, got {logic}"))?;
    let text = || {
        value
            .as_str()
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| format!("{key}: expected a string"))
    };
    let list = || -> Result<Vec<MatchRule>, String> {
        value
            .as_array()
            .ok_or_else(|| format!("{key}: expected a list"))?
            .iter()
            .map(rule)
            .collect()
    };
    Ok(match key.as_str() {
        "equals" => MatchRule::Equals(text()?),
        "starts_with" => MatchRule::StartsWith(text()?),
        "ends_with" => MatchRule::EndsWith(text()?),
        "contains" => MatchRule::Contains(text()?),
        "regex" => MatchRule::Regex(
            regex::RegexBuilder::new(&text()?)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("invalid regex: {e}"))?,
        ),
        "or" => MatchRule::Any(list()?),
        "and" => MatchRule::All(list()?),
        other => return Err(format!("unknown match clause {other:?}")),
    })
}

fn placement(provider_id: &str, model_id: &str) -> (String, Option<String>) {
    let vendor_of_model = || {
        let m = model_id.to_ascii_lowercase();
        if m.contains("claude") {
            "anthropic"
        } else if m.starts_with("gpt")
            || m.starts_with("o1")
            || m.starts_with("o3")
            || m.starts_with("o4")
        {
            "openai"
        } else if m.contains("gemini") {
            "google"
        } else if m.contains("mistral") {
            "mistral_ai"
        } else if m.contains("llama") {
            "meta"
        } else {
            "unknown"
        }
        .to_owned()
    };
    match provider_id {
        "openai" => ("openai".into(), None),
        "anthropic" => ("anthropic".into(), None),
        "google" => ("google".into(), None),
        "mistral" => ("mistral_ai".into(), None),
        "deepseek" => ("deepseek".into(), None),
        "x_ai" | "xai" => ("x_ai".into(), None),
        "cohere" => ("cohere".into(), None),
        "aws" => (vendor_of_model(), Some("aws.bedrock".into())),
        "azure" => (vendor_of_model(), Some("azure.ai.openai".into())),
        "groq" | "openrouter" | "perplexity" => (vendor_of_model(), Some(provider_id.into())),
        other => (vendor_of_model(), Some(other.to_owned())),
    }
}
