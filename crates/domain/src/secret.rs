//! Sealed secrets: the only form in which a credential may enter a command, an event or a view.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A credential encrypted with the console's secret key (see `jsc_fleet::secrets`).
///
/// The domain never sees clear text: it only stores and compares these opaque values.
/// `Debug` and `Display` never print the ciphertext either, so a stray `{:?}` in a log line
/// leaks nothing that could be attacked offline.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps an already sealed value (`v1:<key id>:<nonce>:<ciphertext>`).
    pub fn from_sealed_string(value: String) -> Self {
        Self(value)
    }

    /// The sealed form, for the code that unseals it.
    pub fn as_sealed_str(&self) -> &str {
        &self.0
    }

    /// In a command only: "keep the secret stored now". The aggregate swaps it for the
    /// current value while it holds its lock, so two concurrent updates cannot bring back
    /// an old secret. It never reaches an event.
    pub fn keep() -> Self {
        Self(KEEP.to_string())
    }

    pub fn is_keep(&self) -> bool {
        self.0 == KEEP
    }
}

const KEEP: &str = "keep-current";

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

/// Keys whose values are credentials wherever they appear in a state or an event.
pub const SECRET_KEYS: [&str; 9] = [
    "password",
    "token",
    "seed",
    "creds",
    "client_key",
    "secret_hash",
    "webhook_url",
    "signing_secret",
    "routing_key",
];

/// Replaces every credential in a JSON value (state, event payload) with `<redacted>`,
/// keeping the structure: even sealed values are never shown.
pub fn redact_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && !val.is_null() {
                    *val = Value::String("<redacted>".into());
                } else {
                    redact_json(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_sealed_value() {
        let s = Sealed::from_sealed_string("v1:k:nonce:ciphertext".into());
        assert_eq!(format!("{s:?}"), "Sealed(<redacted>)");
    }
}
