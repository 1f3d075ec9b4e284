//! Live changes, the one way: a view's changes as a stream, and live state polled into
//! changes. Every subscription of the API is built from these.

use std::collections::HashMap;
use std::time::Duration;

use futures::{Stream, StreamExt};
use jsc_projector::{ViewCache, ViewChange};
use tokio::sync::broadcast::{self, error::RecvError};

/// Every change `view` applies from now on. A subscriber that fell behind skips what it
/// missed (logged; the next change carries the current value), and the stream ends when
/// the view stops.
pub fn view_changes<V>(view: &ViewCache<V>, what: &'static str) -> impl Stream<Item = ViewChange<V>> + Send + use<V>
where
    V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    broadcast_stream(view.subscribe(), what)
}

/// A broadcast receiver as a stream. A subscriber that fell behind skips what it missed
/// (logged, naming `what`) and goes on with the newest; the stream ends when the sender goes.
pub fn broadcast_stream<T: Clone + Send + 'static>(
    rx: tokio::sync::broadcast::Receiver<T>,
    what: &'static str,
) -> impl Stream<Item = T> + Send + use<T> {
    futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => return Some((v, rx)),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, feed = what, "a subscriber fell behind; changes skipped");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// Polls live state every `every` and yields what changed since the previous poll (the
/// first poll yields everything: the state when the subscription started). A poll that
/// fails (`None`) yields nothing and is tried again next time.
pub fn poll_changes<T, F, Fut>(every: Duration, mut poll: F) -> impl Stream<Item = Vec<(String, T)>> + Send
where
    T: Clone + PartialEq + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<HashMap<String, T>>> + Send,
{
    let mut last: HashMap<String, T> = HashMap::new();
    let ticks = futures::stream::unfold(tokio::time::interval(every), |mut i| async move {
        i.tick().await;
        Some(((), i))
    });
    ticks.then(move |_| poll()).filter_map(move |now| {
        let out = now.and_then(|now| {
            let changed: Vec<(String, T)> = now
                .iter()
                .filter(|(k, v)| last.get(*k) != Some(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            last = now;
            Some(changed).filter(|c| !c.is_empty())
        });
        futures::future::ready(out)
    })
}

/// Waits for the next change on a view (a lagging receiver still counts as a change; a
/// closed one never fires again).
pub(crate) async fn changed<V: Clone>(rx: &mut broadcast::Receiver<V>) {
    match rx.recv().await {
        Ok(_) | Err(RecvError::Lagged(_)) => {}
        Err(RecvError::Closed) => std::future::pending().await,
    }
}

impl crate::Console {
    /// Every change the clusters view applies from now on.
    pub fn cluster_changes(&self) -> impl Stream<Item = ViewChange<jsc_projections::ClusterView>> + Send + use<> {
        view_changes(&self.views.clusters, "clusters")
    }

    /// Every change the streams view applies from now on.
    pub fn stream_changes(&self) -> impl Stream<Item = ViewChange<jsc_projections::StreamView>> + Send + use<> {
        view_changes(&self.views.streams, "streams")
    }

    /// Every change the alerts view applies from now on.
    pub fn alert_changes(&self) -> impl Stream<Item = ViewChange<jsc_projections::alerts::AlertView>> + Send + use<> {
        view_changes(&self.views.alerts, "alerts")
    }

    /// Every change the consumers view applies from now on.
    pub fn consumer_changes(&self) -> impl Stream<Item = ViewChange<jsc_projections::ConsumerView>> + Send + use<> {
        view_changes(&self.views.consumers, "consumers")
    }
}
