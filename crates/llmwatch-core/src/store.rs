//! The GenAI series store: one entry per label set (standard labels + configured dimensions)
//! holding every GenAI metric's cells for that label set.
//!
//! Hot path: hash the borrowed label values, take one shard's read lock, find the entry and update
//! atomics. No allocation unless the label set is new. A new label set past the series limit is
//! folded into the overflow entry, so memory is bounded by configuration, not traffic.

use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};

use hashbrown::{DefaultHashBuilder, HashTable};
use llmwatch_semconv::{FinishReason, LlmCall, MAX_DIMENSIONS, TokenUsage};
use parking_lot::{Mutex, RwLock};

use crate::atomic::AtomicF64;
use crate::catalog::{self, GENAI_LABELS, OVERFLOW_LABEL, names};
use crate::histogram::AtomicHistogram;
use crate::pricer::{CallPrice, PricedBy};
use crate::snapshot::FamilySnapshot;

/// Longest label value kept; longer values are cut at a character boundary.
pub const MAX_LABEL_VALUE_BYTES: usize = 128;
/// Distinct `error_type` values kept per label set; the rest count as `_OTHER`.
pub const MAX_ERROR_TYPES_PER_SERIES: usize = 16;
const SHARDS: usize = 16;
const MAX_LABELS: usize = GENAI_LABELS.len() + MAX_DIMENSIONS;

/// `cost_component` values: the pricing components, then cost a span reported without a split.
const COST_COMPONENTS: [&str; 6] = [
    "input",
    "cache_read",
    "cache_write",
    "output",
    "reasoning",
    "unattributed",
];

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Most label sets per metric before folding into the overflow series.
    pub max_series: usize,
    /// Label names of the configured dimensions, after the standard GenAI labels.
    pub dimension_labels: Vec<String>,
}

#[derive(Debug)]
pub struct GenAiStore {
    shards: Box<[RwLock<HashTable<Series>>]>,
    hasher: DefaultHashBuilder,
    label_names: Vec<String>,
    max_series: usize,
    series_count: AtomicUsize,
    overflow: Series,
    overflowed_records: AtomicU64,
    expired_series: AtomicU64,
}

/// Everything the GenAI metrics hold for one label set.
#[derive(Debug)]
struct Series {
    hash: u64,
    labels: Box<[Box<str>]>,
    last_seen_seconds: AtomicU64,
    calls_ok: AtomicU64,
    duration_ok: DurationByStream,
    errors: Mutex<Vec<ErrorCells>>,
    finish_reasons: [AtomicU64; 6],
    finish_reasons_seen: AtomicU8,
    tokens: TokenCounters,
    input_tokens: AtomicHistogram,
    output_tokens: AtomicHistogram,
    time_to_first_chunk: AtomicHistogram,
    time_per_output_chunk: AtomicHistogram,
    cost: CostCells,
}

/// Token counts by type (`token_type` label), each exposed once it has been reported.
#[derive(Debug, Default)]
struct TokenCounters {
    counts: [AtomicU64; 5],
    seen: AtomicU8,
}

impl TokenCounters {
    fn add(&self, usage: &TokenUsage, times: u64) {
        for (index, tokens) in usage.by_type().into_iter().enumerate() {
            if let Some(tokens) = tokens {
                self.counts[index].fetch_add(tokens * times, Relaxed);
                self.seen.fetch_or(1 << index, Relaxed);
            }
        }
    }

    fn snapshot_into(&self, labels: &[(String, String)], family: &mut FamilySnapshot) {
        let seen = self.seen.load(Relaxed);
        for (index, token_type) in TokenUsage::TYPES.iter().enumerate() {
            if seen & (1 << index) != 0 {
                let value = self.counts[index].load(Relaxed) as f64;
                family.push_scalar(with_label(labels, "token_type", token_type), value);
            }
        }
    }
}

/// Cost metrics of one label set.
#[derive(Debug)]
struct CostCells {
    components: [AtomicF64; 6],
    components_seen: AtomicU8,
    per_call: AtomicHistogram,
    priced_calls: [AtomicU64; 3],
    unpriced_calls: AtomicU64,
    unpriced_tokens: TokenCounters,
    disagreements: AtomicU64,
}

