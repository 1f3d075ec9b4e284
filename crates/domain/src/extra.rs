//! [`Extra`]: the fields of a server's configuration this version does not model, kept so
//! that they go back to the server as they came.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Unknown fields, sorted by name. A short list rather than a map: a configuration has a
/// few (`mirror_direct`, `consumer_limits` from a 2.15 server), and a map's first node
/// costs about 600 bytes, for each of the tens of thousands of configurations the views
/// hold in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra(Vec<(String, Value)>);

impl Extra {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Sets a field; the value it replaced, if any.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Extra;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Extra, A::Error> {
                let mut out = Extra::new();
                while let Some((k, v)) = access.next_entry::<String, Value>()? {
                    // A name given twice keeps its last value, as a map would.
                    out.insert(k, v);
                }
                out.0.shrink_to_fit();
                Ok(out)
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_go_back_as_they_came_in_name_order() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Config {
            name: String,
            #[serde(flatten)]
            extra: Extra,
        }
        let c: Config = serde_json::from_value(json!({
            "name": "S", "zeta": {"a": [1, null]}, "mirror_direct": false, "alpha": 1, "alpha": 2
        }))
        .unwrap();
        assert_eq!(c.extra.len(), 3);
        assert_eq!(c.extra.get("alpha"), Some(&json!(2)));
        assert_eq!(
            c.extra.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["alpha", "mirror_direct", "zeta"]
        );
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"name": "S", "zeta": {"a": [1, null]}, "mirror_direct": false, "alpha": 2})
        );
        let back: Config = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let mut e = c.extra;
        assert_eq!(e.insert("beta", json!("b")), None);
        assert_eq!(e.remove("alpha"), Some(json!(2)));
        assert_eq!(
            e.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["beta", "mirror_direct", "zeta"]
        );
    }
}
