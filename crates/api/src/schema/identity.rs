//! Identity over GraphQL: sign-in, sessions, invitations, users, organizations, teams and
//! API keys. Login, refresh and invitation acceptance are the only operations open to
//! anonymous callers; everything else checks the caller's role.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use jsc_domain::identity::{
    ApiKeyCommand, DEFAULT_ORGANIZATION, InvitationCommand, KeyOwner, NewApiKey, NewInvitation, NewSession, NewUser,
    OrganizationCommand, REUSE_DETECTED, Role, SessionCommand, UserCommand, normalize_email,
};
use jsc_eventstore::{CommandContext, Repository};
use jsc_projections::identity::{ApiKeyView, InvitationView, OrganizationView, UserView};
use jsc_projector::{Versioned, ViewCache, kv_token};

use super::{command, console, meta, principal};
use crate::auth::{self, AccessClaims, Principal, forbidden, unauthenticated};
use crate::error::{ApiError, ApiResult, Code};
use crate::state::Console;

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

// ---------------------------------------------------------------------------------------
// Helpers shared by the identity resolvers
// ---------------------------------------------------------------------------------------

/// Runs `cmd` on aggregate `id` and waits until `view` shows it.
pub(crate) async fn execute<A, V>(
    c: &Console,
    repo: &Repository<A>,
    view: &ViewCache<V>,
    id: &str,
    cmd: A::Command,
    cctx: &CommandContext,
) -> ApiResult<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
    A::Error: jsc_domain::DomainError,
    V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let committed = repo
        .execute(id, cmd, cctx)
        .await
        .map_err(|e| ApiError::from_aggregate(e, &cctx.correlation_id))?;
    c.await_view(view, A::TYPE, committed.stream_sequence, cctx).await?;
    Ok(committed.state)
}

fn get<V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static>(
    view: &ViewCache<V>,
    id: &str,
) -> Option<Versioned<V>> {
    view.get(&kv_token(id))
}

pub(crate) fn user_by_email(c: &Console, email: &str) -> Option<UserView> {
    c.auth
        .users
        .filter(|u| u.state.email == email)
        .into_iter()
        .next()
        .map(|v| v.view)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn rate_limited(wait: std::time::Duration) -> ApiError {
    let secs = wait.as_secs().max(1);
    let mut e = ApiError::new(
        Code::RateLimited,
        format!("too many sign-in attempts; wait {secs} s and try again"),
    );
    e.retry_after = Some(secs);
    e
}

/// Applies the login limits for `account` from this request's address.
fn check_limits(ctx: &Context<'_>, account: &str) -> ApiResult<()> {
    let c = console(ctx);
    let addr = meta(ctx).client_addr.unwrap_or_else(|| "unknown".into());
    // One IPv6 host holds a whole /64: limit the /64, not the address.
    let addr = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => addr,
    };
    c.auth.limiter.check(&c.auth.settings, &addr, account).map_err(|wait| {
        let e = rate_limited(wait);
        ctx.insert_http_header("Retry-After", e.retry_after.unwrap_or(1).to_string());
        e
    })
}

/// Starts a session for `user_id` and issues its first tokens.
async fn start_session(ctx: &Context<'_>, user_id: &str) -> ApiResult<AuthPayload> {
    let c = console(ctx);
    let session_id = new_id();
    let cctx = meta(ctx).command_context(&format!("user:{user_id}"), None);
    let expires_at = Utc::now() + c.auth.settings.refresh_ttl;
    execute(
        c,
        &c.sessions,
        &c.auth.sessions,
        &session_id,
        SessionCommand::Start(NewSession {
            id: session_id.clone(),
            user_id: user_id.to_string(),
            expires_at,
        }),
        &cctx,
    )
    .await?;
    Ok(issue(c, user_id, &session_id, 0, expires_at))
}

fn issue(c: &Console, user_id: &str, session_id: &str, generation: u64, refresh_expires: DateTime<Utc>) -> AuthPayload {
    let claims = AccessClaims::new(user_id, session_id, c.auth.settings.access_ttl);
    AuthPayload {
        access_token: c.auth.keys.sign_access(&claims),
        access_token_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
        refresh_token: c.auth.keys.refresh_token(session_id, generation),
        refresh_token_expires_at: refresh_expires,
        user_id: ID(user_id.to_string()),
    }
}

fn invalid_login() -> ApiError {
    unauthenticated("wrong email or password")
}

