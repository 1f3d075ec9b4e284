//! Paging every list the same way (Relay's cursor connections): `first`/`after` forward,
//! `last`/`before` backward, over a list in one fixed order.
//!
//! A cursor is a position in the list (the sort key of an item, not an index, so it stays
//! valid while items come and go) signed by the keyring together with the list's name and
//! whose list it is: a client can neither forge one nor carry one to another organization's
//! list. A cursor that does not check out is `VALIDATION`.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Console, Error, Result};

/// Most items one page of a list holds.
pub const MAX_PAGE: usize = 500;

/// Most events one page of a history or of the audit trail holds.
pub const MAX_EVENT_PAGE: usize = 1_000;

/// Items on a page when the caller asks for no size.
pub const DEFAULT_PAGE: usize = 50;

/// What page of a list the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    /// The first `first` items (after `after`).
    pub first: Option<i64>,
    /// Only items after this cursor.
    pub after: Option<String>,
    /// The last `last` items (before `before`).
    pub last: Option<i64>,
    /// Only items before this cursor.
    pub before: Option<String>,
}

/// Which end of the window a page is taken from, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    First(usize),
    Last(usize),
}

impl Paging {
    /// How many items from which end, checked against the list's `max`: a count below 0 or
    /// above `max`, or both `first` and `last`, is `VALIDATION`. Neither: the first
    /// [`DEFAULT_PAGE`] (or `max`, if smaller).
    pub fn take(&self, max: usize) -> Result<Take> {
        let count = |arg: &str, n: i64| {
            usize::try_from(n)
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| Error::validation(format!("{arg}: give 0 to {max} (this list's largest page), not {n}")))
        };
        match (self.first, self.last) {
            (Some(_), Some(_)) => Err(Error::validation(
                "give `first` (paging forward) or `last` (paging backward), not both",
            )),
            (Some(n), None) => Ok(Take::First(count("first", n)?)),
            (None, Some(n)) => Ok(Take::Last(count("last", n)?)),
            (None, None) => Ok(Take::First(DEFAULT_PAGE.min(max))),
        }
    }
}

/// Where an item sits in its list. It becomes a cursor ([`Console::cursor_at`]) only when a
/// client asks for one: signing costs more than anything else about a list's item.
#[derive(Debug, Clone)]
pub struct Position {
    list: &'static str,
    scope: Arc<str>,
    key: serde_json::Value,
}

/// One item of a page and where it sits.
#[derive(Debug, Clone)]
pub struct Edge<T> {
    pub position: Position,
    pub node: T,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The page's items in the list's order.
    pub edges: Vec<Edge<T>>,
    /// Whether items come before the first one of the page.
    pub has_previous_page: bool,
    /// Whether items come after the last one of the page.
    pub has_next_page: bool,
    /// How many items the whole list holds, when known without more work.
    pub total_count: Option<usize>,
}

impl<T> Page<T> {
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            edges: self
                .edges
                .into_iter()
                .map(|e| Edge {
                    position: e.position,
                    node: f(e.node),
                })
                .collect(),
            has_previous_page: self.has_previous_page,
            has_next_page: self.has_next_page,
            total_count: self.total_count,
        }
    }
}

/// The order of lists by name: ignoring case, then by id (names may repeat).
pub(crate) fn by_name(name: &str, id: &str) -> (String, String) {
    (name.to_lowercase(), id.to_string())
}

/// The order of lists newest first, then by id.
pub(crate) fn newest_first(created: chrono::DateTime<chrono::Utc>, id: &str) -> (std::cmp::Reverse<i64>, String) {
    (std::cmp::Reverse(created.timestamp_micros()), id.to_string())
}

/// Which list a cursor belongs to: its name and whose list it is (an organization, a
/// cluster, a user, a stream...).
#[derive(Debug, Clone, Copy)]
pub struct List<'a> {
    pub name: &'static str,
    pub scope: &'a str,
}

impl<'a> List<'a> {
    pub fn new(name: &'static str, scope: &'a str) -> Self {
        Self { name, scope }
    }
}

impl Console {
    /// The cursor of an item's position.
    pub fn cursor_at(&self, p: &Position) -> String {
        self.auth.keys.cursor(p.list, &p.scope, &p.key)
    }

    /// The positions in `list` of items with these keys.
    pub(crate) fn positions<K: Serialize>(list: List<'_>, keys: impl Iterator<Item = K>) -> Vec<Position> {
        let scope: Arc<str> = list.scope.into();
        keys.map(|k| Position {
            list: list.name,
            scope: scope.clone(),
            key: serde_json::to_value(&k).expect("list keys serialize"),
        })
        .collect()
    }

    /// The edges of a page's items, each with its key in `list`.
    pub(crate) fn edges<K: Serialize, T>(list: List<'_>, items: Vec<(K, T)>) -> Vec<Edge<T>> {
        let (keys, nodes): (Vec<K>, Vec<T>) = items.into_iter().unzip();
        Self::positions(list, keys.into_iter())
            .into_iter()
            .zip(nodes)
            .map(|(position, node)| Edge { position, node })
            .collect()
    }

