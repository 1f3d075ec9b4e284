//! Reading one sample of a cluster: server and JetStream health, account usage, every
//! stream's state (paged `STREAM.LIST`) and every consumer's (paged `CONSUMER.LIST` of the
//! streams that have consumers), and the rates derived from the previous sample.
//!
//! Rates come from counters that only grow while a stream or consumer lives (last sequence,
//! delivered and ack-floor sequences), so a purge or a limit dropping old messages never
//! makes them negative. A stream or consumer that was deleted and made again in between
//! (its creation time changed, or its sequences went back) has no rate for that interval
//! rather than a wrong one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jsc_domain::stream::ServiceError;
use jsc_fleet::admin::{Admin, ConsumerInfo, StreamInfo};

use crate::sample::{ClusterSample, ConsumerSample, ServerSample, Snapshot, Source, StreamSample, parse_ms};

/// At most this many `CONSUMER.LIST` requests in flight per cluster.
const CONSUMER_LISTS_IN_FLIGHT: usize = 8;

/// How long the round-trip probe may take before the cluster counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads one sample of the cluster behind `admin`, leaving out the streams `skip` names (the
/// console's own, on its home NATS). With a connection in the cluster's system account
/// (`system`), streams and consumers come from every server's JetStream report; without
/// one, or when that fails (said in the sample's `error`), from paged lists. Never fails: a
/// cluster that does not answer is a sample with `up: false` and the reason, which is
/// itself worth keeping.
pub async fn sample(
    admin: Result<Admin, ServiceError>,
    system: Option<Result<Admin, ServiceError>>,
    cluster_id: &str,
    interval: Duration,
    previous: Option<&Snapshot>,
    skip: &(dyn Fn(&str) -> bool + Send + Sync),
) -> Snapshot {
    let started = Instant::now();
    let mut cluster = ClusterSample {
        cluster_id: cluster_id.to_string(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        interval_ms: interval.as_millis() as u64,
        source: Source::List,
        ..Default::default()
    };
    let mut streams = BTreeMap::new();
    let admin = match admin {
        Ok(a) => a,
        Err(e) => {
            cluster.error = Some(e.to_string());
            return finish(cluster, streams, started);
        }
    };
    let info = admin.client().server_info();
    cluster.server = ServerSample {
        id: info.server_id.clone(),
        name: info.server_name.clone(),
        version: info.version.clone(),
        cluster: info.cluster.clone().unwrap_or_default(),
        domain: info.domain.clone().unwrap_or_default(),
    };
    let ping = Instant::now();
    match tokio::time::timeout(PING_TIMEOUT, admin.client().flush()).await {
        Ok(Ok(())) => {
            cluster.up = true;
            cluster.rtt_us = Some(ping.elapsed().as_micros() as u64);
        }
        _ => {
            cluster.error = Some(format!("the cluster did not answer a ping within {PING_TIMEOUT:?}"));
            return finish(cluster, streams, started);
        }
    }
    match admin.account().await {
        Ok(v) => {
            cluster.jetstream = true;
            cluster.account = Some(jsc_fleet::admin::account_usage(&v));
        }
        Err(e) => {
            cluster.error = Some(e.to_string());
            return finish(cluster, streams, started);
        }
    }
    let reported = match system {
        None => None,
        Some(system) => {
            let read = async { jsz(&admin, &system?, cluster.at_ms).await };
            match read.await {
                Ok(r) => Some(r),
                Err(e) => {
                    cluster.error = Some(format!(
                        "the system account's JetStream report failed ({e}); sampled with stream and consumer lists instead"
                    ));
                    None
                }
            }
        }
    };
    let (mut list, mut consumers) = match reported {
        Some(r) => {
            cluster.source = Source::Jsz;
            r
        }
        None => match listed(&admin, cluster.at_ms).await {
            Ok(r) => r,
            Err(e) => {
                cluster.error = Some(e.to_string());
                return finish(cluster, streams, started);
            }
        },
    };
    list.retain(|s| !skip(&s.name));
    let previous_streams = previous.map(|p| &p.streams);
    for mut s in list {
        s.consumers = consumers.remove(&s.name).unwrap_or_default();
        s.consumers.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(prev) = previous_streams.and_then(|p| p.get(&s.name)) {
            derive_stream_rates(prev, &mut s);
        }
        streams.insert(s.name.clone(), s);
    }
    finish(cluster, streams, started)
}

/// Streams' samples, and their consumers' samples by stream name: each page of streams and
/// each list of consumers is made samples as it arrives, so a big cluster's 10,000 stream
/// and 50,000 consumer infos are never held at once.
type Listed = (Vec<StreamSample>, BTreeMap<String, Vec<ConsumerSample>>);

/// Paged `STREAM.LIST`, then paged `CONSUMER.LIST` of the streams that have consumers.
async fn listed(admin: &Admin, at_ms: i64) -> Result<Listed, ServiceError> {
    let list = admin.map_streams(|info| stream_sample(&info, at_ms)).await?;
    let with_consumers: Vec<String> = list
        .iter()
        .filter(|s| s.consumer_count > 0)
        .map(|s| s.name.clone())
        .collect();
    let consumers: BTreeMap<String, Vec<ConsumerSample>> = futures::stream::iter(with_consumers)
        .map(|name| {
            let admin = admin.clone();
            async move {
                let got = admin
                    .list_consumers(&name)
                    .await
                    .map(|list| list.iter().map(consumer_sample).collect::<Vec<_>>());
                (name, got)
            }
        })
        .buffer_unordered(CONSUMER_LISTS_IN_FLIGHT)
        .filter_map(|(name, got)| async move {
            match got {
                Ok(list) => Some((name, list)),
                // Deleted between the two lists: its sample goes without consumers.
                Err(ServiceError::NotFound(_)) => None,
                Err(e) => {
                    tracing::debug!(stream = %name, error = %e, "consumer list failed");
                    None
                }
            }
        })
        .collect()
        .await;
    Ok((list, consumers))
}

/// How long the servers' JetStream reports are awaited: the first, then each next one.
const JSZ_FIRST: Duration = Duration::from_secs(5);
const JSZ_NEXT: Duration = Duration::from_millis(250);

/// One server's `$SYS.REQ.SERVER.PING.JSZ` answer, as far as the collector reads it.
#[derive(serde::Deserialize)]
struct JszReply {
    #[serde(default)]
    data: Option<JszData>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct JszData {
    #[serde(default)]
    account_details: Vec<JszAccount>,
}

#[derive(serde::Deserialize)]
struct JszAccount {
    name: String,
    #[serde(default)]
    stream_detail: Vec<JszStream>,
}

#[derive(serde::Deserialize)]
struct JszStream {
    #[serde(flatten)]
    info: StreamInfo,
    #[serde(default)]
    consumer_detail: Vec<ConsumerInfo>,
}

/// Every server's JetStream report of the managed account (each server the streams it
/// leads, with their configuration and consumers), asked once on the system account.
async fn jsz(admin: &Admin, system: &Admin, at_ms: i64) -> Result<Listed, ServiceError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| ServiceError::Unavailable(format!("{what}: {e}"));
    // Which account the console manages on this cluster.
    let me = tokio::time::timeout(JSZ_FIRST, admin.client().request("$SYS.REQ.USER.INFO", "".into()))
        .await
        .map_err(|_| ServiceError::Unavailable("$SYS.REQ.USER.INFO timed out".into()))?
        .map_err(|e| failed("$SYS.REQ.USER.INFO", &e))?;
    let me: serde_json::Value = serde_json::from_slice(&me.payload).map_err(|e| failed("$SYS.REQ.USER.INFO", &e))?;
    let account = me["data"]["account"]
        .as_str()
        .ok_or_else(|| ServiceError::Unavailable(format!("$SYS.REQ.USER.INFO answered without an account: {me}")))?
        .to_string();
    let client = system.client();
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| failed("subscribing to the reports", &e))?;
    let ask = serde_json::json!({
        "account": account, "accounts": true, "streams": true, "consumer": true,
        "config": true, "stream_leader_only": true,
    });
    client
        .publish_with_reply("$SYS.REQ.SERVER.PING.JSZ", inbox, ask.to_string().into())
        .await
        .map_err(|e| failed("$SYS.REQ.SERVER.PING.JSZ", &e))?;
    let mut by_name: BTreeMap<String, (StreamInfo, Vec<ConsumerInfo>)> = BTreeMap::new();
    let mut servers = 0;
    let mut wait = JSZ_FIRST;
    while let Ok(Some(m)) = tokio::time::timeout(wait, replies.next()).await {
        wait = JSZ_NEXT;
        if m.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return Err(ServiceError::Unavailable(
                "nothing answers $SYS.REQ.SERVER.PING.JSZ for these credentials; give credentials of a user in the system account".into(),
            ));
        }
        let reply: JszReply = serde_json::from_slice(&m.payload).map_err(|e| failed("a JetStream report", &e))?;
        if let Some(e) = reply.error {
            return Err(ServiceError::Unavailable(format!(
                "a server refused the JetStream report: {e}"
            )));
        }
        servers += 1;
        for acc in reply.data.into_iter().flat_map(|d| d.account_details) {
            if acc.name != account {
                continue;
            }
            for s in acc.stream_detail {
                // Each stream once: from its leader, or the most advanced replica.
                let name = s.info.config.name.clone();
                let newer = by_name
                    .get(&name)
                    .is_none_or(|(old, _)| s.info.state.last_seq > old.state.last_seq);
                if newer {
                    by_name.insert(name, (s.info, s.consumer_detail));
                }
            }
        }
    }
    let _ = replies.unsubscribe().await;
    if servers == 0 {
        return Err(ServiceError::Unavailable(format!(
            "no server answered $SYS.REQ.SERVER.PING.JSZ within {JSZ_FIRST:?}; are these credentials of the system account?"
        )));
    }
    let mut list = Vec::with_capacity(by_name.len());
    let mut consumers = BTreeMap::new();
    for (name, (info, c)) in by_name {
        list.push(stream_sample(&info, at_ms));
        if !c.is_empty() {
            consumers.insert(name, c.iter().map(consumer_sample).collect());
        }
    }
    Ok((list, consumers))
}

