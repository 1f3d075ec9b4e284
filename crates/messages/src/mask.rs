//! Applying an organization's masking rules to a message before it leaves the console: in
//! pages, single messages, tails and searches (a search matches what the reader may see).

use jsc_domain::masking::{MASK, MaskAction, MaskTarget, MaskingRule};
use regex::bytes::Regex;

use crate::StoredMessage;

/// The rules that cover one stream, ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    rules: Vec<(MaskingRule, Option<Regex>)>,
    /// Protobuf decoders by subject pattern: a payload on a matching subject is read as that
    /// message's JSON before any rule applies.
    decoders: Vec<(String, std::sync::Arc<crate::protobuf::ProtoDecoder>)>,
}

impl Masker {
    /// The rules of `rules` that cover `stream`; a pattern that does not compile (checked
    /// when the rule was set) masks the whole payload rather than nothing.
    pub fn new(rules: &[MaskingRule], stream: &str) -> Self {
        let rules = rules
            .iter()
            .filter(|r| r.covers(stream))
            .map(|r| {
                let re = match &r.target {
                    MaskTarget::Regex { pattern } => {
                        Some(crate::search::regex("regex", pattern).unwrap_or_else(|_| Regex::new("(?s).+").unwrap()))
                    }
                    _ => None,
                };
                (r.clone(), re)
            })
            .collect();
        Self {
            rules,
            decoders: Vec::new(),
        }
    }

    /// The same, reading payloads on subjects matching a pattern through its Protobuf decoder.
    pub fn with_decoders(mut self, decoders: Vec<(String, std::sync::Arc<crate::protobuf::ProtoDecoder>)>) -> Self {
        self.decoders = decoders;
        self
    }

    /// Whether no rule or decoder applies: what is read is shown as it is.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.decoders.is_empty()
    }

    /// The message as a reader under these rules sees it: decoded from Protobuf when a
    /// decoder covers its subject (a payload that does not decode stays as it is), then
    /// masked.
    pub fn apply(&self, mut m: StoredMessage) -> StoredMessage {
        if let Some((_, d)) = self
            .decoders
            .iter()
            .find(|(pattern, _)| jsc_domain::names::subjects_overlap(pattern, &m.subject))
            && let Ok(json) = d.to_json(&m.payload)
        {
            m.payload = json.into();
            m.decoded_as = Some(d.type_name().to_string());
        }
        if self.rules.is_empty() {
            return m;
        }
        let mut json: Option<serde_json::Value> = None;
        let mut payload = m.payload.to_vec();
        for (rule, re) in &self.rules {
            match (&rule.target, &rule.action) {
                (MaskTarget::Header { name }, MaskAction::Remove) => {
                    m.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
                }
                (MaskTarget::Header { name }, action) => {
                    for (k, v) in m.headers.iter_mut() {
                        if k.eq_ignore_ascii_case(name) {
                            *v = replacement(action).to_string();
                        }
                    }
                }
                (MaskTarget::JsonPath { path }, action) => {
                    let keys: Vec<&str> = path.split('.').collect();
                    (payload, json) = mask_structured(&payload, json.take(), &keys, action);
                }
                (MaskTarget::Regex { .. }, action) => {
                    if let Some(re) = re {
                        payload = re.replace_all(&payload, replacement(action).as_bytes()).into_owned();
                        json = None;
                    }
                }
            }
        }
        m.payload = payload.into();
        m
    }
}

/// `payload` with `keys` masked, and its JSON value when it is JSON (kept for the next
/// rule, so a payload is parsed once): JSON, MessagePack and CBOR payloads keep their
/// encoding; anything else that a JSON-path rule cannot read is hidden whole (the rule fails
/// closed).
fn mask_structured(
    payload: &[u8],
    parsed: Option<serde_json::Value>,
    keys: &[&str],
    action: &MaskAction,
) -> (Vec<u8>, Option<serde_json::Value>) {
    if let Some(mut v) = parsed.or_else(|| serde_json::from_slice(payload).ok()) {
        mask_path(&mut v, keys, action);
        let bytes = serde_json::to_vec(&v).expect("a JSON value prints");
        return (bytes, Some(v));
    }
    if let Some(mut v) = crate::decode::from_msgpack(payload).filter(|v| v.is_object() || v.is_array()) {
        mask_path(&mut v, keys, action);
        if let Ok(bytes) = rmp_serde::to_vec_named(&v) {
            return (bytes, None);
        }
    }
    if let Some(mut v) = crate::decode::from_cbor(payload).filter(|v| v.is_object() || v.is_array()) {
        mask_path(&mut v, keys, action);
        let mut bytes = Vec::new();
        if ciborium::ser::into_writer(&v, &mut bytes).is_ok() {
            return (bytes, None);
        }
    }
    if payload.is_empty() {
        return (Vec::new(), None);
    }
    (MASK.as_bytes().to_vec(), None)
}

fn replacement(action: &MaskAction) -> &str {
    match action {
        MaskAction::Remove => "",
        MaskAction::Mask => MASK,
        MaskAction::Replace { with } => with,
    }
}

