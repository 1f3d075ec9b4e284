//! Test helpers: a real nats-server per test and a running console per test.
//!
//! Every test gets its own nats-server (dynamic port, JetStream, its own store directory),
//! killed and removed when the handle drops, and, for end-to-end tests, the whole console
//! started in-process on port 0 with typed GraphQL helpers over HTTP and WebSocket, typed
//! helpers for the steps many tests share (`ops`), and readers of what the console wrote to
//! its event stream (`events`).
#![forbid(unsafe_code)]

mod app;
mod events;
mod nats;
mod ops;
pub mod s3;

pub use app::{OWNER_EMAIL, OWNER_PASSWORD, Subscription, TestApp, code, first_error};
pub use events::{KV_TIMEOUT, RawEvent};
pub use nats::{NatsCluster, NatsServer};
pub use ops::{Invitation, gql, member_password};
pub use s3::S3Server;

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

/// Everything the process logs from now on, at `debug` and above, kept in memory so a test
/// can scan it (for secrets). Call before starting the console; one per test process.
pub fn capture_logs() -> LogBuffer {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init();
    buffer
}

/// Captured log output.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the `jsconsole` command line in-process with `args` (without the program name);
/// returns the exit code, stdout and stderr.
pub async fn cli<S: AsRef<str>>(args: &[S]) -> (i32, String, String) {
    let mut argv = vec!["jsconsole".to_string()];
    argv.extend(args.iter().map(|s| s.as_ref().to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = jsc_cli::commands::run(argv, &mut out, &mut err).await;
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}
