//! Users: an account with a sealed password hash, which can be disabled.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct User {
    pub id: String,
    pub registered: bool,
    pub email: String,
    pub name: String,
    /// The argon2 hash of the password, sealed.
    pub password: Option<Sealed>,
    pub disabled: bool,
    /// Sessions and tokens issued before this moment are no longer valid (password change).
    pub sessions_valid_after: Option<DateTime<Utc>>,
    /// The user's saved searches of stream messages, by name.
    #[serde(default)]
    pub saved_searches: BTreeMap<String, SavedSearch>,
}

impl User {
    /// The key a registered user holds alone: its email (normalized, so lower case). The
    /// write side enforces it (a claim committed with the registration).
    pub fn unique_keys(&self) -> Vec<String> {
        if self.registered {
            vec![Self::email_key(&self.email)]
        } else {
            Vec::new()
        }
    }

    /// The claim key of a (normalized) email.
    pub fn email_key(email: &str) -> String {
        format!("user-email/{email}")
    }

    /// The refusal when another user holds the email.
    pub fn key_taken(&self, _key: &str) -> IdentityError {
        IdentityError::Conflict(format!(
            "another account already uses {}; sign in with it, or use another address",
            self.email
        ))
    }
}

/// A search of a stream's messages a user saved to run again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSearch {
    pub name: String,
    pub cluster_id: String,
    pub stream: String,
    /// The search as the console checked it (its range, filters and limits).
    pub search: serde_json::Value,
    pub saved_at: DateTime<Utc>,
}

/// Most searches one user may save.
pub const MAX_SAVED_SEARCHES: usize = 100;

/// An account as registered (the command's input, and the event once normalized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub name: String,
    /// The argon2 hash of the password, sealed.
    pub password: Sealed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserCommand {
    Register(NewUser),
    ChangePassword {
        password: Sealed,
    },
    Disable,
    Enable,
    /// Saves a search under its name, replacing one of the same name.
    SaveSearch(SavedSearch),
    DeleteSavedSearch {
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered(NewUser),
    PasswordChanged { password: Sealed, at: DateTime<Utc> },
    Disabled,
    Enabled,
    SearchSaved { search: SavedSearch, replaced: bool },
    SavedSearchDeleted { name: String },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "UserRegistered",
            Self::PasswordChanged { .. } => "UserPasswordChanged",
            Self::Disabled => "UserDisabled",
            Self::Enabled => "UserEnabled",
            Self::SearchSaved { .. } => "SearchSaved",
            Self::SavedSearchDeleted { .. } => "SavedSearchDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        let event = match command {
            UserCommand::Register(new) => {
                if self.registered {
                    return Err(IdentityError::Conflict("the user already exists".into()));
                }
                UserEvent::Registered(NewUser {
                    email: normalize_email(&new.email)?,
                    name: normalize_display_name("name", &new.name)?,
                    ..new
                })
            }
            other => {
                if !self.registered {
                    return Err(IdentityError::NotFound("user"));
                }
                match other {
                    UserCommand::ChangePassword { password } => UserEvent::PasswordChanged {
                        password,
                        at: Utc::now(),
                    },
                    UserCommand::Disable if self.disabled => return Ok(()),
                    UserCommand::Disable => UserEvent::Disabled,
                    UserCommand::Enable if !self.disabled => return Ok(()),
                    UserCommand::Enable => UserEvent::Enabled,
                    UserCommand::SaveSearch(search) => {
                        let name = normalize_display_name("name", &search.name)?;
                        let replaced = self.saved_searches.contains_key(&name);
                        if !replaced && self.saved_searches.len() >= MAX_SAVED_SEARCHES {
                            return Err(IdentityError::Invalid {
                                field: "name",
                                message: format!(
                                    "you have {MAX_SAVED_SEARCHES} saved searches; delete one or save under a name you have"
                                ),
                            });
                        }
                        UserEvent::SearchSaved {
                            search: SavedSearch { name, ..search },
                            replaced,
                        }
                    }
                    UserCommand::DeleteSavedSearch { name } => {
                        if !self.saved_searches.contains_key(&name) {
                            return Err(IdentityError::NotFound("saved search"));
                        }
                        UserEvent::SavedSearchDeleted { name }
                    }
                    UserCommand::Register(_) => unreachable!("handled above"),
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::Registered(new) => {
                self.id = new.id;
                self.email = new.email;
                self.name = new.name;
                self.password = Some(new.password);
                self.registered = true;
            }
            UserEvent::PasswordChanged { password, at } => {
                self.password = Some(password);
                self.sessions_valid_after = Some(at);
            }
            UserEvent::Disabled => self.disabled = true,
            UserEvent::Enabled => self.disabled = false,
            UserEvent::SearchSaved { search, .. } => {
                self.saved_searches.insert(search.name.clone(), search);
            }
            UserEvent::SavedSearchDeleted { name } => {
                self.saved_searches.remove(&name);
            }
        }
    }
}
