//! The llmwatch processor: normalized GenAI records in, bounded aggregates out.
//!
//! No network and no async: receivers, replay and the in-process span processor all feed the same
//! [`Processor`], and every exposition reads the same [`snapshot::FamilySnapshot`]s, whose names
//! come from the one [`catalog`].

pub mod atomic;
pub mod catalog;
pub mod drift;
pub mod heavy_hitters;
pub mod histogram;
pub mod labeled;
mod pricer;
mod processor;
pub mod quality;
pub mod snapshot;
pub mod spend;
pub mod store;
pub mod telemetry;

pub use pricer::{CallPrice, PricedBy, Pricer, PricingConfig};
pub use processor::{IngestReport, Processor, ProcessorConfig, ProcessorError, unix_now_seconds};
pub use telemetry::{RequestRejection, Signal, Transport};
