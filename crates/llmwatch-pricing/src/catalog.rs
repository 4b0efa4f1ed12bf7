//! A layered catalog (user files first, then built-in) and model-name resolution.

use std::sync::LazyLock;

use regex::Regex;
use rustc_hash::FxHashMap;

use crate::error::CatalogError;
use crate::model::ModelEntry;
use crate::{genai_prices, litellm, native};

/// The built-in catalog, written by us as data.
pub const BUILTIN_TOML: &str = include_str!("../data/builtin.toml");

/// Catalog file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// llmwatch's own format, TOML or JSON.
    Native,
    /// LiteLLM's `model_prices_and_context_window.json`.
    LiteLlm,
    /// pydantic's genai-prices `data.json`.
    GenaiPrices,
}

impl Format {
    pub fn parse_name(name: &str) -> Option<Format> {
        match name {
            "native" | "llmwatch" => Some(Format::Native),
            "litellm" => Some(Format::LiteLlm),
            "genai-prices" | "genai_prices" => Some(Format::GenaiPrices),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::LiteLlm => "litellm",
            Format::GenaiPrices => "genai-prices",
        }
    }

    /// Recognises a file by its shape: TOML or a JSON object with `model` is native, a JSON
    /// list of providers is genai-prices, a JSON object of per-token specs is LiteLLM.
    pub fn detect(text: &str) -> Option<Format> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('[') {
            // A TOML file can start with a table header; a JSON list starts with `[{` or `[ {`.
            let rest = trimmed.strip_prefix('[').unwrap_or(trimmed).trim_start();
            return Some(if rest.starts_with('{') || rest.starts_with(']') {
                Format::GenaiPrices
            } else {
                Format::Native
            });
        }
        if !trimmed.starts_with('{') {
            return Some(Format::Native);
        }
        let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        let object = value.as_object()?;
        if object.get("model").is_some_and(|m| m.is_array()) {
            return Some(Format::Native);
        }
        let per_token = |v: &serde_json::Value| {
            v.get("input_cost_per_token").is_some() || v.get("litellm_provider").is_some()
        };
        if object.contains_key("sample_spec") || object.values().any(per_token) {
            return Some(Format::LiteLlm);
        }
        None
    }
}

/// Parses one catalog file's text.
pub fn parse_catalog(
    text: &str,
    source: &str,
    format: Option<Format>,
) -> Result<Vec<ModelEntry>, CatalogError> {
    let format = match format.or_else(|| Format::detect(text)) {
        Some(format) => format,
        None => {
            return Err(CatalogError::new(
                source,
                None,
                "",
                "unrecognised catalog format; name it: native, litellm or genai-prices",
            ));
        }
    };
    match format {
        Format::Native => native::parse(text, source),
        Format::LiteLlm => litellm::parse(text, source),
        Format::GenaiPrices => genai_prices::parse(text, source),
    }
}

/// How a model name found its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The entry's name.
    Exact,
    /// One of the entry's aliases.
    Alias,
    /// The configured alias map (e.g. an Azure deployment name) named the model.
    Configured,
    /// A host-qualified id (`us.anthropic.…-v2:0`, `…@20241022`, `openai/…`) reduced to the model.
    Qualified,
    /// A dated or versioned snapshot reduced to its base model (`gpt-4o-2024-08-06` → `gpt-4o`).
    Snapshot,
    /// One of the entry's explicit prefix/regex rules.
    Rule,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Alias => "alias",
            MatchKind::Configured => "configured alias",
            MatchKind::Qualified => "host-qualified name",
            MatchKind::Snapshot => "dated snapshot",
            MatchKind::Rule => "match rule",
        }
    }
}

/// The entry a model name resolved to, and why.
#[derive(Debug, Clone, Copy)]
pub struct Resolution<'c> {
    pub entry: &'c ModelEntry,
    /// The entry's position in [`Catalog::entries`].
    pub index: usize,
    pub how: MatchKind,
}

/// A catalog ready for lookups. Earlier layers take precedence over later ones.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<ModelEntry>,
    /// Lower-case name or alias → entry indexes, in precedence order.
    by_name: FxHashMap<String, Vec<(usize, bool)>>,
    /// Model name → catalog model name, from configuration (Azure deployments and the like).
    configured_aliases: FxHashMap<String, String>,
}

impl Catalog {
    /// The built-in catalog alone.
    pub fn builtin() -> Catalog {
        Catalog::from_layers(vec![builtin_entries()])
    }

