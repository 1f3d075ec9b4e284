//! `make chaos`: the fault scenarios, each bounded in time, and `docs/reliability.md`.
//!
//! - the home nats-server killed with -9 under 64 concurrent writers, then started again:
//!   every acknowledged change checked one by one (lost, doubled, misattributed);
//! - the console replica holding the background roles killed with -9: how long until the
//!   other holds them and serves a change;
//! - subscribers that read nothing: closed, and what the console held for them;
//! - 10,000 idle subscribers (scenario 17);
//! - a GraphQL fuzzer driven by the schema's introspection: no `INTERNAL`, no 5xx;
//! - one node of a 3-node home NATS (`infra/home-cluster`) killed with -9 under the same
//!   writers as the first: checked the same way, the console on the two nodes left.
//!
//! `--soak DURATION` runs writers, readers and subscribers for that long instead and
//! reports memory and p99 latency over time.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// Keys shared by the replicas of scenario B (as `--secret-key` and `--signing-key`).
const SECRET_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const SIGNING_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// Runs the scenarios (or the soak) and returns the Markdown of `docs/reliability.md`.
pub async fn chaos(args: &Args, soak: Option<Duration>) -> anyhow::Result<String> {
    let mut md = String::new();
    writeln!(md, "# Reliability\n")?;
    writeln!(
        md,
        "Measured {} with `make chaos{}` on {} cores; nats-server {}. Each scenario below is \
         bounded in time; the figures are from one run, on a shared machine.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        soak.map_or(String::new(), |d| format!(" ARGS=\"--soak {}s\"", d.as_secs())),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        crate::report::nats_version(),
    )?;
    if let Some(d) = soak {
        md.push_str(&soak_run(args, d).await?);
        return Ok(md);
    }
    for (name, section) in [
        ("A", home_killed_under_writers(args).await),
        ("B", replica_killed(args).await),
        ("C", slow_subscribers(args).await),
        ("D", many_subscribers(args).await),
        ("E", fuzz(args).await),
        ("F", node_lost_under_writers(args).await),
    ] {
        eprintln!("chaos {name} done");
        match section {
            Ok(s) => md.push_str(&s),
            Err(e) => writeln!(md, "## {name}. failed to run\n\n```\n{e:#}\n```\n")?,
        }
    }
    Ok(md)
}

/// A home nats-server that can be killed and started again on the same port and store.
struct Home {
    opts: ServerOptions,
    process: Option<ServerProcess>,
    _dir: tempfile::TempDir,
}

impl Home {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut opts = ServerOptions::new(dir.path().join("js"));
        let process = ServerProcess::start(&opts)?;
        opts.port = i32::from(process.port());
        Ok(Self {
            opts,
            process: Some(process),
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.opts.port)
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    fn start_again(&mut self) -> anyhow::Result<()> {
        self.process = Some(ServerProcess::start(&self.opts)?);
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Acked,
    /// UNAVAILABLE (or another error) with `extensions.applied`, if it said.
    Refused(String, Option<String>),
    /// No HTTP answer at all.
    Transport,
}

async fn update(http: &reqwest::Client, base: &str, id: &str, d: &str) -> Answer {
    let body = json!({"query": UPDATE, "variables": {"id": id, "d": d}});
    let res = match http
        .post(format!("{base}/graphql"))
        .timeout(Duration::from_secs(30))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return Answer::Transport,
    };
    let v: Value = match res.json().await {
        Ok(v) => v,
        Err(_) => return Answer::Transport,
    };
    if v["data"]["updateCluster"]["cluster"]["version"].is_number() {
        return Answer::Acked;
    }
    let e = &v["errors"][0]["extensions"];
    Answer::Refused(
        e["code"].as_str().unwrap_or("?").to_string(),
        e["applied"].as_str().map(str::to_string),
    )
}

async fn wait_ready(http: &reqwest::Client, base: &str, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn owner_actor(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let me = gql(http, base, "{ me { id } }", json!({})).await?;
    Ok(format!("user:{}", me["me"]["id"].as_str().context("no me")?))
}

/// The home NATS of scenarios A and F: one server, or the 3-node `infra/home-cluster`.
enum HomeNats {
    Single(Box<Home>),
    Cluster {
        nodes: jsc_fleet::embedded::LocalCluster,
        _dir: tempfile::TempDir,
    },
}

impl HomeNats {
    fn cluster() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/home-cluster");
        let configs: Vec<_> = (1..=3).map(|i| root.join(format!("n{i}.conf"))).collect();
        let cluster = jsc_fleet::embedded::LocalCluster::start(None, &configs, dir.path())?;
        Ok(Self::Cluster {
            nodes: cluster,
            _dir: dir,
        })
    }

    /// Every server's URL, comma-separated (as `--nats-url` takes them).
    fn url(&self) -> String {
        match self {
            Self::Single(h) => h.url(),
            Self::Cluster { nodes, .. } => nodes.urls().join(","),
        }
    }

    async fn client(&self) -> anyhow::Result<async_nats::Client> {
        let url = self.url();
        Ok(async_nats::connect(url.split(',').collect::<Vec<_>>()).await?)
    }
}

/// Which fault scenario A or F makes under the writers.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// A: the one home server killed with -9, started again 2 s later.
    HomeKilled,
    /// F: the node of three that leads the event stream killed with -9, not started again.
    NodeLost,
}

