//! Baselines that separate the console's overhead from the design's.
//!
//! The console commits a command as one JetStream publish that carries its event headers, a
//! fresh `Nats-Msg-Id` and `Nats-Expected-Last-Subject-Sequence` (so at most one publish per
//! aggregate is in flight), with a JSON body a few hundred bytes long. The baselines here do
//! exactly that and nothing else: no aggregate, no serialization, no hashing, no GraphQL. The
//! gap between plain publish and these is the design's cost; the gap between these and the
//! console is the console's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use async_nats::{HeaderMap, HeaderName, jetstream};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jsc_eventstore::{JetStreamEventStore, encode_id, headers};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Stream of the event-shaped raw publishes (configured like the console's event stream).
pub const RAW_EVENTS_STREAM: &str = "RAW_EVENTS";
const RAW_EVENTS_PREFIX: &str = "rawev";

/// The wire shape of one real event, as the console stored it.
pub struct EventShape {
    /// The event headers (`Jsc-…`) of the stored event.
    headers: Vec<(HeaderName, String)>,
    aggregate_type: String,
    /// The stored body itself (so the size is the same to the byte).
    body: Bytes,
}

impl EventShape {
    /// The shape of the last event stored on `subject` in the console's stream.
    pub async fn of_last_event(js: &jetstream::Context, stream: &str, subject: &str) -> anyhow::Result<Self> {
        let msg = js
            .get_stream(stream)
            .await?
            .direct_get_last_for_subject(subject)
            .await
            .with_context(|| format!("read the last event on {subject}"))?;
        let event_headers: Vec<(HeaderName, String)> = msg
            .headers
            .iter()
            .filter(|(name, _)| {
                let n: &str = name.as_ref();
                n.to_ascii_lowercase().starts_with("jsc-")
            })
            .filter_map(|(name, values)| Some((name.clone(), values.last()?.as_str().to_string())))
            .collect();
        if event_headers.is_empty() {
            bail!("the event on {subject} carries no Jsc- headers: has the event format changed?");
        }
        let aggregate_type = msg
            .headers
            .get(headers::AGGREGATE_TYPE)
            .map_or("cluster", |v| v.as_str())
            .to_string();
        Ok(Self {
            headers: event_headers,
            aggregate_type,
            body: msg.payload,
        })
    }

    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The headers of one publish on aggregate `encoded_id`: the stored event's, with a
    /// fresh commit id (the console's `Nats-Msg-Id` is `<commit id>:<index>`) and the
    /// expected last sequence of the subject.
    fn headers_for(&self, encoded_id: &str, expected_last: u64) -> HeaderMap {
        let commit_id = uuid::Uuid::now_v7().to_string();
        let mut h = HeaderMap::new();
        for (name, value) in &self.headers {
            let n: &str = name.as_ref();
            if n.eq_ignore_ascii_case(headers::COMMIT_ID) {
                h.insert(name.clone(), commit_id.as_str());
            } else if n.eq_ignore_ascii_case(headers::AGGREGATE_ID) {
                h.insert(name.clone(), encoded_id);
            } else {
                h.insert(name.clone(), value.as_str());
            }
        }
        h.insert(headers::MSG_ID, format!("{commit_id}:0").as_str());
        h.insert(
            headers::EXPECTED_LAST_SUBJECT_SEQUENCE,
            expected_last.to_string().as_str(),
        );
        h
    }
}

/// Publishes event-shaped messages, one subject per aggregate id, each with the subject's
/// last sequence (remembered from the previous ack, as the console's cache does) expected.
/// Cheap to clone.
#[derive(Clone)]
pub struct EventPublisher {
    js: jetstream::Context,
    shape: Arc<EventShape>,
    last: Arc<Mutex<HashMap<String, u64>>>,
}

