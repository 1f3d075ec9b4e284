//! Persisted queries: operation texts by their SHA-256, in the KV bucket
//! `graphql_persisted_queries`, so every replica knows what any replica was sent. A query
//! is kept as it was registered (one KV value, at most 64 KiB); the bucket has no age
//! limit: a persisted query is a client's contract.

use crate::{Console, Error, Result};

/// The bucket of persisted query texts.
pub const PERSISTED_QUERIES_BUCKET: &str = "graphql_persisted_queries";

/// Longest query text kept, in bytes.
pub const MAX_PERSISTED_QUERY: usize = 64 * 1024;

/// Whether `hash` looks like a SHA-256 in lower-case hex (so it is a valid KV key).
pub fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Console {
    /// The query registered under `hash`, if any.
    pub async fn persisted_query(&self, hash: &str) -> Result<Option<String>> {
        if !is_sha256_hex(hash) {
            return Ok(None);
        }
        match self.persisted.get(hash).await {
            Ok(Some(bytes)) => Ok(String::from_utf8(bytes.to_vec()).ok()),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(error = %crate::Chain(&e), "persisted queries unavailable");
                Err(Error::unavailable(
                    "the console's NATS did not answer; retry in a moment",
                ))
            }
        }
    }

    /// Registers `query` under its SHA-256 `hash` (checked by the caller).
    pub async fn persist_query(&self, hash: &str, query: &str) -> Result<()> {
        if !is_sha256_hex(hash) {
            return Err(Error::validation(
                "persistedQuery.sha256Hash: not a SHA-256 in lower-case hex",
            ));
        }
        if query.len() > MAX_PERSISTED_QUERY {
            return Err(Error::validation(format!(
                "a persisted query holds at most {} KiB; split the operation",
                MAX_PERSISTED_QUERY / 1024
            )));
        }
        self.persisted
            .put(hash, query.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!(error = %crate::Chain(&e), "could not persist a query");
                Error::unavailable("the console's NATS did not answer; retry in a moment")
            })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_lower_case_sha256_hex_is_a_hash() {
        assert!(super::is_sha256_hex(&"a".repeat(64)));
        assert!(!super::is_sha256_hex(&"A".repeat(64)));
        assert!(!super::is_sha256_hex("abc"));
        assert!(!super::is_sha256_hex(&format!("{}.>", "a".repeat(62))));
    }
}