/// A. kill -9 of the home nats-server under 64 concurrent writers.
async fn home_killed_under_writers(args: &Args) -> anyhow::Result<String> {
    writers_through(args, Fault::HomeKilled).await
}

/// F. kill -9 of one node of a 3-node home NATS (the event stream's leader) under 64
/// concurrent writers.
async fn node_lost_under_writers(args: &Args) -> anyhow::Result<String> {
    writers_through(args, Fault::NodeLost).await
}

async fn writers_through(args: &Args, fault: Fault) -> anyhow::Result<String> {
    const WRITERS: usize = 64;
    let mut home = match fault {
        Fault::HomeKilled => HomeNats::Single(Box::new(Home::start()?)),
        Fault::NodeLost => HomeNats::cluster()?,
    };
    let console = Child::start(&args.jsconsole, &home.url()).await?;
    let http = authed_client(&console.token)?;
    let base = console.base.clone();
    let mut ids = Vec::new();
    // The writers' clusters are managed at the home's first server (only their
    // descriptions change: nothing is asked of them).
    let managed = home.url().split(',').next().unwrap_or_default().to_string();
    for i in 0..WRITERS {
        ids.push(register(&http, &base, &format!("writer-{i}"), &managed).await?);
    }
    let owner = owner_actor(&http, &base).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Answer, Instant, Instant)>();
    let mut writers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (http, base, id, stop, tx) = (http.clone(), base.clone(), id.clone(), stop.clone(), tx.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let d = format!("w{i}-{n}");
                let sent = Instant::now();
                let answer = update(&http, &base, &id, &d).await;
                let _ = tx.send((d, answer, sent, Instant::now()));
                n += 1;
            }
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut lost_node = None;
    let (killed, restarted, raw_election, ready_pair) = match &mut home {
        HomeNats::Single(single) => {
            single.kill();
            let killed = Instant::now();
            tokio::time::sleep(Duration::from_secs(2)).await;
            single.start_again()?;
            let restarted = Instant::now();
            // Raw: how long the restarted server takes to serve the event stream again.
            let raw_ready = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    if let Ok(c) = async_nats::connect(single.url()).await
                        && jetstream::new(c).get_stream("CONSOLE_EVENTS").await.is_ok()
                    {
                        return restarted.elapsed();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .ok();
            let ready = wait_ready(&http, &base, Duration::from_secs(60))
                .await
                .map(|d| d + raw_ready.unwrap_or_default());
            (killed, restarted, None, ready.map(|r| (r, raw_ready)))
        }
        HomeNats::Cluster { nodes: cluster, .. } => {
            let client = async_nats::connect(cluster.urls()).await?;
            let info = jetstream::new(client)
                .get_stream("CONSOLE_EVENTS")
                .await?
                .get_info()
                .await?;
            let leader = info
                .cluster
                .and_then(|c| c.leader)
                .context("the event stream has no leader")?;
            let node: usize = leader.trim_start_matches("home-").parse::<usize>()? - 1;
            anyhow::ensure!(info.config.num_replicas == 3, "the event stream is not R3");
            cluster.kill(node);
            let killed = Instant::now();
            // Raw: how long NATS takes to give the event stream a new leader.
            let survivors: Vec<String> = cluster
                .urls()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != node)
                .map(|(_, u)| u)
                .collect();
            let old = leader.clone();
            let raw = tokio::spawn(async move {
                let js = jetstream::new(async_nats::connect(survivors).await.ok()?);
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(60) {
                    if let Ok(Some(info)) = tokio::time::timeout(Duration::from_secs(1), async {
                        js.get_stream("CONSOLE_EVENTS").await.ok()?.get_info().await.ok()
                    })
                    .await
                        && info.cluster.and_then(|c| c.leader).is_some_and(|l| l != old)
                    {
                        return Some(killed.elapsed());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None
            });
            lost_node = Some(leader);
            (killed, killed, Some(raw), None)
        }
    };
    tokio::time::sleep(Duration::from_secs(if fault == Fault::NodeLost { 15 } else { 8 })).await;
    let elected = match raw_election {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let (ready, raw_ready) = match ready_pair {
        Some((r, raw)) => (Some(r), raw),
        None => (None, None),
    };
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let mut answers = Vec::new();
    while let Some(a) = rx.recv().await {
        answers.push(a);
    }
    // Every event as stored, by description.
    let client = home.client().await?;
    let records = jsc_eventstore::EventReader::new(client, "CONSOLE_EVENTS")
        .read_range("es.cluster.>", 1, None)
        .await?;
    let mut stored: HashMap<String, Vec<String>> = HashMap::new();
    for r in &records {
        if let Some(d) = r
            .payload
            .pointer("/Updated/changes/description")
            .and_then(Value::as_str)
        {
            stored.entry(d.to_string()).or_default().push(r.actor().to_string());
        }
    }
    let (mut acked, mut lost, mut doubled, mut misattributed) = (0, 0, 0, 0);
    let (mut refused_no, mut refused_no_landed, mut unknown, mut unknown_landed, mut transport) = (0, 0, 0, 0, 0);
    let mut first_ack_after_restart = None;
    let mut last_ack_before_kill = None;
    let mut codes: HashMap<String, usize> = HashMap::new();
    // How long the requests sent while the server was away took to be refused.
    let mut refusal_waits: Vec<f64> = Vec::new();
    // Acknowledgements in time order: the longest stretch without one.
    let mut ack_times: Vec<Instant> = Vec::new();
    for (d, answer, sent, at) in &answers {
        if matches!(answer, Answer::Refused(..)) && *at >= killed && *sent < restarted {
            refusal_waits.push(at.duration_since(*sent.max(&killed)).as_secs_f64());
        }
        let landed = stored.get(d);
        match answer {
            Answer::Acked => {
                acked += 1;
                ack_times.push(*at);
                match landed.map(Vec::len) {
                    None | Some(0) => lost += 1,
                    Some(1) => {}
                    Some(_) => doubled += 1,
                }
                if landed.is_some_and(|a| a.iter().any(|x| x != &owner)) {
                    misattributed += 1;
                }
                if *at >= restarted {
                    first_ack_after_restart = Some(first_ack_after_restart.map_or(*at, |f: Instant| f.min(*at)));
                }
                if *at <= killed {
                    last_ack_before_kill = Some(last_ack_before_kill.map_or(*at, |f: Instant| f.max(*at)));
                }
            }
            Answer::Refused(code, applied) => {
                *codes
                    .entry(format!("{code} applied={}", applied.as_deref().unwrap_or("-")))
                    .or_default() += 1;
                match applied.as_deref() {
                    Some("NO") => {
                        refused_no += 1;
                        if landed.is_some() {
                            refused_no_landed += 1;
                        }
                    }
                    _ => {
                        unknown += 1;
                        if landed.is_some() {
                            unknown_landed += 1;
                        }
                    }
                }
            }
            Answer::Transport => transport += 1,
        }
    }
    refusal_waits.sort_by(|a, b| a.total_cmp(b));
    ack_times.sort();
    let longest_gap = ack_times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    let acked_after_kill = ack_times.iter().filter(|t| **t > killed).count();
    let secs = |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let mut md = String::new();
    match fault {
        Fault::HomeKilled => {
            writeln!(
                md,
                "## A. The home nats-server killed with -9 under {WRITERS} concurrent writers\n"
            )?;
            writeln!(
                md,
                "{WRITERS} writers each change their own cluster (`updateCluster`, a description naming the writer and \
                 its count) as fast as the console answers. After 5 s the home nats-server is killed with -9; 2 s later \
                 it is started again on the same port and store; the writers go on for 8 s more. Then every answer is \
                 checked against the events stored.\n"
            )?;
        }
        Fault::NodeLost => {
            writeln!(
                md,
                "## F. One node of a 3-node home NATS killed with -9 under {WRITERS} concurrent writers\n"
            )?;
            writeln!(
                md,
                "The home NATS is the 3-node configuration of `infra/home-cluster/` (on free ports); the console gets \
                 all three URLs and keeps its event stream and buckets in three copies. The same {WRITERS} writers as in \
                 A; after 5 s the node leading the event stream ({}) is killed with -9 and **not** started again; the \
                 writers go on for 15 s on the two nodes left. Then every answer is checked against the events stored.\n",
                lost_node.as_deref().unwrap_or("?")
            )?;
        }
    }
    writeln!(md, "| figure | value |\n|---|---|")?;
    writeln!(
        md,
        "| changes acknowledged | {acked} ({acked_after_kill} after the kill) |"
    )?;
    writeln!(md, "| **acknowledged but not stored (lost)** | **{lost}** |")?;
    writeln!(md, "| **acknowledged and stored twice (doubled)** | **{doubled}** |")?;
    writeln!(
        md,
        "| **stored with another author (misattributed)** | **{misattributed}** |"
    )?;
    writeln!(
        md,
        "| refused with `applied: NO` | {refused_no} (of which stored anyway: **{refused_no_landed}**) |"
    )?;
    writeln!(
        md,
        "| refused with `applied` UNKNOWN or YES | {unknown} (of which stored: {unknown_landed}) |"
    )?;
    writeln!(md, "| no HTTP answer | {transport} |")?;
    let codes: Vec<String> = codes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    writeln!(md, "| refusals by code | {} |", codes.join(", "))?;
    match fault {
        Fault::HomeKilled => {
            writeln!(
                md,
                "| refusals while the server was away: time to the answer (from the kill for requests in flight), median / max | {:.3} s / {:.3} s |",
                percentile(&refusal_waits, 50.0),
                refusal_waits.last().copied().unwrap_or(0.0)
            )?;
            writeln!(
                md,
                "| the restarted nats-server serves the event stream (raw) | {} after its start |",
                secs(raw_ready)
            )?;
            writeln!(md, "| `/readyz` green | {} after the server's start |", secs(ready))?;
            writeln!(
                md,
                "| first acknowledged change after the restart | {} |",
                secs(first_ack_after_restart.map(|f| f.duration_since(restarted)))
            )?;
        }
        Fault::NodeLost => {
            writeln!(
                md,
                "| the event stream's new leader elected (raw NATS) | {} after the kill |",
                secs(elected)
            )?;
            writeln!(
                md,
                "| first change acknowledged after the kill | {} after it |",
                secs(first_ack_after_restart.map(|f| f.duration_since(killed)))
            )?;
            writeln!(
                md,
                "| longest stretch without an acknowledged change | {:.2} s |",
                longest_gap.as_secs_f64()
            )?;
        }
    }
    writeln!(
        md,
        "| last acknowledged change before the kill | {} before it |\n",
        secs(last_ack_before_kill.map(|l| killed.duration_since(l)))
    )?;
    let (peak, _) = console.memory();
    writeln!(md, "Peak RSS of the console: {peak:.0} MiB.\n")?;
    Ok(md)
}

const REPLICA: &str = "{ consoleReplica { id roles { name holder heldHere } } }";

/// B. kill -9 of the console replica that holds the background roles.
async fn replica_killed(args: &Args) -> anyhow::Result<String> {
    let server = Server::start()?;
    let url = server.process.url();
    let keys = [
        "--secret-key",
        SECRET_KEY,
        "--signing-key",
        SIGNING_KEY,
        "--lease-ttl",
        "6",
    ];
    let mut first = Child::start_with(&args.jsconsole, &url, &keys).await?;
    let http1 = authed_client(&first.token)?;
    let id = register(&http1, &first.base, "shared", &url).await?;
    let second = Child::start_with(&args.jsconsole, &url, &keys).await?;
    let http2 = authed_client(&second.token)?;
    let two = gql(&http2, &second.base, REPLICA, json!({})).await?;
    let roles = |v: &Value| -> Vec<(String, bool)> {
        v["consoleReplica"]["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| (r["name"].as_str().unwrap_or("").to_string(), r["heldHere"] == true))
                    .collect()
            })
            .unwrap_or_default()
    };
    let held_by_second_before = roles(&two).iter().filter(|(_, h)| *h).count();
    first.kill_now();
    let killed = Instant::now();
    // Until the second holds every role.
    let mut taken: HashMap<String, Duration> = HashMap::new();
    let total = roles(&two).len();
    while taken.len() < total && killed.elapsed() < Duration::from_secs(60) {
        let v = gql(&http2, &second.base, REPLICA, json!({})).await?;
        for (name, here) in roles(&v) {
            if here {
                taken.entry(name).or_insert_with(|| killed.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A change through the second, shown in its view (which its projections now write).
    let t = Instant::now();
    let served = update(&http2, &second.base, &id, "after the takeover").await;
    let change = t.elapsed();
    let mut md = String::new();
    writeln!(md, "## B. The replica holding the background roles killed with -9\n")?;
    writeln!(
        md,
        "Two `jsconsole serve` on one home NATS, leases of 6 s. The first holds every role (the second held \
         {held_by_second_before}); it is killed with -9 (it releases nothing). Time from the kill until the \
         second holds each role:\n"
    )?;
    writeln!(md, "| role | taken over after |\n|---|---|")?;
    let mut names: Vec<_> = taken.iter().collect();
    names.sort();
    for (name, after) in names {
        writeln!(md, "| {name} | {:.2} s |", after.as_secs_f64())?;
    }
    writeln!(
        md,
        "\nThen a change through the second replica: {:?} in {:.0} ms (it returns once the view shows it).\n",
        served,
        change.as_secs_f64() * 1000.0
    )?;
    Ok(md)
}

/// C. Subscribers that read nothing while the history is replayed to them.
async fn slow_subscribers(args: &Args) -> anyhow::Result<String> {
    const SLOW: usize = 50;
    let server = Server::start()?;
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    let ids = [register(&http, &console.base, "history", &server.process.url()).await?];
    // A history to replay: 3,000 changes with 2 KB descriptions.
    let filler = "x".repeat(2_000);
    let mut futs = FuturesUnordered::new();
    for n in 0..3_000 {
        let (http, base, id, d) = (
            http.clone(),
            console.base.clone(),
            ids[0].clone(),
            format!("{n} {filler}"),
        );
        futs.push(async move { update(&http, &base, &id, &d).await });
        if futs.len() >= 16 {
            futs.next().await;
        }
    }
    while futs.next().await.is_some() {}
    let (_, before) = console.memory();
    let addr: std::net::SocketAddr = console.base.trim_start_matches("http://").parse()?;
    let mut sockets = Vec::new();
    for _ in 0..SLOW {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let tcp = socket.connect(addr).await?;
        let mut req = format!("ws://{addr}/graphql").into_client_request()?;
        req.headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await?;
        ws.send(Message::text(
            json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", console.token)}})
                .to_string(),
        ))
        .await?;
        ws.next().await;
        ws.send(Message::text(
            json!({"id": "1", "type": "subscribe", "payload": {
                "query": "subscription { auditEvents(fromSequence: 1) { sequence summary payload } }"
            }})
            .to_string(),
        ))
        .await?;
        sockets.push(ws);
    }
    // Memory while they hang, for longer than the 10 s a client may read nothing.
    let t0 = Instant::now();
    let mut peak: f64 = before;
    while t0.elapsed() < Duration::from_secs(12) {
        peak = peak.max(console.memory().1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Now they read, all at once: each should end with a close frame 1008.
    let codes = futures::future::join_all(sockets.iter_mut().map(|ws| async move {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(Some(f)))) => return u16::from(f.code),
                    Some(Ok(_)) => continue,
                    _ => return 0,
                }
            }
        })
        .await
        .unwrap_or(0)
    }))
    .await;
    let closed_1008 = codes.iter().filter(|c| **c == 1008).count();
    let cut_off = codes.iter().filter(|c| **c != 1008).count();
    drop(sockets);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, after) = console.memory();
    let mut md = String::new();
    writeln!(md, "## C. {SLOW} subscribers that read nothing\n")?;
    writeln!(
        md,
        "A history of 3,000 changes (2 KB each). {SLOW} clients with a 4 KB receive window ask for all of it \
         (`auditEvents(fromSequence: 1)`) and read nothing for 12 s, then read what is there.\n"
    )?;
    writeln!(md, "| figure | value |\n|---|---|")?;
    writeln!(md, "| closed with a 1008 frame (too slow) | {closed_1008} of {SLOW} |")?;
    writeln!(
        md,
        "| cut off without the frame (it could not reach them within 10 s of the console giving up) | {cut_off} of {SLOW} |"
    )?;
    writeln!(md, "| console RSS before | {before:.0} MiB |")?;
    writeln!(
        md,
        "| console RSS at most while they hung | {peak:.0} MiB ({:.0} KiB per slow client) |",
        (peak - before) * 1024.0 / SLOW as f64
    )?;
    writeln!(md, "| console RSS after they closed | {after:.0} MiB |\n")?;
    Ok(md)
}