async fn password_matches(c: &Console, user: Option<&UserView>, password: &str) -> bool {
    let phc = user
        .and_then(|u| u.state.password.as_ref())
        .and_then(|s| c.fleet.secrets().unseal(s).ok());
    auth::verify_password(password, phc).await
}

/// The organizations a user belongs to, as the caller may see them.
fn shared_orgs(c: &Console, p: &Principal, user_id: &str) -> Vec<(OrganizationView, Role)> {
    c.auth
        .organizations
        .list()
        .into_iter()
        .filter_map(|o| {
            let role = *o.view.state.members.get(user_id)?;
            c.org_role(p, &o.view.state.id)?;
            Some((o.view, role))
        })
        .collect()
}

/// The target user's role in an organization where the caller is admin (or the highest
/// such), for account-wide actions; `NOT_FOUND` when they share none the caller can see.
/// For account-wide actions on another user (disable, enable, their sessions and history):
/// the caller must administer the user in *every* organization the user belongs to (owner
/// where the user is an owner), or own the default organization (the installation's
/// administrators). An admin of one organization cannot lock a user out of another.
/// `NOT_FOUND` when they share no organization.
pub(crate) fn require_admin_over(c: &Console, p: &Principal, user_id: &str) -> ApiResult<()> {
    if shared_orgs(c, p, user_id).is_empty() {
        return Err(ApiError::not_found(format!("no user with id '{user_id}'")));
    }
    if p.api_key.is_none() && c.org_role(p, DEFAULT_ORGANIZATION) == Some(Role::Owner) {
        return Ok(());
    }
    let all = c.auth.organizations.filter(|o| o.state.members.contains_key(user_id));
    let allowed = all.iter().all(|o| {
        let target = o.view.state.members[user_id];
        c.org_role(p, &o.view.state.id)
            .is_some_and(|mine| mine >= Role::Admin && (mine == Role::Owner || target < Role::Owner))
    });
    if allowed {
        Ok(())
    } else {
        Err(forbidden(
            "this acts on the whole account: it needs the admin role (owner for an owner) in every organization \
             the user belongs to",
        ))
    }
}

