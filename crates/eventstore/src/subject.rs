//! Aggregate ids as subject tokens.
//!
//! A subject token cannot hold `.`, `*`, `>` or white space. Ids made of `[A-Za-z0-9_-]`
//! (UUIDs, slugs) are used as they are; any other byte, and `~` itself, becomes `~XX` (hex),
//! so the encoding is reversible and ids that are already safe stay readable in `nats` tools.

/// Encodes an aggregate id into a single subject token.
pub fn encode_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// Reverses [`encode_id`]; `None` for a token that is not a valid encoding.
pub fn decode_id(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'~' {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_are_unchanged() {
        assert_eq!(encode_id("0193-abc_DEF"), "0193-abc_DEF");
    }

    #[test]
    fn unsafe_characters_round_trip() {
        for id in ["a.b", "a b", "*", ">", "~x", "é", "org/team.1"] {
            let enc = encode_id(id);
            assert!(!enc.contains(['.', '*', '>', ' ']), "{enc}");
            assert_eq!(decode_id(&enc).as_deref(), Some(id));
        }
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(decode_id("~G1"), None);
        assert_eq!(decode_id("abc~"), None);
    }
}