/// D. 10,000 idle subscribers (scenario 17 of the benchmarks).
async fn many_subscribers(args: &Args) -> anyhow::Result<String> {
    let rows = idle_subscribers(args).await?;
    let mut md = String::new();
    writeln!(md, "## D. Idle WebSocket subscribers\n")?;
    writeln!(md, "| metric | console | raw | target |\n|---|---|---|---|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {:.1} {} | {} | {} |",
            r.metric,
            r.console.median,
            r.unit,
            r.raw.as_ref().map_or("—".into(), |m| format!(
                "{:.1} {} ({})",
                m.median, r.unit, r.raw_label
            )),
            match r.target {
                Target::AbsoluteAtMost { value } => format!("≤ {value} {}", r.unit),
                _ => "—".into(),
            }
        )?;
    }
    for r in &rows {
        if !r.note.is_empty() {
            writeln!(md, "\n{}", r.note)?;
        }
    }
    md.push('\n');
    Ok(md)
}

/// A small, seeded pseudo-random source (xorshift64*): the fuzzer's runs can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name } types { name kind \
    enumValues { name } inputFields { name type { ...T } } \
    fields { name args { name type { ...T } } type { ...T } } } } } \
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }";

/// Mutations the fuzzer leaves alone: they would end its own session.
const SPARED: [&str; 5] = ["changePassword", "logout", "revokeSession", "disableUser", "deleteUser"];