fn no_keys_for(p: &Principal, what: &str) -> ApiResult<()> {
    if p.api_key.is_some() {
        Err(forbidden(format!("an API key cannot {what}; sign in as a user")))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Output types
// ---------------------------------------------------------------------------------------

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

pub struct UserObj(UserView);

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
        let c = console(ctx);
        let p = principal(ctx)?;
        let uid = &self.0.state.id;
        if p.user_id.as_ref() != Some(uid) {
            require_admin_over(c, p, uid)?;
        }
        let now = Utc::now();
        let mut list = c
            .auth
            .sessions
            .filter(|s| &s.state.user_id == uid && s.state.active_at(now));
        list.sort_by_key(|s| std::cmp::Reverse(s.view.created_at));
        let current = p.session_id.clone();
        Ok(list
            .into_iter()
            .map(|s| SessionObj {
                current: current.as_ref() == Some(&s.view.state.id),
                view: s.view,
            })
            .collect())
    }
    /// The organizations this user belongs to that you can see, with the user's role.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<Membership>> {
        let c = console(ctx);
        let p = principal(ctx)?;
        Ok(shared_orgs(c, p, &self.0.state.id)
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

pub struct OrganizationObj(OrganizationView);

impl OrganizationObj {
    fn require(&self, ctx: &Context<'_>, min: Role) -> ApiResult<Role> {
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
        self.require(ctx, Role::Viewer)?;
        let c = console(ctx);
        Ok(self
            .0
            .state
            .members
            .iter()
            .filter_map(|(uid, role)| {
                get(&c.auth.users, uid).map(|u| Member {
                    user: UserObj(u.view),
                    role: *role,
                })
            })
            .collect())
    }
    async fn teams(&self, ctx: &Context<'_>) -> Result<Vec<TeamObj>> {
        self.require(ctx, Role::Viewer)?;
        Ok(self
            .0
            .state
            .teams
            .keys()
            .map(|id| TeamObj {
                org: self.0.state.clone(),
                id: id.clone(),
            })
            .collect())
    }
    /// Invitations of this organization, newest first (admin).
    async fn invitations(&self, ctx: &Context<'_>) -> Result<Vec<InvitationObj>> {
        self.require(ctx, Role::Admin)?;
        let id = &self.0.state.id;
        let mut list = console(ctx).auth.invitations.filter(|i| &i.state.organization == id);
        list.sort_by_key(|v| std::cmp::Reverse(v.view.created_at));
        Ok(list.into_iter().map(|v| InvitationObj(v.view)).collect())
    }
    /// API keys of this organization: all of them for admins, your own otherwise.
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKeyObj>> {
        let role = self.require(ctx, Role::Viewer)?;
        let p = principal(ctx)?;
        let id = &self.0.state.id;
        let mut list = console(ctx).auth.api_keys.filter(|k| {
            &k.state.organization == id
                && (role >= Role::Admin
                    || matches!(&k.state.owner, Some(KeyOwner::User { user_id }) if Some(user_id) == p.user_id.as_ref()))
        });
        list.sort_by_key(|v| std::cmp::Reverse(v.view.created_at));
        Ok(list.into_iter().map(|v| ApiKeyObj(v.view)).collect())
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

pub struct TeamObj {
    org: jsc_domain::identity::Organization,
    id: String,
}

impl TeamObj {
    fn team(&self) -> &jsc_domain::identity::Team {
        &self.org.teams[&self.id]
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
        ID(self.id.clone())
    }
    async fn name(&self) -> &str {
        &self.team().name
    }
    async fn members(&self, ctx: &Context<'_>) -> Vec<UserObj> {
        let c = console(ctx);
        self.team()
            .members
            .iter()
            .filter_map(|u| get(&c.auth.users, u).map(|v| UserObj(v.view)))
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

pub struct InvitationObj(InvitationView);

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

pub struct ApiKeyObj(ApiKeyView);

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
        console(ctx).auth.key_last_used(&self.0.state.id).await
    }
}

/// A new API key, shown this once: only its hash is kept.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKeyObj,
    /// Send as `Authorization: Bearer <key>`.
    pub key: String,
}

// ---------------------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------------------

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user (null for a service-account API key).
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<UserObj>> {
        let p = principal(ctx)?;
        Ok(p.user_id
            .as_ref()
            .and_then(|u| get(&console(ctx).auth.users, u))
            .map(|v| UserObj(v.view)))
    }

    /// A user who belongs to one of your organizations; `NOT_FOUND` otherwise.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        let mine = p.user_id.as_deref() == Some(id.as_str());
        if !mine && shared_orgs(c, p, &id).is_empty() {
            return Err(ApiError::not_found(format!("no user with id '{}'", id.as_str())).into());
        }
        Ok(get(&c.auth.users, &id)
            .map(|v| UserObj(v.view))
            .ok_or_else(|| ApiError::not_found(format!("no user with id '{}'", id.as_str())))?)
    }

    /// The organizations you belong to.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<OrganizationObj>> {
        let c = console(ctx);
        let p = principal(ctx)?;
        let mut list: Vec<_> = c
            .organizations_with(p, Role::Viewer)
            .into_iter()
            .filter_map(|id| get(&c.auth.organizations, &id).map(|v| OrganizationObj(v.view)))
            .collect();
        list.sort_by_key(|o| o.0.state.name.to_lowercase());
        Ok(list)
    }

    /// One organization you belong to; `NOT_FOUND` otherwise.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<OrganizationObj> {
        let c = console(ctx);
        c.require_org(principal(ctx)?, &id, Role::Viewer)?;
        Ok(get(&c.auth.organizations, &id)
            .map(|v| OrganizationObj(v.view))
            .ok_or_else(|| ApiError::not_found(format!("no organization with id '{}'", id.as_str())))?)
    }
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// Signs in with email and password. Wrong credentials, unknown addresses and locked
    /// accounts all answer alike; repeated failures are rate limited (`RATE_LIMITED`, with
    /// `Retry-After`).
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        let c = console(ctx);
        let account = email.trim().to_lowercase();
        check_limits(ctx, &account)?;
        let user = normalize_email(&email).ok().and_then(|e| user_by_email(c, &e));
        if !password_matches(c, user.as_ref(), &password).await {
            return Err(invalid_login().into());
        }
        let user = user.expect("a matching password implies a user");
        if user.state.disabled {
            return Err(unauthenticated("this account is disabled; ask an administrator").into());
        }
        c.auth.limiter.succeeded(&account);
        Ok(start_session(ctx, &user.state.id).await?)
    }

    /// Trades a refresh token for new tokens. Each refresh token works once: presenting
    /// one that was already traded revokes the whole session (someone copied it).
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        let c = console(ctx);
        let bad = || unauthenticated("the refresh token is not valid; sign in again");
        let payload = c.auth.keys.verify_refresh(&refresh_token).ok_or_else(bad)?;
        let Some(session) = get(&c.auth.sessions, &payload.sid) else {
            return Err(
                unauthenticated("this session has ended (signed out, revoked or expired); sign in again").into(),
            );
        };
        let user_id = session.view.state.user_id.clone();
        let cctx = meta(ctx).command_context(&format!("user:{user_id}"), None);
        let user = get(&c.auth.users, &user_id).map(|u| u.view.state);
        let stale = user
            .as_ref()
            .is_none_or(|u| u.disabled || u.sessions_valid_after.is_some_and(|t| t > session.view.created_at));
        let command = if stale {
            SessionCommand::Revoke {
                reason: "account disabled or password changed".into(),
            }
        } else {
            SessionCommand::Refresh {
                generation: payload.generation,
            }
        };
        let state = execute(c, &c.sessions, &c.auth.sessions, &payload.sid, command, &cctx).await?;
        if state.revoked.as_deref() == Some(REUSE_DETECTED) {
            tracing::warn!(session = %payload.sid, correlation_id = %cctx.correlation_id, "refresh token reuse: session revoked");
            return Err(unauthenticated(
                "this refresh token was already used, so the session was revoked to be safe; sign in again",
            )
            .into());
        }
        if !state.active_at(Utc::now()) || state.generation != payload.generation + 1 {
            return Err(
                unauthenticated("this session has ended (signed out, revoked or expired); sign in again").into(),
            );
        }
        Ok(issue(
            c,
            &user_id,
            &payload.sid,
            state.generation,
            state.expires_at.unwrap_or_else(Utc::now),
        ))
    }

    /// Ends the current session: its access and refresh tokens stop working at once.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, None)?;
        let Some(sid) = &p.session_id else {
            return Err(ApiError::validation("an API key has no session; revoke it with mutation revokeApiKey").into());
        };
        let reason = "signed out".to_string();
        execute(
            c,
            &c.sessions,
            &c.auth.sessions,
            sid,
            SessionCommand::Revoke { reason },
            &cctx,
        )
        .await?;
        Ok(true)
    }

    /// Ends a session at once: one of yours (a lost laptop), or a user's you administer.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, None)?;
        let session = get(&c.auth.sessions, &id)
            .map(|s| s.view.state)
            .ok_or_else(|| ApiError::not_found(format!("no active session with id '{}'", id.as_str())))?;
        if p.user_id.as_ref() != Some(&session.user_id) {
            require_admin_over(c, p, &session.user_id).map_err(|e| {
                if e.code == Code::NotFound {
                    ApiError::not_found(format!("no active session with id '{}'", id.as_str()))
                } else {
                    e
                }
            })?;
        }
        let reason = format!("revoked by {}", p.actor);
        execute(
            c,
            &c.sessions,
            &c.auth.sessions,
            &session.id,
            SessionCommand::Revoke { reason },
            &cctx,
        )
        .await?;
        Ok(true)
    }

    /// Changes your password. Every session and token issued before ends; the answer is a
    /// fresh session.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<AuthPayload> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, None)?;
        no_keys_for(p, "change a password")?;
        let uid = p.user_id.clone().unwrap_or_default();
        let user = get(&c.auth.users, &uid).map(|u| u.view);
        check_limits(ctx, &user.as_ref().map(|u| u.state.email.clone()).unwrap_or_default())?;
        if !password_matches(c, user.as_ref(), &current_password).await {
            return Err(unauthenticated("the current password is wrong").into());
        }
        let user = user.expect("matched");
        c.auth.limiter.succeeded(&user.state.email);
        auth::check_password_policy(&new_password, &user.state.email)?;
        let sealed = c.fleet.secrets().seal(&auth::hash_password(&new_password).await?);
        execute(
            c,
            &c.users,
            &c.auth.users,
            &uid,
            UserCommand::ChangePassword { password: sealed },
            &cctx,
        )
        .await?;
        // Sessions of this second are cut off by the timestamp check; end them explicitly too.
        for s in c.auth.sessions.filter(|s| s.state.user_id == uid) {
            let reason = "password changed".to_string();
            execute(
                c,
                &c.sessions,
                &c.auth.sessions,
                &s.view.state.id,
                SessionCommand::Revoke { reason },
                &cctx,
            )
            .await?;
        }
        Ok(start_session(ctx, &uid).await?)
    }

    /// Invites `email` into an organization with `role` (admin; owner to invite an owner).
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        email: String,
        role: RoleGql,
    ) -> Result<CreatedInvitation> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, Some(&organization_id))?;
        let role: Role = role.into();
        c.require_org(
            p,
            &organization_id,
            if role == Role::Owner { Role::Owner } else { Role::Admin },
        )?;
        let email = normalize_email(&email).map_err(|e| ApiError::validation(e.to_string()))?;
        let id = new_id();
        let cmd = InvitationCommand::Create(NewInvitation {
            id: id.clone(),
            organization: organization_id.to_string(),
            email,
            role,
            expires_at: Utc::now() + c.auth.settings.invitation_ttl,
        });
        execute(c, &c.invitations, &c.auth.invitations, &id, cmd, &cctx).await?;
        let view = get(&c.auth.invitations, &id).expect("awaited").view;
        Ok(CreatedInvitation {
            invitation: InvitationObj(view),
            token: c.auth.keys.invitation_token(&id),
        })
    }

    /// Withdraws a pending invitation (admin).
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<InvitationObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        let inv = get(&c.auth.invitations, &id)
            .filter(|i| c.org_role(p, &i.view.state.organization).is_some())
            .ok_or_else(|| ApiError::not_found(format!("no invitation with id '{}'", id.as_str())))?;
        let org = inv.view.state.organization.clone();
        c.require_org(p, &org, Role::Admin)?;
        let (_, cctx) = command(ctx, Some(&org))?;
        execute(
            c,
            &c.invitations,
            &c.auth.invitations,
            &id,
            InvitationCommand::Revoke,
            &cctx,
        )
        .await?;
        Ok(InvitationObj(get(&c.auth.invitations, &id).expect("awaited").view))
    }

    /// Accepts an invitation. Without an account for the invited address, this creates one
    /// with `name` and `password`; with one, `password` must be its password. Answers with
    /// a session.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
        #[graphql(default)] name: String,
    ) -> Result<AuthPayload> {
        let c = console(ctx);
        let invalid =
            || unauthenticated("this invitation is not valid, was already used or has expired; ask for a new one");
        let id = c.auth.keys.verify_invitation(&token).ok_or_else(invalid)?;
        let inv = get(&c.auth.invitations, &id).ok_or_else(invalid)?.view.state;
        if !inv.open_at(Utc::now()) {
            return Err(invalid().into());
        }
        check_limits(ctx, &inv.email)?;
        let org = inv.organization.clone();
        let registration = c.auth.registration.clone();
        let _registering = registration.lock().await;
        let (user_id, new_account) = match user_by_email(c, &inv.email) {
            Some(existing) => {
                if !password_matches(c, Some(&existing), &password).await {
                    return Err(unauthenticated(
                        "this address already has an account: give its current password to join",
                    )
                    .into());
                }
                if existing.state.disabled {
                    return Err(unauthenticated("this account is disabled; ask an administrator").into());
                }
                (existing.state.id, None)
            }
            None => {
                auth::check_password_policy(&password, &inv.email)?;
                let name = if name.trim().is_empty() {
                    inv.email.split('@').next().unwrap_or("user").to_string()
                } else {
                    name
                };
                let sealed = c.fleet.secrets().seal(&auth::hash_password(&password).await?);
                (new_id(), Some((name, sealed)))
            }
        };
        c.auth.limiter.succeeded(&inv.email);
        let cctx = meta(ctx).command_context(&format!("user:{user_id}"), Some(&org));
        // The invitation is spent first: of concurrent accepts, one goes on.
        let cmd = InvitationCommand::Accept {
            user_id: user_id.clone(),
        };
        execute(c, &c.invitations, &c.auth.invitations, &id, cmd, &cctx).await?;
        if let Some((name, password)) = new_account {
            let cmd = UserCommand::Register(NewUser {
                id: user_id.clone(),
                email: inv.email.clone(),
                name,
                password,
            });
            execute(c, &c.users, &c.auth.users, &user_id, cmd, &cctx).await?;
        }
        drop(_registering);
        let role = inv.role.unwrap_or(Role::Viewer);
        let current = get(&c.auth.organizations, &org).and_then(|o| o.view.state.members.get(&user_id).copied());
        if current.is_none_or(|r| r < role) {
            let cmd = OrganizationCommand::SetMember {
                user_id: user_id.clone(),
                role,
            };
            execute(c, &c.organizations, &c.auth.organizations, &org, cmd, &cctx).await?;
        }
        Ok(start_session(ctx, &user_id).await?)
    }

    /// Disables an account: its sessions and API keys stop working at once (admin in an
    /// organization the user belongs to).
    async fn disable_user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        self.set_disabled(ctx, &id, true).await
    }

    /// Enables a disabled account again.
    async fn enable_user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        self.set_disabled(ctx, &id, false).await
    }

    /// Creates an organization; you become its owner (owners of the default organization).
    async fn create_organization(&self, ctx: &Context<'_>, name: String) -> Result<OrganizationObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        no_keys_for(p, "create organizations")?;
        if c.org_role(p, DEFAULT_ORGANIZATION) != Some(Role::Owner) {
            return Err(forbidden("only owners of the default organization create organizations").into());
        }
        let id = new_id();
        let (_, cctx) = command(ctx, Some(&id))?;
        let uid = p.user_id.clone().unwrap_or_default();
        let cmd = OrganizationCommand::Create { id: id.clone(), name };
        execute(c, &c.organizations, &c.auth.organizations, &id, cmd, &cctx).await?;
        let cmd = OrganizationCommand::SetMember {
            user_id: uid,
            role: Role::Owner,
        };
        execute(c, &c.organizations, &c.auth.organizations, &id, cmd, &cctx).await?;
        Ok(OrganizationObj(get(&c.auth.organizations, &id).expect("awaited").view))
    }

    /// Sets a member's role (admin; owner when an owner is involved).
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
        role: RoleGql,
    ) -> Result<OrganizationObj> {
        let role: Role = role.into();
        let c = console(ctx);
        let p = principal(ctx)?;
        let mine = c.require_org(p, &organization_id, Role::Admin)?;
        let current = member_role(c, &organization_id, &user_id)?;
        if (role == Role::Owner || current == Role::Owner) && mine < Role::Owner {
            return Err(forbidden("only an owner can make or change an owner").into());
        }
        let cmd = OrganizationCommand::SetMember {
            user_id: user_id.to_string(),
            role,
        };
        self.org_command(ctx, &organization_id, cmd).await
    }

    /// Removes a member from an organization (and its teams).
    async fn remove_member(&self, ctx: &Context<'_>, organization_id: ID, user_id: ID) -> Result<OrganizationObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        let mine = c.require_org(p, &organization_id, Role::Admin)?;
        if member_role(c, &organization_id, &user_id)? == Role::Owner && mine < Role::Owner {
            return Err(forbidden("only an owner can remove an owner").into());
        }
        let cmd = OrganizationCommand::RemoveMember {
            user_id: user_id.to_string(),
        };
        self.org_command(ctx, &organization_id, cmd).await
    }

    /// Creates a team (admin).
    async fn create_team(&self, ctx: &Context<'_>, organization_id: ID, name: String) -> Result<TeamObj> {
        let team_id = new_id();
        let cmd = OrganizationCommand::CreateTeam {
            team_id: team_id.clone(),
            name,
        };
        let org = self.org_command(ctx, &organization_id, cmd).await?;
        Ok(TeamObj {
            org: org.0.state,
            id: team_id,
        })
    }

    /// Deletes a team (admin); its grants go with it.
    async fn delete_team(&self, ctx: &Context<'_>, organization_id: ID, team_id: ID) -> Result<ID> {
        let cmd = OrganizationCommand::DeleteTeam {
            team_id: team_id.to_string(),
        };
        self.org_command(ctx, &organization_id, cmd).await?;
        Ok(team_id)
    }

    /// Adds a member of the organization to a team (admin).
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        team_id: ID,
        user_id: ID,
    ) -> Result<TeamObj> {
        let cmd = OrganizationCommand::AddTeamMember {
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
        };
        self.team_command(ctx, &organization_id, &team_id, cmd).await
    }

    /// Removes a user from a team (admin).
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        team_id: ID,
        user_id: ID,
    ) -> Result<TeamObj> {
        let cmd = OrganizationCommand::RemoveTeamMember {
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
        };
        self.team_command(ctx, &organization_id, &team_id, cmd).await
    }

    /// Gives a team's members `role` on one cluster of the organization, or takes it away
    /// with `role: null` (admin; at most admin).
    async fn set_team_cluster_role(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        team_id: ID,
        cluster_id: ID,
        role: Option<RoleGql>,
    ) -> Result<TeamObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        c.require_org(p, &organization_id, Role::Admin)?;
        let in_org = c
            .cluster_view
            .get(&kv_token(&cluster_id))
            .is_some_and(|v| v.view.organization == organization_id.as_str());
        if !in_org {
            return Err(ApiError::not_found(format!(
                "no cluster with id '{}' in this organization",
                cluster_id.as_str()
            ))
            .into());
        }
        let role: Option<Role> = role.map(Into::into);
        if role == Some(Role::Owner) {
            return Err(ApiError::validation("role: a team grants at most admin on a cluster").into());
        }
        let cmd = OrganizationCommand::SetTeamClusterRole {
            team_id: team_id.to_string(),
            cluster_id: cluster_id.to_string(),
            role,
        };
        self.team_command(ctx, &organization_id, &team_id, cmd).await
    }

    /// Creates an API key, shown once. Without `serviceAccount` it acts for you, with at
    /// most your role; with it (admin), for a named service account with exactly `role`.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        name: String,
        role: RoleGql,
        expires_at: Option<DateTime<Utc>>,
        service_account: Option<String>,
    ) -> Result<CreatedApiKey> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, Some(&organization_id))?;
        no_keys_for(p, "create API keys")?;
        let role: Role = role.into();
        let mine = c.require_org(p, &organization_id, Role::Viewer)?;
        let owner = match service_account {
            Some(name) => {
                c.require_org(p, &organization_id, Role::Admin)?;
                KeyOwner::ServiceAccount { name }
            }
            None => KeyOwner::User {
                user_id: p.user_id.clone().unwrap_or_default(),
            },
        };
        if role > mine {
            return Err(forbidden(format!(
                "a key cannot have more rights than you: you are {}, the key asks for {}",
                mine.as_str(),
                role.as_str()
            ))
            .into());
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (key, hash) = auth::new_api_key(&id);
        let cmd = ApiKeyCommand::Create(NewApiKey {
            id: id.clone(),
            organization: organization_id.to_string(),
            name,
            owner,
            role,
            expires_at,
            secret_hash: c.fleet.secrets().seal(&hash),
        });
        execute(c, &c.api_keys, &c.auth.api_keys, &id, cmd, &cctx).await?;
        Ok(CreatedApiKey {
            api_key: ApiKeyObj(get(&c.auth.api_keys, &id).expect("awaited").view),
            key,
        })
    }

    /// Revokes an API key: yours, or any of the organization's (admin). It stops working at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKeyObj> {
        let c = console(ctx);
        let p = principal(ctx)?;
        let key = get(&c.auth.api_keys, &id)
            .filter(|k| c.org_role(p, &k.view.state.organization).is_some())
            .ok_or_else(|| ApiError::not_found(format!("no API key with id '{}'", id.as_str())))?
            .view
            .state;
        let own = matches!(&key.owner, Some(KeyOwner::User { user_id }) if Some(user_id) == p.user_id.as_ref());
        if !own {
            c.require_org(p, &key.organization, Role::Admin)?;
        }
        let (_, cctx) = command(ctx, Some(&key.organization))?;
        execute(c, &c.api_keys, &c.auth.api_keys, &id, ApiKeyCommand::Revoke, &cctx).await?;
        Ok(ApiKeyObj(get(&c.auth.api_keys, &id).expect("awaited").view))
    }
}

