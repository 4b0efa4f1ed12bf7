//! Statistics for drift detection and statistical process control.
//!
//! Every test and distance here matches scipy's documented definition (stated on each function)
//! and is tested against values computed with scipy (fixtures in `tests/fixtures`, made by
//! `tests/fixtures/make_fixtures.py`). Pure: no I/O, no async.

mod error;

pub use error::StatsError;
pub mod anderson;
pub mod binned;
pub mod chi2;
pub mod cvm;
pub mod distance;
pub mod embed;
pub mod ks;
pub mod kstwo;
pub mod mmd;
pub mod spc;
pub mod summary;
