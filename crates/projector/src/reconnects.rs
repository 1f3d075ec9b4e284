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

    /// A receiver that wakes on the next reconnect (not on those before).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
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
