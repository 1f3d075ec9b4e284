//! [`Shared`]: a string that many records repeat (a cluster id, a stream name, an actor, an
//! event type, a server name), held once. Views and samples hold tens of thousands of
//! records naming the same few of them. Reads and writes as a plain string.

use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Strings are shared while there are fewer than this many distinct ones; beyond, each is
/// held on its own (still correct, just not shared), so the table stays bounded.
const MAX_SHARED: usize = 65_536;
/// Longer strings are not worth looking up.
const MAX_SHARED_LEN: usize = 256;

static SHARED: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);

/// A string many views repeat, held once. Reads as `&str`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Shared(Arc<str>);

impl Shared {
    pub fn new(s: &str) -> Self {
        if s.len() > MAX_SHARED_LEN {
            return Self(Arc::from(s));
        }
        let mut table = SHARED.lock().expect("shared strings lock");
        if let Some(held) = table.get(s) {
            return Self(held.clone());
        }
        let held: Arc<str> = Arc::from(s);
        if table.len() < MAX_SHARED {
            table.insert(held.clone());
        }
        Self(held)
    }

    /// A string held on its own, not looked up or kept in the table: for a value compared
    /// once (a bound of a range) that must not take a place in the table.
    pub fn unshared(s: &str) -> Self {
        Self(Arc::from(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Shared {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Shared {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl From<&str> for Shared {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Shared {
    fn from(s: String) -> Self {
        Self::new(&s)
    }
}

impl From<&String> for Shared {
    fn from(s: &String) -> Self {
        Self::new(s)
    }
}

impl From<Shared> for String {
    fn from(s: Shared) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for Shared {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Shared {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Shared {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Shared> for String {
    fn eq(&self, other: &Shared) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Shared> for &str {
    fn eq(&self, other: &Shared) -> bool {
        **self == *other.0
    }
}

impl Serialize for Shared {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Shared {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Shared;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Shared, E> {
                Ok(Shared::new(v))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_strings_are_held_once_and_read_as_strings() {
        let a: Shared = serde_json::from_str("\"external:a-client\"").unwrap();
        let b = Shared::from("external:a-client".to_string());
        assert!(Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "external:a-client");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"external:a-client\"");
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        let (c, d) = (Shared::new(&long), Shared::new(&long));
        assert!(!Arc::ptr_eq(&c.0, &d.0), "long strings are not looked up");
        assert_eq!(c, d);
    }
}
