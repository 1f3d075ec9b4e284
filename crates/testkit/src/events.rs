//! What the console wrote, read straight from its event stream and its KV buckets with a
//! client of the test's own (not through the console), with the console's own event-store
//! configuration: no test names the stream or the subject prefix itself.

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use jsc_eventstore::{EventReader, EventRecord, EventStoreConfig};
use serde_json::Value;

use crate::TestApp;

/// How long [`TestApp::wait_kv`] waits for an entry to reach the expected state.
pub const KV_TIMEOUT: Duration = Duration::from_secs(15);

/// One message of the event stream as it is stored.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub headers: async_nats::HeaderMap,
    pub payload: Vec<u8>,
}

impl TestApp {
    /// The console's event-store configuration: its stream and subjects.
    pub fn event_config(&self) -> &EventStoreConfig {
        self.console.event_store().config()
    }

    /// The console's event stream.
    pub async fn event_stream(&self) -> jetstream::stream::Stream {
        self.nats
            .jetstream()
            .await
            .get_stream(&self.event_config().stream)
            .await
            .expect("the console's event stream")
    }

    /// The number of events in the stream.
    pub async fn event_count(&self) -> u64 {
        self.event_stream().await.get_info().await.unwrap().state.messages
    }

    /// The stream sequence of the newest event.
    pub async fn last_sequence(&self) -> u64 {
        self.event_stream().await.get_info().await.unwrap().state.last_sequence
    }

    async fn event_reader(&self) -> EventReader {
        EventReader::new(self.nats.client().await, self.event_config().stream.clone())
    }

    /// Every event, or every event of one aggregate type, in stream order.
    pub async fn events(&self, aggregate_type: Option<&str>) -> Vec<EventRecord> {
        self.event_reader()
            .await
            .read_range(&self.event_config().subjects(aggregate_type), 1, None)
            .await
            .expect("read the event stream")
    }

    /// The events after stream sequence `seq` (e.g. [`TestApp::baseline`]: all the test wrote).
    pub async fn events_since(&self, seq: u64) -> Vec<EventRecord> {
        self.event_reader()
            .await
            .read_range(&self.event_config().subjects(None), seq + 1, None)
            .await
            .expect("read the event stream")
    }

    /// The events of one aggregate, oldest first.
    pub async fn events_of(&self, aggregate_type: &str, id: &str) -> Vec<EventRecord> {
        let subject = self.console.event_store().subject(aggregate_type, id);
        self.event_reader()
            .await
            .read_subject(&subject, 1)
            .await
            .expect("read the event stream")
    }

    /// Every message of the event stream, in order, headers and body as stored.
    pub async fn raw_events(&self) -> Vec<RawEvent> {
        let mut stream = self.event_stream().await;
        let last = stream.info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        if last == 0 {
            return out;
        }
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        while let Some(m) = messages.next().await {
            let m = m.unwrap();
            out.push(RawEvent {
                headers: m.headers.clone().unwrap_or_default(),
                payload: m.payload.to_vec(),
            });
            if m.info().unwrap().stream_sequence == last {
                break;
            }
        }
        out
    }

    /// Waits, on a KV watch rather than a timer, until the entry `key` of `bucket` (read as
    /// JSON; `None` when there is none) satisfies `done`. Waits for the bucket to exist
    /// first; fails after [`KV_TIMEOUT`].
    pub async fn wait_kv(&self, bucket: &str, key: &str, done: impl Fn(Option<&Value>) -> bool) {
        let js = self.nats.jetstream().await;
        let json = |b: &[u8]| serde_json::from_slice::<Value>(b).expect("a JSON entry");
        let wait = async {
            let kv = loop {
                if let Ok(kv) = js.get_key_value(bucket).await {
                    break kv;
                }
                tokio::task::yield_now().await;
            };
            let mut watch = kv.watch_with_history(key).await.unwrap();
            let current = kv.get(key).await.unwrap().map(|b| json(&b));
            if done(current.as_ref()) {
                return;
            }
            while let Some(Ok(entry)) = watch.next().await {
                let value = match entry.operation {
                    jetstream::kv::Operation::Put => Some(json(&entry.value)),
                    _ => None,
                };
                if done(value.as_ref()) {
                    return;
                }
            }
            panic!("the watch of {bucket}/{key} ended");
        };
        tokio::time::timeout(KV_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("{bucket}/{key} did not reach the expected state"));
    }
}
