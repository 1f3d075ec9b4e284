//! Grouping and pacing, as Alertmanager does it: alerts that share a route, a channel and
//! the values of the route's `group_by` labels go out together; a new group waits
//! `group_wait` (to gather what fires with it), a group that changed waits until
//! `group_interval` after its last notification, and a group still firing is sent again
//! after `repeat_interval`.
//!
//! Time is tokio's, so tests run it paused.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::{AlertNote, Message, Status};

/// How soon a group whose alerts are all silenced is looked at again.
const RECHECK: Duration = Duration::from_secs(60);

/// How one route paces its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

/// Where an alert goes: a channel, the group it joins there, and how the group is paced.
#[derive(Debug, Clone)]
pub struct Destination {
    pub channel: String,
    /// Identifies the route (its index in the policy, or the default).
    pub route: String,
    pub group_labels: BTreeMap<String, String>,
    pub pacing: Pacing,
    pub send_resolved: bool,
}

struct Group {
    channel: String,
    labels: BTreeMap<String, String>,
    pacing: Pacing,
    send_resolved: bool,
    /// The alerts of the group as last heard of.
    alerts: BTreeMap<String, AlertNote>,
    /// When the group is to be sent next.
    due: Instant,
    /// Whether something changed since it was last sent.
    changed: bool,
    last_sent: Option<Instant>,
}

/// A group's notification, ready to send to its channel.
#[derive(Debug, Clone)]
pub struct Due {
    pub channel: String,
    pub message: Message,
}

/// Every group of every channel, and when each is next due.
#[derive(Default)]
pub struct Grouper {
    groups: HashMap<String, Group>,
}

impl Grouper {
    pub fn new() -> Self {
        Self::default()
    }

    /// An alert changed (it fired, or resolved): it joins or updates its group there.
    pub fn add(&mut self, note: AlertNote, to: &Destination, now: Instant) {
        let key = format!(
            "{}/{}/{}",
            to.route,
            to.channel,
            to.group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        match self.groups.get_mut(&key) {
            Some(g) => {
                let known = g.alerts.get(&note.id).map(|a| a.status);
                if known == Some(note.status) {
                    // Nothing new (a firing alert seen firing again).
                    g.alerts.insert(note.id.clone(), note);
                    return;
                }
                if note.status == Status::Resolved && known.is_none() && !g.send_resolved {
                    return;
                }
                g.alerts.insert(note.id.clone(), note);
                g.changed = true;
                let at = match g.last_sent {
                    Some(last) => (last + g.pacing.group_interval).max(now),
                    None => now + g.pacing.group_wait,
                };
                g.due = g.due.min(at);
            }
            None => {
                // A resolution of an alert this group never announced is news to nobody.
                if note.status != Status::Firing {
                    return;
                }
                let mut alerts = BTreeMap::new();
                alerts.insert(note.id.clone(), note);
                self.groups.insert(
                    key,
                    Group {
                        channel: to.channel.clone(),
                        labels: to.group_labels.clone(),
                        pacing: to.pacing,
                        send_resolved: to.send_resolved,
                        alerts,
                        due: now + to.pacing.group_wait,
                        changed: true,
                        last_sent: None,
                    },
                );
            }
        }
    }

    /// When the next group is due, if any group is.
    pub fn next_due(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.due).min()
    }

