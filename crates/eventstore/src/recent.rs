//! A map of the entries used lately, bounded: two generations, the younger one filled by
//! inserts and hits, the older one dropped when the younger is full. An entry used at least
//! once per generation stays; the rest go within two. No per-entry bookkeeping, unlike an
//! LRU list, and no sudden loss of every entry, unlike clearing a full map.
//!
//! Values are boxed: a generation's table keeps the capacity of its fullest moment (a
//! burst can put thousands of entries in before a trim), and a table of pointers costs a
//! fraction of one of views or aggregates held in place.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub struct Recent<K, V> {
    young: HashMap<K, Box<V>>,
    old: HashMap<K, Box<V>>,
    /// Entries per generation.
    half: usize,
}

impl<K: Hash + Eq, V> Recent<K, V> {
    /// Keeps at most about `limit` entries (between `limit / 2` and `limit` once full).
    pub fn new(limit: usize) -> Self {
        Self {
            young: HashMap::new(),
            old: HashMap::new(),
            half: (limit / 2).max(1),
        }
    }

    /// The entry, moved to the young generation when it was in the old one.
    pub fn get<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.young.contains_key(key)
            && let Some((k, v)) = self.old.remove_entry(key)
        {
            self.young.insert(k, v);
        }
        self.young.get_mut(key).map(|v| &mut **v)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.contains_key(key) || self.old.contains_key(key)
    }

    /// Inserts into the young generation. Nothing is dropped here (see [`Self::trim`]), so
    /// entries inserted together stay together.
    pub fn insert(&mut self, key: K, value: V) {
        self.old.remove(&key);
        self.young.insert(key, Box::new(value));
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.young.remove(key).or_else(|| self.old.remove(key)).map(|v| *v)
    }

    /// Drops the old generation if the young one is full; whether anything was dropped.
    pub fn trim(&mut self) -> bool {
        if self.young.len() < self.half {
            return false;
        }
        let dropped = !self.old.is_empty();
        self.old = std::mem::take(&mut self.young);
        dropped
    }

    pub fn clear(&mut self) {
        self.young = HashMap::new();
        self.old = HashMap::new();
    }

    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn entries_used_lately_stay_and_the_rest_go() {
        let mut r = Recent::new(6);
        r.insert("a", 1);
        r.insert("b", 2);
        r.insert("c", 3);
        assert!(!r.trim(), "a full young generation becomes old; nothing was old yet");
        r.insert("d", 4);
        assert_eq!(r.get("a").copied(), Some(1), "a hit brings it back");
        assert!(!r.trim(), "not full yet (d, a)");
        r.insert("e", 5);
        assert!(r.trim(), "b and c were not used: dropped with the old generation");
        assert!(!r.contains_key("b") && !r.contains_key("c"));
        assert_eq!(r.len(), 3);
        assert!(r.contains_key("a") && r.contains_key("d") && r.contains_key("e"));
        assert_eq!(r.remove("d"), Some(4));
        assert_eq!(r.len(), 2);
    }
}
