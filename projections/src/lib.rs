//! The read models: one module per view, each saying which events it reads, its key, its
//! target (a KV bucket) and its version.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clusters;
pub mod identity;
pub mod streams;

pub use clusters::{ClusterView, ClustersProjection};
pub use streams::{ConsumerView, ConsumersProjection, StreamView, StreamsProjection, consumer_key, stream_key};
