//! `make bench`: the console's speed measured beside raw NATS, in the same run.
//!
//! Every scenario measures the raw-NATS ceiling and the console on the same machine, one
//! after the other, after a warm-up, several times; it reports medians, the spread, and
//! the ratio console / raw, because absolute figures on a shared machine drift.
#![forbid(unsafe_code)]

mod baselines;
mod report;
mod scenarios;
mod stats;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmarks: JetStream Console against raw NATS, in the same run")]
pub struct Args {
    /// Smaller workloads, for everyday use (well under two minutes).
    #[arg(long)]
    quick: bool,
    /// Where the Markdown and JSON reports go.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// The `jsconsole` binary to run as a child (release build).
    #[arg(long, default_value = "target/release/jsconsole")]
    jsconsole: PathBuf,
    /// Only run scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let results = scenarios::run_all(&args).await?;
    let report = report::Report::new(&args, results);
    std::fs::create_dir_all(&args.out).context("create the output directory")?;
    let md = report.markdown();
    println!("{md}");
    std::fs::write(args.out.join("benchmarks.md"), &md)?;
    std::fs::write(
        args.out.join("benchmarks.json"),
        serde_json::to_string_pretty(&report.json())?,
    )?;
    eprintln!(
        "wrote {} and {}",
        args.out.join("benchmarks.md").display(),
        args.out.join("benchmarks.json").display()
    );
    Ok(())
}
