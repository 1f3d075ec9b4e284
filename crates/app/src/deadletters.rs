//! Dead letters: the messages a consumer gave up on. The watcher of every managed cluster
//! follows JetStream's `MAX_DELIVERIES` and `MSG_TERMINATED` consumer advisories and keeps
//! each as a record in the home NATS stream `CONSOLE_DEAD_LETTERS` (one subject per
//! consumer, at most 10,000 each, for 30 days; a message id per advisory so that several
//! replicas watching one cluster keep one record). A record names the message (its stream
//! sequence), never holds it: the message is read on demand, masked like any other read, and
//! redriven through the republish command.

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use jsc_eventstore::HomeStorage;
use serde::{Deserialize, Serialize};

use crate::paging::{List, MAX_PAGE, Page, Paging};
use crate::republish::{RepublishRequest, Started};
use crate::{Caller, Console, Error, Result};

/// The home stream of dead-letter records.
pub const DEAD_LETTERS_STREAM: &str = "CONSOLE_DEAD_LETTERS";
const SUBJECT_PREFIX: &str = "jsc.deadletters";
/// Records kept per consumer (the oldest go first).
pub const MAX_PER_CONSUMER: i64 = 10_000;
/// How long a record is kept.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// The advisories the watcher follows.
pub(crate) const ADVISORIES: [&str; 2] = [
    "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
    "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
];

/// Why a consumer gave up on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// It was delivered `max_deliver` times without an ack.
    MaxDeliveries,
    /// A client terminated it (`+TERM`).
    Terminated,
}

/// One message a consumer gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub cluster_id: String,
    pub stream: String,
    pub consumer: String,
    /// The message's sequence in its stream.
    pub stream_sequence: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
    pub reason: DeadLetterReason,
    /// The reason a client gave when it terminated the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the server gave up on it.
    pub time: DateTime<Utc>,
}

fn subject(cluster_id: &str, stream: &str, consumer: &str) -> String {
    format!("{SUBJECT_PREFIX}.{cluster_id}.{stream}.{consumer}")
}

