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
    /// Samples this process is publishing (cluster, time): their records are not read back
    /// from the stream, since the whole sample is handed over once published
    /// ([`Latest::publishing`], [`Latest::published`]).
    publishing: HashMap<String, i64>,
}

impl State {
    /// Applies one record; returns the snapshot it completed, if any.
    fn apply(&mut self, record: Record) -> Option<Arc<Snapshot>> {
        match record {
            Record::Stream(cluster, s) => {
                if self.has(&cluster, s.at_ms) {
                    return None;
                }
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
                if self.has(&c.cluster_id, c.at_ms) {
                    if self.incoming.get(&c.cluster_id).is_some_and(|i| i.0 <= c.at_ms) {
                        self.incoming.remove(&c.cluster_id);
                    }
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
                self.put(Arc::new(Snapshot { cluster: c, streams }))
            }
        }
    }

    /// Whether the sample of `cluster` taken at `at_ms` needs no reading: a sample as new
    /// is already held, or this process is publishing it.
    fn has(&self, cluster: &str, at_ms: i64) -> bool {
        self.holds(cluster, at_ms) || self.publishing.get(cluster).is_some_and(|at| *at == at_ms)
    }

    /// Whether a sample of `cluster` taken at `at_ms` or later is held.
    fn holds(&self, cluster: &str, at_ms: i64) -> bool {
        self.clusters.get(cluster).is_some_and(|old| old.cluster.at_ms >= at_ms)
    }

    /// Holds a whole sample, unless one as new is held.
    fn put(&mut self, snapshot: Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        let id = &snapshot.cluster.cluster_id;
        if self.holds(id, snapshot.cluster.at_ms) {
            return None;
        }
        self.clusters.insert(id.clone(), snapshot.clone());
        Some(snapshot)
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

    /// Says that this process is about to publish `snapshot`'s records: they are not read
    /// back from the stream, so a sample is held once, shared with the collector, rather
    /// than once more as it is read back. Follow with [`Self::published`].
    pub fn publishing(&self, snapshot: &Snapshot) {
        let mut st = self.state.lock().expect("latest lock");
        let c = &snapshot.cluster;
        st.publishing.insert(c.cluster_id.clone(), c.at_ms);
    }

    /// Ends [`Self::publishing`]: the sample is held when it was published (`ok`), and left
    /// out when it was not, as it is from every replica that reads the stream.
    pub fn published(&self, snapshot: Arc<Snapshot>, ok: bool) {
        let done = {
            let mut st = self.state.lock().expect("latest lock");
            st.publishing.remove(&snapshot.cluster.cluster_id);
            if ok { st.put(snapshot) } else { None }
        };
        if let Some(s) = done {
            let _ = self.live.send(s);
        }
    }

    /// Forgets a cluster (removed from the console).
    pub fn forget(&self, cluster_id: &str) {
        let mut st = self.state.lock().expect("latest lock");
        st.clusters.remove(cluster_id);
        st.incoming.remove(cluster_id);
        st.publishing.remove(cluster_id);
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

    #[test]
    fn a_sample_published_here_is_held_once_and_not_read_back() {
        let latest = Latest::default();
        let mut live = latest.subscribe();
        let mine = Arc::new(Snapshot {
            cluster: ClusterSample {
                cluster_id: "c".into(),
                at_ms: 10,
                streams: 1,
                ..Default::default()
            },
            streams: [("A".to_string(), StreamSample::default())].into(),
        });
        latest.publishing(&mine);
        // Its records, read back from the stream while it is published, are left alone.
        latest.apply(stream("A", 10));
        latest.apply(cluster(10, 1));
        assert!(latest.get("c").is_none());
        assert!(live.try_recv().is_err());
        latest.published(mine.clone(), true);
        assert!(Arc::ptr_eq(&latest.get("c").unwrap(), &mine));
        assert!(Arc::ptr_eq(&live.try_recv().unwrap(), &mine));
        assert!(latest.state.lock().unwrap().incoming.is_empty());

        // One that could not be published is not held: no replica reading the stream has it.
        let lost = Arc::new(Snapshot {
            cluster: ClusterSample {
                cluster_id: "c".into(),
                at_ms: 20,
                ..Default::default()
            },
            streams: Default::default(),
        });
        latest.publishing(&lost);
        latest.published(lost, false);
        assert_eq!(latest.get("c").unwrap().cluster.at_ms, 10);
        // Samples from the stream are read again after it.
        latest.apply(stream("A", 30));
        latest.apply(cluster(30, 1));
        assert_eq!(latest.get("c").unwrap().cluster.at_ms, 30);
    }
}
