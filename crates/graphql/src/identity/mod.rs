//! Identity over GraphQL: sign-in, sessions, invitations, users, organizations, teams and
//! API keys. The rules (who may do what) are the application's; this is their shape.

mod roots;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use jsc_app::identity::{Team, Tokens};
use jsc_domain::identity::{KeyOwner, Role};
use jsc_projections::identity::{ApiKeyView, InvitationView, OrganizationView, UserView};

use crate::context::{caller, console, principal};

pub use roots::{IdentityMutation, IdentityQuery};

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "jsc_domain::identity::Role", name = "Role")]
pub enum RoleGql {
    /// Reads clusters, streams, consumers and their history.
    Viewer,
    /// Also changes streams and consumers and tests cluster connections.
    Operator,
    /// Also manages clusters, members (below owner), teams, invitations, API keys, and reads the audit trail.
    Admin,
    /// Also manages owners.
    Owner,
}

/// Tokens of a session. Send the access token as `Authorization: Bearer <token>`; trade the
/// refresh token for new ones before the access token expires (each refresh token works once).
#[derive(SimpleObject)]
pub struct AuthPayload {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user_id: ID,
}

pub struct UserObj(pub(crate) UserView);

#[Object(name = "User")]
impl UserObj {
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.state.email
    }
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    async fn disabled(&self) -> bool {
        self.0.state.disabled
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The user's signed-in sessions (not signed out, revoked or expired): your own, or,
    /// for an admin of an organization the user belongs to, theirs.
    async fn sessions(&self, ctx: &Context<'_>) -> Result<Vec<SessionObj>> {
        Ok(console(ctx)
            .sessions_of(&caller(ctx)?, &self.0.state.id)?
            .into_iter()
            .map(|(view, current)| SessionObj { view, current })
            .collect())
    }
    /// The organizations this user belongs to that you can see, with the user's role.
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
pub struct SessionObj {
    view: jsc_projections::identity::SessionView,
    current: bool,
}

#[Object(name = "Session")]
impl SessionObj {
    async fn id(&self) -> ID {
        ID(self.view.state.id.clone())
    }
    /// When it signed in.
    async fn started_at(&self) -> DateTime<Utc> {
        self.view.created_at
    }
    /// When it last traded a refresh token (or signed in).
    async fn last_refreshed_at(&self) -> DateTime<Utc> {
        self.view.updated_at
    }
    /// When its refresh tokens stop working.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.view.state.expires_at
    }
    /// How many times it was refreshed.
    async fn refreshes(&self) -> u64 {
        self.view.state.generation
    }
    /// Whether this is the session of the request.
    async fn current(&self) -> bool {
        self.current
    }
}

pub struct Membership {
    organization: OrganizationObj,
    role: Role,
}

#[Object]
impl Membership {
    async fn organization(&self) -> &OrganizationObj {
        &self.organization
    }
    async fn role(&self) -> RoleGql {
        self.role.into()
    }
}

pub struct OrganizationObj(pub(crate) OrganizationView);

impl OrganizationObj {
    fn require(&self, ctx: &Context<'_>, min: Role) -> jsc_app::Result<Role> {
        console(ctx).require_org(principal(ctx)?, &self.0.state.id, min)
    }
}

#[Object(name = "Organization")]
impl OrganizationObj {
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Your role here.
    async fn my_role(&self, ctx: &Context<'_>) -> Result<RoleGql> {
        Ok(self.require(ctx, Role::Viewer)?.into())
    }
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        Ok(console(ctx)
            .members(&caller(ctx)?, &self.0)?
            .into_iter()
            .map(|(u, role)| Member { user: UserObj(u), role })
            .collect())
    }
    async fn teams(&self, ctx: &Context<'_>) -> Result<Vec<TeamObj>> {
        self.require(ctx, Role::Viewer)?;
        Ok(self
            .0
            .state
            .teams
            .keys()
            .map(|id| {
                TeamObj(Team {
                    organization: self.0.state.clone(),
                    id: id.clone(),
                })
            })
            .collect())
    }
    /// Invitations of this organization, newest first (admin).
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<InvitationObj>> {
        Ok(console(ctx)
            .invitations(&caller(ctx)?, &self.0.state.id)?
            .into_iter()
            .map(InvitationObj)
            .collect())
    }
    /// API keys of this organization: all of them for admins, your own otherwise.
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyObj>> {
        Ok(console(ctx)
            .api_keys(&caller(ctx)?, &self.0)?
            .into_iter()
            .map(ApiKeyObj)
            .collect())
    }
}

pub struct Member {
    user: UserObj,
    role: Role,
}

#[Object]
impl Member {
    async fn user(&self) -> &UserObj {
        &self.user
    }
    async fn role(&self) -> RoleGql {
        self.role.into()
    }
}

pub struct TeamObj(pub(crate) Team);

impl TeamObj {
    fn team(&self) -> &jsc_domain::identity::Team {
        self.0.team()
    }
}

/// A role a team's members get on one cluster.
#[derive(SimpleObject)]
pub struct ClusterGrant {
    pub cluster_id: ID,
    pub role: RoleGql,
}

#[Object(name = "Team")]
impl TeamObj {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.team().name
    }
    async fn members(&self, ctx: &Context<'_>) -> Vec<UserObj> {
        let c = console(ctx);
        self.team()
            .members
            .iter()
            .filter_map(|u| c.user_view(u).map(UserObj))
            .collect()
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

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

pub struct InvitationObj(pub(crate) InvitationView);

#[Object(name = "Invitation")]
impl InvitationObj {
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
    async fn email(&self) -> &str {
        &self.0.state.email
    }
    async fn role(&self) -> RoleGql {
        self.0.state.role.unwrap_or(Role::Viewer).into()
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.expires_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
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

/// A new invitation and its token, shown this once: hand it to the invitee, who accepts it
/// with mutation acceptInvitation. The answer is the same whether or not the address
/// already has an account.
#[derive(SimpleObject)]
pub struct CreatedInvitation {
    pub invitation: InvitationObj,
    pub token: String,
}

pub struct ApiKeyObj(pub(crate) ApiKeyView);

#[Object(name = "ApiKey")]
impl ApiKeyObj {
    async fn id(&self) -> ID {
        ID(self.0.state.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.state.name
    }
    async fn organization_id(&self) -> ID {
        ID(self.0.state.organization.clone())
    }
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
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.state.expires_at
    }
    async fn revoked(&self) -> bool {
        self.0.state.revoked
    }
    /// When the key was last used (recorded at most once a minute).
    async fn last_used_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        console(ctx).key_last_used(&self.0.state.id).await
    }
}

/// A new API key, shown this once: only its hash is kept.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKeyObj,
    /// Send as `Authorization: Bearer <key>`.
    pub key: String,
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
