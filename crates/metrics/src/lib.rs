//! Monitoring: what the console observes of the clusters it manages, as opposed to the
//! changes people make (events).
//!
//! - [`collect`] reads one sample of a cluster; [`collector`] samples every managed cluster
//!   at its interval, and [`store`] keeps the samples on the `CONSOLE_METRICS` stream.
//! - [`latest`] is the latest whole sample of every cluster, kept by every replica from that
//!   stream, and the live feed of new ones.
//! - [`series`] names every series and reads it out of samples; [`rollup`] summarises the
//!   samples per minute and per hour as Parquet on the object store; [`prom`] is the
//!   Prometheus exposition.
#![forbid(unsafe_code)]

pub mod collect;
pub mod collector;
pub mod latest;
pub mod prom;
pub mod rollup;
pub mod sample;
pub mod series;
pub mod store;

pub use latest::{Assembler, Latest};
pub use sample::{ClusterSample, ConsumerSample, Record, Snapshot, StreamSample};
pub use series::{Buckets, Metric, Point, Scope, SeriesKey};
