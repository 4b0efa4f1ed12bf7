//! Costs hand-computed per accounting case, matching across hosts and snapshots, and the
//! importers of the two public catalog formats, all to 1e-9 relative.

use llmwatch_pricing::{Catalog, CostBreakdown, Date, Format, MatchKind, call_cost, parse_catalog};
use llmwatch_semconv::{InputAccounting, TokenUsage};

fn usage(input: u64, output: u64) -> TokenUsage {
    TokenUsage::from_reported(
        Some(input),
        Some(output),
        None,
        None,
        None,
        InputAccounting::Inclusive,
    )
}

fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn assert_close(actual: f64, expected: f64) {
    let tolerance = 1e-9 * expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} != {expected}"
    );
}

/// The cost of `usage` for `model` through `provider` on `day`, by the given catalog.
fn cost_in(
    catalog: &Catalog,
    provider: &str,
    model: &str,
    day: &str,
    usage: &TokenUsage,
) -> CostBreakdown {
    let resolution = catalog
        .resolve(provider, model)
        .unwrap_or_else(|| panic!("{model} is not priced"));
    call_cost(resolution.entry.prices_at(date(day)), usage).0
}

fn cost(provider: &str, model: &str, day: &str, usage: &TokenUsage) -> CostBreakdown {
    cost_in(&Catalog::builtin(), provider, model, day, usage)
}

#[test]
fn the_builtin_catalog_is_valid_and_covers_every_vendor() {
    let catalog = Catalog::builtin();
    for vendor in [
        "openai",
        "anthropic",
        "google",
        "mistral_ai",
        "deepseek",
        "x_ai",
        "cohere",
    ] {
        assert!(
            catalog.entries().iter().any(|e| e.vendor == vendor),
            "{vendor}"
        );
    }
    assert!(
        catalog
            .entries()
            .iter()
            .all(|e| e.checked.is_some() && e.source == "built-in")
    );
}

#[test]
fn openai_cached_input_is_inside_input() {
    // 10,000 input tokens of which 4,000 cached, 500 output; gpt-4o after its October 2024 price.
    let mut u = usage(10_000, 500);
    u.cache_read = Some(4_000);
    let c = cost("openai", "gpt-4o", "2025-03-01", &u);
    assert_close(c.input, 6_000.0 * 2.50 / 1e6);
    assert_close(c.cache_read, 4_000.0 * 1.25 / 1e6);
    assert_close(c.output, 500.0 * 10.00 / 1e6);
    assert_close(c.total(), 0.025);
}

#[test]
fn anthropic_native_cache_reads_and_both_write_lifetimes() {
    // Anthropic reports 100 uncached input tokens beside 2,000 cache reads and 1,500 cache writes
    // (500 of them with the 1-hour lifetime): inclusive input is 3,600.
    let mut u = TokenUsage::from_reported(
        Some(100),
        Some(300),
        Some(2_000),
        Some(1_500),
        None,
        InputAccounting::Exclusive,
    );
    u.cache_write_1h = Some(500);
    assert_eq!(u.input, Some(3_600));
    let c = cost("anthropic", "claude-sonnet-4-5-20250929", "2025-11-01", &u);
    assert_close(c.input, 100.0 * 3.00 / 1e6);
    assert_close(c.cache_read, 2_000.0 * 0.30 / 1e6);
    assert_close(c.cache_write, (1_000.0 * 3.75 + 500.0 * 6.00) / 1e6);
    assert_close(c.output, 300.0 * 15.00 / 1e6);
    assert_close(c.total(), 0.012_15);
}

