//! Identity queries and mutations: each translates its arguments into one use case of the
//! application and its answer back.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use jsc_app::identity::NewKey;
use jsc_domain::identity::Role;

use super::{
    ApiKeyObj, AuthPayload, CreatedApiKey, CreatedInvitation, InvitationObj, OrganizationObj, RoleGql, TeamObj, UserObj,
};
use crate::context::{caller, console, meta};

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user (null for a service-account API key).
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<UserObj>> {
        Ok(console(ctx).me(&caller(ctx)?).map(UserObj))
    }

    /// A user who belongs to one of your organizations; `NOT_FOUND` otherwise.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        Ok(UserObj(console(ctx).user(&caller(ctx)?, &id)?))
    }

    /// The organizations you belong to.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<OrganizationObj>> {
        Ok(console(ctx)
            .organizations(&caller(ctx)?)
            .into_iter()
            .map(OrganizationObj)
            .collect())
    }

    /// One organization you belong to; `NOT_FOUND` otherwise.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> Result<OrganizationObj> {
        Ok(OrganizationObj(console(ctx).organization(&caller(ctx)?, &id)?))
    }
}

#[derive(Default)]
pub struct IdentityMutation;

/// Sets `Retry-After` on a `RATE_LIMITED` answer.
fn with_retry_after<T>(ctx: &Context<'_>, r: jsc_app::Result<T>) -> jsc_app::Result<T> {
    if let Err(e) = &r
        && let Some(s) = e.retry_after
    {
        ctx.insert_http_header("Retry-After", s.to_string());
    }
    r
}

#[Object]
impl IdentityMutation {
    /// Signs in with email and password. Wrong credentials, unknown addresses and locked
    /// accounts all answer alike; repeated failures are rate limited (`RATE_LIMITED`, with
    /// `Retry-After`).
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        let r = console(ctx).login(&meta(ctx), &email, &password).await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Trades a refresh token for new tokens. Each refresh token works once: presenting
    /// one that was already traded revokes the whole session (someone copied it).
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(console(ctx).refresh_session(&meta(ctx), &refresh_token).await?.into())
    }

    /// Ends the current session: its access and refresh tokens stop working at once.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        console(ctx).logout(&caller(ctx)?).await?;
        Ok(true)
    }

    /// Ends a session at once: one of yours (a lost laptop), or a user's you administer.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        console(ctx).revoke_session(&caller(ctx)?, &id).await?;
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
        let caller = caller(ctx)?;
        let r = console(ctx)
            .change_password(&caller, &current_password, &new_password)
            .await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Invites `email` into an organization with `role` (admin; owner to invite an owner).
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        email: String,
        role: RoleGql,
    ) -> Result<CreatedInvitation> {
        let (view, token) = console(ctx)
            .invite_user(&caller(ctx)?, &organization_id, &email, role.into())
            .await?;
        Ok(CreatedInvitation {
            invitation: InvitationObj(view),
            token,
        })
    }

    /// Withdraws a pending invitation (admin).
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> Result<InvitationObj> {
        Ok(InvitationObj(console(ctx).revoke_invitation(&caller(ctx)?, &id).await?))
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
        let r = console(ctx)
            .accept_invitation(&meta(ctx), &token, &password, &name)
            .await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Disables an account: its sessions and API keys stop working at once (admin in an
    /// organization the user belongs to).
    async fn disable_user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        Ok(UserObj(console(ctx).set_user_disabled(&caller(ctx)?, &id, true).await?))
    }

    /// Enables a disabled account again.
    async fn enable_user(&self, ctx: &Context<'_>, id: ID) -> Result<UserObj> {
        Ok(UserObj(
            console(ctx).set_user_disabled(&caller(ctx)?, &id, false).await?,
        ))
    }

    /// Creates an organization; you become its owner (owners of the default organization).
    async fn create_organization(&self, ctx: &Context<'_>, name: String) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx).create_organization(&caller(ctx)?, name).await?,
        ))
    }

    /// Sets a member's role (admin; owner when an owner is involved).
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
        role: RoleGql,
    ) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx)
                .set_member_role(&caller(ctx)?, &organization_id, &user_id, role.into())
                .await?,
        ))
    }

    /// Removes a member from an organization (and its teams).
    async fn remove_member(&self, ctx: &Context<'_>, organization_id: ID, user_id: ID) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx)
                .remove_member(&caller(ctx)?, &organization_id, &user_id)
                .await?,
        ))
    }

    /// Creates a team (admin).
    async fn create_team(&self, ctx: &Context<'_>, organization_id: ID, name: String) -> Result<TeamObj> {
        Ok(TeamObj(
            console(ctx).create_team(&caller(ctx)?, &organization_id, name).await?,
        ))
    }

    /// Deletes a team (admin); its grants go with it.
    async fn delete_team(&self, ctx: &Context<'_>, organization_id: ID, team_id: ID) -> Result<ID> {
        console(ctx)
            .delete_team(&caller(ctx)?, &organization_id, &team_id)
            .await?;
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
        Ok(TeamObj(
            console(ctx)
                .add_team_member(&caller(ctx)?, &organization_id, &team_id, &user_id)
                .await?,
        ))
    }

    /// Removes a user from a team (admin).
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        team_id: ID,
        user_id: ID,
    ) -> Result<TeamObj> {
        Ok(TeamObj(
            console(ctx)
                .remove_team_member(&caller(ctx)?, &organization_id, &team_id, &user_id)
                .await?,
        ))
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
        let role: Option<Role> = role.map(Into::into);
        Ok(TeamObj(
            console(ctx)
                .set_team_cluster_role(&caller(ctx)?, &organization_id, &team_id, &cluster_id, role)
                .await?,
        ))
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
        let new = NewKey {
            organization: organization_id.0,
            name,
            role: role.into(),
            expires_at,
            service_account,
        };
        let (view, key) = console(ctx).create_api_key(&caller(ctx)?, new).await?;
        Ok(CreatedApiKey {
            api_key: ApiKeyObj(view),
            key,
        })
    }

    /// Revokes an API key: yours, or any of the organization's (admin). It stops working at once.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKeyObj> {
        Ok(ApiKeyObj(console(ctx).revoke_api_key(&caller(ctx)?, &id).await?))
    }
}