    /// Layers in precedence order: a name defined in an earlier layer hides later definitions.
    pub fn from_layers(layers: Vec<Vec<ModelEntry>>) -> Catalog {
        let mut catalog = Catalog::default();
        for entry in layers.into_iter().flatten() {
            let index = catalog.entries.len();
            catalog
                .by_name
                .entry(entry.name.clone())
                .or_default()
                .push((index, false));
            for alias in &entry.aliases {
                catalog
                    .by_name
                    .entry(alias.clone())
                    .or_default()
                    .push((index, true));
            }
            catalog.entries.push(entry);
        }
        catalog
    }

    /// Adds configured aliases (`deployment name → catalog model`), matched case-insensitively.
    pub fn with_aliases(mut self, aliases: impl IntoIterator<Item = (String, String)>) -> Catalog {
        self.configured_aliases.extend(
            aliases
                .into_iter()
                .map(|(from, to)| (from.to_ascii_lowercase(), to.to_ascii_lowercase())),
        );
        self
    }

    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// Finds the entry pricing `model` as called through `provider` (`gen_ai.provider.name`).
    ///
    /// Order: the configured alias map; the exact name or an alias; the name with host
    /// qualifiers removed; the base model of a dated snapshot; then explicit rules. At each step
    /// an entry restricted to this very provider wins over the vendor's entry, and a vendor's
    /// entry applies only through its own provider or through a host (Bedrock, Azure, Vertex,
    /// OpenRouter, or an unknown provider).
    pub fn resolve(&self, provider: &str, model: &str) -> Option<Resolution<'_>> {
        let mut name = model.trim().to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        let mut configured = false;
        if let Some(target) = self.configured_aliases.get(&name) {
            name = target.clone();
            configured = true;
        }
        let provider = provider.trim().to_ascii_lowercase();
        let tag = |kind: MatchKind| {
            if configured {
                MatchKind::Configured
            } else {
                kind
            }
        };

        if let Some((index, alias)) = self.lookup(&name, &provider) {
            let how = if alias {
                MatchKind::Alias
            } else {
                MatchKind::Exact
            };
            return Some(self.resolution(index, tag(how)));
        }
        let qualified = host_qualified_candidates(&name);
        for candidate in &qualified {
            if let Some((index, _)) = self.lookup(candidate, &provider) {
                return Some(self.resolution(index, tag(MatchKind::Qualified)));
            }
        }
        let qualified = qualified.last().cloned().unwrap_or_else(|| name.clone());
        let mut base = qualified.clone();
        while let Some(shorter) = strip_snapshot_suffix(&base) {
            base = shorter;
            if let Some((index, _)) = self.lookup(&base, &provider) {
                return Some(self.resolution(index, tag(MatchKind::Snapshot)));
            }
        }
        self.entries
            .iter()
            .position(|entry| {
                compatible(entry, &provider)
                    && entry
                        .rules
                        .iter()
                        .any(|r| r.is_match(&name) || r.is_match(&qualified))
            })
            .map(|index| self.resolution(index, tag(MatchKind::Rule)))
    }

    fn resolution(&self, index: usize, how: MatchKind) -> Resolution<'_> {
        Resolution {
            entry: &self.entries[index],
            index,
            how,
        }
    }

    fn lookup(&self, name: &str, provider: &str) -> Option<(usize, bool)> {
        let candidates = self.by_name.get(name)?;
        let exact_host = candidates
            .iter()
            .find(|(i, _)| self.entries[*i].provider.as_deref() == Some(provider));
        exact_host
            .or_else(|| {
                candidates.iter().find(|(i, _)| {
                    self.entries[*i].provider.is_none() && compatible(&self.entries[*i], provider)
                })
            })
            .copied()
    }
}

/// The built-in entries.
///
/// # Panics
/// When the embedded data is invalid, which a unit test rules out.
pub fn builtin_entries() -> Vec<ModelEntry> {
    native::parse(BUILTIN_TOML, "built-in").expect("the built-in catalog is valid")
}

/// Whether an entry may price a call made through `provider`.
fn compatible(entry: &ModelEntry, provider: &str) -> bool {
    if let Some(restricted) = &entry.provider {
        return restricted == provider;
    }
    match vendor_of_provider(provider) {
        Some(vendor) => vendor == entry.vendor,
        None => true,
    }
}

/// The one vendor whose models a provider serves; `None` for hosts of many vendors.
fn vendor_of_provider(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "openai" | "azure.ai.openai" => "openai",
        "anthropic" => "anthropic",
        "gcp.gemini" | "gcp.gen_ai" => "google",
        "mistral_ai" => "mistral_ai",
        "deepseek" => "deepseek",
        "x_ai" => "x_ai",
        "cohere" => "cohere",
        _ => return None,
    })
}