#[derive(Debug)]
struct ErrorCells {
    error_type: Box<str>,
    calls: u64,
    duration: DurationByStream,
}

/// `gen_ai_request_stream` values of the duration histogram: whether the call streamed, as the
/// instrumentation said (a flag, a first-chunk event or a first-chunk time), or `unknown`.
const STREAM_VALUES: [&str; 3] = ["true", "false", "unknown"];

fn stream_index(streaming: Option<bool>) -> usize {
    match streaming {
        Some(true) => 0,
        Some(false) => 1,
        None => 2,
    }
}

/// One duration histogram per stream value, each made when its first call arrives: a streamed
/// call's duration includes the whole generation and a non-streamed one's does too, but users
/// compare them separately, and most label sets only ever see one value.
#[derive(Debug, Default)]
struct DurationByStream([OnceLock<AtomicHistogram>; 3]);

impl DurationByStream {
    fn observe(&self, streaming: Option<bool>, seconds: f64, count: u64) {
        self.0[stream_index(streaming)]
            .get_or_init(|| AtomicHistogram::new(catalog::DURATION_BUCKETS))
            .observe(seconds, count);
    }

    fn snapshot_into(&self, labels: Vec<(String, String)>, family: &mut FamilySnapshot) {
        for (cell, value) in self.0.iter().zip(STREAM_VALUES) {
            if let Some(histogram) = cell.get() {
                family.push_histogram(
                    with_label(&labels, "gen_ai_request_stream", value),
                    histogram.snapshot(),
                );
            }
        }
    }
}

impl GenAiStore {
    pub fn new(config: &StoreConfig) -> GenAiStore {
        let label_names = GENAI_LABELS
            .iter()
            .map(|s| s.to_string())
            .chain(config.dimension_labels.iter().cloned())
            .collect::<Vec<_>>();
        GenAiStore {
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
            hasher: DefaultHashBuilder::default(),
            overflow: Series::new(0, Box::new([])),
            label_names,
            max_series: config.max_series,
            series_count: AtomicUsize::new(0),
            overflowed_records: AtomicU64::new(0),
            expired_series: AtomicU64::new(0),
        }
    }

    /// Adds one call, standing for `count` calls (more than one under upstream sampling).
    pub fn record(&self, call: &LlmCall<'_>, price: &CallPrice, count: u64, now_seconds: u64) {
        let mut values: [&str; MAX_LABELS] = [""; MAX_LABELS];
        values[0] = call.service_name;
        values[1] = call.provider;
        values[2] = call.operation;
        values[3] = call.request_model;
        values[4] = call.response_model;
        let dimensions = self.label_names.len() - GENAI_LABELS.len();
        for (slot, value) in values[GENAI_LABELS.len()..]
            .iter_mut()
            .zip(&call.dimensions[..dimensions])
        {
            *slot = value.as_deref().unwrap_or("");
        }
        let values = &mut values[..self.label_names.len()];
        for value in values.iter_mut() {
            *value = truncate(value);
        }
        let hash = self.hasher.hash_one(&*values);
        let shard = &self.shards[hash as usize % SHARDS];

        if let Some(series) = shard.read().find(hash, |s| s.matches(hash, values)) {
            series.record(call, price, count, now_seconds);
            return;
        }
        let mut table = shard.write();
        if let Some(series) = table.find(hash, |s| s.matches(hash, values)) {
            series.record(call, price, count, now_seconds);
            return;
        }
        // Reserve a place before inserting, so concurrent new label sets in other shards can
        // never take the count past the limit.
        let reserved = self
            .series_count
            .fetch_update(Relaxed, Relaxed, |n| (n < self.max_series).then_some(n + 1));
        if reserved.is_err() {
            drop(table);
            self.overflow.record(call, price, count, now_seconds);
            self.overflowed_records.fetch_add(count, Relaxed);
            return;
        }
        let labels = values.iter().map(|v| Box::<str>::from(*v)).collect();
        let series = Series::new(hash, labels);
        series.record(call, price, count, now_seconds);
        table.insert_unique(hash, series, |s| s.hash);
    }

