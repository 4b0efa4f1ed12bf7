//! Prices for model calls: a built-in catalog written as data, user catalogs in our own format
//! or as LiteLLM and genai-prices publish theirs, model-name resolution across hosts and
//! snapshots, and exact cost from normalized token usage. Pure: no I/O beyond parsing text.

mod catalog;
mod cost;
mod date;
mod error;
mod genai_prices;
mod litellm;
mod model;
mod native;

pub use catalog::{
    BUILTIN_TOML, Catalog, Format, MatchKind, Resolution, builtin_entries, parse_catalog,
};
pub use cost::{CostBreakdown, call_cost};
pub use date::Date;
pub use error::CatalogError;
pub use model::{MatchRule, ModelEntry, PricePeriod, Prices, Rates, Tier};