fn finish(mut cluster: ClusterSample, streams: BTreeMap<String, StreamSample>, started: Instant) -> Snapshot {
    cluster.streams = streams.len() as u32;
    cluster.collect_us = started.elapsed().as_micros() as u64;
    Snapshot { cluster, streams }
}

pub fn stream_sample(info: &StreamInfo, at_ms: i64) -> StreamSample {
    let st = &info.state;
    StreamSample {
        name: info.config.name.clone(),
        at_ms,
        messages: st.messages,
        bytes: st.bytes,
        first_seq: st.first_seq,
        last_seq: st.last_seq,
        first_ts_ms: parse_ms(st.first_ts.as_deref()),
        last_ts_ms: parse_ms(st.last_ts.as_deref()),
        subjects: st.num_subjects,
        deleted: st.num_deleted,
        consumer_count: st.consumer_count,
        max_msgs: info.config.max_msgs,
        max_bytes: info.config.max_bytes,
        created_ms: parse_ms(info.created.as_deref()),
        replicas: info.config.num_replicas.max(1) as u32,
        leader: info
            .cluster
            .as_ref()
            .and_then(|c| c.leader.as_deref().map(jsc_domain::shared::Shared::new)),
        mirror_lag: info.mirror.as_ref().map(|m| m.lag),
        source_lag: info
            .sources
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s.iter().map(|s| s.lag).sum()),
        message_rate: None,
        byte_rate: None,
        consumers: Vec::new(),
    }
}

