//! The home connection coming back, told to the long-lived readers of the home NATS.

use tokio::sync::watch;

/// Counts the home connection's reconnects. A reader that follows a stream (a view's
/// watch, the projections' consumer) makes its consumer again at once when the count
/// moves: the server that came back may be a restarted one that lost it, and waiting to
/// miss its heartbeats took 10 to 15 s.
#[derive(Clone)]
pub struct Reconnects(watch::Sender<u64>);

impl Default for Reconnects {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Reconnects {
    /// The connection is up again.
    pub fn connected(&self) {
        self.0.send_modify(|n| *n += 1);
    }

    /// Counts, as a reconnect, every new leader of a stream for which `followed` holds, until
    /// `shutdown`: on a cluster, an ordered consumer lives on its stream's leader and dies
    /// with it, and its reader would otherwise only notice after missing heartbeats (10 s or
    /// more) though the connection never dropped.
    pub async fn on_new_leaders(
        &self,
        client: async_nats::Client,
        followed: impl Fn(&str) -> bool,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
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
            if followed(stream) {
                tracing::info!(
                    stream,
                    "a stream the console follows has a new leader; its readers start over"
                );
                self.connected();
            }
        }
    }

    /// A receiver that wakes on the next reconnect (not on those before).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// The wait between two attempts of a long-lived reader of the home NATS: 100 ms, doubling
/// up to 5 s while attempts keep failing, and cut short (back to 100 ms) as soon as the
/// home connection is up again, so a reader is back within moments of its NATS rather
/// than after the backoff an outage built up.
pub(crate) struct Backoff {
    delay: std::time::Duration,
    reconnected: Option<watch::Receiver<u64>>,
}

impl Backoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(100);
    const MAX: std::time::Duration = std::time::Duration::from_secs(5);

    /// Listens to `reconnects` from now on (a reconnect during an attempt ends the next wait).
    pub(crate) fn new(reconnects: Option<&Reconnects>) -> Self {
        Self {
            delay: Self::FIRST,
            reconnected: reconnects.map(Reconnects::subscribe),
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

/// Waits for the next reconnect on `rx`; never, without one.
pub(crate) async fn next(rx: &mut Option<watch::Receiver<u64>>) {
    if let Some(rx) = rx
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_backoff_grows_while_attempts_fail_and_ends_when_the_connection_is_back() {
        let r = Reconnects::default();
        let mut b = Backoff::new(Some(&r));
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
        let mut rx = Some(r.subscribe());
        let woke = tokio::time::timeout(std::time::Duration::from_millis(20), next(&mut rx)).await;
        assert!(woke.is_err(), "an earlier reconnect does not wake it");
        r.connected();
        tokio::time::timeout(std::time::Duration::from_secs(5), next(&mut rx))
            .await
            .expect("a later one does");
    }
}
