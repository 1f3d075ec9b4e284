//! JetStream's enumerated settings, as types: what a stream keeps (retention), where
//! (storage), what it drops when full (discard), how it compresses; how a consumer
//! delivers, acknowledges and replays. Each is written as the JetStream API writes it
//! (`workqueue`, `by_start_sequence`, ...), so the same value goes to servers and into
//! events, and an unknown value is refused when read, naming the values there are.

use serde::{Deserialize, Serialize};

/// `as_str` (the API's word) and `Display` for a policy enum.
macro_rules! words {
    ($name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$(Self::$variant),+];

            /// The word the JetStream API uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What a stream keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Retention {
    /// Until a limit (messages, bytes, age) is reached.
    #[default]
    #[serde(rename = "limits")]
    Limits,
    /// While a consumer is interested.
    #[serde(rename = "interest")]
    Interest,
    /// Until a consumer acknowledges it (each message to one consumer).
    #[serde(rename = "workqueue")]
    WorkQueue,
}
words!(Retention { Limits => "limits", Interest => "interest", WorkQueue => "workqueue" });

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Storage {
    #[default]
    #[serde(rename = "file")]
    File,
    #[serde(rename = "memory")]
    Memory,
}
words!(Storage { File => "file", Memory => "memory" });

/// What a full stream drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Discard {
    /// The oldest messages.
    #[default]
    #[serde(rename = "old")]
    Old,
    /// The new message (the publish fails).
    #[serde(rename = "new")]
    New,
}
words!(Discard { Old => "old", New => "new" });

/// How a stream compresses its file storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Compression {
    #[default]
    #[serde(rename = "none")]
    None,
    #[serde(rename = "s2")]
    S2,
}
words!(Compression { None => "none", S2 => "s2" });

/// Where a consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum DeliverPolicy {
    #[default]
    #[serde(rename = "all")]
    All,
    #[serde(rename = "last")]
    Last,
    #[serde(rename = "new")]
    New,
    #[serde(rename = "by_start_sequence")]
    ByStartSequence,
    #[serde(rename = "by_start_time")]
    ByStartTime,
    #[serde(rename = "last_per_subject")]
    LastPerSubject,
}
words!(DeliverPolicy {
    All => "all",
    Last => "last",
    New => "new",
    ByStartSequence => "by_start_sequence",
    ByStartTime => "by_start_time",
    LastPerSubject => "last_per_subject",
});

/// How a consumer's messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum AckPolicy {
    #[serde(rename = "none")]
    None,
    /// Acknowledging one acknowledges every message before it.
    #[serde(rename = "all")]
    All,
    #[default]
    #[serde(rename = "explicit")]
    Explicit,
}
words!(AckPolicy { None => "none", All => "all", Explicit => "explicit" });

/// How fast a consumer replays stored messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ReplayPolicy {
    #[default]
    #[serde(rename = "instant")]
    Instant,
    /// At the pace they were stored.
    #[serde(rename = "original")]
    Original,
}
words!(ReplayPolicy { Instant => "instant", Original => "original" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_and_write_the_apis_words() {
        for r in Retention::ALL {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
            assert_eq!(&serde_json::from_str::<Retention>(&json).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&DeliverPolicy::ByStartSequence).unwrap(),
            "\"by_start_sequence\""
        );
        assert_eq!(
            serde_json::from_str::<AckPolicy>("\"explicit\"").unwrap(),
            AckPolicy::Explicit
        );
    }

    #[test]
    fn an_unknown_policy_is_refused_naming_the_known_ones() {
        let e = serde_json::from_str::<Retention>("\"fifo\"").unwrap_err().to_string();
        assert!(e.contains("fifo") && e.contains("workqueue"), "{e}");
        let e = serde_json::from_str::<DeliverPolicy>("\"sometimes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("by_start_time"), "{e}");
    }
}