struct Schema {
    types: HashMap<String, Value>,
}

impl Schema {
    fn named(t: &Value) -> (String, bool, bool) {
        // (name, required, list) of a type reference.
        let mut t = t;
        let (mut required, mut list) = (false, false);
        let mut first = true;
        loop {
            match t["kind"].as_str() {
                Some("NON_NULL") => {
                    if first {
                        required = true;
                    }
                }
                Some("LIST") => list = true,
                _ => return (t["name"].as_str().unwrap_or("").to_string(), required, list),
            }
            first = false;
            t = &t["ofType"];
        }
    }

    fn value(&self, t: &Value, rng: &mut Rng, depth: usize, valid: bool) -> Value {
        let (name, _, list) = Self::named(t);
        if list {
            let n = rng.below(3);
            return Value::Array((0..n).map(|_| self.scalar_or_input(&name, rng, depth, valid)).collect());
        }
        self.scalar_or_input(&name, rng, depth, valid)
    }

    fn scalar_or_input(&self, name: &str, rng: &mut Rng, depth: usize, valid: bool) -> Value {
        if !valid && rng.chance(15) {
            // The wrong kind of value.
            return match rng.below(4) {
                0 => json!(null),
                1 => json!(rng.next() as i64),
                2 => json!("x".repeat(rng.below(70_000))),
                _ => json!({"unexpected": [1, {"deep": true}]}),
            };
        }
        let strings = [
            "",
            "a",
            "ORDERS",
            "orders.>",
            "nats://127.0.0.1:1",
            "1h",
            "-5s",
            "2026-12-07T00:00:00Z",
            "\u{0}\u{7}\n",
            "日本語",
            "*",
            ">",
            "' OR 1=1 --",
            "../../etc/passwd",
        ];
        match name {
            "String" | "ID" | "Duration" | "DateTime" | "Cursor" => {
                if rng.chance(10) {
                    json!("z".repeat(rng.below(5_000)))
                } else {
                    json!(strings[rng.below(strings.len())])
                }
            }
            "Int" => json!([0i64, 1, -1, 50, 500, 100_000, i32::MAX as i64, i32::MIN as i64][rng.below(8)]),
            "Float" => json!([0.0, -1.5, 1e300, 0.25][rng.below(4)]),
            "Boolean" => json!(rng.chance(50)),
            "JSON" => json!({"k": "v", "n": [1, 2]}),
            _ => {
                let Some(t) = self.types.get(name) else {
                    return json!(null);
                };
                match t["kind"].as_str() {
                    Some("ENUM") => {
                        let values = t["enumValues"].as_array().cloned().unwrap_or_default();
                        if values.is_empty() || (!valid && rng.chance(10)) {
                            json!("NOT_A_VALUE")
                        } else {
                            values[rng.below(values.len())]["name"].clone()
                        }
                    }
                    Some("INPUT_OBJECT") if depth < 4 => {
                        let mut o = serde_json::Map::new();
                        for f in t["inputFields"].as_array().cloned().unwrap_or_default() {
                            let (_, required, _) = Self::named(&f["type"]);
                            if required || rng.chance(40) {
                                o.insert(
                                    f["name"].as_str().unwrap_or("").to_string(),
                                    self.value(&f["type"], rng, depth + 1, valid),
                                );
                            }
                        }
                        Value::Object(o)
                    }
                    _ => json!(null),
                }
            }
        }
    }

