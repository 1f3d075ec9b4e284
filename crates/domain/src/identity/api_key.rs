//! API keys: kept as a sealed hash, with a role, an owner and an expiry.

use super::*;

/// Whom an API key acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeyOwner {
    /// A user: the key never has more rights than the user has now.
    User { user_id: String },
    /// A service account: a named non-person with exactly the key's role.
    ServiceAccount { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApiKey {
    pub id: String,
    pub created: bool,
    pub organization: String,
    pub name: String,
    pub owner: Option<KeyOwner>,
    pub role: Option<Role>,
    pub expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the key's secret part, sealed.
    pub secret_hash: Option<Sealed>,
    pub revoked: bool,
}

/// An API key as created (its secret only as a sealed hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub id: String,
    pub organization: String,
    pub name: String,
    pub owner: KeyOwner,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    /// SHA-256 of the key's secret part, sealed.
    pub secret_hash: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKeyCommand {
    Create(NewApiKey),
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    Created(NewApiKey),
    Revoked,
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "ApiKeyCreated",
            Self::Revoked => "ApiKeyRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "api_key";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            ApiKeyCommand::Create(new) => {
                if self.created {
                    return Err(IdentityError::Conflict("the API key already exists".into()));
                }
                if new.expires_at.is_some_and(|e| e <= Utc::now()) {
                    return Err(invalid("expiresAt", "must be in the future"));
                }
                let owner = match new.owner {
                    KeyOwner::ServiceAccount { name } => KeyOwner::ServiceAccount {
                        name: normalize_display_name("serviceAccount", &name)?,
                    },
                    user => user,
                };
                ApiKeyEvent::Created(NewApiKey {
                    name: normalize_display_name("name", &new.name)?,
                    owner,
                    ..new
                })
            }
            ApiKeyCommand::Revoke => {
                if !self.created {
                    return Err(IdentityError::NotFound("API key"));
                }
                if self.revoked {
                    return Ok(());
                }
                ApiKeyEvent::Revoked
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ApiKeyEvent::Created(new) => {
                self.id = new.id;
                self.created = true;
                self.organization = new.organization;
                self.name = new.name;
                self.owner = Some(new.owner);
                self.role = Some(new.role);
                self.expires_at = new.expires_at;
                self.secret_hash = Some(new.secret_hash);
            }
            ApiKeyEvent::Revoked => self.revoked = true,
        }
    }
}
