//! Identity over GraphQL: sign-in, sessions, invitations, users, organizations, teams and
//! API keys. The rules (who may do what) are the application's; this is their shape.

mod roots;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_app::identity::{Team, Tokens};
use jsc_domain::identity::{KeyOwner, Role};
use jsc_projections::identity::{ApiKeyView, InvitationView, OrganizationView, UserView};

use crate::connection::{connection, paging};
use crate::context::{caller, console, principal};

pub use roots::{IdentityMutation, IdentityQuery};

/// A role in an organization, or on one cluster through a team grant. Each role includes
/// the rights of the ones before it: `VIEWER` < `OPERATOR` < `ADMIN` < `OWNER`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::identity::Role", name = "Role")]
pub enum RoleGql {
    /// Reads clusters, streams, consumers and their history.
    Viewer,
    /// Also changes streams and consumers and tests cluster connections.
    Operator,
    /// Also manages clusters, members (below owner), teams, invitations, API keys, and reads the audit trail.
    Admin,
    /// Also makes, changes and removes owners. Owners of the default organization also create
    /// organizations, administer the accounts of the users they share an organization with,
    /// and see installation-wide audit events.
    Owner,
}

/// Tokens of a session. Send the access token as `Authorization: Bearer <token>`; trade the
/// refresh token for new ones before the access token expires (each refresh token works once).
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// A signed access token, sent as `Authorization: Bearer <token>` (over WebSocket: in
    /// `connection_init`).
    pub access_token: String,
    /// When the access token stops working (15 minutes after it is issued by default).
    pub access_token_expires_at: DateTime<Utc>,
    /// A single-use token for mutation refreshSession; keep it secret.
    pub refresh_token: String,
    /// When the session ends and its refresh tokens stop working: a fixed time after
    /// sign-in (30 days by default), not moved by refreshing.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// The ID of the signed-in user.
    pub user_id: ID,
}

#[derive(Clone)]
pub struct UserObj(pub(crate) UserView);

/// An account of the console: a person who signs in with email and password. You see
/// yourself and the users of the organizations you belong to.
#[Object(name = "User")]
impl UserObj {
    /// The user's unique ID.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The email address the user signs in with, lower-cased.
    async fn email(&self) -> &str {
        &self.0.state.email
    }
    /// The user's display name (1 to 64 characters).
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    /// Whether the account is disabled: it cannot sign in, and its sessions and API keys
    /// do not work.
    async fn disabled(&self) -> bool {
        self.0.state.disabled
    }
    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The user's signed-in sessions (not signed out, revoked or expired), newest first.
    /// Your own, or another user's if you are admin (owner, for an owner) in every
    /// organization they belong to, or an owner of the default organization; `FORBIDDEN`
    /// otherwise.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` sessions (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only sessions after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` sessions (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only sessions before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<SessionConnection> {
        let paging = paging(first, after, last, before);
        let page = console(ctx).sessions_of(&caller(ctx)?, &self.0.state.id, &paging)?;
        Ok(SessionConnection::new(page, |(view, current)| SessionObj {
            view,
            current,
        }))
    }
    /// Your saved searches of stream messages, by name (of clusters you may still see); null
    /// for another user's.
    async fn saved_searches(&self, ctx: &Context<'_>) -> Result<Option<Vec<crate::messages::SavedSearchObj>>> {
        let caller = caller(ctx)?;
        if caller.user_id() != Some(self.0.state.id.as_str()) {
            return Ok(None);
        }
        Ok(Some(
            console(ctx)
                .saved_searches(&caller)
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }
    /// The organizations this user belongs to that you also belong to, with the user's role
    /// in each.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        Ok(console(ctx)
            .shared_organizations(principal(ctx)?, &self.0.state.id)
            .into_iter()
            .map(|(o, role)| Membership {
                organization: OrganizationObj(o),
                role,
            })
            .collect())
    }
}

/// A signed-in session (a refresh-token family).
#[derive(Clone)]
pub struct SessionObj {
    pub(crate) view: jsc_projections::identity::SessionView,
    pub(crate) current: bool,
}

/// One sign-in of a user: the family of refresh tokens it issued. It ends when its user
/// signs out, it is revoked, the password changes, or it expires.
#[Object(name = "Session")]
impl SessionObj {
    /// The session's unique ID, for mutation revokeSession.
    pub(crate) async fn id(&self) -> ID {
        ID(self.view.state.id.clone())
    }
    /// When the user signed in.
    async fn started_at(&self) -> DateTime<Utc> {
        self.view.created_at
    }
    /// When the session last traded a refresh token (or signed in, if never).
    async fn last_refreshed_at(&self) -> DateTime<Utc> {
        self.view.updated_at
    }
    /// When its refresh tokens stop working: a fixed time after sign-in (30 days by
    /// default), not moved by refreshing.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.view.state.expires_at
    }
    /// How many times a refresh token was traded for new tokens.
    async fn refreshes(&self) -> u64 {
        self.view.state.generation
    }
    /// Whether this is the session making the request.
    async fn current(&self) -> bool {
        self.current
    }
}

