//! Scenario 17: idle WebSocket subscribers. How much memory each costs the console while it
//! waits for changes, beside what a core NATS subscriber costs nats-server.

use super::*;

/// Opens `n` WebSockets to `base`, each signed in with `token` and subscribed to the
/// cluster `id`'s changes, and returns them once every one has its current state: the
/// connections stay open (idle) as long as the result is kept.
pub(super) async fn open_subscribers(base: &str, token: &str, id: &str, n: usize) -> anyhow::Result<Vec<WsStream>> {
    let url = format!("{}/graphql", base.replace("http://", "ws://"));
    let gate = Arc::new(tokio::sync::Semaphore::new(128));
    let mut opening = FuturesUnordered::new();
    for _ in 0..n {
        let (url, token, id, gate) = (url.clone(), token.to_string(), id.to_string(), gate.clone());
        opening.push(async move {
            let _permit = gate.acquire_owned().await?;
            let mut req = url.into_client_request()?;
            req.headers_mut()
                .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
            ws.send(Message::text(
                json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}).to_string(),
            ))
            .await?;
            let q = "subscription($id: ID) { clusterChanged(id: $id, includeCurrent: true) { kind sequence } }";
            ws.send(Message::text(
                json!({"id": "1", "type": "subscribe", "payload": {"query": q, "variables": {"id": id}}}).to_string(),
            ))
            .await?;
            loop {
                let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
                    .await
                    .context("no current state in time")?
                    .context("closed before its current state")??;
                match m {
                    Message::Text(t) if t.contains("CURRENT") => return anyhow::Ok(ws),
                    Message::Close(f) => bail!("closed: {f:?}"),
                    _ => {}
                }
            }
        });
    }
    let mut open = Vec::with_capacity(n);
    while let Some(ws) = opening.next().await {
        open.push(ws?);
    }
    Ok(open)
}

pub(super) type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Resident memory of a process, in KiB, once it has settled (the lowest of a few reads).
async fn settled_rss_kib(pid: u32) -> f64 {
    let mut lowest = f64::INFINITY;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        lowest = lowest.min(memory_of(pid).1 * 1024.0);
    }
    lowest
}

pub(super) async fn idle_subscribers(args: &Args) -> anyhow::Result<Vec<Row>> {
    let n = if args.quick { 2_000 } else { 10_000 };
    let server = Server::start()?;
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    let id = register(&http, &console.base, "watched", &server.process.url()).await?;
    // Warm: one subscriber opened and closed, so that what every connection shares exists.
    drop(open_subscribers(&console.base, &console.token, &id, 10).await?);
    let pid = console.pid();
    let before = settled_rss_kib(pid).await;
    let started = Instant::now();
    let subscribers = open_subscribers(&console.base, &console.token, &id, n).await?;
    let opened = started.elapsed();
    let after = settled_rss_kib(pid).await;
    let per = (after - before) / n as f64;
    eprintln!(
        "   {n} subscribers open in {:.1} s; console RSS {:.0} → {:.0} MiB: {per:.1} KiB each",
        opened.as_secs_f64(),
        before / 1024.0,
        after / 1024.0
    );
    // Still served: one change reaches them all.
    gql(&http, &console.base, UPDATE, json!({"id": id, "d": "all of them"})).await?;
    let mut subscribers = subscribers;
    let mut reached = 0;
    for ws in subscribers.iter_mut().take(100) {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next()).await;
        if matches!(m, Ok(Some(Ok(Message::Text(_))))) {
            reached += 1;
        }
    }
    drop(subscribers);
    let released = settled_rss_kib(pid).await;
    // A second round: memory a leak would hold grows again; memory the allocator kept for
    // reuse does not.
    drop(open_subscribers(&console.base, &console.token, &id, n).await?);
    let again = settled_rss_kib(pid).await;
    eprintln!(
        "   a change reached {reached} of the first 100; after they closed: {:.0} MiB, after a second round: {:.0} MiB",
        released / 1024.0,
        again / 1024.0
    );

    // Raw: as many core NATS connections, one subscription each, on a nats-server.
    let raw_server = Server::start()?;
    let raw_pid = raw_server.process.pid();
    let raw_before = settled_rss_kib(raw_pid).await;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let c = raw_server.client().await?;
        let sub = c.subscribe("bench.idle").await?;
        clients.push((c, sub));
    }
    let raw_after = settled_rss_kib(raw_pid).await;
    let raw_per = (raw_after - raw_before) / n as f64;
    eprintln!("   raw: {n} NATS connections with a subscription: {raw_per:.1} KiB each on nats-server");
    drop(clients);

    let scenario = format!("17. {n} idle WebSocket subscribers");
    Ok(vec![
        Row {
            scenario: scenario.clone(),
            metric: "memory per idle subscriber (clusterChanged), console RSS growth".into(),
            unit: "KiB".into(),
            console: Measured::of(vec![per]),
            raw: Some(Measured::of(vec![raw_per])),
            raw_label: "nats-server RSS growth per core NATS connection with one subscription".into(),
            better: Better::Lower,
            target: Target::AbsoluteAtMost { value: 20.0 },
            note: format!(
                "a change reached {reached} of 100 checked; RSS {:.0} MiB before, {:.0} MiB open, {:.0} MiB after they closed, {:.0} MiB after a second round",
                before / 1024.0,
                after / 1024.0,
                released / 1024.0,
                again / 1024.0
            ),
        },
        Row {
            scenario,
            metric: "time to open them all, signed in and subscribed".into(),
            unit: "s".into(),
            console: Measured::of(vec![opened.as_secs_f64()]),
            raw: None,
            raw_label: String::new(),
            better: Better::Lower,
            target: Target::None,
            note: "128 at a time".into(),
        },
    ])
}
