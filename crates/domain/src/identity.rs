//! Identity and access: organizations (members, teams, per-cluster grants), users,
//! invitations, sessions and API keys.
//!
//! Nothing secret is ever in clear here: a password hash and an API key's hash are
//! [`Sealed`] (encrypted with the console's key), and refresh and invitation tokens are
//! not stored at all: they are signed by the API and checked against the `generation` or
//! the state kept in these aggregates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{DomainError, ErrorKind, Sealed};

/// The organization every installation starts with; clusters registered before
/// organizations existed belong to it.
pub const DEFAULT_ORGANIZATION: &str = "default";

/// What a member may do in an organization (or, through a team, on one cluster).
/// Ordered: each role can do everything the roles before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads clusters, streams, consumers and their history.
    Viewer,
    /// Also changes streams and consumers and tests connections.
    Operator,
    /// Also manages clusters, members below owner, teams, API keys and reads the audit trail.
    Admin,
    /// Also manages owners.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::Validation,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Conflict(_) => ErrorKind::Conflict,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid {
        field,
        message: message.into(),
    }
}

/// A display name: trimmed, 1..=64 characters, no control characters.
pub fn normalize_display_name(field: &'static str, name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if name.chars().count() > 64 {
        return Err(invalid(field, "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(name.to_string())
}

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most bytes a password may have (argon2 hashes it whole).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The password rules: long enough, not absurdly long, not the email address.
pub fn check_password(password: &str, email: &str) -> Result<(), IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid("password", format!("at most {MAX_PASSWORD_BYTES} bytes")));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(invalid("password", "must not be your email address"));
    }
    Ok(())
}

/// Why a session was revoked (recorded in `SessionRevoked` in words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokeReason {
    SignedOut,
    PasswordChanged,
    /// The account was disabled or its password changed since the session started.
    Stale,
    Expired,
    /// Someone presented a refresh token that was already traded.
    ReuseDetected,
    /// Ended by its user or an administrator (`actor`).
    RevokedBy(String),
}

impl std::fmt::Display for RevokeReason {
    /// The words recorded in the event (as they always were, so old events read the same).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignedOut => f.write_str("signed out"),
            Self::PasswordChanged => f.write_str("password changed"),
            Self::Stale => f.write_str("account disabled or password changed"),
            Self::Expired => f.write_str("expired"),
            Self::ReuseDetected => f.write_str(REUSE_DETECTED),
            Self::RevokedBy(actor) => write!(f, "revoked by {actor}"),
        }
    }
}

/// An email address, lower-cased; only its shape is checked (`local@domain`).
pub fn normalize_email(email: &str) -> Result<String, IdentityError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@') && !d.starts_with('.'));
    if ok {
        Ok(email)
    } else {
        Err(invalid("email", "is not an email address (expected name@example.com)"))
    }
}

