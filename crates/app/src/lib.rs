//! The application layer: every use case of the console, whatever the edge that calls it
//! (GraphQL, the command line, tests).
//!
//! - [`Console`] is the application: callers ask it for use cases (`login`,
//!   `create_stream`, `history`, ...), defined per concern in this crate's modules.
//! - Every change goes through one command runner (`runner`): authorize, build the
//!   command's context, execute on the aggregate, map the error, wait until the view shows
//!   it, refresh what caches it.
//! - The adapters implement the domain's service traits (`adapters`); live state from the
//!   clusters is shared for a moment (`live`); changes made outside the console are
//!   captured by the advisory watcher and reconciler (`watch`).
//! - Errors are one type, [`Error`], with a [`Code`] a client can rely on.
#![forbid(unsafe_code)]

mod adapters;
pub mod alerting;
pub mod alerts;
pub mod auth;
mod caller;
pub mod changes;
mod clusters;
mod console;
pub mod deadletters;
mod error;
mod history;
mod home;
pub mod identity;
pub mod lease;
mod live;
pub use live::Sampled;
pub use watch::OUTSIDE_CHANGES_QUEUE;
pub mod messages;
pub mod monitoring;
pub mod nodes;
pub mod paging;
pub mod persisted;
pub mod republish;
mod resources;
mod runner;
mod watch;

pub use caller::{Caller, KeyGrant, Principal, RequestMeta};
pub use clusters::{ClusterFilter, LOCAL_CLUSTER_ID, ServerDetail};
pub use console::{BoxError, Console, Options, Readiness, StartError, Worker};
pub use error::{Applied, Chain, Code, Error, Result};
pub use history::{EXPORT_LINK_TTL, Export, HistoryEntry, PointInTime, StateAt, diff, export_link_message};
pub use paging::{MAX_PAGE, Page, Paging};
pub use resources::{StreamFilter, StreamOrder};
