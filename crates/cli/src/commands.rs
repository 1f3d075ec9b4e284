//! The `jsconsole` command line: parsing and every subcommand. `main` only calls [`run`],
//! so tests drive the CLI through the same arguments a user types.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use jsc_eventstore::{EventReader, EventRecord};
use jsc_projector::{KvProjection, Projector};

use crate::telemetry::LogFormat;
use crate::{Application, Config};

#[derive(Parser)]
#[command(
    name = "jsconsole",
    version,
    about = "JetStream Console: manage NATS JetStream with a full history of every change"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "JSCONSOLE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API and the explorer.
    Serve(Box<ServeArgs>),
    /// Print the GraphQL schema (SDL), as checked in at schema/console.graphql.
    Schema,
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Read the event stream.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Rebuild a read model from the events into a scratch bucket and report how it
    /// differs from the live one (for debugging a projection).
    Replay(ReplayArgs),
    /// Accounts, for an operator with access to the console's NATS and keys.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The messages in a stream, through a running console (masking and permissions apply).
    Messages {
        #[command(subcommand)]
        command: MessagesCommand,
    },
    /// Persisted queries.
    Queries {
        #[command(subcommand)]
        command: QueriesCommand,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
    /// Exports a range of a stream, or what a search finds in it, to a Parquet, CSV or JSON
    /// lines file, with progress; memory stays flat however many messages.
    Export(Box<crate::remote::MessageExportArgs>),
}