    /// Removes label sets not updated since `cutoff_seconds`; returns how many.
    pub fn expire_idle(&self, cutoff_seconds: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            shard.write().retain(|series| {
                let keep = series.last_seen_seconds.load(Relaxed) >= cutoff_seconds;
                removed += usize::from(!keep);
                keep
            });
        }
        self.series_count.fetch_sub(removed, Relaxed);
        self.expired_series.fetch_add(removed as u64, Relaxed);
        removed
    }

    /// Active label sets, the overflow one aside.
    pub fn series_count(&self) -> usize {
        self.series_count.load(Relaxed)
    }

    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }

    /// Copies every GenAI metric and the store's own self-metrics.
    pub fn snapshot(&self, out: &mut Vec<FamilySnapshot>) {
        let mut families = SeriesFamilies::new();
        for shard in self.shards.iter() {
            for series in shard.read().iter() {
                let labels: Vec<(String, String)> = self
                    .label_names
                    .iter()
                    .zip(series.labels.iter())
                    .map(|(name, value)| (name.clone(), value.to_string()))
                    .collect();
                series.snapshot_into(&labels, &mut families);
            }
        }
        if self.overflowed_records.load(Relaxed) > 0 {
            let labels = vec![(OVERFLOW_LABEL.to_owned(), "true".to_owned())];
            self.overflow.snapshot_into(&labels, &mut families);
        }
        let families = families.into_vec();
        let mut series = FamilySnapshot::new(catalog::def(names::SERIES));
        for family in &families {
            series.push_scalar(
                vec![("metric".to_owned(), family.def.name.to_owned())],
                family.samples.len() as f64,
            );
        }
        out.extend(families);
        out.push(series);

        let scalar = |name: &str, value: f64| {
            let mut family = FamilySnapshot::new(catalog::def(name));
            family.push_scalar(Vec::new(), value);
            family
        };
        let overflow_series = usize::from(self.overflowed_records.load(Relaxed) > 0);
        out.push(scalar(
            names::LABEL_SETS,
            (self.series_count() + overflow_series) as f64,
        ));
        out.push(scalar(names::SERIES_LIMIT, self.max_series as f64));
        out.push(scalar(
            names::SERIES_OVERFLOW,
            self.overflowed_records.load(Relaxed) as f64,
        ));
        out.push(scalar(
            names::SERIES_EXPIRED,
            self.expired_series.load(Relaxed) as f64,
        ));
    }
}

/// A series' labels plus one more.
fn with_label(labels: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(labels.len() + 1);
    out.extend_from_slice(labels);
    out.push((name.to_owned(), value.to_owned()));
    out
}