impl EventPublisher {
    /// (Re)creates [`RAW_EVENTS_STREAM`] with the settings of the console's event stream.
    pub async fn create(
        js: jetstream::Context,
        store: &JetStreamEventStore,
        shape: EventShape,
    ) -> anyhow::Result<Self> {
        let _ = js.delete_stream(RAW_EVENTS_STREAM).await;
        js.create_stream(jetstream::stream::Config {
            name: RAW_EVENTS_STREAM.into(),
            description: None,
            subjects: vec![format!("{RAW_EVENTS_PREFIX}.>")],
            ..store.stream_config()
        })
        .await
        .context("create the raw events stream")?;
        Ok(Self {
            js,
            shape: Arc::new(shape),
            last: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn body_len(&self) -> usize {
        self.shape.body_len()
    }

    /// One publish on aggregate `id`'s subject, awaiting its ack; returns its stream sequence.
    pub async fn publish(&self, id: &str) -> anyhow::Result<u64> {
        let encoded = encode_id(id);
        let subject = format!("{RAW_EVENTS_PREFIX}.{}.{encoded}", self.shape.aggregate_type);
        let expected = self.last.lock().expect("last lock").get(id).copied().unwrap_or(0);
        let ack = self
            .js
            .publish_with_headers(
                subject,
                self.shape.headers_for(&encoded, expected),
                self.shape.body.clone(),
            )
            .await?
            .await
            .with_context(|| format!("raw event publish on {id}, expecting {expected}"))?;
        if ack.duplicate {
            bail!("a raw event publish was taken for a duplicate: the message ids are not fresh");
        }
        self.last
            .lock()
            .expect("last lock")
            .insert(id.to_string(), ack.sequence);
        Ok(ack.sequence)
    }
}

/// `n` publishes split over `ids`, one task per id publishing one at a time (as the console's
/// concurrent load runs one command at a time on each aggregate); publishes per second.
pub async fn concurrent(publisher: &EventPublisher, ids: &[String], n: usize) -> anyhow::Result<f64> {
    let per_task = n / ids.len();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for id in ids {
        let (p, id) = (publisher.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                p.publish(&id).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_task * ids.len()) as f64 / started.elapsed().as_secs_f64())
}

/// `n` publishes on one subject, one at a time: latencies in ms, sorted.
pub async fn sequential(publisher: &EventPublisher, id: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        publisher.publish(id).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    Ok(lat)
}

/// A bare axum server in the bench process: `POST /graphql` reads the same JSON body as the
/// console's `updateCluster` mutation, makes one event-shaped publish on the aggregate named
/// by `variables.id`, and answers once it is acknowledged. Stops when dropped.
pub struct BarePublishServer {
    pub base: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

#[derive(serde::Deserialize)]
struct MutationBody {
    variables: MutationVariables,
}

#[derive(serde::Deserialize)]
struct MutationVariables {
    id: String,
}

async fn publish_handler(
    State(publisher): State<EventPublisher>,
    axum::Json(body): axum::Json<MutationBody>,
) -> Response {
    match publisher.publish(&body.variables.id).await {
        Ok(seq) => axum::Json(json!({"data": {"updateCluster": {"version": seq}}})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"errors": [{"message": format!("{e:#}")}]})),
        )
            .into_response(),
    }
}

impl BarePublishServer {
    pub async fn start(publisher: EventPublisher) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/graphql", axum::routing::post(publish_handler))
            .with_state(publisher);
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    eprintln!("   the bare publish server failed: {e}");
                }
            }
        });
        Ok(Self { base, stop, task })
    }
}

impl Drop for BarePublishServer {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_publish_has_a_fresh_commit_and_message_id() {
        let shape = EventShape {
            headers: vec![
                (HeaderName::from_static(headers::EVENT_TYPE), "ClusterUpdated".into()),
                (HeaderName::from_static(headers::COMMIT_ID), "old".into()),
                (HeaderName::from_static(headers::AGGREGATE_ID), "bench-0".into()),
            ],
            aggregate_type: "cluster".into(),
            body: Bytes::from_static(b"{}"),
        };
        let a = shape.headers_for("bench-7", 42);
        let b = shape.headers_for("bench-7", 43);
        let get = |h: &HeaderMap, k: &str| h.get(k).map(|v| v.as_str().to_string()).unwrap_or_default();
        assert_eq!(get(&a, headers::EVENT_TYPE), "ClusterUpdated");
        assert_eq!(get(&a, headers::AGGREGATE_ID), "bench-7");
        assert_eq!(get(&a, headers::EXPECTED_LAST_SUBJECT_SEQUENCE), "42");
        assert_eq!(get(&b, headers::EXPECTED_LAST_SUBJECT_SEQUENCE), "43");
        assert_eq!(get(&a, headers::MSG_ID), format!("{}:0", get(&a, headers::COMMIT_ID)));
        assert_ne!(get(&a, headers::COMMIT_ID), "old");
        assert_ne!(get(&a, headers::MSG_ID), get(&b, headers::MSG_ID));
    }
}