static REGION_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(us|eu|apac|ap|jp|au|ca|global|us-gov)\.").expect("valid"));
static VENDOR_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(anthropic|openai|meta|mistral|cohere|amazon|deepseek|google|xai|ai21|qwen)\.")
        .expect("valid")
});
static VERSION_SUFFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-v\d+$").expect("valid"));
static SNAPSHOT_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{2}-\d{4}|-\d{2}-\d{2}|-\d{3,4}|-latest|-preview|-exp)$",
    )
    .expect("valid")
});

/// Ever shorter forms of a host-qualified model id, to try in order:
/// `arn:…/us.anthropic.claude-3-5-sonnet-20241022-v2:0` → `claude-3-5-sonnet-20241022-v2` →
/// `claude-3-5-sonnet-20241022`; `claude-3-5-sonnet-v2@20241022` → `claude-3-5-sonnet-v2` →
/// `claude-3-5-sonnet`; `openai/gpt-4o` → `gpt-4o`. The version suffix `-vN` is only dropped
/// from ids that carried a host qualifier (`deepseek-v3` stays itself).
fn host_qualified_candidates(name: &str) -> Vec<String> {
    let mut s = name.rsplit('/').next().unwrap_or(name);
    let mut qualified = s.len() != name.len();
    if let Some(at) = s.find('@') {
        s = &s[..at];
        qualified = true;
    }
    if let Some((head, tail)) = s.rsplit_once(':')
        && tail.bytes().all(|b| b.is_ascii_digit())
    {
        s = head;
        qualified = true;
    }
    let without_region = REGION_PREFIX.replace(s, "");
    let without_vendor = VENDOR_PREFIX.replace(&without_region, "").into_owned();
    qualified |= without_vendor.len() != s.len();
    if !qualified {
        return Vec::new();
    }
    let mut candidates = vec![without_vendor.clone()];
    let unversioned = VERSION_SUFFIX.replace(&without_vendor, "");
    if unversioned.len() < without_vendor.len() {
        candidates.push(unversioned.into_owned());
    }
    candidates
}

/// One dated or versioned suffix off, if any.
fn strip_snapshot_suffix(name: &str) -> Option<String> {
    let stripped = SNAPSHOT_SUFFIX.replace(name, "");
    (stripped.len() < name.len() && !stripped.is_empty()).then(|| stripped.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_qualifiers_and_snapshots_reduce_to_base_names() {
        assert_eq!(
            host_qualified_candidates("us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
            [
                "claude-3-5-sonnet-20241022-v2",
                "claude-3-5-sonnet-20241022"
            ]
        );
        assert_eq!(
            host_qualified_candidates("claude-3-5-sonnet-v2@20241022"),
            ["claude-3-5-sonnet-v2", "claude-3-5-sonnet"]
        );
        assert_eq!(
            host_qualified_candidates("models/gemini-1.5-pro"),
            ["gemini-1.5-pro"]
        );
        assert_eq!(
            host_qualified_candidates("amazon.titan-embed-text-v2:0"),
            ["titan-embed-text-v2", "titan-embed-text"]
        );
        assert!(host_qualified_candidates("gpt-4o").is_empty());
        assert!(host_qualified_candidates("deepseek-v3").is_empty());
        assert_eq!(
            strip_snapshot_suffix("gpt-4o-2024-08-06").as_deref(),
            Some("gpt-4o")
        );
        assert_eq!(
            strip_snapshot_suffix("claude-sonnet-4-5-20250929").as_deref(),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            strip_snapshot_suffix("gpt-4-0613").as_deref(),
            Some("gpt-4")
        );
        assert_eq!(
            strip_snapshot_suffix("gemini-1.5-pro-002").as_deref(),
            Some("gemini-1.5-pro")
        );
        assert_eq!(
            strip_snapshot_suffix("command-r-08-2024").as_deref(),
            Some("command-r")
        );
        assert_eq!(strip_snapshot_suffix("gpt-4o"), None);
    }

    #[test]
    fn formats_are_detected_by_shape() {
        assert_eq!(
            Format::detect("[[model]]\nname = \"x\""),
            Some(Format::Native)
        );
        assert_eq!(Format::detect(r#"{"model": []}"#), Some(Format::Native));
        assert_eq!(
            Format::detect(r#"[{"id": "openai", "models": []}]"#),
            Some(Format::GenaiPrices)
        );
        assert_eq!(
            Format::detect(r#"{"gpt-4o": {"input_cost_per_token": 2.5e-6}}"#),
            Some(Format::LiteLlm)
        );
        assert_eq!(Format::detect(r#"{"something": 1}"#), None);
    }
}