#[derive(Subcommand)]
enum QueriesCommand {
    /// Registers each file's text as a persisted query (for `serve --persisted-queries-only`)
    /// and prints its sha256Hash: clients send exactly that text's hash.
    Register {
        #[command(flatten)]
        home: HomeArgs,
        /// Files of one GraphQL document each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Sets a new password for an account (a locked-out owner), ends its sessions and
    /// enables it if it was disabled. Prints a generated password once unless `--password`
    /// is given.
    ResetPassword(ResetPasswordArgs),
}

#[derive(clap::Args)]
struct ResetPasswordArgs {
    #[command(flatten)]
    home: HomeArgs,
    #[arg(long)]
    email: String,
    /// The new password (at least 12 characters); default: generated and printed once.
    #[arg(long, env = "JSCONSOLE_NEW_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The console's data dir, for its `secret.key` (or give --secret-key).
    #[arg(long, default_value = "./data", env = "JSCONSOLE_DATA_DIR")]
    data_dir: PathBuf,
    /// The console's sealing key(s), as for `serve`.
    #[arg(long, env = "JSCONSOLE_SECRET_KEY", hide_env_values = true, value_delimiter = ',')]
    secret_key: Vec<String>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// clusters, streams, consumers, users, organizations, invitations, sessions or api_keys.
    #[arg(long)]
    projection: String,
    /// First stream sequence to apply.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Last stream sequence to apply (default: the end of the stream now).
    #[arg(long)]
    to: Option<u64>,
    /// `scratch` (the bucket `scratch_<projection>_v<version>`) or a bucket name.
    #[arg(long, default_value = "scratch")]
    into: String,
    /// Exit 1 when the scratch view differs from the live one.
    #[arg(long)]
    check: bool,
}

#[derive(clap::Args, Clone)]
struct HomeArgs {
    /// The console's home NATS (the embedded server listens on 4222 by default): one URL or
    /// several, comma-separated.
    #[arg(long, default_value = "nats://127.0.0.1:4222", env = "JSCONSOLE_NATS_URL")]
    nats_url: String,
    /// The event stream.
    #[arg(long, default_value_t = jsc_eventstore::EventStoreConfig::default().stream)]
    stream: String,
}

impl HomeArgs {
    /// The event store's configuration on the chosen stream.
    fn store(&self) -> jsc_eventstore::EventStoreConfig {
        jsc_eventstore::EventStoreConfig::on_stream(self.stream.clone())
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the event stream and check every event's hash, every aggregate's chain and
    /// every sequence; exits 1 and names the exact place of anything wrong.
    Verify(HomeArgs),
    /// Write the audit trail (or the part matching the filters) to a file, oldest first.
    Export(Box<ExportArgs>),
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    home: HomeArgs,
    /// Where the console writes its audit table.
    #[arg(long, default_value = "./data/audit-store")]
    audit_dir: PathBuf,
    /// Or the object store the console writes it to (`s3://bucket/prefix`; endpoint and
    /// credentials from `AWS_*` variables, as for `serve`).
    #[arg(long, env = "JSCONSOLE_AUDIT_URL")]
    audit_url: Option<String>,
    /// Events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// Events at or before this time (RFC 3339).
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    /// parquet, csv or jsonl.
    #[arg(long, default_value = "jsonl")]
    format: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    aggregate_type: Option<String>,
    #[arg(long)]
    aggregate_id: Option<String>,
    #[arg(long)]
    event_type: Option<String>,
    #[arg(long)]
    cluster: Option<String>,
    /// Text in the summary, case-insensitive.
    #[arg(long)]
    text: Option<String>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print events (one JSON object per line) from `--from` to `--to` stream sequence.
    Dump {
        #[command(flatten)]
        home: HomeArgs,
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long)]
        to: Option<u64>,
        /// Only this aggregate type (cluster, stream, consumer, ...).
        #[arg(long)]
        aggregate_type: Option<String>,
    },
    /// Print events as they are appended, until interrupted.
    Tail {
        #[command(flatten)]
        home: HomeArgs,
        #[arg(long)]
        aggregate_type: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "JSCONSOLE_LISTEN")]
    listen: SocketAddr,
    /// Where the console keeps its data (the embedded nats-server's store, the secret key).
    #[arg(long, default_value = "./data", env = "JSCONSOLE_DATA_DIR")]
    data_dir: PathBuf,
    /// The home NATS (JetStream enabled): one URL, or every node of a cluster
    /// (comma-separated or repeated: the console reconnects to another when one goes).
    /// Without it, the console starts its own nats-server under the data dir and registers
    /// it as the cluster `local`.
    #[arg(long, env = "JSCONSOLE_NATS_URL", value_delimiter = ',')]
    nats_url: Vec<String>,
    /// Copies of the console's event stream and buckets on the home NATS (1 to 5). Default:
    /// 3 when the home NATS is a cluster of three servers or more, else 1. Streams that
    /// exist with fewer copies are raised to it; none is lowered.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=5), env = "JSCONSOLE_HOME_REPLICAS")]
    home_replicas: Option<u8>,
    /// Client port of the embedded nats-server (-1 picks a free port).
    #[arg(
        long,
        default_value_t = 4222,
        allow_negative_numbers = true,
        env = "JSCONSOLE_EMBEDDED_NATS_PORT"
    )]
    embedded_nats_port: i32,
    /// Path of the nats-server binary for the embedded server (default: .tools/venv/bin/nats-server, then PATH).
    #[arg(long, env = "NATS_SERVER_BIN")]
    nats_server_bin: Option<PathBuf>,
    /// Base64 of a 32-byte key sealing cluster credentials; comma-separated, newest first,
    /// to rotate. Default: `secret.key` in the data dir, generated on first start.
    #[arg(long, env = "JSCONSOLE_SECRET_KEY", hide_env_values = true, value_delimiter = ',')]
    secret_key: Vec<String>,
    /// Email of the owner account created on the first start (default admin@localhost).
    #[arg(long, env = "JSCONSOLE_ADMIN_EMAIL")]
    admin_email: Option<String>,
    /// Password of that owner account (at least 12 characters). Without it, the first start
    /// generates one and prints it once.
    #[arg(long, env = "JSCONSOLE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Base64 of a 32-byte key signing access, refresh and invitation tokens; comma-separated,
    /// newest first, to rotate (tokens signed by older keys stay valid until they expire).
    /// Default: `signing.key` in the data dir, generated on first start.
    #[arg(long, env = "JSCONSOLE_SIGNING_KEY", hide_env_values = true, value_delimiter = ',')]
    signing_key: Vec<String>,
    /// Write the Parquet audit table to this object store instead of <data dir>/audit-store:
    /// `s3://bucket/prefix` for any S3-compatible store (endpoint and credentials from
    /// AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; AWS_ALLOW_HTTP=true
    /// for plain HTTP), or `file:///dir`.
    #[arg(long, env = "JSCONSOLE_AUDIT_URL")]
    audit_url: Option<String>,
    /// Reverse proxies (address or range, comma-separated, e.g. 10.0.0.0/8) whose
    /// X-Forwarded-For names the client; without it the header is ignored. Login limits
    /// and the client address on events use that address.
    #[arg(long, env = "JSCONSOLE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxy: Vec<jsc_app::auth::Cidr>,
    /// How long an access token is valid, in seconds.
    #[arg(long, default_value_t = 900, env = "JSCONSOLE_ACCESS_TOKEN_TTL")]
    access_token_ttl: u64,
    /// Each caller's query budget, in points (an operation costs its complexity, about one
    /// point per field, a list's fields once per item asked for); 0 charges nothing.
    #[arg(long, default_value_t = 40_000, env = "JSCONSOLE_QUERY_BUDGET")]
    query_budget: u64,
    /// Points a second each caller's budget refills.
    #[arg(long, default_value_t = 2_000, env = "JSCONSOLE_QUERY_REFILL")]
    query_refill: u64,
    /// Run only operations registered as persisted queries (`jsconsole queries register`);
    /// anything else is refused. The explorer needs this off.
    #[arg(long, env = "JSCONSOLE_PERSISTED_QUERIES_ONLY")]
    persisted_queries_only: bool,
    /// How often every managed cluster is sampled (server, account, streams, consumers), in
    /// seconds: at least 1.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_METRICS_INTERVAL")]
    metrics_interval: u64,
    /// How often every managed cluster is compared with the history in full, in seconds: at
    /// least 1. The comparison catches changes made outside the console that no advisory
    /// reported (made while the console was down, or on a server that sends none); it lists
    /// every stream and consumer, so on big clusters make it rarer.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_RECONCILE_INTERVAL")]
    reconcile_interval: u64,
    /// How long a background role's lease outlives its holder's last renewal, in seconds
    /// (2 to 300): another replica takes a dead holder's roles over after about this long.
    /// Default 6, or 15 on a home cluster (longer than its leader elections). The first
    /// replica on a home NATS sets it for all of them.
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=300), env = "JSCONSOLE_LEASE_TTL")]
    lease_ttl: Option<u64>,
    /// WebSocket connections open at once, in total (one connection carries many
    /// subscriptions); more are refused with 429 until some close.
    #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_MAX_CONNECTIONS")]
    max_connections: u64,
    /// WebSocket connections open at once from one client address.
    #[arg(long, default_value_t = 1_024, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: u64,
    /// WebSocket connections open at once of one user or API key.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_MAX_CONNECTIONS_PER_USER")]
    max_connections_per_user: u64,
    /// Sample no cluster: serve the samples another console takes (run one sampling console
    /// beside serving ones).
    #[arg(long, env = "JSCONSOLE_NO_METRICS_COLLECTOR")]
    no_metrics_collector: bool,
    /// How long the raw samples are kept on the CONSOLE_METRICS stream, in hours: at least 1.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..), env = "JSCONSOLE_METRICS_RETENTION")]
    metrics_retention: u64,
    /// How long the 1-minute roll-ups of the samples are kept on the object store, in days:
    /// at least 2 (they are rolled into the 1-hour ones a day at a time).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u64).range(2..), env = "JSCONSOLE_METRICS_RETENTION_1M_DAYS")]
    metrics_retention_1m_days: u64,
    /// How long the 1-hour roll-ups are kept on the object store, in days: at least 2.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(2..), env = "JSCONSOLE_METRICS_RETENTION_1H_DAYS")]
    metrics_retention_1h_days: u64,
    /// Export traces over OTLP/HTTP to this collector (e.g. http://localhost:4318; a base URL
    /// gets /v1/traces): a span for each request, command, commit and projection, the trace
    /// id recorded in each event's metadata.
    #[arg(long, env = "JSCONSOLE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Serve the baseline routes the benchmarks compare against.
    #[arg(long, hide = true)]
    bench_routes: bool,
}

