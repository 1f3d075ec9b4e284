//! The home connection coming back, or a followed stream getting a new leader, told to the
//! long-lived readers of the home NATS.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

/// Tells the readers that follow a stream (a view's watch, the projections' consumer) to
/// make their consumer again at once: when the home connection comes back (the server may
/// be a restarted one that lost it), and when their stream gets a new leader on a home
/// cluster (an ordered consumer lives on the leader and dies with it). Waiting to miss
/// heartbeats instead took 10 to 15 s.
#[derive(Clone)]
pub struct Reconnects {
    connected: watch::Sender<u64>,
    elected: broadcast::Sender<Arc<str>>,
}

impl Default for Reconnects {
    fn default() -> Self {
        Self {
            connected: watch::channel(0).0,
            elected: broadcast::channel(64).0,
        }
    }
}

/// What one reader listens to: every reconnect, and new leaders of its own stream.
pub struct Listener {
    connected: watch::Receiver<u64>,
    elected: broadcast::Receiver<Arc<str>>,
    stream: String,
}

impl Reconnects {
    /// The connection is up again.
    pub fn connected(&self) {
        self.connected.send_modify(|n| *n += 1);
    }

    /// The stream `stream` has a new leader.
    pub fn elected(&self, stream: &str) {
        let _ = self.elected.send(Arc::from(stream));
    }

    /// A listener for the reader of `stream`, woken by what happens from now on.
    pub fn subscribe(&self, stream: impl Into<String>) -> Listener {
        Listener {
            connected: self.connected.subscribe(),
            elected: self.elected.subscribe(),
            stream: stream.into(),
        }
    }

    /// Tells the readers of each stream that gets a new leader, until `shutdown`.
    pub async fn on_new_leaders(&self, client: async_nats::Client, shutdown: tokio_util::sync::CancellationToken) {
        use futures::StreamExt;
        let mut elected = match client.subscribe("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.>").await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the home streams' leader elections");
                return;
            }
        };
        loop {
            let m = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = elected.next() => m,
            };
            let Some(m) = m else { return };
            let stream = m.subject.rsplit('.').next().unwrap_or_default();
            tracing::info!(stream, "a home stream has a new leader; its readers start over");
            self.elected(stream);
        }
    }
}

/// The wait between two attempts of a long-lived reader of the home NATS: 100 ms, doubling
/// up to 5 s while attempts keep failing, and cut short (back to 100 ms) as soon as the
/// home connection is up again, so a reader is back within moments of its NATS rather
/// than after the backoff an outage built up.
pub(crate) struct Backoff {
    delay: std::time::Duration,
    reconnected: Option<Listener>,
}

impl Backoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const MAX: std::time::Duration = std::time::Duration::from_secs(5);

    /// Listens to `reconnects` for the reader of `stream` from now on (a reconnect during
    /// an attempt ends the next wait).
    pub(crate) fn new(reconnects: Option<&Reconnects>, stream: &str) -> Self {
        Self {
            delay: Self::FIRST,
            reconnected: reconnects.map(|r| r.subscribe(stream)),
        }
    }

    /// Waits before the next attempt.
    pub(crate) async fn wait(&mut self) {
        tokio::select! {
            _ = tokio::time::sleep(self.delay) => self.delay = (self.delay * 2).min(Self::MAX),
            _ = next(&mut self.reconnected) => self.delay = Self::FIRST,
        }
    }
}

/// Waits for the next reconnect, or new leader of the listener's stream; never, without a
/// listener.
pub(crate) async fn next(listener: &mut Option<Listener>) {
    let Some(l) = listener else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            r = l.connected.changed() => match r {
                Ok(()) => return,
                Err(_) => return std::future::pending().await,
            },
            e = l.elected.recv() => match e {
                Ok(stream) if *stream == *l.stream => return,
                Ok(_) => {}
                // Some were missed: one of them may have been this stream's.
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_backoff_grows_while_attempts_fail_and_ends_when_the_connection_is_back() {
        let r = Reconnects::default();
        let mut b = Backoff::new(Some(&r), "S");
        let t0 = tokio::time::Instant::now();
        b.wait().await;
        b.wait().await;
        b.wait().await;
        assert_eq!(t0.elapsed(), std::time::Duration::from_millis(700));
        // Back during an attempt: the next wait ends at once, and the delay starts over.
        r.connected();
        let t1 = tokio::time::Instant::now();
        b.wait().await;
        assert_eq!(t1.elapsed(), std::time::Duration::ZERO);
        b.wait().await;
        assert_eq!(t1.elapsed(), std::time::Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_receiver_wakes_on_reconnects_after_it_subscribed_only() {
        let r = Reconnects::default();
        r.connected();
        let mut rx = Some(r.subscribe("S"));
        let woke = tokio::time::timeout(std::time::Duration::from_millis(20), next(&mut rx)).await;
        assert!(woke.is_err(), "an earlier reconnect does not wake it");
        r.connected();
        tokio::time::timeout(std::time::Duration::from_secs(5), next(&mut rx))
            .await
            .expect("a later one does");
    }

    #[tokio::test]
    async fn a_receiver_wakes_on_a_new_leader_of_its_own_stream_only() {
        let r = Reconnects::default();
        let mut rx = Some(r.subscribe("KV_view_clusters_v1"));
        r.elected("KV_view_users_v1");
        r.elected("CONSOLE_EVENTS");
        let woke = tokio::time::timeout(std::time::Duration::from_millis(20), next(&mut rx)).await;
        assert!(woke.is_err(), "other streams' leaders do not wake it");
        r.elected("KV_view_clusters_v1");
        tokio::time::timeout(std::time::Duration::from_secs(5), next(&mut rx))
            .await
            .expect("its own stream's does");
    }
}
