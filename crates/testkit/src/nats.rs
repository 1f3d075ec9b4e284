//! A real nats-server per test.

use jsc_fleet::embedded::{ServerOptions, ServerProcess, find_nats_server};
use tempfile::TempDir;

/// A nats-server with JetStream on a free port and its own store directory. Killed and
/// its directory removed on drop.
pub struct NatsServer {
    process: Option<ServerProcess>,
    dir: TempDir,
    url: String,
}

impl NatsServer {
    /// Starts a server with JetStream. Panics with an install hint when the binary is missing.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line arguments (e.g. `--user`, `--pass`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let binary = find_nats_server(&[workspace]).unwrap_or_else(|| panic!("{}", jsc_fleet::embedded::INSTALL_HINT));
        Self::start_binary(binary, extra_args)
    }

    /// Starts nats-server 2.10 (installed by `make tools`), for checking what the console
    /// says to a server too old for a feature.
    pub fn start_2_10() -> Self {
        let default = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv-2.10/bin/nats-server");
        let binary = std::env::var_os("NATS_SERVER_2_10_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or(default);
        assert!(
            binary.is_file(),
            "nats-server 2.10 was not found at {}: run `make tools`, or set NATS_SERVER_2_10_BIN",
            binary.display()
        );
        Self::start_binary(binary, &[])
    }

    fn start_binary(binary: std::path::PathBuf, extra_args: &[&str]) -> Self {
        crate::init_tracing();
        let dir = tempfile::Builder::new()
            .prefix("jsc-nats-")
            .tempdir()
            .expect("temp dir");
        let mut opts = ServerOptions::new(dir.path().join("jetstream"));
        opts.binary = Some(binary);
        opts.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        let process = ServerProcess::start(&opts).unwrap_or_else(|e| panic!("could not start nats-server: {e}"));
        let url = process.url();
        Self {
            process: Some(process),
            dir,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Another handle on this server, for a second console on the same home NATS (a
    /// replica): dropping it leaves the server running.
    pub fn shared(&self) -> Self {
        Self {
            process: None,
            dir: tempfile::Builder::new()
                .prefix("jsc-nats-shared-")
                .tempdir()
                .expect("temp dir"),
            url: self.url.clone(),
        }
    }

    pub fn port(&self) -> u16 {
        self.process.as_ref().map(|p| p.port()).unwrap_or(0)
    }

    pub fn store_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("jetstream")
    }

    /// A plain client, for checking what the console did without going through it.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(&self.url)
            .await
            .expect("connect to the test nats-server")
    }

    /// A JetStream context on a plain client.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// Freezes the server (SIGSTOP): its connections stay open and nothing answers, as with
    /// a server that hangs or a network that drops everything.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.process.as_ref().expect("a server this handle started").pid();
        let status = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Stops the server at once (for tests of a NATS server that goes away).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }
}