#[test]
fn gemini_long_context_tier_applies_strictly_above_the_threshold() {
    let below = cost(
        "gcp.gemini",
        "gemini-2.5-pro",
        "2025-11-01",
        &usage(200_000, 1_000),
    );
    assert_close(below.total(), (200_000.0 * 1.25 + 1_000.0 * 10.00) / 1e6);
    let above = cost(
        "gcp.gemini",
        "gemini-2.5-pro",
        "2025-11-01",
        &usage(200_001, 1_000),
    );
    assert_close(above.total(), (200_001.0 * 2.50 + 1_000.0 * 15.00) / 1e6);
    // Sonnet's long-context tier raises cache rates too: 150,000 cached of 250,000 input.
    let mut u = usage(250_000, 2_000);
    u.cache_read = Some(150_000);
    let c = cost("anthropic", "claude-sonnet-4", "2025-11-01", &u);
    assert_close(
        c.total(),
        (100_000.0 * 6.00 + 150_000.0 * 0.60 + 2_000.0 * 22.50) / 1e6,
    );
}

#[test]
fn reasoning_priced_with_output_and_apart_from_it() {
    // o3 bills reasoning as output: 1,000 output tokens of which 800 reasoning.
    let mut u = usage(100, 1_000);
    u.reasoning = Some(800);
    let c = cost("openai", "o3", "2025-07-01", &u);
    assert_close(c.output, 200.0 * 8.00 / 1e6);
    assert_close(c.reasoning, 800.0 * 8.00 / 1e6);
    assert_close(c.total(), (100.0 * 2.00 + 1_000.0 * 8.00) / 1e6);

    // A catalog that prices reasoning apart takes it out of output: it is not counted twice.
    let user = parse_catalog(
        "[[model]]\nname = \"thinker\"\nvendor = \"acme\"\n[[model.prices]]\ninput = 1.0\noutput = 4.0\nreasoning = 3.0\n",
        "user.toml",
        None,
    )
    .unwrap();
    let catalog = Catalog::from_layers(vec![user]);
    let c = cost_in(&catalog, "", "thinker", "2025-07-01", &u);
    assert_close(c.output, 200.0 * 4.00 / 1e6);
    assert_close(c.reasoning, 800.0 * 3.00 / 1e6);
    assert_close(c.total(), (100.0 + 800.0 + 2_400.0) / 1e6);
}

#[test]
fn a_dated_price_change_prices_each_call_by_its_day() {
    let u = usage(1_000, 1_000);
    assert_close(
        cost("openai", "o3", "2025-06-09", &u).total(),
        (1_000.0 * 10.00 + 1_000.0 * 40.00) / 1e6,
    );
    assert_close(
        cost("openai", "o3", "2025-06-10", &u).total(),
        (1_000.0 * 2.00 + 1_000.0 * 8.00) / 1e6,
    );
    // Three DeepSeek periods.
    let mut hit = usage(1_000_000, 1_000_000);
    hit.cache_read = Some(500_000);
    assert_close(
        cost("deepseek", "deepseek-chat", "2025-08-01", &hit).total(),
        0.5 * 0.27 + 0.5 * 0.07 + 1.10,
    );
    assert_close(
        cost("deepseek", "deepseek-chat", "2025-09-10", &hit).total(),
        0.5 * 0.56 + 0.5 * 0.07 + 1.68,
    );
    assert_close(
        cost("deepseek", "deepseek-chat", "2025-10-01", &hit).total(),
        0.5 * 0.28 + 0.5 * 0.028 + 0.42,
    );
}

#[test]
fn embeddings_pay_input_only() {
    let u = TokenUsage::from_reported(
        Some(1_000_000),
        None,
        None,
        None,
        None,
        InputAccounting::Inclusive,
    );
    let c = cost("openai", "text-embedding-3-small", "2025-11-01", &u);
    assert_close(c.total(), 0.02);
    assert_eq!(c.output, 0.0);
}

#[test]
fn an_unknown_model_is_unpriced_not_free() {
    let catalog = Catalog::builtin();
    assert!(catalog.resolve("openai", "my-private-finetune").is_none());
    assert!(catalog.resolve("", "").is_none());
}

