//! The latest whole sample of every cluster, kept in memory by every console replica from
//! the metrics stream (last message per subject at start, then each new one), and handed
//! to live subscribers as each sample completes.
//!
//! Every replica reads the same stream, so every replica answers the same whichever one
//! runs the collector.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::sample::{Record, SUBJECT_PREFIX, Snapshot, StreamSample};
use crate::store::METRICS_STREAM;

/// Completed samples not yet taken by a slow live subscriber are dropped beyond this.
const LIVE_BUFFER: usize = 256;

#[derive(Default)]
struct State {
    clusters: HashMap<String, Arc<Snapshot>>,
    /// Stream samples of a sample whose cluster part has not arrived yet.
    incoming: HashMap<String, (i64, BTreeMap<String, StreamSample>)>,
}

impl State {
    /// Applies one record; returns the snapshot it completed, if any.
    fn apply(&mut self, record: Record) -> Option<Arc<Snapshot>> {
        match record {
            Record::Stream(cluster, s) => {
                let slot = self
                    .incoming
                    .entry(cluster)
                    .or_insert_with(|| (s.at_ms, BTreeMap::new()));
                if s.at_ms > slot.0 {
                    *slot = (s.at_ms, BTreeMap::new());
                }
                if s.at_ms == slot.0 {
                    slot.1.insert(s.name.clone(), s);
                }
                None
            }
            Record::Cluster(c) => {
                if self
                    .clusters
                    .get(&c.cluster_id)
                    .is_some_and(|old| old.cluster.at_ms > c.at_ms)
                {
                    return None;
                }
                let streams = match self.incoming.remove(&c.cluster_id) {
                    Some((at, streams)) if at == c.at_ms => streams,
                    Some(newer) if newer.0 > c.at_ms => {
                        self.incoming.insert(c.cluster_id.clone(), newer);
                        BTreeMap::new()
                    }
                    _ => BTreeMap::new(),
                };
                let snapshot = Arc::new(Snapshot { cluster: c, streams });
                self.clusters
                    .insert(snapshot.cluster.cluster_id.clone(), snapshot.clone());
                Some(snapshot)
            }
        }
    }
}

/// Puts whole samples back together from the records of the metrics stream, read in the
/// order they were published (a cluster's stream records, then its cluster record).
#[derive(Default)]
pub struct Assembler(State);

impl Assembler {
    /// Takes one record; answers the sample it completed, if any.
    pub fn push(&mut self, record: Record) -> Option<Arc<Snapshot>> {
        self.0.apply(record)
    }
}

/// The latest sample of every cluster. Cheap to clone.
#[derive(Clone)]
pub struct Latest {
    state: Arc<Mutex<State>>,
    live: broadcast::Sender<Arc<Snapshot>>,
    caught_up: watch::Sender<bool>,
}

impl Default for Latest {
    fn default() -> Self {
        Self {
            state: Default::default(),
            live: broadcast::channel(LIVE_BUFFER).0,
            caught_up: watch::channel(false).0,
        }
    }
}

impl Latest {
    /// The latest whole sample of a cluster.
    pub fn get(&self, cluster_id: &str) -> Option<Arc<Snapshot>> {
        self.state
            .lock()
            .expect("latest lock")
            .clusters
            .get(cluster_id)
            .cloned()
    }

    /// The latest sample of every cluster.
    pub fn all(&self) -> Vec<Arc<Snapshot>> {
        self.state
            .lock()
            .expect("latest lock")
            .clusters
            .values()
            .cloned()
            .collect()
    }

    /// Each sample as it completes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Snapshot>> {
        self.live.subscribe()
    }

    /// Whether the stream has been read up to where it stood at start.
    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }

    /// Waits until the stream has been read up to where it stood at start.
    pub async fn caught_up(&self) {
        let mut rx = self.caught_up.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Applies a record read from the stream (or just published by this process).
    pub fn apply(&self, record: Record) {
        let done = self.state.lock().expect("latest lock").apply(record);
        if let Some(s) = done {
            let _ = self.live.send(s);
        }
    }

    /// Forgets a cluster (removed from the console).
    pub fn forget(&self, cluster_id: &str) {
        let mut st = self.state.lock().expect("latest lock");
        st.clusters.remove(cluster_id);
        st.incoming.remove(cluster_id);
    }

    /// Follows the metrics stream until `shutdown`: the last message of every subject, then
    /// every new one; starts again after an error, from the last message of every subject.
    pub async fn run(self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let followed = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.follow(&js) => r,
            };
            if let Err(e) = followed {
                tracing::warn!(error = %e, "reading the metrics stream failed; retrying");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn follow(&self, js: &jetstream::Context) -> Result<(), String> {
        let stream = js.get_stream(METRICS_STREAM).await.map_err(|e| e.to_string())?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{SUBJECT_PREFIX}.>"),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let initial = consumer.cached_info().num_pending;
        if initial == 0 {
            self.caught_up.send_replace(true);
        }
        let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| e.to_string())?;
            let pending = m.info().map(|i| i.pending).unwrap_or(0);
            match Record::decode(&m.subject, &m.payload) {
                Ok(r) => self.apply(r),
                Err(e) => tracing::debug!(error = %e, "skipping an unreadable sample"),
            }
            if pending == 0 && !self.is_caught_up() {
                self.caught_up.send_replace(true);
            }
        }
        Err("the metrics stream consumer ended".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::ClusterSample;

    fn stream(name: &str, at: i64) -> Record {
        Record::Stream(
            "c".into(),
            StreamSample {
                name: name.into(),
                at_ms: at,
                ..Default::default()
            },
        )
    }

    fn cluster(at: i64, streams: u32) -> Record {
        Record::Cluster(ClusterSample {
            cluster_id: "c".into(),
            at_ms: at,
            streams,
            ..Default::default()
        })
    }

    #[test]
    fn a_sample_is_whole_when_its_cluster_part_arrives() {
        let latest = Latest::default();
        let mut live = latest.subscribe();
        latest.apply(stream("A", 10));
        latest.apply(stream("B", 10));
        assert!(latest.get("c").is_none());
        latest.apply(cluster(10, 2));
        let got = latest.get("c").unwrap();
        assert_eq!(got.streams.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(live.try_recv().unwrap().cluster.at_ms, 10);
        // The next sample no longer has B (deleted): it leaves the latest state.
        latest.apply(stream("A", 20));
        latest.apply(cluster(20, 1));
        assert_eq!(latest.get("c").unwrap().streams.keys().collect::<Vec<_>>(), ["A"]);
    }

    #[test]
    fn older_parts_never_replace_newer_ones() {
        let latest = Latest::default();
        // As the last message of each subject arrives at start: a deleted stream's old
        // sample, then the newest sample's parts.
        latest.apply(stream("GONE", 5));
        latest.apply(stream("A", 10));
        latest.apply(stream("GONE", 5));
        latest.apply(cluster(10, 1));
        assert_eq!(latest.get("c").unwrap().streams.keys().collect::<Vec<_>>(), ["A"]);
        latest.apply(cluster(5, 1));
        assert_eq!(latest.get("c").unwrap().cluster.at_ms, 10);
    }
}
