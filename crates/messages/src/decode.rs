//! Payloads as text a person can read: UTF-8 text, JSON (pretty), base64, hex, and
//! MessagePack and CBOR shown as JSON, chosen by the caller or detected. What is longer than
//! the caller's limit is cut there, and says so.

use base64::Engine;

/// How a payload is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// UTF-8 text as it is.
    Text,
    /// JSON, pretty-printed.
    Json,
    /// Standard base64 of the bytes.
    Base64,
    /// Lower-case hex of the bytes, two digits a byte.
    Hex,
    /// MessagePack, shown as pretty JSON.
    MsgPack,
    /// CBOR, shown as pretty JSON.
    Cbor,
}

/// A payload as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// How it is shown (the one asked for, or the one detected).
    pub encoding: Encoding,
    /// The text, at most the limit's bytes (cut on a character boundary).
    pub text: String,
    /// The text was cut at the limit.
    pub truncated: bool,
}

/// Why a payload cannot be shown as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// `payload` shown as `wanted`, or as what it looks like when `wanted` is `None`: text that
/// parses as JSON is JSON, other UTF-8 is text, binary that parses whole as MessagePack or
/// CBOR (a map or an array) is that, anything else base64. `limit` is the most bytes of
/// text to return.
pub fn decode(payload: &[u8], wanted: Option<Encoding>, limit: usize) -> Result<Decoded, DecodeError> {
    let encoding = wanted.unwrap_or_else(|| detect(payload));
    let text = match encoding {
        Encoding::Text => std::str::from_utf8(payload)
            .map(str::to_string)
            .map_err(|e| DecodeError(format!("the payload is not UTF-8 text ({e}); show it as BASE64 or HEX")))?,
        Encoding::Json => {
            let value: serde_json::Value = serde_json::from_slice(payload)
                .map_err(|e| DecodeError(format!("the payload is not JSON ({e}); show it as TEXT or BASE64")))?;
            pretty(&value)
        }
        // Only what the limit can show is encoded (base64: 4 characters for 3 bytes; hex: 2
        // for 1), so a large payload costs no more than its shown part.
        Encoding::Base64 => {
            base64::engine::general_purpose::STANDARD.encode(&payload[..payload.len().min(limit / 4 * 3 + 3)])
        }
        Encoding::Hex => hex(&payload[..payload.len().min(limit / 2 + 1)]),
        Encoding::MsgPack => pretty(
            &from_msgpack(payload)
                .ok_or_else(|| DecodeError("the payload is not MessagePack; show it as BASE64 or HEX".into()))?,
        ),
        Encoding::Cbor => pretty(
            &from_cbor(payload)
                .ok_or_else(|| DecodeError("the payload is not CBOR; show it as BASE64 or HEX".into()))?,
        ),
    };
    let (text, truncated) = cut(text, limit);
    Ok(Decoded {
        encoding,
        text,
        truncated,
    })
}

/// What a payload looks like.
pub fn detect(payload: &[u8]) -> Encoding {
    if let Ok(text) = std::str::from_utf8(payload) {
        let t = text.trim_start();
        if (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<serde_json::Value>(text).is_ok() {
            return Encoding::Json;
        }
        return Encoding::Text;
    }
    let container = |v: &serde_json::Value| v.is_object() || v.is_array();
    if from_msgpack(payload).is_some_and(|v| container(&v)) {
        return Encoding::MsgPack;
    }
    if from_cbor(payload).is_some_and(|v| container(&v)) {
        return Encoding::Cbor;
    }
    Encoding::Base64
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value prints")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// MessagePack that parses whole.
pub(crate) fn from_msgpack(payload: &[u8]) -> Option<serde_json::Value> {
    let mut de = rmp_serde::Deserializer::new(std::io::Cursor::new(payload));
    let value: serde_json::Value = serde::Deserialize::deserialize(&mut de).ok()?;
    (de.position() as usize == payload.len()).then_some(value)
}

/// CBOR that parses whole.
pub(crate) fn from_cbor(payload: &[u8]) -> Option<serde_json::Value> {
    let mut rest = payload;
    let value: serde_json::Value = ciborium::de::from_reader(&mut rest).ok()?;
    rest.is_empty().then_some(value)
}

/// `text` cut to at most `limit` bytes on a character boundary.
fn cut(mut text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_is_detected_and_shown() {
        let json = br#"{"id":1,"tags":["a"]}"#;
        let d = decode(json, None, 1 << 20).unwrap();
        assert_eq!(d.encoding, Encoding::Json);
        assert_eq!(d.text, "{\n  \"id\": 1,\n  \"tags\": [\n    \"a\"\n  ]\n}");
        assert_eq!(decode(b"hello", None, 100).unwrap().encoding, Encoding::Text);
        // A number on its own is text, not JSON.
        assert_eq!(detect(b"42"), Encoding::Text);

        let value = serde_json::json!({"id": 7, "ok": true});
        let packed = rmp_serde::to_vec_named(&value).unwrap();
        let d = decode(&packed, None, 1 << 20).unwrap();
        assert_eq!(
            (d.encoding, serde_json::from_str::<serde_json::Value>(&d.text).unwrap()),
            (Encoding::MsgPack, value.clone())
        );

        let mut cbor = Vec::new();
        ciborium::ser::into_writer(&value, &mut cbor).unwrap();
        let d = decode(&cbor, Some(Encoding::Cbor), 1 << 20).unwrap();
        assert_eq!(serde_json::from_str::<serde_json::Value>(&d.text).unwrap(), value);

        let binary = [0xff, 0x00, 0x10];
        assert_eq!(detect(&binary), Encoding::Base64);
        assert_eq!(decode(&binary, None, 100).unwrap().text, "/wAQ");
        assert_eq!(decode(&binary, Some(Encoding::Hex), 100).unwrap().text, "ff0010");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        let d = decode("héllo".as_bytes(), Some(Encoding::Text), 2).unwrap();
        assert_eq!((d.text.as_str(), d.truncated), ("h", true));
        let d = decode(b"abc", Some(Encoding::Text), 3).unwrap();
        assert_eq!((d.text.as_str(), d.truncated), ("abc", false));
    }

    #[test]
    fn a_payload_that_is_not_what_was_asked_says_what_to_ask_instead() {
        let e = decode(&[0xff], Some(Encoding::Text), 10).unwrap_err();
        assert!(e.0.contains("BASE64"), "{e}");
        let e = decode(b"not json", Some(Encoding::Json), 10).unwrap_err();
        assert!(e.0.contains("not JSON"), "{e}");
        // 0xc1 is never used in MessagePack; 0xff alone is a CBOR break with nothing to end.
        assert!(decode(&[0xc1], Some(Encoding::MsgPack), 10).is_err());
        assert!(decode(&[0xff], Some(Encoding::Cbor), 10).is_err());
    }
}
