//! Drift: what calls contribute to each monitored signal, and (see `monitor`) the live monitors.

pub mod signals;