    /// A selection of `type_name`: its first few scalar fields, one level into objects.
    fn selection(&self, type_name: &str, depth: usize) -> String {
        let Some(t) = self.types.get(type_name) else {
            return String::new();
        };
        match t["kind"].as_str() {
            Some("OBJECT") => {
                let mut picked = vec!["__typename".to_string()];
                for f in t["fields"].as_array().cloned().unwrap_or_default() {
                    if picked.len() > 4 {
                        break;
                    }
                    let has_required_args = f["args"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|a| Self::named(&a["type"]).1));
                    if has_required_args {
                        continue;
                    }
                    let (name, _, _) = Self::named(&f["type"]);
                    let field = f["name"].as_str().unwrap_or("");
                    match self.types.get(&name).and_then(|t| t["kind"].as_str()) {
                        Some("OBJECT") if depth < 2 => {
                            picked.push(format!("{field} {{ {} }}", self.selection(&name, depth + 1)))
                        }
                        Some("OBJECT" | "INTERFACE" | "UNION") => {}
                        _ => picked.push(field.to_string()),
                    }
                }
                picked.join(" ")
            }
            _ => "__typename".into(),
        }
    }
}

/// E. The fuzzer.
async fn fuzz(args: &Args) -> anyhow::Result<String> {
    let count = if args.quick { 2_000 } else { 10_000 };
    let server = Server::start()?;
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    register(&http, &console.base, "fuzzed", &server.process.url()).await?;
    let schema = gql(&http, &console.base, INTROSPECTION, json!({})).await?;
    let types: HashMap<String, Value> = schema["__schema"]["types"]
        .as_array()
        .context("no types")?
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or("").to_string(), t.clone()))
        .collect();
    let schema = Schema { types };
    let roots: Vec<(&str, Value)> = [("query", "Query"), ("mutation", "Mutation")]
        .iter()
        .filter_map(|(op, name)| schema.types.get(*name).map(|t| (*op, t.clone())))
        .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let (mut statuses, mut codes): (HashMap<u16, usize>, HashMap<String, usize>) = Default::default();
    let mut internal = Vec::new();
    let mut transport = 0;
    for i in 0..count {
        let (op, root) = &roots[rng.below(roots.len())];
        let fields = root["fields"].as_array().cloned().unwrap_or_default();
        let f = &fields[rng.below(fields.len())];
        let name = f["name"].as_str().unwrap_or("");
        if SPARED.contains(&name) {
            continue;
        }
        let valid = rng.chance(60);
        let mut vars = serde_json::Map::new();
        let mut decl = Vec::new();
        let mut pass = Vec::new();
        for (k, a) in f["args"].as_array().cloned().unwrap_or_default().iter().enumerate() {
            let (_, required, _) = Schema::named(&a["type"]);
            if !required && rng.chance(50) {
                continue;
            }
            if !valid && required && rng.chance(10) {
                continue; // a required argument left out
            }
            let arg = a["name"].as_str().unwrap_or("");
            decl.push(format!("$v{k}: {}", type_ref(&a["type"])));
            pass.push(format!("{arg}: $v{k}"));
            vars.insert(format!("v{k}"), schema.value(&a["type"], &mut rng, 0, valid));
        }
        let (ret, _, _) = Schema::named(&f["type"]);
        let needs_selection = matches!(
            schema.types.get(&ret).and_then(|t| t["kind"].as_str()),
            Some("OBJECT" | "INTERFACE" | "UNION")
        );
        let sel = if needs_selection {
            format!(" {{ {} }}", schema.selection(&ret, 0))
        } else {
            String::new()
        };
        let args_text = if pass.is_empty() {
            String::new()
        } else {
            format!("({})", pass.join(", "))
        };
        let decl_text = if decl.is_empty() {
            String::new()
        } else {
            format!("({})", decl.join(", "))
        };
        let mut query = format!("{op} Fuzz{i}{decl_text} {{ {name}{args_text}{sel} }}");
        if !valid && rng.chance(10) {
            // Broken syntax, unknown fields, or far too deep.
            query = match rng.below(3) {
                0 => query[..query.len() / 2].to_string(),
                1 => format!("{{ {name} {{ nope }} }}"),
                _ => format!("{{ {}{} }}", "me { id ".repeat(50), "}".repeat(50)),
            };
        }
        let res = http
            .post(format!("{}/graphql", console.base))
            .timeout(Duration::from_secs(30))
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await;
        let Ok(res) = res else {
            transport += 1;
            continue;
        };
        *statuses.entry(res.status().as_u16()).or_default() += 1;
        let body: Value = res.json().await.unwrap_or(Value::Null);
        for e in body["errors"].as_array().cloned().unwrap_or_default() {
            let code = e["extensions"]["code"].as_str().unwrap_or("(none)").to_string();
            if code == "INTERNAL" && internal.len() < 10 {
                internal.push(format!(
                    "{}: {}",
                    query.chars().take(300).collect::<String>(),
                    e["message"]
                ));
            }
            *codes.entry(code).or_default() += 1;
        }
    }
    let alive = console_alive(&console.base).await;
    let server_errors: usize = statuses.iter().filter(|(s, _)| **s >= 500).map(|(_, n)| n).sum();
    let mut md = String::new();
    writeln!(md, "## E. A GraphQL fuzzer driven by the schema\n")?;
    writeln!(
        md,
        "{count} operations (seed {seed}) on random fields of `Query` and `Mutation` (all but {}), built from \
         the introspection: 60 % with arguments of the right types, the rest with wrong kinds of values, \
         required arguments left out, strings of up to 70,000 characters, unknown enum values, broken \
         syntax, unknown fields and nesting 50 deep.\n",
        SPARED.join(", ")
    )?;
    writeln!(md, "| figure | value |\n|---|---|")?;
    let mut s: Vec<_> = statuses.iter().collect();
    s.sort();
    writeln!(
        md,
        "| HTTP statuses | {} |",
        s.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(md, "| **5xx answers** | **{server_errors}** |")?;
    writeln!(
        md,
        "| **`INTERNAL` errors** | **{}** |",
        codes.get("INTERNAL").copied().unwrap_or(0)
    )?;
    writeln!(md, "| no HTTP answer | {transport} |")?;
    let mut c: Vec<_> = codes.iter().collect();
    c.sort_by(|a, b| b.1.cmp(a.1));
    writeln!(
        md,
        "| error codes | {} |",
        c.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        md,
        "| console still answering afterwards | {} |\n",
        if alive { "yes" } else { "**no**" }
    )?;
    for e in &internal {
        writeln!(md, "- `INTERNAL`: {}", e.replace('|', "\\|"))?;
    }
    md.push('\n');
    Ok(md)
}