    /// The position in `list` that the cursor given as `arg` points at.
    pub(crate) fn position<K: DeserializeOwned>(&self, list: List<'_>, arg: &str, cursor: &str) -> Result<K> {
        self.auth
            .keys
            .verify_cursor(list.name, list.scope, cursor)
            .ok_or_else(|| {
                Error::validation(format!(
                    "{arg}: not a cursor of this list; pass a `cursor`, `startCursor` or `endCursor` this list returned"
                ))
            })
    }

    /// The positions `after` and `before` of a request on `list`.
    pub(crate) fn bounds<K: DeserializeOwned>(
        &self,
        list: List<'_>,
        paging: &Paging,
    ) -> Result<(Option<K>, Option<K>)> {
        let at = |arg, c: &Option<String>| c.as_deref().map(|c| self.position(list, arg, c)).transpose();
        Ok((at("after", &paging.after)?, at("before", &paging.before)?))
    }

    /// The page `paging` asks for of `items` ordered by `key` (unique per item), at most
    /// `max` items. The items come in any order: this sorts them.
    pub(crate) fn page<T, K>(
        &self,
        list: List<'_>,
        items: Vec<T>,
        key: impl Fn(&T) -> K,
        paging: &Paging,
        max: usize,
    ) -> Result<Page<T>>
    where
        K: Ord + Serialize + DeserializeOwned,
    {
        let take = paging.take(max)?;
        let (after, before) = self.bounds::<K>(list, paging)?;
        let mut keyed: Vec<(K, T)> = items.into_iter().map(|t| (key(&t), t)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let total = keyed.len();
        let lo = after.map_or(0, |a| keyed.partition_point(|(k, _)| *k <= a));
        let hi = before.map_or(total, |b| keyed.partition_point(|(k, _)| *k < b)).max(lo);
        let (start, end) = match take {
            Take::First(n) => (lo, (lo + n).min(hi)),
            Take::Last(n) => (hi.saturating_sub(n).max(lo), hi),
        };
        Ok(Page {
            edges: Self::edges(list, keyed.drain(start..end).collect()),
            has_previous_page: start > 0,
            has_next_page: end < total,
            total_count: Some(total),
        })
    }
}

impl Console {
    /// The page `paging` asks for of one group of a view's order index (a cluster's
    /// streams, a stream's consumers), by place (a name), with only the entries `keep`
    /// accepts, ascending or `descending`. Only the page's entries are cloned. Without a
    /// filter a page costs its own size (each group's count is kept); with one, the group
    /// is walked once to count.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ordered_page<V>(
        &self,
        list: List<'_>,
        view: &jsc_projector::ViewCache<V>,
        group: &str,
        keep: Option<&dyn Fn(&V) -> bool>,
        descending: bool,
        paging: &Paging,
        max: usize,
    ) -> Result<Page<jsc_projector::Versioned<V>>>
    where
        V: Clone + serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        use std::ops::Bound;
        let take = paging.take(max)?;
        let (after, before) = self.bounds::<String>(list, paging)?;
        let accept = |v: &V| keep.is_none_or(|k| k(v));
        fn excluded(b: &Option<String>) -> Bound<&str> {
            b.as_deref().map_or(Bound::Unbounded, Bound::Excluded)
        }
        // Whether any accepted entry sits from `from` on, in the walk's direction.
        let any_from = |from: Bound<&str>, reverse: bool| {
            let mut found = false;
            view.walk(group, from, reverse, |_, v| {
                found = accept(&v.view);
                !found
            });
            found
        };
        // Whether `place` is at or past `bound` walking toward the list's end (`forward`) or
        // its start, in the list's order.
        let past = |place: &str, bound: &str, forward: bool| {
            if forward != descending {
                place >= bound
            } else {
                place <= bound
            }
        };
        let mut items: Vec<(String, jsc_projector::Versioned<V>)> = Vec::new();
        let (has_previous_page, has_next_page) = match take {
            Take::First(n) => {
                let mut more = false;
                view.walk(group, excluded(&after), descending, |place, v| {
                    if !accept(&v.view) {
                        return true;
                    }
                    if items.len() == n || before.as_deref().is_some_and(|b| past(place, b, true)) {
                        more = true;
                        return false;
                    }
                    items.push((place.to_string(), v.clone()));
                    true
                });
                let previous = after
                    .as_deref()
                    .is_some_and(|a| any_from(Bound::Included(a), !descending));
                (previous, more)
            }
            Take::Last(n) => {
                let mut more = false;
                view.walk(group, excluded(&before), !descending, |place, v| {
                    if !accept(&v.view) {
                        return true;
                    }
                    if items.len() == n || after.as_deref().is_some_and(|a| past(place, a, false)) {
                        more = true;
                        return false;
                    }
                    items.push((place.to_string(), v.clone()));
                    true
                });
                items.reverse();
                let next = before
                    .as_deref()
                    .is_some_and(|b| any_from(Bound::Included(b), descending));
                (more, next)
            }
        };
        let total = match keep {
            None => view.group_len(group),
            Some(_) => {
                let mut n = 0;
                view.walk(group, Bound::Unbounded, false, |_, v| {
                    n += usize::from(accept(&v.view));
                    true
                });
                n
            }
        };
        Ok(Page {
            edges: Self::edges(list, items),
            has_previous_page,
            has_next_page,
            total_count: Some(total),
        })
    }
}