/// Creates (or keeps) the home stream of dead-letter records.
pub(crate) async fn ensure_stream(home: &HomeStorage) -> std::result::Result<(), String> {
    let config = jetstream::stream::Config {
        name: DEAD_LETTERS_STREAM.to_string(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        max_messages_per_subject: MAX_PER_CONSUMER,
        max_age: MAX_AGE,
        discard: jetstream::stream::DiscardPolicy::Old,
        allow_direct: true,
        duplicate_window: std::time::Duration::from_secs(120),
        ..Default::default()
    };
    home.stream(config).await.map(|_| ())
}

/// The record a consumer advisory makes, if it is a dead letter.
fn parse(cluster_id: &str, payload: &[u8]) -> Option<DeadLetter> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let reason = match v["type"].as_str()? {
        "io.nats.jetstream.advisory.v1.max_deliver" => DeadLetterReason::MaxDeliveries,
        "io.nats.jetstream.advisory.v1.terminated" => DeadLetterReason::Terminated,
        _ => return None,
    };
    Some(DeadLetter {
        cluster_id: cluster_id.to_string(),
        stream: v["stream"].as_str()?.to_string(),
        consumer: v["consumer"].as_str()?.to_string(),
        stream_sequence: v["stream_seq"].as_u64()?,
        deliveries: v["deliveries"].as_u64().unwrap_or(0),
        reason,
        detail: v["reason"].as_str().filter(|r| !r.is_empty()).map(str::to_string),
        time: v["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
    })
}

impl Console {
    /// Keeps the dead letter an advisory from `cluster_id` reports (other advisories and the
    /// console's own streams are ignored). Published with a message id from the advisory's
    /// id, so replicas watching the same cluster keep one record.
    pub(crate) async fn record_dead_letter(&self, cluster_id: &str, payload: &[u8]) {
        let Some(letter) = parse(cluster_id, payload) else {
            return;
        };
        if self.is_internal_stream(&letter.stream) {
            return;
        }
        let id = format!(
            "{cluster_id}:{}:{}:{}:{}",
            letter.stream, letter.consumer, letter.stream_sequence, letter.deliveries
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let body = serde_json::to_vec(&letter).expect("JSON");
        let js = jetstream::new(self.home.clone());
        let subject = subject(cluster_id, &letter.stream, &letter.consumer);
        let sent = match js.publish_with_headers(subject, headers, body.into()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(cluster = %cluster_id, stream = %letter.stream, consumer = %letter.consumer, error = %e, "cannot keep a dead letter");
        }
    }

    /// Every dead letter kept for a consumer, by stream sequence (the latest record of each).
    async fn all_dead_letters(&self, cluster_id: &str, stream: &str, consumer: &str) -> Result<Vec<DeadLetter>> {
        let filter = subject(cluster_id, stream, consumer);
        let records = self
            .home_records::<DeadLetter>(DEAD_LETTERS_STREAM, &filter, "the dead letters")
            .await?;
        let by_sequence: std::collections::BTreeMap<u64, DeadLetter> =
            records.into_iter().map(|(_, l)| (l.stream_sequence, l)).collect();
        Ok(by_sequence.into_values().collect())
    }

    /// The messages a consumer gave up on (max deliveries, or terminated), oldest message
    /// first, for a viewer of its cluster.
    pub async fn dead_letters(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        consumer: &str,
        paging: &Paging,
    ) -> Result<Page<DeadLetter>> {
        self.stream(caller, cluster_id, stream)?;
        let all = self.all_dead_letters(cluster_id, stream, consumer).await?;
        let scope = format!("{cluster_id}\n{stream}\n{consumer}");
        self.page(
            List::new("dead_letters", &scope),
            all,
            |d| d.stream_sequence,
            paging,
            MAX_PAGE,
        )
    }

    /// Redrives a consumer's dead letters — those at `sequences`, or all of them — through
    /// the republish command (purpose `redrive <consumer>`), as `how` says (target, rate, dry
    /// run; its range and sequences are the dead letters'): back to their own subjects on
    /// the same cluster by default. Operator on the cluster.
    pub async fn redrive_dead_letters(
        &self,
        caller: &Caller,
        cluster_id: &str,
        stream: &str,
        consumer: &str,
        sequences: Option<Vec<u64>>,
        how: RepublishRequest,
    ) -> Result<Started> {
        self.stream(caller, cluster_id, stream)?;
        let kept: std::collections::BTreeSet<u64> = self
            .all_dead_letters(cluster_id, stream, consumer)
            .await?
            .into_iter()
            .map(|d| d.stream_sequence)
            .collect();
        let chosen = match sequences {
            None => kept.into_iter().collect::<Vec<_>>(),
            Some(s) => {
                if let Some(missing) = s.iter().find(|q| !kept.contains(q)) {
                    return Err(Error::validation(format!(
                        "sequences: {missing} is not a dead letter of consumer '{consumer}'; list deadLetters for those that are"
                    )));
                }
                s
            }
        };
        if chosen.is_empty() {
            return Err(Error::validation(format!(
                "consumer '{consumer}' has no dead letters to redrive"
            )));
        }
        let req = RepublishRequest {
            sequences: chosen,
            purpose: format!("redrive {consumer}"),
            ..how
        };
        self.republish(caller, cluster_id, stream, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_become_records() {
        let max = br#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"x","timestamp":"2026-12-02T05:00:00.5Z","stream":"ORDERS","consumer":"worker","stream_seq":7,"deliveries":2}"#;
        let d = parse("c1", max).unwrap();
        assert_eq!(
            (d.stream.as_str(), d.consumer.as_str(), d.stream_sequence, d.deliveries),
            ("ORDERS", "worker", 7, 2)
        );
        assert_eq!(d.reason, DeadLetterReason::MaxDeliveries);
        assert_eq!(d.time.to_rfc3339(), "2026-12-02T05:00:00.500+00:00");
        let term = br#"{"type":"io.nats.jetstream.advisory.v1.terminated","stream":"ORDERS","consumer":"worker","stream_seq":9,"deliveries":1,"reason":"bad payload"}"#;
        let d = parse("c1", term).unwrap();
        assert_eq!(d.reason, DeadLetterReason::Terminated);
        assert_eq!(d.detail.as_deref(), Some("bad payload"));
        assert!(parse("c1", br#"{"type":"io.nats.jetstream.advisory.v1.nak"}"#).is_none());
        assert!(parse("c1", b"not json").is_none());
    }
}