fn type_ref(t: &Value) -> String {
    match t["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&t["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&t["ofType"])),
        _ => t["name"].as_str().unwrap_or("String").to_string(),
    }
}

async fn console_alive(base: &str) -> bool {
    reqwest::get(format!("{base}/healthz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// `--soak`: writers, readers and subscribers for `length`; memory and p99 every minute.
async fn soak_run(args: &Args, length: Duration) -> anyhow::Result<String> {
    let server = Server::start()?;
    let console = Child::start(&args.jsconsole, &server.process.url()).await?;
    let http = authed_client(&console.token)?;
    let mut ids = Vec::new();
    for i in 0..16 {
        ids.push(register(&http, &console.base, &format!("soak-{i}"), &server.process.url()).await?);
    }
    let subscribers = open_subscribers_for_soak(&console, &ids[0]).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(bool, f64)>();
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (http, base, id, stop, tx) = (http.clone(), console.base.clone(), id.clone(), stop.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let write = i % 2 == 0;
                if write {
                    update(&http, &base, &id, &format!("soak {n}")).await;
                } else {
                    let _ = gql(
                        &http,
                        &base,
                        "{ clusters(first: 20) { nodes { id name description } } }",
                        json!({}),
                    )
                    .await;
                }
                let _ = tx.send((write, t.elapsed().as_secs_f64() * 1000.0));
                n += 1;
            }
        }));
    }
    drop(tx);
    let mut md = String::new();
    writeln!(md, "## Soak: {} minutes\n", length.as_secs() / 60)?;
    writeln!(
        md,
        "8 writers and 8 readers as fast as the console answers, 100 subscribers to one cluster's changes.\n"
    )?;
    writeln!(
        md,
        "| minute | RSS MiB | writes | write p99 ms | reads | read p99 ms |\n|---|---|---|---|---|---|"
    )?;
    let started = Instant::now();
    let mut minute = 0;
    while started.elapsed() < length {
        let (mut writes, mut reads) = (Vec::new(), Vec::new());
        let until = Instant::now() + Duration::from_secs(60).min(length.saturating_sub(started.elapsed()));
        while Instant::now() < until {
            match tokio::time::timeout_at(until.into(), rx.recv()).await {
                Ok(Some((true, ms))) => writes.push(ms),
                Ok(Some((false, ms))) => reads.push(ms),
                _ => break,
            }
        }
        writes.sort_by(|a, b| a.total_cmp(b));
        reads.sort_by(|a, b| a.total_cmp(b));
        minute += 1;
        writeln!(
            md,
            "| {minute} | {:.0} | {} | {:.1} | {} | {:.1} |",
            console.memory().1,
            writes.len(),
            percentile(&writes, 99.0),
            reads.len(),
            percentile(&reads, 99.0)
        )?;
        eprintln!("soak minute {minute}: RSS {:.0} MiB", console.memory().1);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    drop(subscribers);
    md.push('\n');
    Ok(md)
}

/// 100 subscribers to `id`'s changes that read everything they are sent (in tasks, aborted
/// when the result is dropped).
async fn open_subscribers_for_soak(console: &Child, id: &str) -> anyhow::Result<Vec<AbortOnDrop>> {
    let open = open_subscribers(&console.base, &console.token, id, 100).await?;
    Ok(open
        .into_iter()
        .map(|mut ws| AbortOnDrop(tokio::spawn(async move { while ws.next().await.is_some() {} })))
        .collect())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
