//! Reads LiteLLM's `model_prices_and_context_window.json` as users download it: one object keyed
//! by model id, prices in USD per token (converted here to per million).

use serde_json::{Map, Value};

use crate::error::CatalogError;
use crate::model::{ModelEntry, PricePeriod, Prices, Tier};

const PER_MILLION: f64 = 1e6;

pub fn parse(text: &str, source: &str) -> Result<Vec<ModelEntry>, CatalogError> {
    let root: Map<String, Value> = serde_json::from_str(text)
        .map_err(|e| CatalogError::new(source, None, "", format!("invalid LiteLLM JSON: {e}")))?;
    let mut entries = Vec::new();
    for (key, spec) in &root {
        if key == "sample_spec" {
            continue;
        }
        let Some(spec) = spec.as_object() else {
            return Err(CatalogError::new(
                source,
                Some(key),
                key.clone(),
                "expected an object",
            ));
        };
        let price = |field: &str| -> Result<Option<f64>, CatalogError> {
            match spec.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v * PER_MILLION)),
                    _ => Err(CatalogError::new(
                        source,
                        Some(key),
                        format!("{key}.{field}"),
                        "expected a non-negative number",
                    )),
                },
                Some(other) => Err(CatalogError::new(
                    source,
                    Some(key),
                    format!("{key}.{field}"),
                    format!("expected a price in USD per token, got {other}"),
                )),
            }
        };
        // Entries priced per image, second or character have no per-token input price.
        let Some(input) = price("input_cost_per_token")? else {
            continue;
        };
        let mut tiers = Vec::new();
        for threshold in [128_000u64, 200_000] {
            let suffix = format!("_above_{}k_tokens", threshold / 1000);
            let tier = Tier {
                above_input_tokens: threshold,
                input: price(&format!("input_cost_per_token{suffix}"))?,
                output: price(&format!("output_cost_per_token{suffix}"))?,
                cache_read: price(&format!("cache_read_input_token_cost{suffix}"))?,
                cache_write_5m: price(&format!("cache_creation_input_token_cost{suffix}"))?,
                cache_write_1h: None,
                reasoning: None,
            };
            if tier.input.is_some() || tier.output.is_some() || tier.cache_read.is_some() {
                tiers.push(tier);
            }
        }
        let litellm_provider = spec
            .get("litellm_provider")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (name, route) = match key.split_once('/') {
            Some((route, rest)) if !rest.is_empty() => (rest, Some(route)),
            _ => (key.as_str(), None),
        };
        let (vendor, provider) = placement(litellm_provider, route, name);
        entries.push(ModelEntry {
            name: name.to_ascii_lowercase(),
            vendor,
            provider,
            aliases: Vec::new(),
            rules: Vec::new(),
            checked: None,
            periods: vec![PricePeriod {
                since: None,
                until: None,
                prices: Prices {
                    input,
                    output: price("output_cost_per_token")?,
                    cache_read: price("cache_read_input_token_cost")?,
                    cache_write_5m: price("cache_creation_input_token_cost")?,
                    cache_write_1h: price("cache_creation_input_token_cost_above_1hr")?,
                    reasoning: price("output_cost_per_reasoning_token")?,
                    tiers,
                },
            }],
            source: source.to_owned(),
        });
    }
    Ok(entries)
}

/// Maps LiteLLM's `litellm_provider` to a vendor and, for hosts, the `gen_ai.provider.name`
/// the entry is restricted to.
fn placement(litellm_provider: &str, route: Option<&str>, name: &str) -> (String, Option<String>) {
    let vendor_from_name = || {
        let bare = name
            .split('.')
            .find(|p| !matches!(*p, "us" | "eu" | "apac" | "global" | "jp" | "au"));
        match bare.unwrap_or(name) {
            "anthropic" => "anthropic",
            "meta" => "meta",
            "mistral" => "mistral_ai",
            "cohere" => "cohere",
            "amazon" => "amazon",
            "deepseek" => "deepseek",
            _ => "unknown",
        }
        .to_owned()
    };
    let provider = litellm_provider.to_ascii_lowercase();
    let (vendor, host): (String, Option<&str>) = match provider.as_str() {
        "openai" | "text-completion-openai" => ("openai".into(), None),
        "azure" | "azure_text" => ("openai".into(), Some("azure.ai.openai")),
        "azure_ai" => (vendor_from_name(), Some("azure.ai.inference")),
        "anthropic" => ("anthropic".into(), None),
        "bedrock" | "bedrock_converse" => (vendor_from_name(), Some("aws.bedrock")),
        "vertex_ai-anthropic_models" => ("anthropic".into(), Some("gcp.vertex_ai")),
        p if p.starts_with("vertex_ai") => ("google".into(), Some("gcp.vertex_ai")),
        "gemini" => ("google".into(), None),
        "mistral" | "codestral" => ("mistral_ai".into(), None),
        "deepseek" => ("deepseek".into(), None),
        "xai" => ("x_ai".into(), None),
        "cohere" | "cohere_chat" => ("cohere".into(), None),
        "groq" => (vendor_from_name(), Some("groq")),
        "openrouter" => (vendor_from_name(), Some("openrouter")),
        "perplexity" => ("perplexity".into(), None),
        "" => (route.unwrap_or("unknown").to_owned(), None),
        other => (other.to_owned(), Some(other)),
    };
    (vendor, host.map(str::to_owned))
}
