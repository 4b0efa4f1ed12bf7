//! Pricing calls on the ingest path: catalog resolution cached per (provider, model), unpriced
//! models detected (never costed at zero) and the cross-check against costs emitters computed.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use llmwatch_pricing::{Catalog, CostBreakdown, Date, call_cost};
use llmwatch_semconv::LlmCall;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashSet;

/// Distinct (provider, model) names whose resolution is remembered; past it names are resolved
/// every time (slower, never more memory).
const MAX_CACHED_NAMES: usize = 10_000;
/// Unpriced models named in the log; past it one last line says more exist.
const MAX_LOGGED_UNPRICED: usize = 1_000;

/// How calls are priced.
#[derive(Debug, Clone)]
pub struct PricingConfig {
    pub catalog: Arc<Catalog>,
    /// Use the cost a span reports (OpenLIT, OpenInference, Langfuse) instead of the catalog's.
    pub trust_span_cost: bool,
    /// Relative difference between span-reported and catalog cost counted as a disagreement.
    pub disagreement_tolerance: f64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            catalog: Arc::new(Catalog::builtin()),
            trust_span_cost: false,
            disagreement_tolerance: 0.05,
        }
    }
}

/// Which name priced a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricedBy {
    ResponseModel,
    RequestModel,
    /// The cost the span reported, trusted by configuration.
    Span,
}

impl PricedBy {
    pub const ALL: [PricedBy; 3] = [
        PricedBy::ResponseModel,
        PricedBy::RequestModel,
        PricedBy::Span,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            PricedBy::ResponseModel => "response_model",
            PricedBy::RequestModel => "request_model",
            PricedBy::Span => "span",
        }
    }
}

/// The cost of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallPrice {
    Priced {
        breakdown: CostBreakdown,
        /// Span-reported cost that cannot be split into components (trusted, no catalog entry).
        unattributed: f64,
        priced_by: PricedBy,
        /// The span reported a cost that differs from the catalog's beyond the tolerance.
        disagrees: bool,
    },
    /// No catalog entry and no trusted span cost: counted apart, never as zero.
    Unpriced,
}

impl CallPrice {
    pub fn total(&self) -> Option<f64> {
        match self {
            CallPrice::Priced {
                breakdown,
                unattributed,
                ..
            } => Some(breakdown.total() + unattributed),
            CallPrice::Unpriced => None,
        }
    }
}

#[derive(Debug)]
struct CachedName {
    hash: u64,
    provider: Box<str>,
    model: Box<str>,
    entry: Option<usize>,
}

#[derive(Debug)]
pub struct Pricer {
    config: PricingConfig,
    hasher: DefaultHashBuilder,
    cache: RwLock<HashTable<CachedName>>,
    logged_unpriced: Mutex<FxHashSet<Box<str>>>,
}

impl Pricer {
    pub fn new(config: PricingConfig) -> Pricer {
        Pricer {
            config,
            hasher: DefaultHashBuilder::default(),
            cache: RwLock::new(HashTable::new()),
            logged_unpriced: Mutex::new(FxHashSet::default()),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.config.catalog
    }

    /// Prices a call: response model first, request model as fallback, on the call's date.
    pub fn price(&self, call: &LlmCall<'_>) -> CallPrice {
        let found = [
            (call.response_model, PricedBy::ResponseModel),
            (call.request_model, PricedBy::RequestModel),
        ]
        .into_iter()
        .filter(|(model, _)| !model.is_empty())
        .find_map(|(model, by)| self.resolve(call.provider, model).map(|index| (index, by)));
        let catalog_cost = found.map(|(index, by)| {
            let prices = self.catalog().entries()[index]
                .prices_at(Date::from_unix_nanos(call.start_unix_nano));
            (call_cost(prices, &call.usage).0, by)
        });
        let reported = call
            .reported_cost_usd
            .filter(|c| c.is_finite() && *c >= 0.0);
        let disagrees = match (&catalog_cost, reported) {
            (Some((breakdown, _)), Some(reported)) => self.disagree(breakdown.total(), reported),
            _ => false,
        };
        match (catalog_cost, reported) {
            (Some((breakdown, _)), Some(reported)) if self.config.trust_span_cost => {
                let ours = breakdown.total();
                if ours > 0.0 {
                    // Keep the catalog's split, scaled to the trusted total.
                    let scale = reported / ours;
                    let scaled = CostBreakdown {
                        input: breakdown.input * scale,
                        cache_read: breakdown.cache_read * scale,
                        cache_write: breakdown.cache_write * scale,
                        output: breakdown.output * scale,
                        reasoning: breakdown.reasoning * scale,
                    };
                    CallPrice::Priced {
                        breakdown: scaled,
                        unattributed: 0.0,
                        priced_by: PricedBy::Span,
                        disagrees,
                    }
                } else {
                    CallPrice::Priced {
                        breakdown: CostBreakdown::default(),
                        unattributed: reported,
                        priced_by: PricedBy::Span,
                        disagrees,
                    }
                }
            }
            (Some((breakdown, priced_by)), _) => CallPrice::Priced {
                breakdown,
                unattributed: 0.0,
                priced_by,
                disagrees,
            },
            (None, Some(reported)) if self.config.trust_span_cost => CallPrice::Priced {
                breakdown: CostBreakdown::default(),
                unattributed: reported,
                priced_by: PricedBy::Span,
                disagrees: false,
            },
            (None, _) => {
                self.log_unpriced(call);
                CallPrice::Unpriced
            }
        }
    }

    fn disagree(&self, ours: f64, reported: f64) -> bool {
        let difference = (ours - reported).abs();
        difference > 1e-9 && difference > self.config.disagreement_tolerance * ours.max(reported)
    }

    /// The catalog entry for (provider, model), remembered for the next call.
    fn resolve(&self, provider: &str, model: &str) -> Option<usize> {
        let hash = self.hasher.hash_one((provider, model));
        let matches =
            |c: &CachedName| c.hash == hash && &*c.provider == provider && &*c.model == model;
        if let Some(cached) = self.cache.read().find(hash, matches) {
            return cached.entry;
        }
        let entry = self.catalog().resolve(provider, model).map(|r| r.index);
        let mut cache = self.cache.write();
        if cache.len() < MAX_CACHED_NAMES && cache.find(hash, matches).is_none() {
            cache.insert_unique(
                hash,
                CachedName {
                    hash,
                    provider: provider.into(),
                    model: model.into(),
                    entry,
                },
                |c| c.hash,
            );
        }
        entry
    }

    fn log_unpriced(&self, call: &LlmCall<'_>) {
        let model = if call.response_model.is_empty() {
            call.request_model
        } else {
            call.response_model
        };
        let mut logged = self.logged_unpriced.lock();
        if logged.len() > MAX_LOGGED_UNPRICED || logged.contains(model) {
            return;
        }
        if logged.len() == MAX_LOGGED_UNPRICED {
            tracing::warn!(
                "more than {MAX_LOGGED_UNPRICED} models have no price; no longer naming each one"
            );
        } else {
            tracing::warn!(
                provider = call.provider,
                model,
                "model has no price: its calls are counted in llmwatch_unpriced_calls_total, not as zero cost; \
                 add it to a catalog file given with --pricing (see `llmwatch pricing lookup`)"
            );
        }
        logged.insert(model.into());
    }
}