pub struct Membership {
    organization: OrganizationObj,
    role: Role,
}

/// A user's membership of one organization: the organization and the user's role in it.
#[Object]
impl Membership {
    /// The organization.
    async fn organization(&self) -> &OrganizationObj {
        &self.organization
    }
    /// The user's role in the organization (team grants on single clusters not counted).
    async fn role(&self) -> RoleGql {
        self.role.into()
    }
}

#[derive(Clone)]
pub struct OrganizationObj(pub(crate) OrganizationView);

impl OrganizationObj {
    fn require(&self, ctx: &Context<'_>, min: Role) -> jsc_app::Result<Role> {
        console(ctx).require_org(principal(ctx)?, &self.0.state.id, min)
    }
}

/// An organization: the unit that owns clusters, and whose members, teams, invitations and
/// API keys decide who may do what with them.
#[Object(name = "Organization")]
impl OrganizationObj {
    /// The organization's unique ID.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The organization's display name (1 to 64 characters).
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    /// What readers of the organization's streams do not see of their messages, applied in
    /// order to every page, message, tail and search (set with setMaskingRules).
    async fn masking_rules(&self) -> Vec<crate::messages::MaskingRuleObj> {
        self.0
            .state
            .masking
            .iter()
            .cloned()
            .map(crate::messages::MaskingRuleObj)
            .collect()
    }
    /// How Protobuf payloads of the organization's streams are read, by name (registered
    /// with registerProtobufSchema).
    async fn protobuf_schemas(&self) -> Vec<crate::messages::ProtobufSchemaObj> {
        self.0
            .state
            .protobuf
            .values()
            .cloned()
            .map(crate::messages::ProtobufSchemaObj::from)
            .collect()
    }
    /// When the organization was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Your role in this organization (for an API key, the lower of the key's role and its
    /// user's role). Team grants can raise it on single clusters.
    async fn my_role(&self, ctx: &Context<'_>) -> Result<RoleGql> {
        Ok(self.require(ctx, Role::Viewer)?.into())
    }
    /// The organization's members with their roles, by name (viewer).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` members (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only members after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` members (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only members before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<MemberConnection> {
        let page = console(ctx).members(&caller(ctx)?, &self.0, &paging(first, after, last, before))?;
        Ok(MemberConnection::new(page, |(u, role)| Member {
            user: UserObj(u),
            role,
        }))
    }
    /// The organization's teams, by name (viewer).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn teams(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` teams (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only teams after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` teams (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only teams before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<TeamConnection> {
        let page = console(ctx).teams(&caller(ctx)?, &self.0, &paging(first, after, last, before))?;
        Ok(TeamConnection::new(page, TeamObj))
    }
    /// Invitations of this organization in every status, newest first (admin; `FORBIDDEN`
    /// below).
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` invitations (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only invitations after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` invitations (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only invitations before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<InvitationConnection> {
        let paging = paging(first, after, last, before);
        let page = console(ctx).invitations(&caller(ctx)?, &self.0.state.id, &paging)?;
        Ok(InvitationConnection::new(page, InvitationObj))
    }
    /// API keys of this organization, revoked ones included, newest first: all of them for
    /// admins, your own otherwise.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` API keys (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only API keys after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` API keys (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only API keys before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<ApiKeyConnection> {
        let page = console(ctx).api_keys(&caller(ctx)?, &self.0, &paging(first, after, last, before))?;
        Ok(ApiKeyConnection::new(page, ApiKeyObj))
    }
}

connection!(UserConnection, UserEdge, UserObj, "users");
connection!(SessionConnection, SessionEdge, SessionObj, "sessions");
connection!(MemberConnection, MemberEdge, Member, "members");
connection!(TeamConnection, TeamEdge, TeamObj, "teams");
connection!(InvitationConnection, InvitationEdge, InvitationObj, "invitations");
connection!(ApiKeyConnection, ApiKeyEdge, ApiKeyObj, "API keys");

#[derive(Clone)]
pub struct Member {
    user: UserObj,
    role: Role,
}

/// A member of an organization and their role in it.
#[Object]
impl Member {
    /// The member's account.
    async fn user(&self) -> &UserObj {
        &self.user
    }
    /// The member's role in the organization.
    async fn role(&self) -> RoleGql {
        self.role.into()
    }
}

#[derive(Clone)]
pub struct TeamObj(pub(crate) Team);

impl TeamObj {
    fn team(&self) -> &jsc_domain::identity::Team {
        self.0.team()
    }
}

