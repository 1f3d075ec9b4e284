//! The GraphQL API: schema (roots, types, limits, error codes) and the axum server that
//! mounts it with the bundled explorer.
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
mod explorer;
pub mod http;
pub mod schema;
pub mod services;
pub mod state;
pub mod watch;

pub use http::router;
pub use schema::{ApiSchema, build_schema, sdl};
pub use state::Console;
