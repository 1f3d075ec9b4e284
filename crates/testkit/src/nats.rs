//! A real nats-server per test.

use jsc_fleet::embedded::{LocalCluster, ServerOptions, ServerProcess, find_nats_server};
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
        let urls: Vec<&str> = self.url.split(',').collect();
        async_nats::connect(urls)
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

/// A 3-node nats-server cluster made from the checked-in `infra/home-cluster/n*.conf`
/// (moved to free ports and a temporary store). Its JetStream may still be electing a
/// leader when this returns, as with a cluster started beside the console.
pub struct NatsCluster {
    cluster: LocalCluster,
    dir: TempDir,
}

impl NatsCluster {
    pub async fn start() -> Self {
        crate::init_tracing();
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let binary = find_nats_server(&[workspace]).unwrap_or_else(|| panic!("{}", jsc_fleet::embedded::INSTALL_HINT));
        let configs: Vec<_> = (1..=3)
            .map(|i| workspace.join(format!("../../infra/home-cluster/n{i}.conf")))
            .collect();
        let dir = tempfile::Builder::new()
            .prefix("jsc-nats-cluster-")
            .tempdir()
            .expect("temp dir");
        let cluster = LocalCluster::start(Some(binary), &configs, dir.path())
            .unwrap_or_else(|e| panic!("could not start the 3-node cluster: {e}"));
        // Not waited for: a console started now waits for JetStream's leader itself.
        Self { cluster, dir }
    }

    /// Every node's URL, comma-separated (as `--nats-url` takes them).
    pub fn urls(&self) -> String {
        self.cluster.urls().join(",")
    }

    /// Node `i`'s URL.
    pub fn url(&self, i: usize) -> String {
        self.cluster.urls()[i].clone()
    }

    /// A handle for a console on the cluster ([`crate::TestApp::spawn_with`]): dropping it
    /// leaves the cluster running.
    pub fn home(&self) -> NatsServer {
        NatsServer {
            process: None,
            dir: tempfile::Builder::new()
                .prefix("jsc-nats-shared-")
                .tempdir()
                .expect("temp dir"),
            url: self.urls(),
        }
    }

    /// A client that knows every node.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.cluster.urls())
            .await
            .expect("connect to the test cluster")
    }

    /// Kills node `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.cluster.kill(i);
    }

    /// Starts node `i` again on its ports and store.
    pub fn restart(&mut self, i: usize) {
        self.cluster
            .restart(i)
            .unwrap_or_else(|e| panic!("could not start node {i} again: {e}"));
    }

    /// Which node (by index) has `server_name`: `home-1` is node 0.
    pub fn index_of(&self, server_name: &str) -> usize {
        let n: usize = server_name
            .trim_start_matches("home-")
            .parse()
            .unwrap_or_else(|_| panic!("not a node of infra/home-cluster: {server_name}"));
        n - 1
    }

    pub fn store_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