/// Runs the command line `args` (the first is the program name), writing to `out` and
/// `err`; returns the process exit code.
pub async fn run(args: Vec<String>, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "{e}");
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Schema => write!(out, "{}", jsc_graphql::sdl()).map_err(Into::into).map(|_| 0),
        Command::Serve(args) => serve(*args, cli.log_format, err).await.map(|_| 0),
        Command::Audit {
            command: AuditCommand::Verify(home),
        } => verify(home, out, err).await,
        Command::Audit {
            command: AuditCommand::Export(args),
        } => export(*args, out).await,
        Command::Events { command } => events(command, out).await.map(|_| 0),
        Command::Replay(args) => replay(args, out).await,
        Command::Users {
            command: UsersCommand::ResetPassword(args),
        } => reset_password(args, out).await,
        Command::Messages {
            command: MessagesCommand::Export(args),
        } => crate::remote::export_messages(*args, out).await,
        Command::Queries {
            command: QueriesCommand::Register { home, files },
        } => register_queries(home, files, out).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e:#}");
            2
        }
    }
}

async fn serve(args: ServeArgs, format: LogFormat, err: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let telemetry = crate::telemetry::init(format, args.otlp_endpoint.as_deref())?;
    let served = serve_with(args, err).await;
    telemetry.shutdown();
    served
}

