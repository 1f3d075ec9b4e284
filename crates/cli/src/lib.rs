//! Wiring: builds the console from its configuration and runs it.
//!
//! [`Application::build`] connects (or starts) the home NATS, opens the event store,
//! prepares projections and views, and binds the listener (port 0 in tests);
//! [`Application::run_until_stopped`] serves until the shutdown token fires, then stops
//! every part and the embedded nats-server.
#![forbid(unsafe_code)]

pub mod commands;
mod remote;
pub mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use jsc_app::Console;
use jsc_app::identity::Bootstrap;
use jsc_eventstore::{EventStoreConfig, JetStreamEventStore};
use jsc_fleet::embedded::{ServerOptions, Supervised};
use jsc_secrets::{Keyring, SecretBox};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The id (and name) under which the embedded server is registered.
pub use jsc_app::LOCAL_CLUSTER_ID;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The home NATS (one URL, or a cluster's, comma-separated); `None` starts an embedded
    /// nats-server under the data dir.
    pub nats_url: Option<String>,
    /// Copies of the console's streams and buckets on the home NATS; `None`: 3 on a cluster
    /// of three servers or more, else 1.
    pub home_replicas: Option<usize>,
    /// Client port of the embedded nats-server (`-1` picks a free one).
    pub embedded_nats_port: i32,
    pub nats_server_bin: Option<PathBuf>,
    /// Base64 key(s) for sealing credentials, newest first; else `secret.key` in the data dir.
    pub secret_keys: Vec<String>,
    /// Base64 key(s) for signing tokens, newest first; else `signing.key` in the data dir.
    pub signing_keys: Vec<String>,
    /// The owner account created on the first start; without a password one is generated.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// Token lifetimes and login limits.
    pub auth: jsc_app::auth::AuthSettings,
    /// How often sessions past their expiry are ended (and leave the sessions view).
    pub session_sweep_interval: Duration,
    /// How long a mutation waits for the read model to show its change.
    pub view_wait: Duration,
    /// How long live state (message counts, lag) read from a cluster is reused.
    pub live_ttl: Duration,
    /// How often every managed cluster is compared with the history (changes made outside
    /// the console while no advisory reached it).
    pub reconcile_interval: Duration,
    /// Most outside changes waiting to be recorded per cluster, past which a reconcile is
    /// asked for instead (tests make it small).
    pub outside_changes_queue: usize,
    /// Serve the baseline routes `make bench` compares against.
    pub bench_routes: bool,
    /// Each caller's query budget; `None` charges nothing.
    pub query_budget: Option<jsc_graphql::Budget>,
    /// Run only operations registered as persisted queries.
    pub persisted_queries_only: bool,
    /// Where the Parquet audit table is written (default `<data dir>/audit-store`).
    pub audit_dir: Option<PathBuf>,
    /// Or an object store by URL (`s3://bucket/prefix`, `file:///dir`); wins over `audit_dir`.
    pub audit_url: Option<String>,
    /// Options of that store (`aws_endpoint`, `aws_region`, `aws_access_key_id`, ...), over
    /// the `AWS_*` environment variables.
    pub audit_store_options: Vec<(String, String)>,
    /// Rows per audit file at most, and how long an event may wait to be written.
    pub audit_max_rows: usize,
    /// Bytes of buffered event text at which an audit file is written whatever its rows.
    pub audit_max_bytes: usize,
    pub audit_max_age: Duration,
    /// A day with this many audit files is compacted into one.
    pub audit_compact_after: usize,
    /// How often every managed cluster is sampled, and how long raw samples are kept.
    pub monitoring: jsc_app::monitoring::MonitoringOptions,
    /// How long a background role's lease outlives its holder (one replica performs each);
    /// `None`: 6 s, or 15 s on a home cluster.
    pub lease_ttl: Option<Duration>,
    /// How long one attempt at committing events waits for the home NATS's ack (two more
    /// attempts follow before the outcome is reported unknown).
    pub append_timeout: Duration,
    /// How alert notifications are sent and retried.
    pub alerting: jsc_app::alerting::AlertingOptions,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: data_dir.into(),
            nats_url: None,
            home_replicas: None,
            embedded_nats_port: 4222,
            nats_server_bin: None,
            secret_keys: Vec::new(),
            signing_keys: Vec::new(),
            admin_email: None,
            admin_password: None,
            auth: jsc_app::auth::AuthSettings::default(),
            session_sweep_interval: Duration::from_secs(600),
            view_wait: Duration::from_secs(5),
            live_ttl: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(30),
            outside_changes_queue: jsc_app::OUTSIDE_CHANGES_QUEUE,
            bench_routes: false,
            query_budget: Some(jsc_graphql::Budget::default()),
            persisted_queries_only: false,
            audit_dir: None,
            audit_url: None,
            audit_store_options: Vec::new(),
            audit_max_rows: 20_000,
            audit_max_bytes: jsc_projections::audit::MAX_BUFFERED_BYTES,
            audit_max_age: Duration::from_secs(60),
            audit_compact_after: 16,
            monitoring: Default::default(),
            lease_ttl: None,
            append_timeout: EventStoreConfig::default().append_timeout,
            alerting: Default::default(),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    console: Console,
    bench_routes: bool,
    limits: jsc_graphql::Limits,
    embedded: Option<Supervised>,
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    generated_admin: Option<(String, String)>,
}

