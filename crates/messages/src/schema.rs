//! Inferring the JSON shape of a sample of messages: every field path, the types seen at it,
//! how often it is present and an example (from messages already masked: a reader sees no
//! value the rules hide), and how two samples differ.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::StoredMessage;

/// Longest example kept, in characters.
const EXAMPLE_CHARS: usize = 100;
/// Most field paths one sample reports (the rest are counted in `truncated`).
pub const MAX_FIELDS: usize = 1_000;
/// Deepest path followed.
const MAX_DEPTH: usize = 16;
/// A change of presence this large (in percentage points) counts as a change.
const PRESENCE_CHANGE: f64 = 10.0;

/// One field path of the inferred shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `a.b`, with `[]` for the items of an array (`items[].sku`).
    pub path: String,
    /// The JSON types seen: `string`, `integer`, `number`, `boolean`, `null`, `object`,
    /// `array`.
    pub types: BTreeSet<&'static str>,
    /// Messages (of the JSON ones) in which the path is present.
    pub count: u64,
    /// `count` as a percentage of the JSON messages.
    pub presence: f64,
    /// A value seen there (scalars only), cut to 100 characters.
    pub example: Option<String>,
}

/// The inferred shape of a sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shape {
    /// Messages read.
    pub sampled: u64,
    /// Of those, messages whose payload is not a JSON object or array.
    pub not_json: u64,
    pub fields: Vec<Field>,
    /// Paths left out past [`MAX_FIELDS`].
    pub truncated: u64,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[derive(Default)]
struct Seen {
    types: BTreeSet<&'static str>,
    count: u64,
    example: Option<String>,
}

fn walk(v: &Value, path: &str, depth: usize, here: &mut BTreeMap<String, Seen>, present: &mut BTreeSet<String>) {
    if !path.is_empty() {
        let seen = here.entry(path.to_string()).or_default();
        seen.types.insert(type_of(v));
        if present.insert(path.to_string()) {
            seen.count += 1;
        }
        if seen.example.is_none() && !matches!(v, Value::Object(_) | Value::Array(_) | Value::Null) {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            seen.example = Some(text.chars().take(EXAMPLE_CHARS).collect());
        }
    }
    if depth >= MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(child, &p, depth + 1, here, present);
            }
        }
        Value::Array(items) => {
            let p = format!("{path}[]");
            for child in items {
                walk(child, &p, depth + 1, here, present);
            }
        }
        _ => {}
    }
}

/// The shape of `messages` (already masked).
pub fn infer<'a>(messages: impl IntoIterator<Item = &'a StoredMessage>) -> Shape {
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let (mut sampled, mut json) = (0u64, 0u64);
    for m in messages {
        sampled += 1;
        if let Ok(v @ (Value::Object(_) | Value::Array(_))) = serde_json::from_slice::<Value>(&m.payload) {
            json += 1;
            walk(&v, "", 0, &mut seen, &mut BTreeSet::new());
        }
    }
    let total = seen.len();
    let fields = seen
        .into_iter()
        .take(MAX_FIELDS)
        .map(|(path, s)| Field {
            path,
            types: s.types,
            count: s.count,
            presence: if json == 0 {
                0.0
            } else {
                (s.count as f64 * 1000.0 / json as f64).round() / 10.0
            },
            example: s.example,
        })
        .collect();
    Shape {
        sampled,
        not_json: sampled - json,
        fields,
        truncated: total.saturating_sub(MAX_FIELDS) as u64,
    }
}

/// A field whose types or presence differ between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub path: String,
    pub before: Field,
    pub after: Field,
}

/// How the shape of one sample differs from another's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShapeChanges {
    /// Paths only in the later sample.
    pub added: Vec<String>,
    /// Paths only in the earlier sample.
    pub removed: Vec<String>,
    /// Paths in both whose types differ, or whose presence moved by 10 points or more.
    pub changed: Vec<Changed>,
}

/// What changed from `before` to `after`.
pub fn compare(before: &Shape, after: &Shape) -> ShapeChanges {
    let b: BTreeMap<&str, &Field> = before.fields.iter().map(|f| (f.path.as_str(), f)).collect();
    let a: BTreeMap<&str, &Field> = after.fields.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = ShapeChanges::default();
    for (path, fa) in &a {
        match b.get(path) {
            None => out.added.push(path.to_string()),
            Some(fb) if fb.types != fa.types || (fb.presence - fa.presence).abs() >= PRESENCE_CHANGE => {
                out.changed.push(Changed {
                    path: path.to_string(),
                    before: (*fb).clone(),
                    after: (*fa).clone(),
                })
            }
            Some(_) => {}
        }
    }
    out.removed = b
        .keys()
        .filter(|p| !a.contains_key(*p))
        .map(|p| p.to_string())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(payload: &str) -> StoredMessage {
        StoredMessage {
            sequence: 1,
            subject: "s".into(),
            time: chrono::Utc::now(),
            headers: vec![],
            payload: payload.as_bytes().to_vec().into(),
            decoded_as: None,
        }
    }

    #[test]
    fn a_sample_gives_paths_types_presence_and_examples() {
        let msgs = [
            m(r#"{"id": 1, "items": [{"sku": "a"}, {"sku": "b", "qty": 2}], "note": null}"#),
            m(r#"{"id": "two", "items": []}"#),
            m("not json"),
        ];
        let s = infer(&msgs);
        assert_eq!((s.sampled, s.not_json), (3, 1));
        let f = |p: &str| s.fields.iter().find(|f| f.path == p).unwrap().clone();
        assert_eq!(f("id").types, BTreeSet::from(["integer", "string"]));
        assert_eq!(f("id").presence, 100.0);
        assert_eq!(f("id").example.as_deref(), Some("1"));
        assert_eq!(f("items[].sku").count, 1, "counted once per message");
        assert_eq!(f("items[].qty").presence, 50.0);
        assert_eq!(f("note").types, BTreeSet::from(["null"]));
        assert_eq!(f("items").types, BTreeSet::from(["array"]));

        let later = infer(&[m(r#"{"id": "x", "items": [], "total": 3}"#)]);
        let c = compare(&s, &later);
        assert_eq!(c.added, vec!["total"]);
        assert_eq!(
            c.removed,
            vec!["items[]", "items[].qty", "items[].sku", "note"],
            "the items held objects"
        );
        let changed: Vec<&str> = c.changed.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(changed, vec!["id"], "its types narrowed to string");
    }
}
