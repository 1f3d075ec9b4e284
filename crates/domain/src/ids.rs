//! Typed ids of managed resources, and the one encoding of ids into subject tokens and KV
//! keys.
//!
//! A stream is `<cluster id>/<stream>`, a consumer `<cluster id>/<stream>/<consumer>`:
//! [`StreamRef`] and [`ConsumerRef`] print and parse that form, so no id is assembled with
//! `format!` or split with `split_once` anywhere else.
//!
//! [`encode_token`] keeps `[A-Za-z0-9_-]` as it is and writes any other byte as an escape
//! and two hex digits, so the encoding is reversible and ids that are already safe stay
//! readable in `nats` tools. The escape character is the target's: `~` in event subjects
//! (the encoding the stored history was written with, so it cannot change) and `=` in KV
//! keys (KV keys may not hold `~`). One implementation, two alphabets.

use std::fmt;
use std::str::FromStr;

/// Where an encoded token goes: it decides the escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A token of an event subject (`es.<type>.<token>`): escapes with `~`.
    Subject,
    /// A token of a KV key: escapes with `=`.
    KvKey,
}

impl TokenKind {
    fn escape(self) -> u8 {
        match self {
            Self::Subject => b'~',
            Self::KvKey => b'=',
        }
    }
}

/// Encodes `raw` into a single token for `kind`.
pub fn encode_token(raw: &str, kind: TokenKind) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push(kind.escape() as char);
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Reverses [`encode_token`]; `None` for a token that is not a valid encoding.
pub fn decode_token(token: &str, kind: TokenKind) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == kind.escape() {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A KV key of several tokens, each encoded.
pub fn kv_key(tokens: &[&str]) -> String {
    tokens
        .iter()
        .map(|t| encode_token(t, TokenKind::KvKey))
        .collect::<Vec<_>>()
        .join(".")
}

/// Why an id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{id}' is not a {what} id; write it as {form}")]
pub struct BadId {
    id: String,
    what: &'static str,
    form: &'static str,
}

/// A stream on a managed cluster: `<cluster id>/<stream>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRef {
    pub cluster_id: String,
    pub name: String,
}

impl StreamRef {
    pub fn new(cluster_id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            cluster_id: cluster_id.into(),
            name: name.into(),
        }
    }

    /// Its key in the streams view.
    pub fn kv_key(&self) -> String {
        kv_key(&[&self.cluster_id, &self.name])
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster_id, self.name)
    }
}

impl FromStr for StreamRef {
    type Err = BadId;

    fn from_str(s: &str) -> Result<Self, BadId> {
        match s.split_once('/') {
            Some((c, n)) if !c.is_empty() && !n.is_empty() && !n.contains('/') => Ok(Self::new(c, n)),
            _ => Err(BadId {
                id: s.to_string(),
                what: "stream",
                form: "<cluster id>/<stream>",
            }),
        }
    }
}

/// A durable consumer of a stream: `<cluster id>/<stream>/<consumer>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerRef {
    pub stream: StreamRef,
    pub name: String,
}

impl ConsumerRef {
    pub fn new(cluster_id: impl Into<String>, stream: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            stream: StreamRef::new(cluster_id, stream),
            name: name.into(),
        }
    }

    /// Its key in the consumers view.
    pub fn kv_key(&self) -> String {
        kv_key(&[&self.stream.cluster_id, &self.stream.name, &self.name])
    }
}

impl fmt::Display for ConsumerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stream, self.name)
    }
}

impl FromStr for ConsumerRef {
    type Err = BadId;

    fn from_str(s: &str) -> Result<Self, BadId> {
        let bad = || BadId {
            id: s.to_string(),
            what: "consumer",
            form: "<cluster id>/<stream>/<consumer>",
        };
        let mut parts = s.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(c), Some(st), Some(n)) if ![c, st, n].iter().any(|p| p.is_empty()) && !n.contains('/') => {
                Ok(Self::new(c, st, n))
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_are_unchanged() {
        assert_eq!(encode_token("0193-abc_DEF", TokenKind::Subject), "0193-abc_DEF");
        assert_eq!(encode_token("0193-abc_DEF", TokenKind::KvKey), "0193-abc_DEF");
    }

    #[test]
    fn unsafe_characters_round_trip_in_both_alphabets() {
        for id in ["a.b", "a b", "*", ">", "~x", "=x", "é", "org/team.1"] {
            for kind in [TokenKind::Subject, TokenKind::KvKey] {
                let enc = encode_token(id, kind);
                assert!(!enc.contains(['.', '*', '>', ' ', '/']), "{enc}");
                assert_eq!(decode_token(&enc, kind).as_deref(), Some(id));
            }
        }
        assert_eq!(encode_token("a/b", TokenKind::Subject), "a~2Fb");
        assert_eq!(encode_token("a/b", TokenKind::KvKey), "a=2Fb");
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(decode_token("~G1", TokenKind::Subject), None);
        assert_eq!(decode_token("abc~", TokenKind::Subject), None);
    }

    #[test]
    fn resource_ids_print_and_parse_back() {
        let s = StreamRef::new("c1", "ORDERS");
        assert_eq!(s.to_string(), "c1/ORDERS");
        assert_eq!("c1/ORDERS".parse::<StreamRef>().unwrap(), s);
        let c = ConsumerRef::new("c1", "ORDERS", "billing");
        assert_eq!(c.to_string(), "c1/ORDERS/billing");
        assert_eq!("c1/ORDERS/billing".parse::<ConsumerRef>().unwrap(), c);
        assert_eq!(c.kv_key(), "c1.ORDERS.billing");
        for bad in ["", "c1", "/x", "c1/", "c1/a/b"] {
            assert!(bad.parse::<StreamRef>().is_err(), "{bad}");
        }
        assert!("c1/ORDERS".parse::<ConsumerRef>().is_err());
        assert!(
            "x".parse::<StreamRef>()
                .unwrap_err()
                .to_string()
                .contains("<cluster id>/<stream>")
        );
    }
}