/// A role a team's members get on one cluster.
#[derive(SimpleObject)]
pub struct ClusterGrant {
    /// The ID of the cluster, one of the organization's.
    pub cluster_id: ID,
    /// The role granted there (at most `ADMIN`); a member with a higher organization role
    /// keeps it.
    pub role: RoleGql,
}

/// A named group of an organization's members that can be given roles on single clusters
/// of the organization.
#[Object(name = "Team")]
impl TeamObj {
    /// The team's unique ID.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// The team's name, unique in the organization ignoring case (1 to 64 characters).
    async fn name(&self) -> &str {
        &self.team().name
    }
    /// The team's members, all of them members of the organization, by name.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The first `first` members (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only members after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` members (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only members before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<UserConnection> {
        let page = console(ctx).team_members(&self.0, &paging(first, after, last, before))?;
        Ok(UserConnection::new(page, UserObj))
    }
    /// Roles the team's members get on single clusters (raising their organization role there).
    async fn cluster_roles(&self) -> Vec<ClusterGrant> {
        self.team()
            .clusters
            .iter()
            .map(|(c, r)| ClusterGrant {
                cluster_id: ID(c.clone()),
                role: (*r).into(),
            })
            .collect()
    }
}

/// Where an invitation stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvitationStatus {
    /// Not yet accepted, revoked or expired: its token still works.
    Pending,
    /// Accepted: the invitee joined the organization.
    Accepted,
    /// Withdrawn by an admin before it was accepted.
    Revoked,
    /// Past its expiry time without being accepted.
    Expired,
}

#[derive(Clone)]
pub struct InvitationObj(pub(crate) InvitationView);

/// An invitation of an email address into an organization with a role. Only admins of the
/// organization see its invitations.
#[Object(name = "Invitation")]
impl InvitationObj {
    /// The invitation's unique ID.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The ID of the organization the invitation is into.
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
    /// The invited email address, lower-cased.
    async fn email(&self) -> &str {
        &self.0.state.email
    }
    /// The role the invitee gets in the organization (a member who already has a higher
    /// role keeps it).
    async fn role(&self) -> RoleGql {
        self.0.state.role.unwrap_or(Role::Viewer).into()
    }
    /// When the invitation's token stops working (7 days after it was created by default).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.expires_at
    }
    /// When the invitation was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who created it, as an actor: `user:<id>` or `apikey:<id>`.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// Whether the invitation is pending, accepted, revoked or expired, as of now.
    async fn status(&self) -> InvitationStatus {
        let s = &self.0.state;
        if s.accepted_by.is_some() {
            InvitationStatus::Accepted
        } else if s.revoked {
            InvitationStatus::Revoked
        } else if s.open_at(Utc::now()) {
            InvitationStatus::Pending
        } else {
            InvitationStatus::Expired
        }
    }
}

#[derive(Clone)]
pub struct ApiKeyObj(pub(crate) ApiKeyView);

/// An API key: a long-lived credential for scripts and services, valid in one organization
/// with one role. Only its hash is kept.
#[Object(name = "ApiKey")]
impl ApiKeyObj {
    /// The key's unique ID (the actor `apikey:<id>` in events).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    /// The key's display name (1 to 64 characters).
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    /// The ID of the only organization the key works in.
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
    /// The role the key grants. A personal key never acts above its user's current role
    /// in the organization.
    async fn role(&self) -> RoleGql {
        self.0.state.role.unwrap_or(Role::Viewer).into()
    }
    /// The user the key acts for (its rights never exceed theirs), if not a service account.
    async fn user_id(&self) -> Option<ID> {
        match &self.0.state.owner {
            Some(KeyOwner::User { user_id }) => Some(ID(user_id.clone())),
            _ => None,
        }
    }
    /// The service account the key belongs to, if any.
    async fn service_account(&self) -> Option<&str> {
        match &self.0.state.owner {
            Some(KeyOwner::ServiceAccount { name }) => Some(name),
            _ => None,
        }
    }
    /// When the key was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who created it, as an actor: `user:<id>`.
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    /// When the key stops working; null if it never expires.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.expires_at
    }
    /// Whether the key was revoked; a revoked key never works again.
    async fn revoked(&self) -> bool {
        self.0.state.revoked
    }
    /// When the key was last used to authenticate (recorded at most once a minute); null if
    /// never.
    async fn last_used_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        console(ctx).key_last_used(&self.0.state.id).await
    }
}

impl From<Tokens> for AuthPayload {
    fn from(t: Tokens) -> Self {
        Self {
            access_token: t.access_token,
            access_token_expires_at: t.access_token_expires_at,
            refresh_token: t.refresh_token,
            refresh_token_expires_at: t.refresh_token_expires_at,
            user_id: ID(t.user_id),
        }
    }
}
