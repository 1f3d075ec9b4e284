//! Proving nobody edited the history.
//!
//! Every event's body names the hash of the previous event of its aggregate (`prev_hash`)
//! and its `Jsc-Hash` header is the SHA-256 of its body. Walking the stream in order and
//! recomputing both finds any altered event, any break in an aggregate's chain, any
//! aggregate sequence that skips, and any stream sequence that is missing.

use std::collections::HashMap;
use std::fmt;

use async_nats::jetstream;
use futures::StreamExt;

use crate::record::headers;
use crate::{Error, EventRecord};

/// One thing found wrong, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The body does not hash to the stored hash: the event was changed after it was written.
    Altered {
        sequence: u64,
        aggregate: String,
        aggregate_sequence: u64,
    },
    /// The event does not name the hash of its aggregate's previous event.
    BrokenChain {
        sequence: u64,
        aggregate: String,
        aggregate_sequence: u64,
        previous_sequence: Option<u64>,
    },
    /// An aggregate's events skip a number.
    MissingAggregateSequence {
        sequence: u64,
        aggregate: String,
        expected: u64,
        found: u64,
    },
    /// Stream sequences are missing (deleted or never copied).
    MissingStreamSequences { from: u64, to: u64 },
    /// The event has no hash or cannot be read.
    Unreadable { sequence: u64, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Altered {
                sequence,
                aggregate,
                aggregate_sequence,
            } => write!(
                f,
                "stream sequence {sequence}: event {aggregate_sequence} of {aggregate} was altered (its content does not match its hash)"
            ),
            Self::BrokenChain {
                sequence,
                aggregate,
                aggregate_sequence,
                previous_sequence,
            } => write!(
                f,
                "stream sequence {sequence}: event {aggregate_sequence} of {aggregate} does not chain to the previous event of its aggregate{}",
                previous_sequence
                    .map(|p| format!(" (at stream sequence {p})"))
                    .unwrap_or_default()
            ),
            Self::MissingAggregateSequence {
                sequence,
                aggregate,
                expected,
                found,
            } => write!(
                f,
                "stream sequence {sequence}: {aggregate} jumps from event {} to event {found}; event {expected} is missing",
                expected - 1
            ),
            Self::MissingStreamSequences { from, to } if from == to => write!(f, "stream sequence {from} is missing"),
            Self::MissingStreamSequences { from, to } => write!(f, "stream sequences {from} to {to} are missing"),
            Self::Unreadable { sequence, reason } => {
                write!(f, "stream sequence {sequence}: unreadable event: {reason}")
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Verification {
    pub events: u64,
    pub aggregates: usize,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub problems: Vec<Problem>,
}

impl Verification {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Lower-case hex SHA-256 (one implementation, in the domain, for every hash the console keeps).
pub use jsc_domain::stream::sha256_hex;

/// Walks every message of `stream` in order and checks hashes, chains and sequences.
/// `progress` is called with each stream sequence checked.
pub async fn verify_stream(
    client: &async_nats::Client,
    stream: &str,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verification, Error> {
    let js = jetstream::new(client.clone());
    let mut s = js.get_stream(stream).await.map_err(Error::nats)?;
    let state = s.info().await.map_err(Error::nats)?.state.clone();
    let mut report = Verification {
        first_sequence: state.first_sequence,
        last_sequence: state.last_sequence,
        ..Default::default()
    };
    if state.messages == 0 {
        return Ok(report);
    }
    if state.first_sequence > 1 {
        report.problems.push(Problem::MissingStreamSequences {
            from: 1,
            to: state.first_sequence - 1,
        });
    }
    let consumer = s
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await
        .map_err(Error::nats)?;
    let mut messages = consumer.messages().await.map_err(Error::nats)?;
    // Per aggregate: (aggregate sequence, hash, stream sequence) of its last event.
    let mut chains: HashMap<String, (u64, String, u64)> = HashMap::new();
    let mut expected_seq = state.first_sequence;
    while let Some(msg) = messages.next().await {
        let msg = msg.map_err(Error::nats)?;
        let info = msg.info().map_err(Error::nats)?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        if seq > expected_seq {
            report.problems.push(Problem::MissingStreamSequences {
                from: expected_seq,
                to: seq - 1,
            });
        }
        expected_seq = seq + 1;
        report.events += 1;
        progress(seq, state.last_sequence);
        check_message(&msg, seq, &mut chains, &mut report.problems);
        // Stop at the end as it was when we started (writers may go on appending), or when
        // nothing is left (the last sequences may have been deleted).
        if seq >= state.last_sequence || pending == 0 {
            break;
        }
    }
    if expected_seq <= state.last_sequence {
        report.problems.push(Problem::MissingStreamSequences {
            from: expected_seq,
            to: state.last_sequence,
        });
    }
    report.aggregates = chains.len();
    Ok(report)
}

fn check_message(
    msg: &jetstream::Message,
    seq: u64,
    chains: &mut HashMap<String, (u64, String, u64)>,
    problems: &mut Vec<Problem>,
) {
    let stored_hash = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::HASH))
        .map(|v| v.as_str().to_string());
    let record = match EventRecord::from_body(&msg.payload, seq) {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem::Unreadable {
                sequence: seq,
                reason: e.to_string(),
            });
            return;
        }
    };
    let aggregate = format!("{}/{}", record.aggregate_type, record.aggregate_id);
    let Some(stored_hash) = stored_hash else {
        problems.push(Problem::Unreadable {
            sequence: seq,
            reason: format!("{aggregate}: no {} header", headers::HASH),
        });
        return;
    };
    let actual = sha256_hex(&msg.payload);
    if actual != stored_hash {
        problems.push(Problem::Altered {
            sequence: seq,
            aggregate: aggregate.clone(),
            aggregate_sequence: record.aggregate_sequence,
        });
    }
    let previous = chains.get(&aggregate);
    let expected_agg_seq = previous.map_or(1, |p| p.0 + 1);
    if record.aggregate_sequence != expected_agg_seq {
        problems.push(Problem::MissingAggregateSequence {
            sequence: seq,
            aggregate: aggregate.clone(),
            expected: expected_agg_seq,
            found: record.aggregate_sequence,
        });
    } else if record.prev_hash.as_deref() != previous.map(|p| p.1.as_str()) {
        problems.push(Problem::BrokenChain {
            sequence: seq,
            aggregate: aggregate.clone(),
            aggregate_sequence: record.aggregate_sequence,
            previous_sequence: previous.map(|p| p.2),
        });
    }
    // Chain on from the hash as stored, so one altered event is reported once.
    chains.insert(aggregate, (record.aggregate_sequence, stored_hash, seq));
}