/// Cuts a label value to [`MAX_LABEL_VALUE_BYTES`] at a character boundary.
fn truncate(value: &str) -> &str {
    if value.len() <= MAX_LABEL_VALUE_BYTES {
        return value;
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

impl Series {
    fn new(hash: u64, labels: Box<[Box<str>]>) -> Series {
        let duration = || AtomicHistogram::new(catalog::DURATION_BUCKETS);
        let tokens = || AtomicHistogram::new(catalog::TOKEN_BUCKETS);
        Series {
            hash,
            labels,
            last_seen_seconds: AtomicU64::new(0),
            calls_ok: AtomicU64::new(0),
            duration_ok: DurationByStream::default(),
            errors: Mutex::new(Vec::new()),
            finish_reasons: Default::default(),
            finish_reasons_seen: AtomicU8::new(0),
            tokens: TokenCounters::default(),
            input_tokens: tokens(),
            output_tokens: tokens(),
            time_to_first_chunk: duration(),
            time_per_output_chunk: duration(),
            cost: CostCells::new(),
        }
    }

    fn matches(&self, hash: u64, values: &[&str]) -> bool {
        self.hash == hash
            && self.labels.len() == values.len()
            && self.labels.iter().zip(values).all(|(a, b)| &**a == *b)
    }

    fn record(&self, call: &LlmCall<'_>, price: &CallPrice, count: u64, now_seconds: u64) {
        self.last_seen_seconds.fetch_max(now_seconds, Relaxed);
        self.cost.record(call, price, count);
        match call.error_type {
            None => {
                self.calls_ok.fetch_add(count, Relaxed);
                self.duration_ok
                    .observe(call.streaming, call.duration_seconds, count);
            }
            Some(error_type) => self.record_error(truncate(error_type), call, count),
        }
        for (reason, n) in call.finish_reasons.iter() {
            self.finish_reasons[reason as usize].fetch_add(u64::from(n) * count, Relaxed);
            self.finish_reasons_seen
                .fetch_or(1 << reason as u8, Relaxed);
        }
        let usage = &call.usage;
        self.tokens.add(usage, count);
        if let Some(input) = usage.input {
            self.input_tokens.observe(input as f64, count);
        }
        if let Some(output) = usage.output {
            self.output_tokens.observe(output as f64, count);
        }
        if let Some(ttft) = call.time_to_first_token_seconds {
            self.time_to_first_chunk.observe(ttft, count);
        }
        if let Some(tpot) = call.time_per_output_token_seconds() {
            self.time_per_output_chunk.observe(tpot, count);
        }
    }

    fn record_error(&self, error_type: &str, call: &LlmCall<'_>, count: u64) {
        let mut errors = self.errors.lock();
        let index = match errors.iter().position(|e| &*e.error_type == error_type) {
            Some(index) => index,
            // One place stays free for `_OTHER`, so the cap holds exactly.
            None if errors.len() < MAX_ERROR_TYPES_PER_SERIES - 1 => {
                errors.push(ErrorCells::new(error_type));
                errors.len() - 1
            }
            None => match errors.iter().position(|e| &*e.error_type == "_OTHER") {
                Some(index) => index,
                None => {
                    errors.push(ErrorCells::new("_OTHER"));
                    errors.len() - 1
                }
            },
        };
        let cells = &mut errors[index];
        cells.calls += count;
        cells
            .duration
            .observe(call.streaming, call.duration_seconds, count);
    }

    fn snapshot_into(&self, labels: &[(String, String)], families: &mut SeriesFamilies) {
        let with = |name: &str, value: &str| with_label(labels, name, value);
        families
            .calls
            .push_scalar(with("error_type", ""), self.calls_ok.load(Relaxed) as f64);
        self.duration_ok
            .snapshot_into(with("error_type", ""), &mut families.duration);
        for cells in self.errors.lock().iter() {
            families
                .calls
                .push_scalar(with("error_type", &cells.error_type), cells.calls as f64);
            cells.duration.snapshot_into(
                with("error_type", &cells.error_type),
                &mut families.duration,
            );
        }
        let finish_seen = self.finish_reasons_seen.load(Relaxed);
        for reason in FinishReason::ALL {
            if finish_seen & (1 << reason as u8) != 0 {
                let value = self.finish_reasons[reason as usize].load(Relaxed) as f64;
                families
                    .finish_reasons
                    .push_scalar(with("finish_reason", reason.as_str()), value);
            }
        }
        self.tokens.snapshot_into(labels, &mut families.tokens);
        let tokens_seen = self.tokens.seen.load(Relaxed);
        if tokens_seen & 1 != 0 {
            families.token_usage.push_histogram(
                with("gen_ai_token_type", "input"),
                self.input_tokens.snapshot(),
            );
        }
        if tokens_seen & 2 != 0 {
            families.token_usage.push_histogram(
                with("gen_ai_token_type", "output"),
                self.output_tokens.snapshot(),
            );
        }
        let ttft = self.time_to_first_chunk.snapshot();
        if ttft.count > 0 {
            families
                .time_to_first_chunk
                .push_histogram(labels.to_vec(), ttft);
        }
        let tpot = self.time_per_output_chunk.snapshot();
        if tpot.count > 0 {
            families
                .time_per_output_chunk
                .push_histogram(labels.to_vec(), tpot);
        }
        self.cost.snapshot_into(labels, families);
    }
}

impl CostCells {
    fn new() -> CostCells {
        CostCells {
            components: Default::default(),
            components_seen: AtomicU8::new(0),
            per_call: AtomicHistogram::new(catalog::COST_BUCKETS),
            priced_calls: Default::default(),
            unpriced_calls: AtomicU64::new(0),
            unpriced_tokens: TokenCounters::default(),
            disagreements: AtomicU64::new(0),
        }
    }

    fn record(&self, call: &LlmCall<'_>, price: &CallPrice, count: u64) {
        match price {
            CallPrice::Priced {
                breakdown,
                unattributed,
                priced_by,
                disagrees,
            } => {
                let components = breakdown.components();
                let values = components.iter().chain([unattributed]);
                for (index, value) in values.enumerate() {
                    if *value > 0.0 {
                        self.components[index].add(value * count as f64);
                        self.components_seen.fetch_or(1 << index, Relaxed);
                    }
                }
                self.per_call
                    .observe(breakdown.total() + unattributed, count);
                self.priced_calls[*priced_by as usize].fetch_add(count, Relaxed);
                if *disagrees {
                    self.disagreements.fetch_add(count, Relaxed);
                }
            }
            CallPrice::Unpriced => {
                self.unpriced_calls.fetch_add(count, Relaxed);
                self.unpriced_tokens.add(&call.usage, count);
            }
        }
    }

    fn snapshot_into(&self, labels: &[(String, String)], families: &mut SeriesFamilies) {
        let with = |name: &str, value: &str| with_label(labels, name, value);
        let seen = self.components_seen.load(Relaxed);
        for (index, component) in COST_COMPONENTS.iter().enumerate() {
            if seen & (1 << index) != 0 {
                families.cost.push_scalar(
                    with("cost_component", component),
                    self.components[index].get(),
                );
            }
        }
        let per_call = self.per_call.snapshot();
        if per_call.count > 0 {
            families.call_cost.push_histogram(labels.to_vec(), per_call);
        }
        for by in PricedBy::ALL {
            let n = self.priced_calls[by as usize].load(Relaxed);
            if n > 0 {
                families
                    .priced_calls
                    .push_scalar(with("priced_by", by.as_str()), n as f64);
            }
        }
        let unpriced = self.unpriced_calls.load(Relaxed);
        if unpriced > 0 {
            families
                .unpriced_calls
                .push_scalar(labels.to_vec(), unpriced as f64);
        }
        self.unpriced_tokens
            .snapshot_into(labels, &mut families.unpriced_tokens);
        let disagreements = self.disagreements.load(Relaxed);
        if disagreements > 0 {
            families
                .cost_disagreements
                .push_scalar(labels.to_vec(), disagreements as f64);
        }
    }
}

impl ErrorCells {
    fn new(error_type: &str) -> ErrorCells {
        ErrorCells {
            error_type: error_type.into(),
            calls: 0,
            duration: DurationByStream::default(),
        }
    }
}

/// The GenAI families being filled during one snapshot.
struct SeriesFamilies {
    token_usage: FamilySnapshot,
    duration: FamilySnapshot,
    time_to_first_chunk: FamilySnapshot,
    time_per_output_chunk: FamilySnapshot,
    calls: FamilySnapshot,
    finish_reasons: FamilySnapshot,
    tokens: FamilySnapshot,
    cost: FamilySnapshot,
    call_cost: FamilySnapshot,
    priced_calls: FamilySnapshot,
    unpriced_calls: FamilySnapshot,
    unpriced_tokens: FamilySnapshot,
    cost_disagreements: FamilySnapshot,
}

impl SeriesFamilies {
    fn new() -> SeriesFamilies {
        let family = |name| FamilySnapshot::new(catalog::def(name));
        SeriesFamilies {
            token_usage: family(names::TOKEN_USAGE),
            duration: family(names::OPERATION_DURATION),
            time_to_first_chunk: family(names::TIME_TO_FIRST_CHUNK),
            time_per_output_chunk: family(names::TIME_PER_OUTPUT_CHUNK),
            calls: family(names::LLM_CALLS),
            finish_reasons: family(names::FINISH_REASONS),
            tokens: family(names::TOKENS),
            cost: family(names::COST),
            call_cost: family(names::CALL_COST),
            priced_calls: family(names::PRICED_CALLS),
            unpriced_calls: family(names::UNPRICED_CALLS),
            unpriced_tokens: family(names::UNPRICED_TOKENS),
            cost_disagreements: family(names::COST_DISAGREEMENTS),
        }
    }

    fn into_vec(self) -> [FamilySnapshot; 13] {
        [
            self.token_usage,
            self.duration,
            self.time_to_first_chunk,
            self.time_per_output_chunk,
            self.calls,
            self.finish_reasons,
            self.tokens,
            self.cost,
            self.call_cost,
            self.priced_calls,
            self.unpriced_calls,
            self.unpriced_tokens,
            self.cost_disagreements,
        ]
    }
}
