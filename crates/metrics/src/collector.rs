//! The collector: one task per managed cluster, sampling it every interval and publishing
//! the sample to the metrics stream. The set of clusters (and each one's interval) is
//! looked at again every few seconds; a cluster removed stops being sampled, a cluster
//! whose interval changed is sampled at the new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jsc_domain::stream::ServiceError;
use jsc_fleet::admin::Admin;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sample::Snapshot;

/// How often the collector looks for clusters added, removed or re-configured.
pub const RESCAN: Duration = Duration::from_secs(2);

/// What the collector samples.
pub trait Targets: Send + Sync + 'static {
    /// Every cluster to sample, with its interval.
    fn clusters(&self) -> Vec<(String, Duration)>;
    /// Admin calls on one cluster.
    fn admin(&self, cluster_id: &str) -> BoxFuture<'_, Result<Admin, ServiceError>>;
    /// Admin calls on one cluster's system account, when the cluster has credentials for it.
    fn system(&self, _cluster_id: &str) -> BoxFuture<'_, Option<Result<Admin, ServiceError>>> {
        Box::pin(async { None })
    }
    /// The last sample of a cluster (to derive the first rates from after a restart).
    fn previous(&self, cluster_id: &str) -> Option<Arc<Snapshot>>;
    /// Streams left out of samples (the console's own).
    fn skip_stream(&self, _name: &str) -> bool {
        false
    }
}

/// Where samples go.
pub trait Sink: Send + Sync + 'static {
    fn publish(&self, snapshot: Arc<Snapshot>) -> BoxFuture<'_, Result<(), String>>;
}

/// Samples every target until `shutdown`.
pub async fn run(targets: Arc<dyn Targets>, sink: Arc<dyn Sink>, shutdown: CancellationToken) {
    let mut running: HashMap<String, (Duration, CancellationToken, JoinHandle<()>)> = HashMap::new();
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = rescan.tick() => {}
        }
        let wanted: HashMap<String, Duration> = targets.clusters().into_iter().collect();
        running.retain(|id, (interval, token, _)| {
            let keep = wanted.get(id) == Some(interval);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (id, interval) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let token = shutdown.child_token();
            let task = tokio::spawn(sample_every(
                targets.clone(),
                sink.clone(),
                id.clone(),
                interval,
                token.clone(),
            ));
            running.insert(id, (interval, token, task));
        }
    }
    for (_, (_, token, task)) in running {
        token.cancel();
        let _ = task.await;
    }
}

async fn sample_every(
    targets: Arc<dyn Targets>,
    sink: Arc<dyn Sink>,
    cluster_id: String,
    interval: Duration,
    token: CancellationToken,
) {
    let mut previous = targets.previous(&cluster_id);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let sampled = async {
            let admin = targets.admin(&cluster_id).await;
            let system = targets.system(&cluster_id).await;
            let skip = |name: &str| targets.skip_stream(name);
            crate::collect::sample(admin, system, &cluster_id, interval, previous.as_deref(), &skip).await
        };
        let snapshot = tokio::select! {
            _ = token.cancelled() => return,
            s = sampled => Arc::new(s),
        };
        tracing::debug!(cluster = %cluster_id, at = snapshot.cluster.at_ms, collect_us = snapshot.cluster.collect_us, "sampled");
        let labels = [("cluster", cluster_id.clone())];
        metrics::histogram!("jsconsole_collector_duration_seconds", &labels)
            .record(snapshot.cluster.collect_us as f64 / 1e6);
        let outcome = match sink.publish(snapshot.clone()).await {
            Ok(()) if snapshot.cluster.error.is_none() => "ok",
            Ok(()) => "partial",
            Err(e) => {
                tracing::warn!(cluster = %cluster_id, error = %e, "a metrics sample was lost");
                "lost"
            }
        };
        metrics::counter!("jsconsole_collector_samples_total", "cluster" => cluster_id.clone(), "outcome" => outcome)
            .increment(1);
        // Rates come from the previous sample that had the stream, so a failed read of a
        // cluster does not reset them.
        if !snapshot.streams.is_empty() || snapshot.cluster.error.is_none() {
            previous = Some(snapshot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        clusters: Mutex<Vec<(String, Duration)>>,
        published: Mutex<Vec<(String, i64)>>,
    }

    impl Targets for Fake {
        fn clusters(&self) -> Vec<(String, Duration)> {
            self.clusters.lock().unwrap().clone()
        }
        fn admin(&self, _: &str) -> BoxFuture<'_, Result<Admin, ServiceError>> {
            Box::pin(async { Err(ServiceError::Unavailable("down for the test".into())) })
        }
        fn previous(&self, _: &str) -> Option<Arc<Snapshot>> {
            None
        }
    }

    impl Sink for Fake {
        fn publish(&self, s: Arc<Snapshot>) -> BoxFuture<'_, Result<(), String>> {
            self.published
                .lock()
                .unwrap()
                .push((s.cluster.cluster_id.clone(), s.cluster.interval_ms as i64));
            assert!(!s.cluster.up);
            assert_eq!(s.cluster.error.as_deref(), Some("down for the test"));
            Box::pin(async { Ok(()) })
        }
    }

    fn count(f: &Fake, id: &str) -> usize {
        f.published.lock().unwrap().iter().filter(|(c, _)| c == id).count()
    }

    /// Lets every task that is ready run (time does not move).
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    /// Moves paused time on by `d`, a second at a time, letting every task run in between.
    async fn step(d: Duration) {
        for _ in 0..d.as_secs() {
            tokio::time::advance(Duration::from_secs(1)).await;
            settle().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_cluster_is_sampled_at_its_interval_until_removed() {
        let fake = Arc::new(Fake::default());
        *fake.clusters.lock().unwrap() = vec![
            ("a".into(), Duration::from_secs(10)),
            ("b".into(), Duration::from_secs(30)),
        ];
        let token = CancellationToken::new();
        let task = tokio::spawn(run(fake.clone(), fake.clone(), token.clone()));
        settle().await;
        // First samples at once.
        assert_eq!((count(&fake, "a"), count(&fake, "b")), (1, 1));
        step(Duration::from_secs(30)).await;
        assert_eq!((count(&fake, "a"), count(&fake, "b")), (4, 2));
        // b goes; a moves to 5 s.
        *fake.clusters.lock().unwrap() = vec![("a".into(), Duration::from_secs(5))];
        step(RESCAN).await;
        let (a, b) = (count(&fake, "a"), count(&fake, "b"));
        step(Duration::from_secs(20)).await;
        assert_eq!(count(&fake, "b"), b, "a removed cluster is no longer sampled");
        assert!(count(&fake, "a") >= a + 4, "sampled every 5 s now");
        assert!(
            fake.published
                .lock()
                .unwrap()
                .iter()
                .any(|(c, ms)| c == "a" && *ms == 5000),
            "samples carry their interval"
        );
        token.cancel();
        task.await.unwrap();
    }
}
