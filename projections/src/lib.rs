//! The read models: one module per view, each saying which events it reads, its key, its
//! target (a KV bucket) and its version.
#![forbid(unsafe_code)]

pub mod clusters;

pub use clusters::{ClusterView, ClustersProjection};
