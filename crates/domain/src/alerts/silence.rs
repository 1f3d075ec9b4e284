//! Silences: alerts whose labels match are kept quiet from `starts_at` to `ends_at` (they
//! still change state and are recorded; nothing is sent). Who made one and why is kept.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{AlertError, Matcher, check_matchers, invalid};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceSpec {
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
}

impl SilenceSpec {
    fn checked(mut self) -> Result<Self, AlertError> {
        if self.matchers.is_empty() {
            return Err(invalid(
                "matchers",
                "give at least one matcher (a silence of everything would hide every alert)",
            ));
        }
        check_matchers("matchers", &self.matchers)?;
        if self.ends_at <= self.starts_at {
            return Err(invalid("endsAt", "must be after startsAt"));
        }
        if self.ends_at - self.starts_at > chrono::TimeDelta::days(366) {
            return Err(invalid(
                "endsAt",
                "a silence lasts at most a year; disable the rule instead",
            ));
        }
        self.comment = self.comment.trim().to_string();
        if self.comment.is_empty() || self.comment.len() > 1024 {
            return Err(invalid("comment", "say why (1 to 1024 bytes)"));
        }
        Ok(self)
    }

    /// Whether the silence is in force at `now`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Silence {
    pub id: String,
    pub organization: String,
    /// Who made it (a user id, or an API key's).
    pub created_by: String,
    pub spec: Option<SilenceSpec>,
    /// When it was ended early, if it was.
    pub expired_at: Option<DateTime<Utc>>,
}

impl Silence {
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.spec.as_ref().is_some_and(|s| s.active_at(now)) && self.expired_at.is_none_or(|e| now < e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SilenceCommand {
    Create {
        id: String,
        organization: String,
        created_by: String,
        spec: SilenceSpec,
        now: DateTime<Utc>,
    },
    Update {
        spec: SilenceSpec,
        now: DateTime<Utc>,
    },
    Expire {
        now: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SilenceEvent {
    Created {
        id: String,
        organization: String,
        created_by: String,
        spec: SilenceSpec,
    },
    Updated {
        spec: SilenceSpec,
    },
    Expired {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for SilenceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "SilenceCreated",
            Self::Updated { .. } => "SilenceUpdated",
            Self::Expired { .. } => "SilenceExpired",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for Silence {
    const TYPE: &'static str = "silence";
    type Command = SilenceCommand;
    type Event = SilenceEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let over = |s: &Self, now| s.expired_at.is_some() || s.spec.as_ref().is_some_and(|sp| sp.ends_at <= now);
        let event = match command {
            SilenceCommand::Create {
                id,
                organization,
                created_by,
                spec,
                now,
            } => {
                if self.spec.is_some() {
                    return Err(AlertError::Conflict("the silence already exists".into()));
                }
                let spec = spec.checked()?;
                if spec.ends_at <= now {
                    return Err(invalid("endsAt", "must be in the future"));
                }
                SilenceEvent::Created {
                    id,
                    organization,
                    created_by,
                    spec,
                }
            }
            SilenceCommand::Update { spec, now } => {
                if self.spec.is_none() {
                    return Err(AlertError::NotFound("silence"));
                }
                if over(self, now) {
                    return Err(AlertError::Conflict("the silence has ended; create a new one".into()));
                }
                let spec = spec.checked()?;
                if spec.ends_at <= now {
                    return Err(invalid(
                        "endsAt",
                        "must be in the future (use expireSilence to end it now)",
                    ));
                }
                SilenceEvent::Updated { spec }
            }
            SilenceCommand::Expire { now } => {
                if self.spec.is_none() {
                    return Err(AlertError::NotFound("silence"));
                }
                if over(self, now) {
                    return Ok(());
                }
                SilenceEvent::Expired { at: now }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SilenceEvent::Created {
                id,
                organization,
                created_by,
                spec,
            } => {
                self.id = id;
                self.organization = organization;
                self.created_by = created_by;
                self.spec = Some(spec);
            }
            SilenceEvent::Updated { spec } => self.spec = Some(spec),
            SilenceEvent::Expired { at } => self.expired_at = Some(at),
        }
    }
}