async fn serve_with(args: ServeArgs, err: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let mut config = Config::new(args.data_dir);
    config.listen = args.listen;
    config.nats_url = (!args.nats_url.is_empty()).then(|| args.nats_url.join(","));
    config.home_replicas = args.home_replicas.map(usize::from);
    config.embedded_nats_port = args.embedded_nats_port;
    config.nats_server_bin = args.nats_server_bin;
    config.secret_keys = args.secret_key;
    config.signing_keys = args.signing_key;
    config.audit_url = args.audit_url;
    config.auth.trusted_proxies = args.trusted_proxy;
    config.admin_email = args.admin_email;
    config.admin_password = args.admin_password;
    config.auth.access_ttl = std::time::Duration::from_secs(args.access_token_ttl.max(1));
    config.bench_routes = args.bench_routes;
    config.monitoring.interval = std::time::Duration::from_secs(args.metrics_interval);
    config.monitoring.collect = !args.no_metrics_collector;
    config.reconcile_interval = std::time::Duration::from_secs(args.reconcile_interval);
    config.lease_ttl = args.lease_ttl.map(std::time::Duration::from_secs);
    config.auth.max_connections = args.max_connections as usize;
    config.auth.max_connections_per_address = args.max_connections_per_address as usize;
    config.auth.max_connections_per_user = args.max_connections_per_user as usize;
    config.monitoring.raw.max_age = std::time::Duration::from_secs(args.metrics_retention * 3600);
    config.monitoring.rollups.minute = std::time::Duration::from_secs(args.metrics_retention_1m_days * 86_400);
    config.monitoring.rollups.hour = std::time::Duration::from_secs(args.metrics_retention_1h_days * 86_400);
    config.persisted_queries_only = args.persisted_queries_only;
    config.query_budget = (args.query_budget > 0).then_some(jsc_graphql::Budget {
        max: args.query_budget,
        refill_per_second: args.query_refill,
    });
    let mut app = Application::build(config)
        .await
        .context("the console could not start")?;
    // Shown once, on the terminal only (never through the log).
    if let Some((email, password)) = app.take_generated_admin() {
        let addr = app.local_addr();
        writeln!(
            err,
            "\n  First start: created the owner account\n    email:    {email}\n    password: {password}\n  \
             It is not shown again: sign in at http://{addr}/ and change it on the Account page.\n"
        )?;
    }
    let token = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    app.run_until_stopped().await
}

async fn connect(home: &HomeArgs) -> anyhow::Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new()
        .name("jsconsole-cli")
        .connection_timeout(std::time::Duration::from_secs(5));
    options
        .connect(crate::home_addresses(&home.nats_url)?)
        .await
        .with_context(|| format!("cannot reach the console's NATS at {}; pass --nats-url", home.nats_url))
}

async fn verify(home: HomeArgs, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let client = connect(&home).await?;
    let mut last_shown = 0;
    let report = jsc_eventstore::verify::verify_stream(&client, &home.stream, |seq, last| {
        if seq >= last_shown + 10_000 || seq == last {
            last_shown = seq;
            let _ = write!(err, "\rverifying {}: {seq}/{last}", home.stream);
        }
    })
    .await
    .with_context(|| format!("cannot read the stream {}", home.stream))?;
    let _ = writeln!(err);
    for p in &report.problems {
        writeln!(out, "FAIL {p}")?;
    }
    if report.is_clean() {
        writeln!(
            out,
            "OK {} events of {} aggregates in {} (stream sequences {}..{}): every hash, chain and sequence checks out",
            report.events, report.aggregates, home.stream, report.first_sequence, report.last_sequence
        )?;
        Ok(0)
    } else {
        writeln!(
            out,
            "{} problem(s) found in {} events of {}",
            report.problems.len(),
            report.events,
            home.stream
        )?;
        Ok(1)
    }
}