fn member_role(c: &Console, org: &str, user_id: &str) -> ApiResult<Role> {
    get(&c.auth.organizations, org)
        .and_then(|o| o.view.state.members.get(user_id).copied())
        .ok_or_else(|| ApiError::not_found(format!("no member with id '{user_id}' in this organization")))
}

/// What the first start did about the owner account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The default organization and its owner existed already.
    AlreadyDone,
    /// The owner was created with the configured password.
    Created { email: String },
    /// The owner was created with this generated password, to be shown once.
    Generated { email: String, password: String },
}

/// The default email of the first owner when none is configured.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";

/// On the first start: creates the default organization and its owner, with the given
/// email and password, or a generated password.
pub async fn bootstrap(c: &Console, email: Option<String>, password: Option<String>) -> ApiResult<Bootstrap> {
    let org = get(&c.auth.organizations, DEFAULT_ORGANIZATION).map(|o| o.view.state);
    if org.as_ref().is_some_and(|o| !o.members.is_empty()) {
        return Ok(Bootstrap::AlreadyDone);
    }
    let cctx = CommandContext::system("bootstrap").in_organization(Some(DEFAULT_ORGANIZATION));
    if org.is_none() {
        let cmd = OrganizationCommand::Create {
            id: DEFAULT_ORGANIZATION.into(),
            name: "Default".into(),
        };
        execute(
            c,
            &c.organizations,
            &c.auth.organizations,
            DEFAULT_ORGANIZATION,
            cmd,
            &cctx,
        )
        .await?;
    }
    let email = normalize_email(email.as_deref().unwrap_or(DEFAULT_ADMIN_EMAIL))
        .map_err(|e| ApiError::validation(format!("admin email: {e}")))?;
    let generated = password.is_none();
    let password = match password {
        Some(p) => p,
        None => {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(auth::random_bytes::<18>())
        }
    };
    let user_id = match user_by_email(c, &email) {
        Some(u) => u.state.id,
        None => {
            auth::check_password_policy(&password, &email)
                .map_err(|e| ApiError::validation(format!("admin {}", e.message)))?;
            let user_id = new_id();
            let sealed = c.fleet.secrets().seal(&auth::hash_password(&password).await?);
            let cmd = UserCommand::Register(NewUser {
                id: user_id.clone(),
                email: email.clone(),
                name: "Owner".into(),
                password: sealed,
            });
            execute(c, &c.users, &c.auth.users, &user_id, cmd, &cctx).await?;
            user_id
        }
    };
    let cmd = OrganizationCommand::SetMember {
        user_id,
        role: Role::Owner,
    };
    execute(
        c,
        &c.organizations,
        &c.auth.organizations,
        DEFAULT_ORGANIZATION,
        cmd,
        &cctx,
    )
    .await?;
    Ok(if generated {
        Bootstrap::Generated { email, password }
    } else {
        Bootstrap::Created { email }
    })
}

