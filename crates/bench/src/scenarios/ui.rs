//! Scenario 15: the web console's streams page with 10,000 streams, in headless Chromium
//! (`web/e2e/streams-bench.mjs` driving Debian's chromium): how long until every stream is
//! listed beside the raw paged `STREAM.LIST` of the same streams from the bench process;
//! frames per second while the list scrolls top to bottom and back; a sort by messages; and
//! the first load (every script and style the page names, gzipped).

use super::*;

const STREAMS: usize = 10_000;

/// Bytes of the page's scripts and styles, gzipped as the console sends them.
async fn first_load(base: &str) -> anyhow::Result<usize> {
    let http = reqwest::Client::builder().no_gzip().build()?;
    let page = http.get(format!("{base}/")).send().await?.text().await?;
    let mut total = 0;
    for part in page.split('"').filter(|p| p.starts_with("/assets/")) {
        let r = http
            .get(format!("{base}{part}"))
            .header("accept-encoding", "gzip")
            .send()
            .await?;
        total += r.bytes().await?.len();
    }
    Ok(total)
}

pub(super) async fn streams_page(args: &Args) -> anyhow::Result<Vec<Row>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("web/e2e/streams-bench.mjs");
    anyhow::ensure!(
        root.join("web/node_modules/playwright-core").is_dir() && std::path::Path::new("/usr/bin/chromium").exists(),
        "scenario 15 needs web/node_modules (built with jsc-server) and /usr/bin/chromium (make tools)"
    );
    let home = Server::start()?;
    let managed = Server::start()?;
    let client = managed.client().await?;
    let js = jetstream::new(client.clone());
    make_streams(&js, 0..STREAMS, 0, jetstream::stream::StorageType::Memory).await?;
    eprintln!("   {STREAMS} streams made");

    let mut raw = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        anyhow::ensure!(raw_stream_list(&client, |_| {}).await? == STREAMS, "raw list");
        raw.push(t.elapsed().as_secs_f64() * 1e3);
    }

    let console = Child::start(&args.jsconsole, &home.process.url()).await?;
    let http = authed_client(&console.token)?;
    let cluster = register(&http, &console.base, "big", &managed.process.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let d = gql(
            &http,
            &console.base,
            "query($c: ID!) { streams(clusterId: $c, first: 1) { totalCount } }",
            json!({"c": cluster}),
        )
        .await?;
        if d["streams"]["totalCount"].as_u64() == Some(STREAMS as u64) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the console did not list {STREAMS} streams: {d}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let gzipped = first_load(&console.base).await?;

    let runs = if args.quick { 1 } else { 3 };
    let mut load = Vec::new();
    let mut slow = Vec::new();
    let mut slow_worst = Vec::new();
    let mut fast = Vec::new();
    let mut sort = Vec::new();
    let mut rows_rendered = 0;
    for _ in 0..runs {
        let out = tokio::process::Command::new("node")
            .arg(&script)
            .env("JSC_URL", &console.base)
            .env("JSC_EMAIL", BENCH_EMAIL)
            .env("JSC_PASSWORD", BENCH_PASSWORD)
            .env("JSC_CLUSTER", &cluster)
            .env("JSC_STREAMS", STREAMS.to_string())
            .kill_on_drop(true)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "the browser run failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(out.stdout.trim_ascii())
            .with_context(|| format!("odd output: {}", String::from_utf8_lossy(&out.stdout)))?;
        eprintln!("   {v}");
        load.push(v["loadMs"].as_f64().unwrap_or(f64::NAN));
        slow.push(v["slow"]["mean"].as_f64().unwrap_or(f64::NAN));
        slow_worst.push(v["slow"]["worstSecond"].as_f64().unwrap_or(f64::NAN));
        fast.push(v["fast"]["worstSecond"].as_f64().unwrap_or(f64::NAN));
        sort.push(v["sortMs"].as_f64().unwrap_or(f64::NAN));
        rows_rendered = v["renderedRows"].as_u64().unwrap_or(0);
    }
    let scenario = "15. web console: streams page, 10,000 streams (headless Chromium)";
    let note = format!(
        "{STREAMS} streams (memory storage) on one managed nats-server; the page loads them 500 at a time over \
         GraphQL and renders about {rows_rendered} rows at once (virtual list); scrolling moves 120 px (slow) or \
         2,000 px (fast) a frame, top to bottom and back, 5 s each; {runs} browser run(s)"
    );
    let row =
        |metric: &str, unit: &str, console: Vec<f64>, raw: Option<Vec<f64>>, raw_label: &str, better, target| Row {
            scenario: scenario.into(),
            metric: metric.into(),
            unit: unit.into(),
            console: Measured::of(console),
            raw: raw.map(Measured::of),
            raw_label: raw_label.into(),
            better,
            target,
            note: note.clone(),
        };
    Ok(vec![
        row(
            "every stream listed in the page",
            "ms",
            load,
            Some(raw),
            "paged STREAM.LIST of the same streams from the bench process",
            Better::Lower,
            Target::None,
        ),
        row(
            "frames per second, slow scroll (mean)",
            "fps",
            slow,
            None,
            "",
            Better::Higher,
            Target::None,
        ),
        row(
            "frames per second, slow scroll (worst second)",
            "fps",
            slow_worst,
            None,
            "",
            Better::Higher,
            Target::AbsoluteAtLeast { value: 30.0 },
        ),
        row(
            "frames per second, fast scroll (worst second)",
            "fps",
            fast,
            None,
            "",
            Better::Higher,
            Target::AbsoluteAtLeast { value: 30.0 },
        ),
        row(
            "sort 10,000 rows by messages",
            "ms",
            sort,
            None,
            "",
            Better::Lower,
            Target::None,
        ),
        row(
            "first load: scripts and styles, gzipped",
            "KB",
            vec![gzipped as f64 / 1024.0],
            None,
            "",
            Better::Lower,
            Target::AbsoluteAtMost { value: 300.0 },
        ),
    ])
}
