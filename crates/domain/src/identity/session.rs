//! Sessions: one sign-in, a family of refresh tokens with reuse detection.

use super::*;

/// One sign-in: a family of refresh tokens. Each refresh moves `generation` on; a token of
/// an older generation coming back means it was stolen or replayed, and the whole family
/// is revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub started: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub generation: u64,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: Option<String>,
}

/// A session as started: who, and until when its refresh tokens may be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    pub id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCommand {
    Start(NewSession),
    /// Presents the refresh token of `generation`.
    Refresh {
        generation: u64,
    },
    Revoke {
        reason: RevokeReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    Started(NewSession),
    Refreshed { generation: u64 },
    Revoked { reason: String },
}

/// Why a session was revoked when a rotated refresh token came back.
pub const REUSE_DETECTED: &str = "refresh token reused";

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Started { .. } => "SessionStarted",
            Self::Refreshed { .. } => "SessionRefreshed",
            Self::Revoked { .. } => "SessionRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Session {
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.started && self.revoked.is_none() && self.expires_at.is_some_and(|e| e > now)
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            SessionCommand::Start(new) => {
                if self.started {
                    return Err(IdentityError::Conflict("the session already exists".into()));
                }
                SessionEvent::Started(new)
            }
            // An inactive session refuses quietly: the caller sees the state and says no.
            SessionCommand::Refresh { .. } if !self.active_at(Utc::now()) => return Ok(()),
            SessionCommand::Refresh { generation } if generation == self.generation => SessionEvent::Refreshed {
                generation: self.generation + 1,
            },
            SessionCommand::Refresh { .. } => SessionEvent::Revoked {
                reason: REUSE_DETECTED.into(),
            },
            SessionCommand::Revoke { .. } if self.revoked.is_some() || !self.started => return Ok(()),
            SessionCommand::Revoke { reason } => SessionEvent::Revoked {
                reason: reason.to_string(),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SessionEvent::Started(new) => {
                self.id = new.id;
                self.user_id = new.user_id;
                self.started = true;
                self.expires_at = Some(new.expires_at);
            }
            SessionEvent::Refreshed { generation } => self.generation = generation,
            SessionEvent::Revoked { reason } => self.revoked = Some(reason),
        }
    }
}