impl IdentityMutation {
    /// Runs a command that manages organization `org`: the caller must be its admin (the
    /// callers add their own rules about owners and clusters).
    async fn org_command(&self, ctx: &Context<'_>, org: &str, cmd: OrganizationCommand) -> Result<OrganizationObj> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, Some(org))?;
        c.require_org(p, org, Role::Admin)?;
        execute(c, &c.organizations, &c.auth.organizations, org, cmd, &cctx).await?;
        Ok(OrganizationObj(get(&c.auth.organizations, org).expect("awaited").view))
    }

    async fn team_command(
        &self,
        ctx: &Context<'_>,
        org: &str,
        team_id: &str,
        cmd: OrganizationCommand,
    ) -> Result<TeamObj> {
        let org = self.org_command(ctx, org, cmd).await?;
        if !org.0.state.teams.contains_key(team_id) {
            return Err(ApiError::not_found(format!("no team with id '{team_id}'")).into());
        }
        Ok(TeamObj {
            org: org.0.state,
            id: team_id.to_string(),
        })
    }

    async fn set_disabled(&self, ctx: &Context<'_>, id: &str, disabled: bool) -> Result<UserObj> {
        let c = console(ctx);
        let (p, cctx) = command(ctx, None)?;
        require_admin_over(c, p, id)?;
        if p.user_id.as_deref() == Some(id) {
            return Err(ApiError::validation("you cannot disable or enable your own account").into());
        }
        let cmd = if disabled {
            UserCommand::Disable
        } else {
            UserCommand::Enable
        };
        execute(c, &c.users, &c.auth.users, id, cmd, &cctx).await?;
        Ok(UserObj(get(&c.auth.users, id).expect("awaited").view))
    }
}

/// Ends sessions whose refresh tokens have expired (a `SessionRevoked` event, reason
/// `expired`), so the sessions view holds only live sessions. Runs every `interval` until
/// `shutdown`; another replica doing the same is harmless (revoking twice writes nothing).
pub async fn sweep_expired_sessions(
    c: Console,
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let now = Utc::now();
        let expired = c.auth.sessions.filter(|s| s.state.expires_at.is_some_and(|e| e <= now));
        if !expired.is_empty() {
            let cctx = CommandContext::system("session-sweeper");
            for s in expired {
                let reason = "expired".to_string();
                if let Err(e) = c
                    .sessions
                    .execute(&s.view.state.id, SessionCommand::Revoke { reason }, &cctx)
                    .await
                {
                    tracing::warn!(error = %e, "could not end an expired session");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