#[test]
fn names_resolve_across_hosts_snapshots_and_rules() {
    let catalog =
        Catalog::builtin().with_aliases([("prod-gpt4o-eastus".to_owned(), "gpt-4o".to_owned())]);
    let resolve = |provider: &str, model: &str| {
        catalog
            .resolve(provider, model)
            .map(|r| (r.entry.name.as_str(), r.how))
    };
    assert_eq!(
        resolve("openai", "gpt-4o"),
        Some(("gpt-4o", MatchKind::Exact))
    );
    assert_eq!(
        resolve("openai", "gpt-4o-2024-11-20"),
        Some(("gpt-4o-2024-08-06", MatchKind::Alias))
    );
    assert_eq!(
        resolve("openai", "gpt-4o-mini-2024-07-18"),
        Some(("gpt-4o-mini", MatchKind::Snapshot))
    );
    assert_eq!(
        resolve(
            "aws.bedrock",
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0"
        ),
        Some(("claude-3-5-sonnet", MatchKind::Snapshot))
    );
    assert_eq!(
        resolve("aws.bedrock", "anthropic.claude-3-haiku-20240307-v1:0"),
        Some(("claude-3-haiku", MatchKind::Snapshot))
    );
    assert_eq!(
        resolve("gcp.vertex_ai", "claude-sonnet-4-5@20250929"),
        Some(("claude-sonnet-4-5", MatchKind::Qualified))
    );
    assert_eq!(
        resolve("gcp.vertex_ai", "publishers/google/models/gemini-2.5-flash"),
        Some(("gemini-2.5-flash", MatchKind::Qualified))
    );
    assert_eq!(
        resolve("azure.ai.openai", "prod-gpt4o-eastus"),
        Some(("gpt-4o", MatchKind::Configured))
    );
    assert_eq!(
        resolve("mistral_ai", "mistral-large-latest"),
        Some(("mistral-large", MatchKind::Snapshot))
    );
    assert_eq!(
        resolve("cohere", "command-r-plus-08-2024"),
        Some(("command-r-plus", MatchKind::Snapshot))
    );
    // Provider-aware: OpenAI does not serve Claude, a host may.
    assert_eq!(resolve("openai", "claude-3-5-sonnet-20241022"), None);
    assert_eq!(
        resolve("", "claude-3-5-sonnet-20241022"),
        Some(("claude-3-5-sonnet", MatchKind::Snapshot))
    );

    let rules = parse_catalog(
        "[[model]]\nname = \"ft-gpt4o-mini\"\nvendor = \"openai\"\nmatch = [{ starts_with = \"ft:gpt-4o-mini\" }, { regex = \"^acme-[0-9]+$\" }]\n[[model.prices]]\ninput = 0.3\noutput = 1.2\n",
        "user.toml",
        None,
    )
    .unwrap();
    let catalog = Catalog::from_layers(vec![rules, llmwatch_pricing::builtin_entries()]);
    assert_eq!(
        catalog
            .resolve("openai", "ft:gpt-4o-mini:acme::abc123")
            .unwrap()
            .how,
        MatchKind::Rule
    );
    assert_eq!(
        catalog.resolve("", "ACME-42").unwrap().entry.name,
        "ft-gpt4o-mini"
    );
    assert!(
        catalog
            .resolve("anthropic", "ft:gpt-4o-mini:acme::abc123")
            .is_none()
    );
}

#[test]
fn user_files_take_precedence_over_the_builtin_catalog() {
    let user = parse_catalog(
        "[[model]]\nname = \"gpt-4o\"\nvendor = \"openai\"\n[[model.prices]]\ninput = 2.0\noutput = 8.0\n",
        "negotiated.toml",
        None,
    )
    .unwrap();
    let catalog = Catalog::from_layers(vec![user, llmwatch_pricing::builtin_entries()]);
    let resolution = catalog.resolve("openai", "gpt-4o-2024-08-06").unwrap();
    // The exact built-in snapshot entry still wins over the user's base model by name...
    assert_eq!(resolution.entry.source, "built-in");
    // ...while the base name is the user's.
    let resolution = catalog.resolve("openai", "gpt-4o").unwrap();
    assert_eq!(resolution.entry.source, "negotiated.toml");
    assert_close(
        call_cost(
            resolution.entry.prices_at(date("2025-01-01")),
            &usage(1_000_000, 0),
        )
        .0
        .total(),
        2.0,
    );
}