async fn export(args: ExportArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    use jsc_projections::audit::{AuditFilter, AuditReader, ExportFormat};
    let format = ExportFormat::parse(&args.format)
        .ok_or_else(|| anyhow::anyhow!("unknown format '{}'; use parquet, csv or jsonl", args.format))?;
    let client = connect(&args.home).await?;
    let store = match &args.audit_url {
        Some(url) => crate::open_object_store(url, &[])?,
        None => crate::local_store(&args.audit_dir, false)?,
    };
    let reader = AuditReader {
        client,
        stream: args.home.stream.clone(),
        store,
    };
    let filter = AuditFilter {
        from: args.from,
        to: args.to,
        actor: args.actor,
        aggregate_type: args.aggregate_type,
        aggregate_id: args.aggregate_id,
        event_type: args.event_type,
        cluster: args.cluster,
        organization: None,
        text: args.text,
        within: None,
        within_installation: false,
    };
    let file = tokio::fs::File::create(&args.out)
        .await
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} events exported, up to sequence {len} [{elapsed}]",
            )
            .expect("template"),
        );
        b
    };
    let progress_bar = bar.clone();
    let mut progress = move |done: u64, last: u64| {
        progress_bar.set_length(last);
        progress_bar.set_position(done);
    };
    let rows = reader
        .export(&filter, format, tokio::io::BufWriter::new(file), &mut progress)
        .await?;
    bar.finish_and_clear();
    writeln!(out, "exported {rows} events to {}", args.out.display())?;
    Ok(0)
}

async fn replay(args: ReplayArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    struct Replay<'a> {
        args: ReplayArgs,
        out: &'a mut (dyn Write + Send),
    }
    impl<'a> jsc_projections::WithProjection for Replay<'a> {
        type Output = futures::future::BoxFuture<'a, anyhow::Result<i32>>;
        fn call<P: KvProjection>(self, p: P) -> Self::Output {
            Box::pin(replay_one(p, self.args, self.out))
        }
    }
    let projection = jsc_projections::Projection::parse(&args.projection).map_err(anyhow::Error::msg)?;
    projection.with(Replay { args, out }).await
}

async fn replay_one<P: KvProjection>(p: P, args: ReplayArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let client = connect(&args.home).await?;
    let projector = Projector::new(client, &args.home.store());
    let target = if args.into == "scratch" {
        format!("scratch_{}_v{}", p.name(), p.version())
    } else {
        args.into.clone()
    };
    anyhow::ensure!(target != p.bucket(), "refusing to replay into the live bucket {target}");
    let read = projector.replay_into(&p, &target, args.from, args.to).await?;
    writeln!(out, "replayed {read} events from sequence {} into {target}", args.from)?;
    let diff = projector.compare(&target, &p.bucket()).await?;
    if diff.is_identical() {
        writeln!(out, "identical to the live view {} ({} entries)", p.bucket(), diff.same)?;
        return Ok(0);
    }
    writeln!(
        out,
        "differs from the live view {} ({} entries the same):",
        p.bucket(),
        diff.same
    )?;
    for (what, keys) in [
        ("only in the replay", &diff.only_in_first),
        ("only in the live view", &diff.only_in_second),
        ("different", &diff.different),
    ] {
        if !keys.is_empty() {
            writeln!(out, "  {what}: {}", keys.join(", "))?;
        }
    }
    Ok(if args.check { 1 } else { 0 })
}