pub fn consumer_sample(info: &ConsumerInfo) -> ConsumerSample {
    let last_active = [
        info.delivered.last_active.as_deref(),
        info.ack_floor.last_active.as_deref(),
    ]
    .into_iter()
    .filter_map(parse_ms)
    .max();
    ConsumerSample {
        name: info.name.clone(),
        pending: info.num_pending,
        ack_pending: info.num_ack_pending,
        redelivered: info.num_redelivered,
        waiting: info.num_waiting,
        delivered_consumer_seq: info.delivered.consumer_seq,
        delivered_stream_seq: info.delivered.stream_seq,
        ack_floor_consumer_seq: info.ack_floor.consumer_seq,
        ack_floor_stream_seq: info.ack_floor.stream_seq,
        last_active_ms: last_active,
        created_ms: parse_ms(info.created.as_deref()),
        paused: info.paused,
        description: info.config.description.clone().filter(|d| !d.is_empty()),
        leader: info
            .cluster
            .as_ref()
            .and_then(|c| c.leader.as_deref().map(jsc_domain::shared::Shared::new)),
        ..Default::default()
    }
}

/// Fills the rates of `cur` (and of its consumers) from `prev`, the same stream's previous
/// sample.
pub fn derive_stream_rates(prev: &StreamSample, cur: &mut StreamSample) {
    let dt = (cur.at_ms - prev.at_ms) as f64 / 1000.0;
    if dt <= 0.0 {
        return;
    }
    let same_stream = cur.created_ms == prev.created_ms && cur.last_seq >= prev.last_seq;
    if same_stream {
        let stored = cur.last_seq - prev.last_seq;
        cur.message_rate = Some(stored as f64 / dt);
        cur.byte_rate = Some(stored_bytes(prev, cur, stored) as f64 / dt);
    }
    let before: BTreeMap<&str, &ConsumerSample> = prev.consumers.iter().map(|c| (c.name.as_str(), c)).collect();
    for c in &mut cur.consumers {
        match before.get(c.name.as_str()) {
            Some(p) if same_stream => derive_consumer_rates(p, c, dt),
            _ => c.time_to_drain_s = (c.pending == 0).then_some(0.0),
        }
    }
}