const LITELLM: &str = r#"{
  "sample_spec": {"input_cost_per_token": 0, "litellm_provider": "one of …"},
  "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
             "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai", "mode": "chat"},
  "claude-sonnet-4-5-20250929": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
             "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
             "cache_creation_input_token_cost_above_1hr": 6e-06,
             "input_cost_per_token_above_200k_tokens": 6e-06, "output_cost_per_token_above_200k_tokens": 2.25e-05,
             "cache_read_input_token_cost_above_200k_tokens": 6e-07,
             "cache_creation_input_token_cost_above_200k_tokens": 7.5e-06,
             "litellm_provider": "anthropic", "mode": "chat"},
  "gemini/gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
             "cache_read_input_token_cost": 1.25e-07,
             "input_cost_per_token_above_200k_tokens": 2.5e-06, "output_cost_per_token_above_200k_tokens": 1.5e-05,
             "litellm_provider": "gemini", "mode": "chat"},
  "azure/gpt-4o": {"input_cost_per_token": 2.75e-06, "output_cost_per_token": 1.1e-05, "litellm_provider": "azure"},
  "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai", "mode": "image_generation"}
}"#;

const GENAI_PRICES: &str = r#"[
  {"id": "openai", "name": "OpenAI", "api_pattern": "api\\.openai\\.com",
   "models": [{"id": "gpt-4o", "match": {"or": [{"equals": "gpt-4o"}, {"starts_with": "gpt-4o-2024-08"}]},
               "prices": {"input_mtok": 2.5, "cache_read_mtok": 1.25, "output_mtok": 10}}]},
  {"id": "anthropic", "name": "Anthropic", "api_pattern": "api\\.anthropic\\.com",
   "models": [{"id": "claude-sonnet-4-5", "match": {"starts_with": "claude-sonnet-4-5"},
               "prices": {"input_mtok": {"base": 3, "tiers": [{"start": 200000, "price": 6}]},
                          "cache_write_mtok": {"base": 3.75, "tiers": [{"start": 200000, "price": 7.5}]},
                          "cache_read_mtok": {"base": 0.3, "tiers": [{"start": 200000, "price": 0.6}]},
                          "output_mtok": {"base": 15, "tiers": [{"start": 200000, "price": 22.5}]}}}]},
  {"id": "google", "name": "Google", "api_pattern": "x",
   "models": [{"id": "gemini-2.5-pro", "match": {"starts_with": "gemini-2.5-pro"},
               "prices": {"input_mtok": {"base": 1.25, "tiers": [{"start": 200000, "price": 2.5}]},
                          "output_mtok": {"base": 10, "tiers": [{"start": 200000, "price": 15}]}}}]},
  {"id": "deepseek", "name": "DeepSeek", "api_pattern": "x",
   "models": [{"id": "deepseek-chat", "match": {"equals": "deepseek-chat"},
               "prices": [{"prices": {"input_mtok": 0.27, "cache_read_mtok": 0.07, "output_mtok": 1.1}},
                          {"constraint": {"start_date": "2025-09-29"},
                           "prices": {"input_mtok": 0.28, "cache_read_mtok": 0.028, "output_mtok": 0.42}},
                          {"constraint": {"start_time": "16:30:00Z", "end_time": "00:30:00Z"},
                           "prices": {"input_mtok": 0.135, "output_mtok": 0.55}}]}]}
]"#;

