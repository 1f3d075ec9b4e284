//! Commands that talk to a running console over its API, as any client does: a GraphQL
//! subscription over WebSocket (`graphql-transport-ws`) and plain HTTP downloads. The
//! console checks the credential and applies masking exactly as for every other client.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How to reach a running console.
#[derive(clap::Args, Clone)]
pub struct ConsoleArgs {
    /// The console's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "JSCONSOLE_URL")]
    pub console_url: String,
    /// An access token or API key (`accessToken` of mutation login, or a key of
    /// createApiKey).
    #[arg(long, env = "JSCONSOLE_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(clap::Args)]
pub struct MessageExportArgs {
    #[command(flatten)]
    pub console: ConsoleArgs,
    /// The id of the cluster the stream is on.
    #[arg(long)]
    pub cluster: String,
    #[arg(long)]
    pub stream: String,
    /// Only subjects matching this filter (`*` and `>` wildcards).
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long)]
    pub from_sequence: Option<u64>,
    #[arg(long)]
    pub to_sequence: Option<u64>,
    /// From the first message stored at or after this time (RFC 3339).
    #[arg(long)]
    pub from_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Up to the last message stored before this time (RFC 3339).
    #[arg(long)]
    pub to_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Only messages whose payload contains this text.
    #[arg(long)]
    pub payload_contains: Option<String>,
    /// Only messages whose payload matches this regular expression.
    #[arg(long)]
    pub payload_regex: Option<String>,
    /// Only messages meeting this expression (a safe subset of CEL), say
    /// `payload.total > 100 && headers["X-Region"] == "eu"`.
    #[arg(long)]
    pub expression: Option<String>,
    /// Only messages with this header: `NAME` (present) or `NAME=VALUE` (equal); repeatable.
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Most messages to write.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Most seconds to run (default 3600).
    #[arg(long)]
    pub time_budget_seconds: Option<u64>,
    /// Without masking: needs admin on the cluster, and is recorded in the audit trail.
    #[arg(long)]
    pub unmasked: bool,
    /// parquet, csv or jsonl.
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

const EXPORT: &str = "subscription($input: MessageExportInput!) { messageExport(input: $input) {
  kind stop progress { scanned matched bytes position elapsedMs estimatedRemainingMs }
  export { url rows bytes expiresAt } } }";

/// The WebSocket URL of a console's GraphQL endpoint.
fn ws_url(base: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(base).with_context(|| format!("--console-url: '{base}' is not a URL"))?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => bail!(
            "--console-url: this build speaks plain http only; run the command where the console listens (say, through an SSH tunnel to its http:// address)"
        ),
        other => bail!("--console-url: give an http:// address, not {other}://"),
    };
    let mut ws = url;
    ws.set_scheme(scheme)
        .map_err(|_| anyhow!("--console-url: cannot use '{base}'"))?;
    ws.set_path("/graphql");
    Ok(ws.to_string())
}

/// Runs one subscription until it completes, handing each `data` to `on_data`; an error
/// frame (or a closed socket) ends it with what the console said.
async fn subscribe(
    console: &ConsoleArgs,
    query: &str,
    variables: Value,
    mut on_data: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut request = ws_url(&console.console_url)?.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .with_context(|| format!("cannot reach the console at {}", console.console_url))?;
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", console.token)}}),
    ))
    .await?;
    let mut subscribed = false;
    while let Some(frame) = ws.next().await {
        let frame = frame.context("the connection to the console broke")?;
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Close(c) => {
                let why = c.map(|c| c.reason.to_string()).unwrap_or_default();
                bail!("the console closed the connection: {why}");
            }
            _ => continue,
        };
        let v: Value = serde_json::from_str(&text).context("the console sent something that is not JSON")?;
        match v["type"].as_str() {
            Some("connection_ack") if !subscribed => {
                subscribed = true;
                ws.send(send(
                    json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}),
                ))
                .await?;
            }
            Some("ping") => ws.send(send(json!({"type": "pong"}))).await?,
            Some("next") => {
                if let Some(errors) = v["payload"]["errors"].as_array().filter(|e| !e.is_empty()) {
                    bail!("{}", describe(&errors[0]));
                }
                on_data(v["payload"]["data"].clone())?;
            }
            Some("error") => {
                let first = v["payload"]
                    .as_array()
                    .and_then(|e| e.first())
                    .cloned()
                    .unwrap_or_default();
                bail!("{}", describe(&first));
            }
            Some("complete") => return Ok(()),
            _ => {}
        }
    }
    bail!("the console closed the connection")
}