/// The process's crypto providers: token signing, and TLS to S3-compatible stores and OTLP
/// collectors (rustls with ring, as async-nats uses). Idempotent.
pub(crate) fn install_crypto() {
    jsc_secrets::install_crypto_provider();
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        install_crypto();
        let keys = if config.signing_keys.is_empty() {
            Keyring::load_or_generate(&config.data_dir)?
        } else {
            let keys: Vec<&str> = config.signing_keys.iter().map(String::as_str).collect();
            Keyring::from_base64_keys(&keys)?
        };
        let secrets = if config.secret_keys.is_empty() {
            SecretBox::load_or_generate(&config.data_dir)?
        } else {
            let keys: Vec<&str> = config.secret_keys.iter().map(String::as_str).collect();
            SecretBox::from_base64_keys(&keys)?
        };

        let (embedded, url) = match &config.nats_url {
            Some(url) => (None, url.clone()),
            None => {
                let mut opts = ServerOptions::new(config.data_dir.join("nats"));
                opts.binary = config.nats_server_bin.clone();
                opts.port = config.embedded_nats_port;
                opts.name = Some("jsconsole-home".into());
                // Supervised: started again (with backoff) whenever it exits.
                let process = Supervised::start(opts)
                    .await
                    .context("cannot start the embedded nats-server (or pass --nats-url to use a running one)")?;
                let url = process.url();
                tracing::info!(%url, binary = %process.binary().display(), "embedded nats-server started");
                (Some(process), url)
            }
        };

        let home_reconnects = jsc_projector::Reconnects::default();
        let home = connect_home(&url, home_reconnects.clone()).await?;
        wait_for_jetstream(&home, &url).await?;
        let replicas = config.home_replicas.unwrap_or_else(|| home_replicas(&home));
        tracing::info!(
            replicas,
            "the console's streams and buckets are kept in {replicas} copies"
        );
        let store_config = EventStoreConfig {
            append_timeout: config.append_timeout,
            replicas,
            ..EventStoreConfig::default()
        };
        let store = JetStreamEventStore::open(home.clone(), store_config)
            .await
            .with_context(|| {
                format!("cannot open the event stream on {url} (is JetStream enabled? start nats-server with -js)")
            })?;
        let shutdown = CancellationToken::new();
        let options = jsc_app::Options {
            keys,
            secrets,
            auth: config.auth.clone(),
            view_wait: config.view_wait,
            wait_for_views: true,
            live_ttl: config.live_ttl,
            session_sweep_interval: config.session_sweep_interval,
            reconcile_interval: config.reconcile_interval,
            outside_changes_queue: config.outside_changes_queue,
            audit_store: open_audit_store(&config)?,
            audit_max_rows: config.audit_max_rows,
            audit_max_bytes: config.audit_max_bytes,
            audit_max_age: config.audit_max_age,
            audit_compact_after: config.audit_compact_after,
            monitoring: config.monitoring,
            lease_ttl: config.lease_ttl.unwrap_or(if replicas > 1 {
                jsc_app::lease::CLUSTER_TTL
            } else {
                jsc_app::lease::DEFAULT_TTL
            }),
            alerting: config.alerting,
            home_reconnects,
        };
        let (console, workers) = Console::start(home, store, options, &shutdown).await?;
        let mut tasks = JoinSet::new();
        for w in workers {
            tasks.spawn(async move { (w.name, w.run.await.map_err(|e| anyhow::anyhow!(e))) });
        }
        let generated_admin = match console
            .bootstrap(config.admin_email.clone(), config.admin_password.clone())
            .await
        {
            Ok(Bootstrap::Generated { email, password }) => Some((email, password)),
            Ok(Bootstrap::Created { email }) => {
                tracing::info!(%email, "created the owner account");
                None
            }
            Ok(Bootstrap::AlreadyDone) => None,
            Err(e) => bail!("cannot create the owner account: {}", e.message),
        };
        if embedded.is_some() {
            console.register_local(&url).await;
        }

        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (is another console running? pass --listen)",
                config.listen
            )
        })?;
        Ok(Self {
            listener,
            console,
            bench_routes: config.bench_routes,
            limits: jsc_graphql::Limits {
                budget: config.query_budget,
                only_registered: config.persisted_queries_only,
            },
            embedded,
            shutdown,
            tasks,
            generated_admin,
        })
    }

    /// The owner account's generated email and password, on the first start without a
    /// configured password; `None` afterwards (it is shown once).
    pub fn take_generated_admin(&mut self) -> Option<(String, String)> {
        self.generated_admin.take()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn console(&self) -> &Console {
        &self.console
    }

    /// URL of the embedded nats-server, when the console started one.
    pub fn embedded_nats_url(&self) -> Option<String> {
        self.embedded.as_ref().map(|p| p.url())
    }

    /// Cancelling this token stops the application gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let router = jsc_server::router_with(self.console.clone(), self.limits, self.bench_routes);
        let token = self.shutdown.clone();
        let addr = self.local_addr();
        tracing::info!(%addr, "JetStream Console is serving: the console at http://{addr}/, the GraphQL explorer at http://{addr}/explorer");
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await;
        self.shutdown.cancel();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((name, Ok(()))) => tracing::info!(task = name, "stopped"),
                Ok((name, Err(e))) => tracing::error!(task = name, error = %e, "stopped with an error"),
                Err(e) => tracing::error!(error = %e, "a task panicked"),
            }
        }
        // Bounded: with the home NATS gone, a drain would wait for a connection that may
        // never come back, and the process would not stop.
        if tokio::time::timeout(Duration::from_secs(5), self.console.home().drain())
            .await
            .is_err()
        {
            tracing::warn!("the home NATS did not take the last messages within 5 s; stopping without them");
        }
        if let Some(p) = self.embedded.take() {
            p.shutdown(Duration::from_secs(10)).await;
            tracing::info!("embedded nats-server stopped");
        }
        served.context("the HTTP server failed")
    }
}