// ---------------------------------------------------------------------------------------
// Organization
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Team {
    pub name: String,
    pub members: BTreeSet<String>,
    /// Roles the team's members get on single clusters of the organization.
    pub clusters: BTreeMap<String, Role>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Organization {
    pub id: String,
    pub name: String,
    pub created: bool,
    pub members: BTreeMap<String, Role>,
    pub teams: BTreeMap<String, Team>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationCommand {
    Create {
        id: String,
        name: String,
    },
    SetMember {
        user_id: String,
        role: Role,
    },
    RemoveMember {
        user_id: String,
    },
    CreateTeam {
        team_id: String,
        name: String,
    },
    DeleteTeam {
        team_id: String,
    },
    AddTeamMember {
        team_id: String,
        user_id: String,
    },
    RemoveTeamMember {
        team_id: String,
        user_id: String,
    },
    SetTeamClusterRole {
        team_id: String,
        cluster_id: String,
        role: Option<Role>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    Created {
        id: String,
        name: String,
    },
    MemberSet {
        user_id: String,
        role: Role,
        previous: Option<Role>,
    },
    MemberRemoved {
        user_id: String,
        role: Role,
    },
    TeamCreated {
        team_id: String,
        name: String,
    },
    TeamDeleted {
        team_id: String,
        name: String,
    },
    TeamMemberAdded {
        team_id: String,
        user_id: String,
    },
    TeamMemberRemoved {
        team_id: String,
        user_id: String,
    },
    TeamClusterRoleSet {
        team_id: String,
        cluster_id: String,
        role: Option<Role>,
        previous: Option<Role>,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Created { .. } => "OrganizationCreated",
            Self::MemberSet { .. } => "OrganizationMemberSet",
            Self::MemberRemoved { .. } => "OrganizationMemberRemoved",
            Self::TeamCreated { .. } => "TeamCreated",
            Self::TeamDeleted { .. } => "TeamDeleted",
            Self::TeamMemberAdded { .. } => "TeamMemberAdded",
            Self::TeamMemberRemoved { .. } => "TeamMemberRemoved",
            Self::TeamClusterRoleSet { .. } => "TeamClusterRoleSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl Organization {
    fn live(&self) -> Result<(), IdentityError> {
        if self.created {
            Ok(())
        } else {
            Err(IdentityError::NotFound("organization"))
        }
    }

    fn team(&self, team_id: &str) -> Result<&Team, IdentityError> {
        self.teams.get(team_id).ok_or(IdentityError::NotFound("team"))
    }

    fn owners(&self) -> usize {
        self.members.values().filter(|r| **r == Role::Owner).count()
    }

    /// The highest role `user_id` has on `cluster_id`: the organization role, raised by
    /// any team grant for that cluster. `None` for a non-member.
    pub fn cluster_role(&self, user_id: &str, cluster_id: &str) -> Option<Role> {
        let base = *self.members.get(user_id)?;
        let granted = self
            .teams
            .values()
            .filter(|t| t.members.contains(user_id))
            .filter_map(|t| t.clusters.get(cluster_id).copied())
            .max();
        Some(granted.map_or(base, |g| g.max(base)))
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = IdentityError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), Self::Error> {
        use OrganizationCommand as C;
        use OrganizationEvent as E;
        let event = match command {
            C::Create { id, name } => {
                if self.created {
                    return Err(IdentityError::Conflict(format!("organization '{id}' already exists")));
                }
                E::Created {
                    id,
                    name: normalize_display_name("name", &name)?,
                }
            }
            C::SetMember { user_id, role } => {
                self.live()?;
                let previous = self.members.get(&user_id).copied();
                if previous == Some(role) {
                    return Ok(());
                }
                if previous == Some(Role::Owner) && self.owners() == 1 {
                    return Err(IdentityError::Conflict(
                        "this is the organization's last owner; make someone else owner first".into(),
                    ));
                }
                E::MemberSet {
                    user_id,
                    role,
                    previous,
                }
            }
            C::RemoveMember { user_id } => {
                self.live()?;
                let role = *self.members.get(&user_id).ok_or(IdentityError::NotFound("member"))?;
                if role == Role::Owner && self.owners() == 1 {
                    return Err(IdentityError::Conflict(
                        "this is the organization's last owner; make someone else owner first".into(),
                    ));
                }
                E::MemberRemoved { user_id, role }
            }
            C::CreateTeam { team_id, name } => {
                self.live()?;
                let name = normalize_display_name("name", &name)?;
                if self.teams.values().any(|t| t.name.eq_ignore_ascii_case(&name)) {
                    return Err(invalid("name", format!("a team named '{name}' already exists")));
                }
                E::TeamCreated { team_id, name }
            }
            C::DeleteTeam { team_id } => {
                self.live()?;
                let name = self.team(&team_id)?.name.clone();
                E::TeamDeleted { team_id, name }
            }
            C::AddTeamMember { team_id, user_id } => {
                self.live()?;
                if !self.members.contains_key(&user_id) {
                    return Err(IdentityError::NotFound("member"));
                }
                if self.team(&team_id)?.members.contains(&user_id) {
                    return Ok(());
                }
                E::TeamMemberAdded { team_id, user_id }
            }
            C::RemoveTeamMember { team_id, user_id } => {
                self.live()?;
                if !self.team(&team_id)?.members.contains(&user_id) {
                    return Err(IdentityError::NotFound("team member"));
                }
                E::TeamMemberRemoved { team_id, user_id }
            }
            C::SetTeamClusterRole {
                team_id,
                cluster_id,
                role,
            } => {
                self.live()?;
                let previous = self.team(&team_id)?.clusters.get(&cluster_id).copied();
                if previous == role {
                    return Ok(());
                }
                E::TeamClusterRoleSet {
                    team_id,
                    cluster_id,
                    role,
                    previous,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use OrganizationEvent as E;
        match event {
            E::Created { id, name } => {
                self.id = id;
                self.name = name;
                self.created = true;
            }
            E::MemberSet { user_id, role, .. } => {
                self.members.insert(user_id, role);
            }
            E::MemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
                for t in self.teams.values_mut() {
                    t.members.remove(&user_id);
                }
            }
            E::TeamCreated { team_id, name } => {
                self.teams.insert(
                    team_id,
                    Team {
                        name,
                        ..Default::default()
                    },
                );
            }
            E::TeamDeleted { team_id, .. } => {
                self.teams.remove(&team_id);
            }
            E::TeamMemberAdded { team_id, user_id } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    t.members.insert(user_id);
                }
            }
            E::TeamMemberRemoved { team_id, user_id } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    t.members.remove(&user_id);
                }
            }
            E::TeamClusterRoleSet {
                team_id,
                cluster_id,
                role,
                ..
            } => {
                if let Some(t) = self.teams.get_mut(&team_id) {
                    match role {
                        Some(r) => t.clusters.insert(cluster_id, r),
                        None => t.clusters.remove(&cluster_id),
                    };
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// User
// ---------------------------------------------------------------------------------------

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
}

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
    ChangePassword { password: Sealed },
    Disable,
    Enable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered(NewUser),
    PasswordChanged { password: Sealed, at: DateTime<Utc> },
    Disabled,
    Enabled,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "UserRegistered",
            Self::PasswordChanged { .. } => "UserPasswordChanged",
            Self::Disabled => "UserDisabled",
            Self::Enabled => "UserEnabled",
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
        }
    }
}

// ---------------------------------------------------------------------------------------
// Invitation
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// API key
// ---------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Organization {
        let mut o = Organization::default();
        o.apply(OrganizationEvent::Created {
            id: "acme".into(),
            name: "Acme".into(),
        });
        o.apply(OrganizationEvent::MemberSet {
            user_id: "u".into(),
            role: Role::Viewer,
            previous: None,
        });
        o.apply(OrganizationEvent::TeamCreated {
            team_id: "t".into(),
            name: "payments".into(),
        });
        o.apply(OrganizationEvent::TeamMemberAdded {
            team_id: "t".into(),
            user_id: "u".into(),
        });
        o.apply(OrganizationEvent::TeamClusterRoleSet {
            team_id: "t".into(),
            cluster_id: "c1".into(),
            role: Some(Role::Operator),
            previous: None,
        });
        o
    }

    #[test]
    fn a_team_grant_raises_the_role_on_its_cluster_only() {
        let o = org();
        assert_eq!(o.cluster_role("u", "c1"), Some(Role::Operator));
        assert_eq!(o.cluster_role("u", "c2"), Some(Role::Viewer));
        assert_eq!(o.cluster_role("stranger", "c1"), None);
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "@x", "ann@", "a b@x.y", "a@@x"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