    /// The notifications due at `now`; `quiet` says which alerts are silenced (left out,
    /// and left in the group for when the silence ends). Groups with nothing firing left
    /// are dropped once their resolution is sent.
    pub fn take_due(&mut self, now: Instant, quiet: &dyn Fn(&AlertNote) -> bool) -> Vec<Due> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in &mut self.groups {
            if g.due > now {
                continue;
            }
            let alerts: Vec<AlertNote> = g
                .alerts
                .values()
                .filter(|a| !quiet(a))
                .filter(|a| a.status == Status::Firing || g.send_resolved)
                .cloned()
                .collect();
            let firing = alerts.iter().any(|a| a.status == Status::Firing);
            // Everything silenced: look again soon, for when a silence ends.
            let recheck = alerts.is_empty() && g.alerts.values().any(|a| a.status == Status::Firing);
            if !alerts.is_empty() && (g.changed || firing) {
                out.push(Due {
                    channel: g.channel.clone(),
                    message: Message {
                        group_key: key.clone(),
                        group_labels: g.labels.clone(),
                        alerts,
                        test: false,
                    },
                });
                g.last_sent = Some(now);
            }
            g.alerts.retain(|_, a| a.status == Status::Firing);
            g.changed = recheck && g.changed;
            g.due = if recheck {
                now + RECHECK.min(g.pacing.repeat_interval)
            } else {
                now + g.pacing.repeat_interval
            };
            if g.alerts.is_empty() {
                empty.push(key.clone());
            }
        }
        for k in empty {
            self.groups.remove(&k);
        }
        out
    }

    /// Groups kept (for tests and the console's metrics).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn note(id: &str, status: Status) -> AlertNote {
        AlertNote {
            id: id.into(),
            status,
            rule: "lag".into(),
            severity: "critical".into(),
            cluster: "prod".into(),
            stream: Some("ORDERS".into()),
            consumer: Some(id.into()),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            value: Some(1.0),
            threshold: None,
            starts_at: Utc::now(),
            ends_at: None,
            acknowledged_by: None,
        }
    }

    fn to() -> Destination {
        Destination {
            channel: "slack".into(),
            route: "default".into(),
            group_labels: BTreeMap::from([("alertname".into(), "lag".into())]),
            pacing: Pacing {
                group_wait: Duration::from_secs(30),
                group_interval: Duration::from_secs(300),
                repeat_interval: Duration::from_secs(4 * 3600),
            },
            send_resolved: true,
        }
    }

    fn ids(d: &[Due]) -> Vec<Vec<(String, Status)>> {
        d.iter()
            .map(|d| d.message.alerts.iter().map(|a| (a.id.clone(), a.status)).collect())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn waits_gathers_and_paces_as_alertmanager() {
        let mut g = Grouper::new();
        let none = |_: &AlertNote| false;
        let t0 = Instant::now();
        g.add(note("a", Status::Firing), &to(), t0);
        tokio::time::advance(Duration::from_secs(10)).await;
        g.add(note("b", Status::Firing), &to(), Instant::now());
        assert!(g.take_due(Instant::now(), &none).is_empty(), "group_wait is 30 s");
        assert_eq!(g.next_due(), Some(t0 + Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(20)).await;
        let sent = g.take_due(Instant::now(), &none);
        assert_eq!(
            ids(&sent),
            [vec![
                ("a".to_string(), Status::Firing),
                ("b".to_string(), Status::Firing)
            ]],
            "both in one notification"
        );
        // Seen firing again: nothing new, nothing sent before the repeat interval.
        g.add(note("a", Status::Firing), &to(), Instant::now());
        tokio::time::advance(Duration::from_secs(600)).await;
        assert!(g.take_due(Instant::now(), &none).is_empty());
        // A change waits for group_interval after the last send (already past: due now).
        g.add(note("a", Status::Resolved), &to(), Instant::now());
        let sent = g.take_due(Instant::now(), &none);
        assert_eq!(
            ids(&sent),
            [vec![
                ("a".to_string(), Status::Resolved),
                ("b".to_string(), Status::Firing)
            ]]
        );
        // Still firing: sent again after repeat_interval.
        tokio::time::advance(Duration::from_secs(4 * 3600)).await;
        let sent = g.take_due(Instant::now(), &none);
        assert_eq!(ids(&sent), [vec![("b".to_string(), Status::Firing)]]);
        g.add(note("b", Status::Resolved), &to(), Instant::now());
        tokio::time::advance(Duration::from_secs(300)).await;
        let sent = g.take_due(Instant::now(), &none);
        assert_eq!(ids(&sent), [vec![("b".to_string(), Status::Resolved)]]);
        assert!(g.is_empty(), "a group with nothing firing is gone once resolved");
    }

    #[tokio::test(start_paused = true)]
    async fn silenced_alerts_are_left_out_and_quick_changes_wait_for_the_interval() {
        let mut g = Grouper::new();
        let mut d = to();
        d.pacing.group_wait = Duration::ZERO;
        g.add(note("a", Status::Firing), &d, Instant::now());
        let quiet = |a: &AlertNote| a.id == "a";
        assert!(g.take_due(Instant::now(), &quiet).is_empty(), "silenced: nothing sent");
        let none = |_: &AlertNote| false;
        g.add(note("b", Status::Firing), &d, Instant::now());
        let sent = g.take_due(Instant::now(), &none);
        assert_eq!(sent.len(), 1);
        let first = Instant::now();
        g.add(note("c", Status::Firing), &d, Instant::now());
        assert_eq!(g.next_due(), Some(first + Duration::from_secs(300)));
        assert!(g.take_due(Instant::now(), &none).is_empty());
        // A resolution of an alert never announced starts nothing.
        let mut other = d.clone();
        other.channel = "pager".into();
        g.add(note("z", Status::Resolved), &other, Instant::now());
        assert_eq!(g.len(), 1);
    }
}