/// `CODE: message` of a GraphQL error.
fn describe(error: &Value) -> String {
    let code = error["extensions"]["code"].as_str().unwrap_or("ERROR");
    let message = error["message"].as_str().unwrap_or("the console refused the request");
    format!("{code}: {message}")
}

fn header_predicates(headers: &[String]) -> Vec<Value> {
    headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((name, value)) => json!({"name": name, "equals": value}),
            None => json!({"name": h, "present": true}),
        })
        .collect()
}

/// `jsconsole messages export`: asks the console for the export (subscription
/// messageExport, progress on the way), then downloads the file it wrote.
pub async fn export_messages(args: MessageExportArgs, out: &mut (dyn Write + Send)) -> anyhow::Result<i32> {
    let format = jsc_domain::export::ExportFormat::parse(&args.format)
        .ok_or_else(|| anyhow!("--format: unknown format '{}'; use parquet, csv or jsonl", args.format))?;
    let search = json!({
        "subject": args.subject,
        "fromSequence": args.from_sequence,
        "toSequence": args.to_sequence,
        "fromTime": args.from_time,
        "toTime": args.to_time,
        "payloadContains": args.payload_contains,
        "payloadRegex": args.payload_regex,
        "expression": args.expression,
        "headers": header_predicates(&args.headers),
        "maxResults": args.max_messages,
        "timeBudgetSeconds": args.time_budget_seconds,
        "unmasked": args.unmasked,
    });
    let input = json!({
        "clusterId": args.cluster,
        "stream": args.stream,
        "search": search,
        "format": format.extension().to_uppercase(),
    });
    // Check the target first: a long export that cannot be saved helps no one.
    let mut file = tokio::fs::File::create(&args.out)
        .await
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("template"));
        b.enable_steady_tick(std::time::Duration::from_millis(200));
        b
    };
    let mut done = None;
    let shown = bar.clone();
    let result = subscribe(&args.console, EXPORT, json!({"input": input}), |data| {
        let e = &data["messageExport"];
        let p = &e["progress"];
        let left = p["estimatedRemainingMs"]
            .as_u64()
            .map(|ms| format!(", about {}s left", ms.div_ceil(1000)))
            .unwrap_or_default();
        shown.set_message(format!(
            "{} messages read, {} exported, at sequence {}{left}",
            p["scanned"], p["matched"], p["position"]
        ));
        if e["kind"] == "DONE" {
            done = Some(e.clone());
        }
        Ok(())
    })
    .await;
    let fail = |e: anyhow::Error| {
        let _ = std::fs::remove_file(&args.out);
        e
    };
    result.map_err(fail)?;
    let done = done.ok_or_else(|| fail(anyhow!("the console ended the export without a file")))?;
    let url = done["export"]["url"].as_str().unwrap_or_default();
    let rows = done["export"]["rows"].as_u64().unwrap_or_default();
    let size = done["export"]["bytes"].as_u64().unwrap_or_default();
    bar.set_message(format!("downloading {rows} messages"));
    let base = args.console.console_url.trim_end_matches('/');
    let mut response = reqwest::get(format!("{base}{url}"))
        .await
        .and_then(|r| r.error_for_status())
        .context("cannot download the export")
        .map_err(fail)?;
    let mut got = 0u64;
    while let Some(chunk) = response.chunk().await.context("the download broke off").map_err(fail)? {
        file.write_all(&chunk).await.map_err(|e| fail(e.into()))?;
        got += chunk.len() as u64;
        bar.set_message(format!("downloading {rows} messages: {got} of {size} bytes"));
    }
    file.flush().await?;
    bar.finish_and_clear();
    let stop = done["stop"].as_str().unwrap_or("END");
    let cut = match stop {
        "END" => String::new(),
        other => format!(" (stopped early: {other}; narrow the range or raise the limit)"),
    };
    writeln!(
        out,
        "exported {rows} messages ({got} bytes) to {}{cut}",
        args.out.display()
    )?;
    Ok(0)
}
