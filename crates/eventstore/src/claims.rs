//! Claims: unique keys (a cluster's name in its organization, a user's email) held by one
//! aggregate at a time, enforced by the write side rather than by a view.
//!
//! A claim is an aggregate of its own (`claim`, its id the key) whose last event says who
//! holds the key. A command that takes a key commits a `ClaimTaken` event on it in the same
//! atomic batch as its own events, expecting the claim's last stream sequence to be the one
//! it read; releasing a key is the same with `ClaimReleased`. Of two commands racing for
//! one key, on one replica or on two, JetStream stores exactly one batch: the other fails
//! its expectation, is handled again, and finds the key taken.
//!
//! Claims are events like any other (the domain's `claim` aggregate): hash-chained, in the audit trail with the actor of
//! the command that took or released them, so the trail also says who held a name when.

use crate::{Error, EventRecord};

/// The aggregate type of claims.
pub const TYPE: &str = "claim";

pub use jsc_domain::claim::ClaimEvent;

/// A claim as read: its holder, and what its next event continues from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimState {
    pub holder: Option<String>,
    /// Stream sequence of its last event (0 when it has none): the commit's expectation.
    pub sequence: u64,
    /// Its number of events.
    pub version: u64,
    /// Hash of its last event, which the next one chains to.
    pub last_hash: Option<String>,
}

impl ClaimState {
    pub(crate) fn from_record(rec: &EventRecord) -> Result<Self, Error> {
        let event: ClaimEvent = serde_json::from_value(rec.payload.clone()).map_err(|e| Error::Malformed {
            sequence: rec.stream_sequence,
            reason: format!("claim {}: {e}", rec.aggregate_id),
        })?;
        Ok(Self {
            holder: match event {
                ClaimEvent::Taken { holder } => Some(holder),
                ClaimEvent::Released { .. } => None,
            },
            sequence: rec.stream_sequence,
            version: rec.aggregate_sequence,
            last_hash: rec.hash.clone(),
        })
    }
}

/// One claim event a commit writes before its own events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimWrite {
    pub key: String,
    /// The claim as it was read: what the write expects and continues.
    pub read: ClaimState,
    pub event: ClaimEvent,
}

/// The rules by which an aggregate type holds claims: the keys a state holds, and the
/// domain's refusal when one of them is held by another.
pub struct ClaimRules<A: cqrs_es::Aggregate> {
    pub keys: fn(&A) -> Vec<String>,
    pub taken: fn(&A, &str) -> A::Error,
}

impl<A: cqrs_es::Aggregate> Clone for ClaimRules<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: cqrs_es::Aggregate> Copy for ClaimRules<A> {}

/// The claim writes a command needs, from the keys held before and after it and the
/// current state of each: `Err(key)` when a key it needs is held by another.
pub fn plan(
    holder: &str,
    before: &[String],
    after: &[String],
    state: impl Fn(&str) -> ClaimState,
) -> Result<Vec<ClaimWrite>, String> {
    let mut writes = Vec::new();
    for key in after {
        let read = state(key);
        match read.holder.as_deref() {
            Some(h) if h == holder => {}
            Some(_) => return Err(key.clone()),
            None => writes.push(ClaimWrite {
                key: key.clone(),
                read,
                event: ClaimEvent::Taken {
                    holder: holder.to_string(),
                },
            }),
        }
    }
    for key in before.iter().filter(|k| !after.contains(k)) {
        let read = state(key);
        if read.holder.as_deref() == Some(holder) {
            writes.push(ClaimWrite {
                key: key.clone(),
                read,
                event: ClaimEvent::Released {
                    holder: holder.to_string(),
                },
            });
        }
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: Option<&str>, sequence: u64) -> ClaimState {
        ClaimState {
            holder: by.map(str::to_string),
            sequence,
            version: 1,
            last_hash: None,
        }
    }

    #[test]
    fn a_free_key_is_taken_expecting_its_last_sequence() {
        let w = plan("cluster/a", &[], &["k".into()], |_| held(None, 7)).unwrap();
        assert_eq!(
            w,
            vec![ClaimWrite {
                key: "k".into(),
                read: held(None, 7),
                event: ClaimEvent::Taken {
                    holder: "cluster/a".into()
                },
            }]
        );
    }

    #[test]
    fn a_key_held_by_another_is_refused_and_one_held_already_is_left() {
        assert_eq!(
            plan("cluster/a", &[], &["k".into()], |_| held(Some("cluster/b"), 3)),
            Err("k".to_string())
        );
        assert_eq!(
            plan("cluster/a", &["k".into()], &["k".into()], |_| held(
                Some("cluster/a"),
                3
            )),
            Ok(vec![])
        );
    }

    #[test]
    fn a_key_no_longer_needed_is_released_only_when_held() {
        let w = plan("cluster/a", &["old".into()], &["new".into()], |k| {
            if k == "old" {
                held(Some("cluster/a"), 5)
            } else {
                held(None, 0)
            }
        })
        .unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(
            w[1],
            ClaimWrite {
                key: "old".into(),
                read: held(Some("cluster/a"), 5),
                event: ClaimEvent::Released {
                    holder: "cluster/a".into()
                },
            }
        );
        // A key held by someone else (or nobody) is not ours to release.
        let w = plan("cluster/a", &["old".into()], &[], |_| held(Some("cluster/b"), 5)).unwrap();
        assert!(w.is_empty());
    }
}
