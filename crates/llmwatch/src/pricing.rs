//! `llmwatch pricing lookup|check`, and the `--pricing` flags `serve` and `replay` share.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use llmwatch_pricing::{Date, Format, Prices, parse_catalog};

use crate::config::{CatalogFile, Config};

/// Price catalog files named on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PricingArgs {
    /// A price catalog file, taking precedence over the config's and the built-in one
    /// (repeatable; the first file wins). Native TOML/JSON, LiteLLM or genai-prices JSON.
    #[arg(long = "pricing", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The format of the --pricing files, when detection is not wanted.
    #[arg(long, value_name = "native|litellm|genai-prices")]
    pub pricing_format: Option<String>,
}

impl PricingArgs {
    /// Puts the command-line catalogs before the config's.
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if let Some(format) = &self.pricing_format
            && Format::parse_name(format).is_none()
        {
            bail!("--pricing-format: expected native, litellm or genai-prices, got {format:?}");
        }
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let files = self.files.iter().map(|path| CatalogFile {
            path: cwd.join(path),
            format: self.pricing_format.clone(),
        });
        let mut catalogs: Vec<CatalogFile> = files.collect();
        catalogs.append(&mut config.pricing.catalogs);
        config.pricing.catalogs = catalogs;
        Ok(())
    }
}

/// `llmwatch pricing check FILE`: parses and validates one catalog file.
pub fn check(file: &PathBuf, format: Option<&str>) -> anyhow::Result<String> {
    let format = match format {
        Some(name) => Some(Format::parse_name(name).with_context(|| {
            format!("--format: expected native, litellm or genai-prices, got {name:?}")
        })?),
        None => None,
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let detected = format.or_else(|| Format::detect(&text));
    let entries = parse_catalog(&text, &file.display().to_string(), format)?;
    Ok(format!(
        "{}: ok ({} priced models, {} format)\n",
        file.display(),
        entries.len(),
        detected.map_or("unknown", Format::name)
    ))
}

/// `llmwatch pricing lookup MODEL`: which entry prices a model, why, and at what rates.
pub fn lookup(
    config: &Config,
    model: &str,
    provider: &str,
    date: Option<&str>,
) -> anyhow::Result<String> {
    let processor_config = config.processor_config()?;
    let catalog = &processor_config.pricing.catalog;
    let Some(resolution) = catalog.resolve(provider, model) else {
        bail!(
            "no price for model {model:?} through provider {provider:?}: calls to it are counted in \
             llmwatch_unpriced_calls_total; add it to a catalog file given with --pricing (see docs/pricing.md)"
        );
    };
    let on = match date {
        Some(text) => Date::parse(text)
            .with_context(|| format!("--date: expected YYYY-MM-DD, got {text:?}"))?,
        None => Date::from_unix_nanos(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        ),
    };
    let entry = resolution.entry;
    let mut out = String::new();
    let _ = writeln!(out, "model:     {model}");
    let _ = writeln!(
        out,
        "matched:   {} ({})",
        entry.name,
        resolution.how.as_str()
    );
    let _ = writeln!(out, "vendor:    {}", entry.vendor);
    if let Some(host) = &entry.provider {
        let _ = writeln!(out, "provider:  {host} only");
    }
    let _ = writeln!(out, "source:    {}", entry.source);
    if let Some(checked) = entry.checked {
        let _ = writeln!(out, "checked:   {checked}");
    }
    if !entry.aliases.is_empty() {
        let _ = writeln!(out, "aliases:   {}", entry.aliases.join(", "));
    }
    let _ = writeln!(out, "prices in USD per million tokens; in force on {on}:");
    write_prices(&mut out, "  ", entry.prices_at(on));
    if entry.periods.len() > 1 {
        let _ = writeln!(out, "all periods:");
        for period in &entry.periods {
            let show = |d: Option<Date>| d.map_or_else(|| "…".to_owned(), |d| d.to_string());
            let _ = writeln!(out, "  {} .. {}", show(period.since), show(period.until));
            write_prices(&mut out, "    ", &period.prices);
        }
    }
    Ok(out)
}

fn write_prices(out: &mut String, indent: &str, prices: &Prices) {
    let field = |name: &str, value: Option<f64>, fallback: &str| match value {
        Some(v) => format!("{name} {v}"),
        None => format!("{name} ({fallback})"),
    };
    let line = [
        format!("input {}", prices.input),
        field("cache_read", prices.cache_read, "as input"),
        field("cache_write_5m", prices.cache_write_5m, "as input"),
        field("cache_write_1h", prices.cache_write_1h, "as 5m"),
        field("output", prices.output, "none"),
        field("reasoning", prices.reasoning, "as output"),
    ];
    let _ = writeln!(out, "{indent}{}", line.join(", "));
    for tier in &prices.tiers {
        let rates = prices.rates(tier.above_input_tokens + 1);
        let _ = writeln!(
            out,
            "{indent}above {} input tokens: input {}, cache_read {}, cache_write_5m {}, output {}",
            tier.above_input_tokens,
            rates.input,
            rates.cache_read,
            rates.cache_write_5m,
            rates.output
        );
    }
}
