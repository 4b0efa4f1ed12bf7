//! The cost of one call from its token usage and the prices in force.

use llmwatch_semconv::TokenUsage;

use crate::model::{Prices, Rates};

const PER_MILLION: f64 = 1e6;

/// Cost in USD by component. Components partition the call's tokens, so their sum is the total
/// and nothing is counted twice: `input` covers only uncached input, `output` only the output
/// that is not reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CostBreakdown {
    pub input: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    pub output: f64,
    pub reasoning: f64,
}

impl CostBreakdown {
    pub const COMPONENTS: [&'static str; 5] =
        ["input", "cache_read", "cache_write", "output", "reasoning"];

    pub fn total(&self) -> f64 {
        self.input + self.cache_read + self.cache_write + self.output + self.reasoning
    }

    /// Components in the order of [`CostBreakdown::COMPONENTS`].
    pub fn components(&self) -> [f64; 5] {
        [
            self.input,
            self.cache_read,
            self.cache_write,
            self.output,
            self.reasoning,
        ]
    }
}

/// Prices `usage` (inclusive accounting, as normalization produces it):
///
/// uncached input × input + cache reads × cache-read + 5-minute writes × cache-write-5m +
/// 1-hour writes × cache-write-1h + (output − reasoning) × output + reasoning × reasoning,
///
/// with every rate taken from the long-context tier that the call's whole input (cache
/// included) falls in. Reasoning is priced as output unless the catalog prices it apart.
pub fn call_cost(prices: &Prices, usage: &TokenUsage) -> (CostBreakdown, Rates) {
    let input_total = usage.input.unwrap_or(0);
    let rates = prices.rates(input_total);
    let cache_read = usage.cache_read.unwrap_or(0);
    let cache_write = usage.cache_write.unwrap_or(0);
    let cache_write_1h = usage.cache_write_1h.unwrap_or(0).min(cache_write);
    let cache_write_5m = cache_write - cache_write_1h;
    let uncached = input_total.saturating_sub(cache_read + cache_write);
    let output = usage.output.unwrap_or(0);
    let reasoning = usage.reasoning.unwrap_or(0).min(output);
    let cost = |tokens: u64, rate: f64| tokens as f64 * rate / PER_MILLION;
    let breakdown = CostBreakdown {
        input: cost(uncached, rates.input),
        cache_read: cost(cache_read, rates.cache_read),
        cache_write: cost(cache_write_5m, rates.cache_write_5m)
            + cost(cache_write_1h, rates.cache_write_1h),
        output: cost(output - reasoning, rates.output),
        reasoning: cost(reasoning, rates.reasoning),
    };
    (breakdown, rates)
}