/// The object store of the audit table: `audit_url` when given, else a local directory.
fn open_audit_store(config: &Config) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    if let Some(url) = &config.audit_url {
        return open_object_store(url, &config.audit_store_options);
    }
    let dir = config
        .audit_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit-store"));
    local_store(&dir, true)
}

pub(crate) fn local_store(dir: &std::path::Path, create: bool) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    if create {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the audit directory {}", dir.display()))?;
    }
    anyhow::ensure!(
        dir.is_dir(),
        "no audit table at {}; pass --audit-dir or --audit-url (the console writes it under <data dir>/audit-store)",
        dir.display()
    );
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .with_context(|| format!("cannot open the audit directory {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// An object store by URL: `s3://bucket[/prefix]` (any S3-compatible store: set
/// `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and
/// `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint, in the environment or in `options`) or
/// `file:///dir`. Credentials never reach a log line or an error message.
pub fn open_object_store(
    raw: &str,
    options: &[(String, String)],
) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    let url = url::Url::parse(raw)
        .with_context(|| format!("'{raw}' is not a URL; use s3://bucket/prefix or file:///path/to/dir"))?;
    match url.scheme() {
        "file" => local_store(std::path::Path::new(url.path()), true),
        "s3" | "s3a" => {
            let mut opts: std::collections::BTreeMap<String, String> = std::env::vars()
                .filter(|(k, _)| k.starts_with("AWS_"))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            opts.extend(options.iter().cloned());
            let (store, prefix) = object_store::parse_url_opts(&url, opts)
                .with_context(|| format!("cannot open the object store {}", url.host_str().unwrap_or_default()))?;
            let store: Arc<dyn object_store::ObjectStore> = if prefix.as_ref().is_empty() {
                Arc::from(store)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
            };
            Ok(store)
        }
        other => bail!("the audit store URL scheme '{other}' is not supported; use s3://bucket/prefix or file:///dir"),
    }
}

/// The servers of `--nats-url`: one URL or several, comma-separated.
pub(crate) fn home_addresses(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let addrs = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>().with_context(|| {
                format!("--nats-url: '{u}' is not a NATS URL; write nats://host:4222, several comma-separated")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if addrs.is_empty() {
        bail!("--nats-url is empty; write nats://host:4222, or leave it out to start the embedded server");
    }
    Ok(addrs)
}

/// How long the console waits at its start for the home NATS's JetStream: a cluster
/// started at the same moment answers once its nodes have elected a leader.
const JETSTREAM_WAIT: Duration = Duration::from_secs(60);

/// Waits until JetStream answers on the home NATS. A single server without JetStream is
/// refused at once; a cluster still electing its leader is waited for (and said so).
async fn wait_for_jetstream(home: &async_nats::Client, url: &str) -> anyhow::Result<()> {
    use async_nats::jetstream::context::AccountErrorKind;
    let js = async_nats::jetstream::new(home.clone());
    let start = tokio::time::Instant::now();
    let mut said = false;
    loop {
        let e = match js.query_account().await {
            Ok(_) => {
                if said {
                    tracing::info!(waited = ?start.elapsed(), "JetStream answers on the home NATS");
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let clustered = home.server_info().cluster.is_some();
        if matches!(e.kind(), AccountErrorKind::JetStreamUnavailable) && !clustered {
            bail!(
                "JetStream is not enabled on the home NATS at {url}: start nats-server with -js (or a jetstream block in its configuration)"
            );
        }
        if start.elapsed() >= JETSTREAM_WAIT {
            bail!(
                "JetStream did not answer on the home NATS at {url} within {}s ({e}): on a cluster, check that a majority of its servers run and see each other",
                JETSTREAM_WAIT.as_secs()
            );
        }
        if !said {
            tracing::warn!(error = %e, "JetStream does not answer on the home NATS yet (a cluster electing its leader?); waiting up to {}s", JETSTREAM_WAIT.as_secs());
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Copies to keep when `--home-replicas` is not given: 3 when the home NATS says it is in
/// a cluster of three servers or more, else 1.
fn home_replicas(home: &async_nats::Client) -> usize {
    let info = home.server_info();
    if info.cluster.is_some() && info.connect_urls.len() >= 3 {
        3
    } else {
        1
    }
}

async fn connect_home(url: &str, reconnects: jsc_projector::Reconnects) -> anyhow::Result<async_nats::Client> {
    let addrs = home_addresses(url)?;
    let options = async_nats::ConnectOptions::new()
        .name("jsconsole")
        .connection_timeout(Duration::from_secs(5))
        // Tried again every 100 ms at first, at most every 500 ms: the console is back within
        // half a second of its NATS (the default backs off to several seconds).
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 100).min(500)))
        .event_callback(move |event| {
            let reconnects = reconnects.clone();
            async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("lost the connection to the home NATS; reconnecting")
                    }
                    async_nats::Event::Connected => {
                        tracing::info!("connected to the home NATS");
                        reconnects.connected();
                    }
                    other => tracing::debug!(event = %other, "home NATS event"),
                }
            }
        });
    match tokio::time::timeout(Duration::from_secs(10), options.connect(addrs)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => bail!("cannot reach the home NATS at {url}: {e}; start it (nats-server -js) or fix --nats-url"),
        Err(_) => bail!("the home NATS at {url} did not answer within 10s; check --nats-url"),
    }
}
