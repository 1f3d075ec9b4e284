//! An organization's routing policy: which channels an alert goes to (by its labels and
//! severity) and how often, in Alertmanager's terms. Alerts of one group (same values of
//! `group_by`) go out together: the first after `group_wait`, changes after
//! `group_interval`, and the same firing alerts again after `repeat_interval`.
//!
//! One aggregate per organization (its id is the organization's).

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{AlertError, Matcher, Severity, all_match, check_label_name, check_matchers, check_seconds, invalid};

/// Most routes in one policy.
pub const MAX_ROUTES: usize = 100;

/// Alertmanager's defaults.
pub const GROUP_WAIT_S: u64 = 30;
pub const GROUP_INTERVAL_S: u64 = 300;
pub const REPEAT_INTERVAL_S: u64 = 4 * 3600;

/// One route: alerts matching all `matchers` (and at least `min_severity`) go to
/// `channels`. The first route that matches decides, unless it says `continue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Route {
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub min_severity: Option<Severity>,
    pub channels: Vec<String>,
    /// Labels that split alerts into groups; the policy's when left out.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default)]
    pub group_wait_s: Option<u64>,
    #[serde(default)]
    pub group_interval_s: Option<u64>,
    #[serde(default)]
    pub repeat_interval_s: Option<u64>,
    /// Also try the routes after this one.
    #[serde(default)]
    pub r#continue: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// Where alerts no route takes go (may be empty: they are recorded, not sent).
    #[serde(default)]
    pub channels: Vec<String>,
    pub group_by: Vec<String>,
    pub group_wait_s: u64,
    pub group_interval_s: u64,
    pub repeat_interval_s: u64,
    #[serde(default)]
    pub routes: Vec<Route>,
}

impl Default for PolicySpec {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            group_by: vec!["alertname".into(), "cluster".into()],
            group_wait_s: GROUP_WAIT_S,
            group_interval_s: GROUP_INTERVAL_S,
            repeat_interval_s: REPEAT_INTERVAL_S,
            routes: Vec::new(),
        }
    }
}

/// Where one alert goes and how its group is paced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channels: Vec<String>,
    pub group_by: Vec<String>,
    pub group_wait_s: u64,
    pub group_interval_s: u64,
    pub repeat_interval_s: u64,
    /// Which route: its index, `None` for the policy's default.
    pub route: Option<usize>,
}

fn check_group_by(field: &str, labels: &[String]) -> Result<(), AlertError> {
    if labels.len() > 16 {
        return Err(invalid(field, "at most 16 labels"));
    }
    for (i, l) in labels.iter().enumerate() {
        check_label_name(&format!("{field}[{i}]"), l)?;
    }
    Ok(())
}

fn check_timing(prefix: &str, wait: Option<u64>, interval: Option<u64>, repeat: Option<u64>) -> Result<(), AlertError> {
    let f = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    if let Some(w) = wait {
        check_seconds(&f("groupWait"), w, 0)?;
    }
    if let Some(i) = interval {
        check_seconds(&f("groupInterval"), i, 1)?;
    }
    if let Some(r) = repeat {
        check_seconds(&f("repeatInterval"), r, 60)?;
    }
    Ok(())
}

impl PolicySpec {
    /// Checks the policy's shape; `channel_ok` says whether a channel id is one of the
    /// organization's (the aggregate does not read other aggregates).
    pub fn checked(self, channel_ok: impl Fn(&str) -> bool) -> Result<Self, AlertError> {
        let channels = |field: &str, ids: &[String]| {
            if ids.len() > 32 {
                return Err(invalid(field, "at most 32 channels"));
            }
            for (i, id) in ids.iter().enumerate() {
                if !channel_ok(id) {
                    return Err(invalid(
                        format!("{field}[{i}]"),
                        format!("no notification channel '{id}' in this organization"),
                    ));
                }
            }
            Ok(())
        };
        channels("channels", &self.channels)?;
        check_group_by("groupBy", &self.group_by)?;
        check_timing(
            "",
            Some(self.group_wait_s),
            Some(self.group_interval_s),
            Some(self.repeat_interval_s),
        )?;
        if self.routes.len() > MAX_ROUTES {
            return Err(invalid("routes", format!("at most {MAX_ROUTES} routes")));
        }
        for (i, r) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            check_matchers(&format!("{at}.matchers"), &r.matchers)?;
            if r.channels.is_empty() {
                return Err(invalid(format!("{at}.channels"), "name at least one channel"));
            }
            channels(&format!("{at}.channels"), &r.channels)?;
            if let Some(g) = &r.group_by {
                check_group_by(&format!("{at}.groupBy"), g)?;
            }
            check_timing(&at, r.group_wait_s, r.group_interval_s, r.repeat_interval_s)?;
        }
        Ok(self)
    }

    /// Where an alert with `labels` and `severity` goes: every matching route up to the
    /// first that does not `continue`, or the default when none matches.
    pub fn deliveries(&self, labels: &BTreeMap<String, String>, severity: Severity) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if r.min_severity.is_some_and(|m| severity < m) || !all_match(&r.matchers, labels) {
                continue;
            }
            out.push(Delivery {
                channels: r.channels.clone(),
                group_by: r.group_by.clone().unwrap_or_else(|| self.group_by.clone()),
                group_wait_s: r.group_wait_s.unwrap_or(self.group_wait_s),
                group_interval_s: r.group_interval_s.unwrap_or(self.group_interval_s),
                repeat_interval_s: r.repeat_interval_s.unwrap_or(self.repeat_interval_s),
                route: Some(i),
            });
            if !r.r#continue {
                return out;
            }
        }
        if out.is_empty() && !self.channels.is_empty() {
            out.push(Delivery {
                channels: self.channels.clone(),
                group_by: self.group_by.clone(),
                group_wait_s: self.group_wait_s,
                group_interval_s: self.group_interval_s,
                repeat_interval_s: self.repeat_interval_s,
                route: None,
            });
        }
        out
    }

    /// Whether the policy names channel `id` anywhere.
    pub fn uses_channel(&self, id: &str) -> bool {
        self.channels.iter().any(|c| c == id) || self.routes.iter().any(|r| r.channels.iter().any(|c| c == id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AlertPolicy {
    /// The organization's id.
    pub id: String,
    pub spec: Option<PolicySpec>,
}

impl AlertPolicy {
    /// The policy in force: the one set, else the defaults (send nowhere).
    pub fn current(&self) -> PolicySpec {
        self.spec.clone().unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertPolicyCommand {
    /// Replaces the policy; the spec has been checked against the organization's channels.
    Set { organization: String, spec: PolicySpec },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertPolicyEvent {
    Set { organization: String, spec: PolicySpec },
}

impl DomainEvent for AlertPolicyEvent {
    fn event_type(&self) -> String {
        "AlertPolicySet".to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for AlertPolicy {
    const TYPE: &'static str = "alert_policy";
    type Command = AlertPolicyCommand;
    type Event = AlertPolicyEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let AlertPolicyCommand::Set { organization, spec } = command;
        if self.spec.as_ref() == Some(&spec) {
            return Ok(());
        }
        sink.write(AlertPolicyEvent::Set { organization, spec }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let AlertPolicyEvent::Set { organization, spec } = event;
        self.id = organization;
        self.spec = Some(spec);
    }
}