#[test]
fn importers_price_the_same_calls_as_the_builtin_catalog() {
    assert_eq!(Format::detect(LITELLM), Some(Format::LiteLlm));
    assert_eq!(Format::detect(GENAI_PRICES), Some(Format::GenaiPrices));
    let litellm = Catalog::from_layers(vec![parse_catalog(LITELLM, "litellm.json", None).unwrap()]);
    let genai = Catalog::from_layers(vec![
        parse_catalog(GENAI_PRICES, "data.json", None).unwrap(),
    ]);
    let builtin = Catalog::builtin();

    let mut cached = usage(10_000, 500);
    cached.cache_read = Some(4_000);
    let mut long = usage(250_000, 2_000);
    long.cache_read = Some(150_000);
    long.cache_write = Some(20_000);
    let cases: [(&str, &str, &TokenUsage); 4] = [
        ("openai", "gpt-4o-2024-08-06", &cached),
        ("anthropic", "claude-sonnet-4-5-20250929", &long),
        ("gcp.gemini", "gemini-2.5-pro", &usage(200_001, 1_000)),
        ("gcp.gemini", "gemini-2.5-pro", &usage(200_000, 1_000)),
    ];
    for (provider, model, u) in cases {
        let expected = cost_in(&builtin, provider, model, "2025-11-01", u).total();
        assert_close(
            cost_in(&litellm, provider, model, "2025-11-01", u).total(),
            expected,
        );
        assert_close(
            cost_in(&genai, provider, model, "2025-11-01", u).total(),
            expected,
        );
    }
    // LiteLLM's Azure entry applies through Azure only; image pricing is skipped.
    let azure = litellm.resolve("azure.ai.openai", "gpt-4o").unwrap();
    assert_eq!(azure.entry.provider.as_deref(), Some("azure.ai.openai"));
    assert_close(
        call_cost(
            azure.entry.prices_at(date("2025-11-01")),
            &usage(1_000_000, 0),
        )
        .0
        .total(),
        2.75,
    );
    assert!(litellm.resolve("openai", "dall-e-3").is_none());
    // genai-prices dated prices become periods; time-of-day prices are not modelled.
    let mut hit = usage(1_000_000, 1_000_000);
    hit.cache_read = Some(500_000);
    assert_close(
        cost_in(&genai, "deepseek", "deepseek-chat", "2025-08-01", &hit).total(),
        0.5 * 0.27 + 0.5 * 0.07 + 1.10,
    );
    assert_close(
        cost_in(&genai, "deepseek", "deepseek-chat", "2025-10-01", &hit).total(),
        0.5 * 0.28 + 0.5 * 0.028 + 0.42,
    );
}

#[test]
fn catalog_errors_name_the_entry_and_the_field() {
    let check = |text: &str| {
        parse_catalog(text, "prices.toml", None)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        check("[[model]]\nname = \"x\"\nvendor = \"v\"\n[[model.prices]]\ninput = -1.0\n"),
        "prices.toml: model \"x\": field `model[0].prices[0].input`: expected a non-negative price in USD per million tokens, got -1"
    );
    assert_eq!(
        check(
            "[[model]]\nname = \"x\"\nvendor = \"v\"\n[[model.prices]]\ninput = 1.0\nuntil = \"2025-02-30\"\n"
        ),
        "prices.toml: model \"x\": field `model[0].prices[0].until`: expected a date YYYY-MM-DD, got \"2025-02-30\""
    );
    let overlap = check(
        "[[model]]\nname = \"x\"\nvendor = \"v\"\n[[model.prices]]\ninput = 1.0\nuntil = \"2025-03-01\"\n[[model.prices]]\ninput = 2.0\nsince = \"2025-02-01\"\n",
    );
    assert!(
        overlap.contains("field `model[0].prices`: price periods overlap"),
        "{overlap}"
    );
    let typo = check("[[model]]\nname = \"x\"\nvendor = \"v\"\n[[model.prices]]\ninptu = 1.0\n");
    assert!(
        typo.contains("model[0].prices[0]") && typo.contains("unknown field `inptu`"),
        "{typo}"
    );
    let regex = check(
        "[[model]]\nname = \"x\"\nvendor = \"v\"\nmatch = [{ regex = \"(\" }]\n[[model.prices]]\ninput = 1.0\n",
    );
    assert!(
        regex.contains("field `model[0].match[0]`: invalid regex"),
        "{regex}"
    );
    let litellm = parse_catalog(
        r#"{"m": {"input_cost_per_token": "cheap", "litellm_provider": "openai"}}"#,
        "l.json",
        None,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        litellm,
        "l.json: model \"m\": field `m.input_cost_per_token`: expected a price in USD per token, got \"cheap\""
    );
}
