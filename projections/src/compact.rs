//! Compact forms for what the views hold tens of thousands of times in memory (issue 17:
//! 50,000 consumers on one cluster):
//!
//! - [`Compact`]: a configuration kept encoded, whose unset fields cost nothing. A consumer's
//!   configuration is a 408-byte struct, nearly all of it fields left unset; encoded it is
//!   the bytes of the few that are set.
//! - [`Shared`] (from `jsc_domain`): a string that many views repeat (a cluster id, a
//!   stream name, an actor, an event type), held once and shared.
//!
//! Both read and write as the plain value in JSON, so the views' KV entries do not change.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use jsc_domain::shared::Shared;

/// A value kept as MessagePack (with field names, so unset fields are left out and a field
/// added later reads as its default). [`Compact::get`] decodes it.
pub struct Compact<T> {
    bytes: Box<[u8]>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Compact<T> {
    pub fn new(value: &T) -> Self {
        Self {
            bytes: rmp_serde::to_vec_named(value)
                .expect("a configuration always encodes")
                .into_boxed_slice(),
            _type: PhantomData,
        }
    }

    /// The value. Decoding what [`Compact::new`] encoded cannot fail (a test goes through
    /// every field of both configurations).
    pub fn get(&self) -> T {
        rmp_serde::from_slice(&self.bytes).expect("a compact value decodes as it was encoded")
    }

    /// How many bytes it holds.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }
}

impl<T> Clone for Compact<T> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            _type: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned + PartialEq> PartialEq for Compact<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes || self.get() == other.get()
    }
}

impl<T: Serialize + DeserializeOwned + fmt::Debug> fmt::Debug for Compact<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for Compact<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Compact<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(|v| Self::new(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsc_domain::consumer::ConsumerConfig;
    use jsc_domain::stream::StreamConfig;

    /// Encodes `value`, and checks that it decodes, and writes as JSON, as it was.
    fn comes_back<T>(value: &T) -> Compact<T>
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let compact = Compact::new(value);
        assert_eq!(&compact.get(), value);
        assert_eq!(
            serde_json::to_value(&compact).unwrap(),
            serde_json::to_value(value).unwrap()
        );
        compact
    }

    /// Every field set (and fields the console does not know, kept in `extra`): each one
    /// must come back as it went in, or a view would change what it shows.
    #[test]
    fn configurations_come_back_as_they_went_in_and_take_less_room() {
        let consumer: ConsumerConfig = serde_json::from_value(serde_json::json!({
            "durable_name": "C", "name": "C", "description": "d", "deliver_policy": "by_start_sequence",
            "opt_start_seq": 7, "opt_start_time": "2026-01-01T00:00:00Z", "ack_policy": "all",
            "ack_wait": 30_000_000_000i64, "max_deliver": -1, "backoff": [1, 2, 3],
            "filter_subjects": ["a.>", "b.*"], "replay_policy": "original", "rate_limit_bps": 9,
            "sample_freq": "50%", "max_waiting": 512, "max_ack_pending": 1000, "headers_only": true,
            "inactive_threshold": 5, "num_replicas": 3, "mem_storage": true,
            "metadata": {"team": "a", "owner": "b"}, "deliver_subject": "d.s", "deliver_group": "g",
            "flow_control": true, "idle_heartbeat": 9, "pause_until": "2030-01-01T00:00:00Z",
            "priority_groups": ["x"], "max_batch": 10, "nested": {"a": [1, 2.5, null, "s", {"b": false}]},
            "big": u64::MAX, "negative": i64::MIN
        }))
        .unwrap();
        let compact = comes_back(&consumer);
        let back: Compact<ConsumerConfig> = serde_json::from_value(serde_json::to_value(&consumer).unwrap()).unwrap();
        assert_eq!(back, compact);

        let stream: StreamConfig = serde_json::from_value(serde_json::json!({
            "name": "S", "description": "d", "subjects": ["s.>"], "retention": "workqueue",
            "max_consumers": 5, "max_msgs": 6, "max_bytes": 7, "max_age": 8, "max_msgs_per_subject": 9,
            "max_msg_size": 10, "discard": "new", "discard_new_per_subject": true, "storage": "memory",
            "num_replicas": 3, "duplicate_window": 11, "placement": {"cluster": "c", "tags": ["t"]},
            "sources": [{"name": "O", "filter_subject": "o.>"}], "sealed": false, "deny_delete": true,
            "deny_purge": true, "allow_rollup_hdrs": true, "allow_direct": true,
            "republish": {"src": "s.>", "dest": "r.>", "headers_only": true}, "compression": "s2",
            "subject_transform": {"src": "s.>", "dest": "t.>"}, "metadata": {"k": "v"},
            "allow_msg_ttl": true, "subject_delete_marker_ttl": 12, "mirror_direct": false,
            "consumer_limits": {}, "allow_atomic": true
        }))
        .unwrap();
        comes_back(&stream);

        // What the bench's consumers look like: a few fields set.
        let plain: ConsumerConfig = serde_json::from_value(serde_json::json!({
            "durable_name": "C1", "deliver_policy": "all", "ack_policy": "explicit", "ack_wait": 30_000_000_000i64,
            "max_deliver": -1, "replay_policy": "instant", "max_waiting": 512, "max_ack_pending": 1000
        }))
        .unwrap();
        let compact = comes_back(&plain);
        assert!(
            compact.encoded_len() * 2 < std::mem::size_of::<ConsumerConfig>(),
            "{} bytes encoded against a {}-byte struct",
            compact.encoded_len(),
            std::mem::size_of::<ConsumerConfig>()
        );
    }
}