async fn reset_password(args: ResetPasswordArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let secrets = if args.secret_key.is_empty() {
        let path = args.data_dir.join("secret.key");
        anyhow::ensure!(
            path.is_file(),
            "no secret key at {}; pass the console's --data-dir or --secret-key",
            path.display()
        );
        jsc_secrets::SecretBox::load_or_generate(&args.data_dir)?
    } else {
        let keys: Vec<&str> = args.secret_key.iter().map(String::as_str).collect();
        jsc_secrets::SecretBox::from_base64_keys(&keys)?
    };
    let client = connect(&args.home).await?;
    let store = jsc_eventstore::JetStreamEventStore::open(client.clone(), args.home.store()).await?;
    // The console's use case, on a console opened without its workers: the serving
    // console (if any) projects the events; this one reads the views as they are.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let options = jsc_app::Options {
        // Nothing is signed here; a throwaway key.
        keys: jsc_secrets::Keyring::from_base64_keys(&[&base64_key()])?,
        secrets,
        auth: Default::default(),
        view_wait: std::time::Duration::from_secs(5),
        wait_for_views: false,
        live_ttl: std::time::Duration::from_secs(2),
        session_sweep_interval: std::time::Duration::from_secs(600),
        reconcile_interval: std::time::Duration::from_secs(30),
        outside_changes_queue: jsc_app::OUTSIDE_CHANGES_QUEUE,
        audit_store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        audit_max_rows: 1,
        audit_max_bytes: jsc_projections::audit::MAX_BUFFERED_BYTES,
        audit_max_age: std::time::Duration::from_secs(60),
        audit_compact_after: 16,
        monitoring: Default::default(),
        lease_ttl: jsc_app::lease::DEFAULT_TTL,
        alerting: Default::default(),
        home_reconnects: Default::default(),
    };
    let (console, _workers) = jsc_app::Console::start(client, store, options, &shutdown).await?;
    let generated = args.password.is_none();
    let password = args.password.unwrap_or_else(jsc_secrets::random_token::<18>);
    let result = console.reset_password(&args.email, &password).await;
    shutdown.cancel();
    result.map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let email = jsc_domain::identity::normalize_email(&args.email).map_err(|e| anyhow::anyhow!("{e}"))?;
    writeln!(out, "reset the password of {email}; every session it had has ended")?;
    if generated {
        writeln!(out, "new password (shown once): {password}")?;
    }
    Ok(0)
}

async fn register_queries(home: HomeArgs, files: Vec<PathBuf>, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    use async_graphql::parser::parse_query;
    let mut queries = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        parse_query(&text).map_err(|e| anyhow::anyhow!("{} is not a GraphQL document: {e}", f.display()))?;
        anyhow::ensure!(
            text.len() <= jsc_app::persisted::MAX_PERSISTED_QUERY,
            "{} is larger than {} KiB",
            f.display(),
            jsc_app::persisted::MAX_PERSISTED_QUERY / 1024
        );
        queries.push((f, jsc_domain::sha256_hex(text.as_bytes()), text));
    }
    let client = connect(&home).await?;
    let js = async_nats::jetstream::new(client);
    let kv = jsc_projector::ensure_bucket(&js, jsc_app::persisted::PERSISTED_QUERIES_BUCKET, 1).await?;
    for (f, hash, text) in queries {
        kv.put(&hash, text.into())
            .await
            .with_context(|| format!("cannot register {}", f.display()))?;
        writeln!(out, "{hash}  {}", f.display())?;
    }
    Ok(0)
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(jsc_secrets::random_bytes::<32>())
}

fn print_event(out: &mut (dyn Write + Send), rec: &EventRecord) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(rec)?;
    v["stream_sequence"] = rec.stream_sequence.into();
    v["hash"] = rec.hash.clone().into();
    writeln!(out, "{v}")?;
    Ok(())
}

async fn events(command: EventsCommand, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    match command {
        EventsCommand::Dump {
            home,
            from,
            to,
            aggregate_type,
        } => {
            let client = connect(&home).await?;
            let filter = home.store().subjects(aggregate_type.as_deref());
            let mut failed = None;
            EventReader::new(client, home.stream.clone())
                .for_each(&filter, from, to, |rec| {
                    if failed.is_none()
                        && let Err(e) = print_event(out, &rec)
                    {
                        failed = Some(e);
                    }
                    Ok(())
                })
                .await?;
            failed.map_or(Ok(()), Err)
        }
        EventsCommand::Tail { home, aggregate_type } => {
            let client = connect(&home).await?;
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream(&home.stream).await?;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                    filter_subject: aggregate_type
                        .as_deref()
                        .map_or_else(String::new, |t| home.store().subjects(Some(t))),
                    deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
                    ..Default::default()
                })
                .await?;
            let mut messages = consumer.messages().await?;
            loop {
                tokio::select! {
                    _ = wait_for_signal() => return Ok(()),
                    m = messages.next() => {
                        let Some(m) = m else { return Ok(()) };
                        let m = m?;
                        let seq = m.info().map_err(|e| anyhow::anyhow!("{e}"))?.stream_sequence;
                        print_event(out, &EventRecord::from_message(&m.payload, m.headers.as_ref(), seq)?)?;
                        out.flush()?;
                    }
                }
            }
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