/// Masks what `keys` reach in `v` (`*`: every key or item).
fn mask_path(v: &mut serde_json::Value, keys: &[&str], action: &MaskAction) {
    let Some((key, rest)) = keys.split_first() else { return };
    let last = rest.is_empty();
    match v {
        serde_json::Value::Object(map) => {
            let names: Vec<String> = if *key == "*" {
                map.keys().cloned().collect()
            } else {
                map.contains_key(*key).then(|| key.to_string()).into_iter().collect()
            };
            for name in names {
                if last {
                    match action {
                        MaskAction::Remove => {
                            map.remove(&name);
                        }
                        a => {
                            map.insert(name, serde_json::Value::String(replacement(a).to_string()));
                        }
                    }
                } else if let Some(child) = map.get_mut(&name) {
                    mask_path(child, rest, action);
                }
            }
        }
        serde_json::Value::Array(items) => {
            let index = key.parse::<usize>().ok();
            if *key != "*" && index.is_none() {
                return;
            }
            if last {
                if matches!(action, MaskAction::Remove) {
                    match index {
                        Some(i) if i < items.len() => {
                            items.remove(i);
                        }
                        Some(_) => {}
                        None => items.clear(),
                    }
                    return;
                }
                for (i, item) in items.iter_mut().enumerate() {
                    if index.is_none_or(|x| x == i) {
                        *item = serde_json::Value::String(replacement(action).to_string());
                    }
                }
            } else {
                for (i, item) in items.iter_mut().enumerate() {
                    if index.is_none_or(|x| x == i) {
                        mask_path(item, rest, action);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(target: MaskTarget, action: MaskAction) -> MaskingRule {
        MaskingRule {
            name: "r".into(),
            stream: None,
            target,
            action,
        }
    }

    fn message(payload: &serde_json::Value) -> StoredMessage {
        StoredMessage {
            sequence: 1,
            subject: "s".into(),
            time: chrono::Utc::now(),
            headers: vec![
                ("Authorization".into(), "Bearer abc".into()),
                ("X-Trace".into(), "t".into()),
            ],
            payload: payload.to_string().into_bytes().into(),
            decoded_as: None,
        }
    }

    #[test]
    fn rules_mask_headers_json_fields_and_text() {
        let m = message(
            &json!({"card": {"number": "4111111111111111", "cvc": "123"}, "items": [{"price": 3}, {"price": 4}], "note": "call 555-1234"}),
        );
        let masker = Masker::new(
            &[
                rule(
                    MaskTarget::Header {
                        name: "authorization".into(),
                    },
                    MaskAction::Mask,
                ),
                rule(MaskTarget::Header { name: "X-Trace".into() }, MaskAction::Remove),
                rule(
                    MaskTarget::JsonPath {
                        path: "card.number".into(),
                    },
                    MaskAction::Mask,
                ),
                rule(
                    MaskTarget::JsonPath {
                        path: "card.cvc".into(),
                    },
                    MaskAction::Remove,
                ),
                rule(
                    MaskTarget::JsonPath {
                        path: "items.*.price".into(),
                    },
                    MaskAction::Replace { with: "?".into() },
                ),
                rule(
                    MaskTarget::Regex {
                        pattern: r"\d{3}-\d{4}".into(),
                    },
                    MaskAction::Replace { with: "[phone]".into() },
                ),
            ],
            "S",
        );
        let out = masker.apply(m);
        assert_eq!(out.headers, vec![("Authorization".to_string(), "***".to_string())]);
        let v: serde_json::Value = serde_json::from_slice(&out.payload).unwrap();
        assert_eq!(
            v,
            json!({"card": {"number": "***"}, "items": [{"price": "?"}, {"price": "?"}], "note": "call [phone]"})
        );
    }

    #[test]
    fn json_paths_reach_into_messagepack_and_fail_closed_on_what_they_cannot_read() {
        let r = rule(
            MaskTarget::JsonPath {
                path: "card.number".into(),
            },
            MaskAction::Mask,
        );
        let masker = Masker::new(&[r], "S");
        let packed = rmp_serde::to_vec_named(&json!({"card": {"number": "4111"}, "n": 1})).unwrap();
        let mut m = message(&json!({}));
        m.payload = packed.into();
        let out = masker.apply(m.clone());
        let v = crate::decode::from_msgpack(&out.payload).unwrap();
        assert_eq!(v, json!({"card": {"number": "***"}, "n": 1}));
        m.payload = b"card.number=4111 in plain text".to_vec().into();
        assert_eq!(&masker.apply(m).payload[..], b"***");
    }

    #[test]
    fn a_rule_for_another_stream_changes_nothing() {
        let mut r = rule(MaskTarget::JsonPath { path: "a".into() }, MaskAction::Remove);
        r.stream = Some("OTHER".into());
        let m = message(&json!({"a": 1}));
        assert_eq!(Masker::new(&[r], "S").apply(m.clone()), m);
    }
}
