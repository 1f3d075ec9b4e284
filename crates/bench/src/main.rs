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
    /// Run the fault scenarios instead (`make chaos`) and write `reliability.md`.
    #[arg(long)]
    chaos: bool,
    /// With `--chaos`: a soak of this length instead (`30m`, `2h`, `90s`).
    #[arg(long, value_parser = parse_length)]
    soak: Option<std::time::Duration>,
}

fn parse_length(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}': give a number and a unit: 90s, 30m or 2h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}': the unit is s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    if args.chaos {
        let md = scenarios::chaos(&args, args.soak).await?;
        std::fs::create_dir_all(&args.out).context("create the output directory")?;
        let name = if args.soak.is_some() {
            "soak.md"
        } else {
            "reliability.md"
        };
        std::fs::write(args.out.join(name), &md)?;
        println!("{md}");
        eprintln!("wrote {}", args.out.join(name).display());
        return Ok(());
    }
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
