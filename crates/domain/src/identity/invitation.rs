//! Invitations: an address invited into an organization with a role, accepted once.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Invitation {
    pub id: String,
    pub created: bool,
    pub organization: String,
    pub email: String,
    pub role: Option<Role>,
    pub expires_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    pub revoked: bool,
}

impl Invitation {
    /// Whether it can still be accepted at `now`.
    pub fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.created && !self.revoked && self.accepted_by.is_none() && self.expires_at.is_some_and(|e| e > now)
    }
}

/// An invitation as created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub id: String,
    pub organization: String,
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationCommand {
    Create(NewInvitation),
    Accept { user_id: String },
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationEvent {
    Created(NewInvitation),
    Accepted { user_id: String },
    Revoked,
}

impl DomainEvent for InvitationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "InvitationCreated",
            Self::Accepted { .. } => "InvitationAccepted",
            Self::Revoked => "InvitationRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for Invitation {
    const TYPE: &'static str = "invitation";
    type Command = InvitationCommand;
    type Event = InvitationEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            InvitationCommand::Create(new) => {
                if self.created {
                    return Err(IdentityError::Conflict("the invitation already exists".into()));
                }
                InvitationEvent::Created(NewInvitation {
                    email: normalize_email(&new.email)?,
                    ..new
                })
            }
            InvitationCommand::Accept { user_id } => {
                if !self.open_at(Utc::now()) {
                    return Err(IdentityError::NotFound("open invitation"));
                }
                InvitationEvent::Accepted { user_id }
            }
            InvitationCommand::Revoke => {
                if !self.open_at(Utc::now()) {
                    return Err(IdentityError::NotFound("open invitation"));
                }
                InvitationEvent::Revoked
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InvitationEvent::Created(new) => {
                self.id = new.id;
                self.created = true;
                self.organization = new.organization;
                self.email = new.email;
                self.role = Some(new.role);
                self.expires_at = Some(new.expires_at);
            }
            InvitationEvent::Accepted { user_id } => self.accepted_by = Some(user_id),
            InvitationEvent::Revoked => self.revoked = true,
        }
    }
}
