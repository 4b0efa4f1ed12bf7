//! Drift: what calls contribute to each monitored signal, and (see `monitor`) the live monitors.

pub mod config;
pub mod monitor;
pub mod signals;
mod window;

pub use config::{DriftConfig, ReferenceMode, SpcConfig};
pub use monitor::{BaselineInfo, DriftMonitors, DriftState};