/// Bytes stored between two samples that stored `stored` messages. Exact when nothing left
/// the stream in between (its message count grew by as many); otherwise (a purge, limits,
/// acknowledged work-queue messages) estimated at the stream's mean message size.
fn stored_bytes(prev: &StreamSample, cur: &StreamSample, stored: u64) -> u64 {
    if stored == 0 {
        return 0;
    }
    if cur.messages >= prev.messages && cur.messages - prev.messages == stored && cur.bytes >= prev.bytes {
        return cur.bytes - prev.bytes;
    }
    let (bytes, messages) = if cur.messages > 0 {
        (cur.bytes, cur.messages)
    } else {
        (prev.bytes, prev.messages)
    };
    if messages == 0 {
        return 0;
    }
    (bytes as f64 / messages as f64 * stored as f64).round() as u64
}

/// Delivery, acknowledgement and redelivery rates and the time to drain of a consumer,
/// `dt` seconds after `prev`.
pub fn derive_consumer_rates(prev: &ConsumerSample, cur: &mut ConsumerSample, dt: f64) {
    let same = cur.created_ms == prev.created_ms
        && cur.delivered_consumer_seq >= prev.delivered_consumer_seq
        && cur.ack_floor_consumer_seq >= prev.ack_floor_consumer_seq;
    if !same {
        cur.time_to_drain_s = (cur.pending == 0).then_some(0.0);
        return;
    }
    let deliveries = cur.delivered_consumer_seq - prev.delivered_consumer_seq;
    // Each first delivery moves the delivered stream sequence on by at least one, so what
    // is left over are redeliveries (exact for a consumer of every subject; a lower bound
    // for a filtered one, whose first deliveries can skip sequences).
    let first = cur.delivered_stream_seq.saturating_sub(prev.delivered_stream_seq);
    let acked = cur.ack_floor_consumer_seq - prev.ack_floor_consumer_seq;
    let ack_rate = acked as f64 / dt;
    cur.delivery_rate = Some(deliveries as f64 / dt);
    cur.ack_rate = Some(ack_rate);
    cur.redelivery_rate = Some(deliveries.saturating_sub(first) as f64 / dt);
    cur.time_to_drain_s = if cur.pending == 0 {
        Some(0.0)
    } else if ack_rate > 0.0 {
        Some(cur.pending as f64 / ack_rate)
    } else {
        None
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(at_ms: i64, messages: u64, bytes: u64, last_seq: u64) -> StreamSample {
        StreamSample {
            name: "S".into(),
            at_ms,
            messages,
            bytes,
            last_seq,
            created_ms: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn stream_rates_follow_the_last_sequence() {
        let prev = stream(0, 10, 1000, 10);
        let mut cur = stream(10_000, 30, 3000, 30);
        derive_stream_rates(&prev, &mut cur);
        assert_eq!(cur.message_rate, Some(2.0));
        assert_eq!(cur.byte_rate, Some(200.0));
    }

    #[test]
    fn a_purge_never_makes_a_negative_rate() {
        let prev = stream(0, 100, 10_000, 100);
        // Purged, then 10 more messages of 100 bytes.
        let mut cur = stream(10_000, 10, 1000, 110);
        derive_stream_rates(&prev, &mut cur);
        assert_eq!(cur.message_rate, Some(1.0));
        assert_eq!(cur.byte_rate, Some(100.0));
        // Purged with nothing new.
        let mut idle = stream(20_000, 0, 0, 110);
        derive_stream_rates(&cur, &mut idle);
        assert_eq!(idle.message_rate, Some(0.0));
        assert_eq!(idle.byte_rate, Some(0.0));
    }

    #[test]
    fn a_stream_made_again_has_no_rate_for_that_interval() {
        let prev = stream(0, 100, 10_000, 100);
        let mut cur = stream(10_000, 5, 500, 5);
        derive_stream_rates(&prev, &mut cur);
        assert_eq!(cur.message_rate, None);
        let mut recreated = stream(10_000, 200, 20_000, 200);
        recreated.created_ms = Some(2);
        derive_stream_rates(&prev, &mut recreated);
        assert_eq!(recreated.message_rate, None);
    }

    fn consumer(delivered: u64, delivered_stream: u64, acked: u64, pending: u64) -> ConsumerSample {
        ConsumerSample {
            name: "C".into(),
            delivered_consumer_seq: delivered,
            delivered_stream_seq: delivered_stream,
            ack_floor_consumer_seq: acked,
            pending,
            ..Default::default()
        }
    }

    #[test]
    fn consumer_rates_and_time_to_drain() {
        let prev = consumer(10, 10, 10, 100);
        // 30 deliveries in 10 s, 5 of them redeliveries; 20 acknowledged; 80 still pending.
        let mut cur = consumer(40, 35, 30, 80);
        derive_consumer_rates(&prev, &mut cur, 10.0);
        assert_eq!(cur.delivery_rate, Some(3.0));
        assert_eq!(cur.ack_rate, Some(2.0));
        assert_eq!(cur.redelivery_rate, Some(0.5));
        assert_eq!(cur.time_to_drain_s, Some(40.0));
        // Stalled: nothing acknowledged, something pending.
        let mut stalled = consumer(40, 35, 30, 90);
        derive_consumer_rates(&cur, &mut stalled, 10.0);
        assert_eq!(stalled.ack_rate, Some(0.0));
        assert_eq!(stalled.time_to_drain_s, None);
        // Caught up.
        let mut done = consumer(40, 35, 30, 0);
        derive_consumer_rates(&stalled, &mut done, 10.0);
        assert_eq!(done.time_to_drain_s, Some(0.0));
    }

    #[test]
    fn consumer_rates_are_not_derived_across_a_new_consumer() {
        let prev = consumer(100, 100, 100, 0);
        let mut cur = consumer(3, 3, 3, 7);
        derive_consumer_rates(&prev, &mut cur, 10.0);
        assert_eq!(cur.delivery_rate, None);
        assert_eq!(cur.time_to_drain_s, None);
    }

    #[test]
    fn account_reads_limits_as_unlimited_when_missing() {
        let a = jsc_fleet::admin::account_usage(
            &serde_json::json!({"memory": 1, "storage": 2, "streams": 3, "consumers": 4,
            "limits": {"max_storage": 100}, "api": {"total": 9, "errors": 1}}),
        );
        assert_eq!(a.storage, 2);
        assert_eq!(a.max_storage, 100);
        assert_eq!(a.max_memory, -1);
        assert_eq!(a.consumers, 4);
    }
}
