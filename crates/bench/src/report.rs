//! The table: Markdown for people, JSON for tools.

use serde_json::{Value, json};

use crate::Args;
use crate::stats::Measured;

/// Whether a bigger console figure is better (throughput) or worse (latency, memory).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// How a target is stated.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// console / raw at least this.
    RatioAtLeast {
        value: f64,
    },
    /// console / raw at most this.
    RatioAtMost {
        value: f64,
    },
    /// the console's own figure at most this (in its unit).
    AbsoluteAtMost {
        value: f64,
    },
    /// the console's own figure at least this (in its unit).
    AbsoluteAtLeast {
        value: f64,
    },
    /// A target set against another figure of the same run (`stated` × `basis`), restated
    /// as a bound on this row's ratio: console / raw at least `value`, which is `stated` ×
    /// the basis' median / this row's raw median. Met exactly when the stated target is.
    RatioAtLeastRestated {
        value: f64,
        stated: f64,
        basis: String,
    },
    /// As [`Target::RatioAtLeastRestated`], for figures where lower is better.
    RatioAtMostRestated {
        value: f64,
        stated: f64,
        basis: String,
    },
    None,
}

impl Target {
    /// `console ≥ stated × basis`, stated as a bound on console / `raw`.
    pub fn at_least_restated(stated: f64, basis: &str, basis_median: f64, raw_median: f64) -> Self {
        Self::RatioAtLeastRestated {
            value: stated * basis_median / raw_median,
            stated,
            basis: basis.into(),
        }
    }

    /// `console ≤ stated × basis`, stated as a bound on console / `raw`.
    pub fn at_most_restated(stated: f64, basis: &str, basis_median: f64, raw_median: f64) -> Self {
        Self::RatioAtMostRestated {
            value: stated * basis_median / raw_median,
            stated,
            basis: basis.into(),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: String,
    pub console: Measured,
    /// The raw-NATS (or bare-axum) figure measured in the same run; absent where none applies.
    pub raw: Option<Measured>,
    pub raw_label: String,
    pub better: Better,
    pub target: Target,
    pub note: String,
}

impl Row {
    pub fn ratio(&self) -> Option<f64> {
        self.raw.as_ref().map(|r| self.console.median / r.median)
    }

    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::RatioAtLeast { value } => self.ratio().map(|r| r >= value),
            Target::RatioAtMost { value } => self.ratio().map(|r| r <= value),
            Target::RatioAtLeastRestated { value, .. } => self.ratio().map(|r| r >= value),
            Target::RatioAtMostRestated { value, .. } => self.ratio().map(|r| r <= value),
            Target::AbsoluteAtMost { value } => Some(self.console.median <= value),
            Target::AbsoluteAtLeast { value } => Some(self.console.median >= value),
            Target::None => None,
        }
    }

    fn target_text(&self) -> String {
        match &self.target {
            Target::RatioAtLeast { value } => format!("≥ {value} × raw"),
            Target::RatioAtMost { value } => format!("≤ {value} × raw"),
            Target::RatioAtLeastRestated { value, stated, basis } => {
                format!("≥ {value:.2} × raw (= {stated} × {basis})")
            }
            Target::RatioAtMostRestated { value, stated, basis } => {
                format!("≤ {value:.2} × raw (= {stated} × {basis})")
            }
            Target::AbsoluteAtMost { value } => format!("≤ {value} {}", self.unit),
            Target::AbsoluteAtLeast { value } => format!("≥ {value} {}", self.unit),
            Target::None => "—".into(),
        }
    }
}

pub struct Report {
    quick: bool,
    rows: Vec<Row>,
    date: String,
    machine: String,
    nats: String,
    rustc: String,
}

fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `nats-server --version` of the server the bench starts.
pub fn nats_version() -> String {
    let nats_bin = jsc_fleet::embedded::find_nats_server(&[])
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    command_output(&nats_bin, &["--version"])
}

impl Report {
    pub fn new(args: &Args, rows: Vec<Row>) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
            })
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
            .unwrap_or(0);
        Self {
            quick: args.quick,
            rows,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: format!("{cores} cores, {:.0} GiB, {cpu}", mem_kb as f64 / 1024.0 / 1024.0),
            nats: nats_version(),
            rustc: command_output("rustc", &["--version"]),
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# Benchmarks: JetStream Console against raw NATS\n\n");
        s.push_str(&format!(
            "Measured {} with `make bench{}` on {}; {}; {}.\n\n",
            self.date,
            if self.quick { " ARGS=--quick" } else { "" },
            self.machine,
            self.nats,
            self.rustc
        ));
        s.push_str(
            "Each figure is the median of several runs after a warm-up (spread: min–max). The raw figure is \
             measured in the same run, just before or after the console's, and the ratio is console / raw.\n\n",
        );
        s.push_str("| scenario | metric | console (median, spread) | raw (median, spread) | ratio | target | met |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let fmt = |m: &Measured| format!("{} {} ({}–{})", num(m.median), r.unit, num(m.min), num(m.max));
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.metric,
                fmt(&r.console),
                r.raw
                    .as_ref()
                    .map(|m| format!("{}: {}", r.raw_label, fmt(m)))
                    .unwrap_or_else(|| "—".into()),
                r.ratio().map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into()),
                r.target_text(),
                match r.met() {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "—",
                }
            ));
        }
        let notes: Vec<&Row> = self.rows.iter().filter(|r| !r.note.is_empty()).collect();
        if !notes.is_empty() {
            s.push_str("\nNotes:\n\n");
            for r in notes {
                s.push_str(&format!("- {} / {}: {}\n", r.scenario, r.metric, r.note));
            }
        }
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "date": self.date,
            "quick": self.quick,
            "machine": self.machine,
            "nats_server": self.nats,
            "rustc": self.rustc,
            "rows": self.rows.iter().map(|r| json!({
                "row": r,
                "ratio": r.ratio(),
                "met": r.met(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(console: f64, raw: f64, target: Target) -> Row {
        Row {
            scenario: "s".into(),
            metric: "m".into(),
            unit: "cmd/s".into(),
            console: Measured::of(vec![console]),
            raw: Some(Measured::of(vec![raw])),
            raw_label: "r".into(),
            better: Better::Higher,
            target,
            note: String::new(),
        }
    }

    #[test]
    fn a_restated_target_is_met_exactly_when_the_stated_one_is() {
        // Plain publish 100, event-shaped publish 80: console ≥ 50 is console / 80 ≥ 0.625.
        let t = || Target::at_least_restated(0.5, "plain pipelined publish", 100.0, 80.0);
        assert_eq!(row(50.0, 80.0, t()).met(), Some(true));
        assert_eq!(row(49.0, 80.0, t()).met(), Some(false));
        assert_eq!(
            row(50.0, 80.0, t()).target_text(),
            "≥ 0.62 × raw (= 0.5 × plain pipelined publish)"
        );
        let lat = || Target::at_most_restated(1.3, "plain publish + ack", 0.1, 0.13);
        assert_eq!(row(0.13, 0.13, lat()).met(), Some(true));
        assert_eq!(row(0.14, 0.13, lat()).met(), Some(false));
    }
}
