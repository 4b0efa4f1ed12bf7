//! The catalog's data model: models, their dated price periods and long-context tiers.
//! All prices are USD per million tokens.

use crate::date::Date;

/// Prices for one period of one model. `None` falls back as documented on each field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prices {
    /// Uncached input tokens.
    pub input: f64,
    /// Output tokens (`None`: the model produces none, e.g. embeddings; such tokens cost 0).
    pub output: Option<f64>,
    /// Tokens read from a prompt cache (`None`: the input price).
    pub cache_read: Option<f64>,
    /// Tokens written to a prompt cache with the default (5-minute) lifetime (`None`: input).
    pub cache_write_5m: Option<f64>,
    /// Tokens written with a 1-hour lifetime (`None`: the 5-minute price).
    pub cache_write_1h: Option<f64>,
    /// Reasoning tokens when priced apart from output (`None`: the output price).
    pub reasoning: Option<f64>,
    /// Long-context tiers, ascending by threshold: above a threshold of input tokens (cache
    /// included), every token of the call is priced at the tier's rates.
    pub tiers: Vec<Tier>,
}

/// Rates that apply when a call's input exceeds `above_input_tokens`; `None` keeps the base rate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tier {
    pub above_input_tokens: u64,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write_5m: Option<f64>,
    pub cache_write_1h: Option<f64>,
    pub reasoning: Option<f64>,
}

/// The rates one call pays, after choosing the tier and applying fallbacks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub reasoning: f64,
    /// The tier threshold that applied, if any.
    pub tier: Option<u64>,
}

impl Prices {
    /// The rates for a call with `input_tokens` input tokens (cache included).
    pub fn rates(&self, input_tokens: u64) -> Rates {
        let tier = self
            .tiers
            .iter()
            .rev()
            .find(|t| input_tokens > t.above_input_tokens);
        let pick = |tiered: Option<Option<f64>>, base: Option<f64>| tiered.flatten().or(base);
        let input = pick(tier.map(|t| t.input), Some(self.input)).unwrap_or(self.input);
        let output = pick(tier.map(|t| t.output), self.output).unwrap_or(0.0);
        let cache_read = pick(tier.map(|t| t.cache_read), self.cache_read).unwrap_or(input);
        let cache_write_5m =
            pick(tier.map(|t| t.cache_write_5m), self.cache_write_5m).unwrap_or(input);
        let cache_write_1h =
            pick(tier.map(|t| t.cache_write_1h), self.cache_write_1h).unwrap_or(cache_write_5m);
        let reasoning = pick(tier.map(|t| t.reasoning), self.reasoning).unwrap_or(output);
        Rates {
            input,
            output,
            cache_read,
            cache_write_5m,
            cache_write_1h,
            reasoning,
            tier: tier.map(|t| t.above_input_tokens),
        }
    }
}

/// Prices valid from `since` (inclusive) until `until` (exclusive); open ends are unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct PricePeriod {
    pub since: Option<Date>,
    pub until: Option<Date>,
    pub prices: Prices,
}

impl PricePeriod {
    pub fn contains(&self, date: Date) -> bool {
        self.since.is_none_or(|since| since <= date) && self.until.is_none_or(|until| date < until)
    }
}

/// How a model name is matched besides its name and aliases.
#[derive(Debug, Clone)]
pub enum MatchRule {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Regex(regex::Regex),
    Any(Vec<MatchRule>),
    All(Vec<MatchRule>),
}

impl MatchRule {
    /// Matches case-insensitively (`lowercase` must already be lower-cased).
    pub fn is_match(&self, lowercase: &str) -> bool {
        match self {
            MatchRule::Equals(s) => lowercase == s,
            MatchRule::StartsWith(s) => lowercase.starts_with(s.as_str()),
            MatchRule::EndsWith(s) => lowercase.ends_with(s.as_str()),
            MatchRule::Contains(s) => lowercase.contains(s.as_str()),
            MatchRule::Regex(r) => r.is_match(lowercase),
            MatchRule::Any(rules) => rules.iter().any(|r| r.is_match(lowercase)),
            MatchRule::All(rules) => rules.iter().all(|r| r.is_match(lowercase)),
        }
    }
}

impl PartialEq for MatchRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (MatchRule::Equals(a), MatchRule::Equals(b))
            | (MatchRule::StartsWith(a), MatchRule::StartsWith(b))
            | (MatchRule::EndsWith(a), MatchRule::EndsWith(b))
            | (MatchRule::Contains(a), MatchRule::Contains(b)) => a == b,
            (MatchRule::Regex(a), MatchRule::Regex(b)) => a.as_str() == b.as_str(),
            (MatchRule::Any(a), MatchRule::Any(b)) | (MatchRule::All(a), MatchRule::All(b)) => {
                a == b
            }
            _ => false,
        }
    }
}

/// One priced model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    /// The canonical name, lower-case (`gpt-4o`, `claude-sonnet-4-5`).
    pub name: String,
    /// Who makes the model: `openai`, `anthropic`, `google`, `mistral_ai`, `deepseek`, `x_ai`,
    /// `cohere`, … Hosts (Bedrock, Azure, Vertex) serve other vendors' models.
    pub vendor: String,
    /// When set, the entry applies only to calls through this `gen_ai.provider.name` (a host's own
    /// price, e.g. `azure.ai.openai`), and wins over the vendor's entry there.
    pub provider: Option<String>,
    /// Other exact names, lower-case (host model ids, dated snapshots with the same prices).
    pub aliases: Vec<String>,
    pub rules: Vec<MatchRule>,
    /// When these prices were last checked against the provider's published list.
    pub checked: Option<Date>,
    /// Dated periods, sorted by start.
    pub periods: Vec<PricePeriod>,
    /// Where the entry came from (`built-in` or a file path), for `pricing lookup`.
    pub source: String,
}

impl ModelEntry {
    /// The prices in force on `date`: the period containing it, else the nearest one (the first
    /// known prices for older calls, the latest for newer).
    pub fn prices_at(&self, date: Date) -> &Prices {
        if let Some(period) = self.periods.iter().find(|p| p.contains(date)) {
            return &period.prices;
        }
        let first = &self.periods[0];
        if first.since.is_some_and(|since| date < since) {
            &first.prices
        } else {
            &self.periods[self.periods.len() - 1].prices
        }
    }
}
