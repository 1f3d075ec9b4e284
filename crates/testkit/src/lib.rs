//! Test helpers: a real nats-server per test and a running console per test.
//!
//! Every test gets its own nats-server (dynamic port, JetStream, its own store directory),
//! killed and removed when the handle drops, and, for end-to-end tests, the whole console
//! started in-process on port 0 with typed GraphQL helpers over HTTP and WebSocket.
#![forbid(unsafe_code)]

mod app;
mod nats;

pub use app::{OWNER_EMAIL, OWNER_PASSWORD, Subscription, TestApp, first_error};
pub use nats::NatsServer;

/// Installs a tracing subscriber once: silent unless `TEST_LOG` is set (then it prints
/// at that filter, e.g. `TEST_LOG=debug`).
pub fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let filter = if filter.is_empty() || filter == "1" {
                "info".to_string()
            } else {
                filter
            };
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A short random suffix for stream, consumer and bucket names.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{:x}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
