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
    /// The signed-in user: you, or the user a personal API key acts for; null for a
    /// service-account API key. `UNAUTHENTICATED` without credentials.
    async fn me(&self, ctx: &Context<'_>) -> Result<Option<UserObj>> {
        Ok(console(ctx).me(&caller(ctx)?).map(UserObj))
    }

    /// A user by ID: yourself, or a user who belongs to one of your organizations;
    /// `NOT_FOUND` otherwise.
    async fn user(&self, ctx: &Context<'_>, #[graphql(desc = "The ID of the user.")] id: ID) -> Result<UserObj> {
        Ok(UserObj(console(ctx).user(&caller(ctx)?, &id)?))
    }

    /// The organizations you belong to (an API key: its own), sorted by name.
    async fn organizations(&self, ctx: &Context<'_>) -> Result<Vec<OrganizationObj>> {
        Ok(console(ctx)
            .organizations(&caller(ctx)?)
            .into_iter()
            .map(OrganizationObj)
            .collect())
    }

    /// One organization you belong to, by ID; `NOT_FOUND` otherwise.
    async fn organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] id: ID,
    ) -> Result<OrganizationObj> {
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
    /// Signs in with email and password and starts a session; no credentials needed. Wrong
    /// passwords and unknown addresses answer alike (`UNAUTHENTICATED`); too many attempts
    /// answer `RATE_LIMITED` with `Retry-After` (seconds).
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's email address (case-insensitive).")] email: String,
        #[graphql(desc = "The account's password.")] password: String,
    ) -> Result<AuthPayload> {
        let r = console(ctx).login(&meta(ctx), &email, &password).await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Trades a refresh token for new tokens; no access token needed. Each refresh token
    /// works once: presenting one already traded revokes the whole session (someone copied
    /// it); that, an invalid token and an ended session answer `UNAUTHENTICATED`.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The latest refresh token of the session, from an AuthPayload.")] refresh_token: String,
    ) -> Result<AuthPayload> {
        Ok(console(ctx).refresh_session(&meta(ctx), &refresh_token).await?.into())
    }

    /// Ends the current session: its access and refresh tokens stop working at once. Answers
    /// true; `VALIDATION` when signed in with an API key (revoke it instead).
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        console(ctx).logout(&caller(ctx)?).await?;
        Ok(true)
    }

    /// Ends a session at once: one of yours (a lost laptop), or another user's if you are
    /// admin (owner, for an owner) in every organization they belong to. Answers true;
    /// `NOT_FOUND` or `FORBIDDEN` otherwise.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the session (see User.sessions).")] id: ID,
    ) -> Result<bool> {
        console(ctx).revoke_session(&caller(ctx)?, &id).await?;
        Ok(true)
    }

    /// Changes your password. Every session and token issued before ends; the answer is a
    /// fresh session. A wrong current password answers `UNAUTHENTICATED` (repeated:
    /// `RATE_LIMITED`); an API key answers `FORBIDDEN`.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your current password.")] current_password: String,
        #[graphql(
            desc = "The new password: at least 12 characters, at most 1,024 bytes, and not your email address (`VALIDATION` otherwise)."
        )]
        new_password: String,
    ) -> Result<AuthPayload> {
        let caller = caller(ctx)?;
        let r = console(ctx)
            .change_password(&caller, &current_password, &new_password)
            .await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Invites `email` into an organization with `role` (admin; owner to invite an owner;
    /// `FORBIDDEN` otherwise). The invitation expires after 7 days by default.
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization to invite into.")] organization_id: ID,
        #[graphql(desc = "The address to invite, `name@example.com` (`VALIDATION` otherwise).")] email: String,
        #[graphql(desc = "The role the invitee gets in the organization.")] role: RoleGql,
    ) -> Result<CreatedInvitation> {
        let (view, token) = console(ctx)
            .invite_user(&caller(ctx)?, &organization_id, &email, role.into())
            .await?;
        Ok(CreatedInvitation {
            invitation: InvitationObj(view),
            token,
        })
    }

    /// Withdraws a pending invitation so its token stops working (admin). `NOT_FOUND` when
    /// it is not pending any more.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the invitation.")] id: ID,
    ) -> Result<InvitationObj> {
        Ok(InvitationObj(console(ctx).revoke_invitation(&caller(ctx)?, &id).await?))
    }

    /// Accepts an invitation; no credentials needed. Without an account for the invited
    /// address, this creates one with `name` and `password`; with one, `password` must be
    /// its password. Answers with a session; an invalid, used or expired token answers
    /// `UNAUTHENTICATED`.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's token, from CreatedInvitation.token.")] token: String,
        #[graphql(desc = "The new account's password (at least 12 characters), or the existing account's password.")]
        password: String,
        #[graphql(
            default,
            desc = "The new account's display name; empty (the default) uses the part of the address before `@`. Ignored for an existing account."
        )]
        name: String,
    ) -> Result<AuthPayload> {
        let r = console(ctx)
            .accept_invitation(&meta(ctx), &token, &password, &name)
            .await;
        Ok(with_retry_after(ctx, r)?.into())
    }

    /// Disables an account: it cannot sign in, and its sessions and API keys stop working at
    /// once, until enableUser. Needs admin (owner, for an owner) in every organization the user belongs to, or
    /// owner of the default organization; `VALIDATION` for your own account.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the user.")] id: ID,
    ) -> Result<UserObj> {
        Ok(UserObj(console(ctx).set_user_disabled(&caller(ctx)?, &id, true).await?))
    }

    /// Enables a disabled account again (needs the same roles as disableUser): it can sign
    /// in, and its API keys and the sessions not ended meanwhile work again.
    async fn enable_user(&self, ctx: &Context<'_>, #[graphql(desc = "The ID of the user.")] id: ID) -> Result<UserObj> {
        Ok(UserObj(
            console(ctx).set_user_disabled(&caller(ctx)?, &id, false).await?,
        ))
    }

    /// Creates an organization and makes you its owner. Only owners of the default
    /// organization, signed in as a user, may (`FORBIDDEN` otherwise).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization's display name, 1 to 64 characters.")] name: String,
    ) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx).create_organization(&caller(ctx)?, name).await?,
        ))
    }

    /// Sets a member's role (admin; owner to make or change an owner). `NOT_FOUND` for a
    /// non-member; `CONFLICT` when it would leave the organization without an owner.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the member.")] user_id: ID,
        #[graphql(desc = "The member's new role.")] role: RoleGql,
    ) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx)
                .set_member_role(&caller(ctx)?, &organization_id, &user_id, role.into())
                .await?,
        ))
    }

    /// Removes a member from an organization and its teams (admin; owner to remove an
    /// owner). `CONFLICT` for the last owner.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the member.")] user_id: ID,
    ) -> Result<OrganizationObj> {
        Ok(OrganizationObj(
            console(ctx)
                .remove_member(&caller(ctx)?, &organization_id, &user_id)
                .await?,
        ))
    }

    /// Creates a team with no members or grants (admin).
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(
            desc = "The team's name, 1 to 64 characters, unique in the organization ignoring case (`VALIDATION` otherwise)."
        )]
        name: String,
    ) -> Result<TeamObj> {
        Ok(TeamObj(
            console(ctx).create_team(&caller(ctx)?, &organization_id, name).await?,
        ))
    }

    /// Deletes a team (admin); its cluster grants go with it. Answers the deleted team's ID;
    /// `NOT_FOUND` for an unknown team.
    async fn delete_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the team.")] team_id: ID,
    ) -> Result<ID> {
        console(ctx)
            .delete_team(&caller(ctx)?, &organization_id, &team_id)
            .await?;
        Ok(team_id)
    }

    /// Adds a member of the organization to a team (admin); adding a member twice changes
    /// nothing. `NOT_FOUND` for an unknown team or a non-member.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the team.")] team_id: ID,
        #[graphql(desc = "The ID of the user, a member of the organization.")] user_id: ID,
    ) -> Result<TeamObj> {
        Ok(TeamObj(
            console(ctx)
                .add_team_member(&caller(ctx)?, &organization_id, &team_id, &user_id)
                .await?,
        ))
    }

    /// Removes a user from a team (admin); they stay a member of the organization.
    /// `NOT_FOUND` when the user is not in the team.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the team.")] team_id: ID,
        #[graphql(desc = "The ID of the user.")] user_id: ID,
    ) -> Result<TeamObj> {
        Ok(TeamObj(
            console(ctx)
                .remove_team_member(&caller(ctx)?, &organization_id, &team_id, &user_id)
                .await?,
        ))
    }

    /// Gives a team's members `role` on one cluster of the organization, or takes it away
    /// with `role: null` (admin). `NOT_FOUND` for a cluster of another organization.
    async fn set_team_cluster_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization.")] organization_id: ID,
        #[graphql(desc = "The ID of the team.")] team_id: ID,
        #[graphql(desc = "The ID of a cluster of the organization.")] cluster_id: ID,
        #[graphql(desc = "The role to grant, at most `ADMIN` (`VALIDATION` for `OWNER`); null removes the grant.")]
        role: Option<RoleGql>,
    ) -> Result<TeamObj> {
        let role: Option<Role> = role.map(Into::into);
        Ok(TeamObj(
            console(ctx)
                .set_team_cluster_role(&caller(ctx)?, &organization_id, &team_id, &cluster_id, role)
                .await?,
        ))
    }

    /// Creates an API key, shown once. Without `serviceAccount` it acts for you; with it
    /// (admin), for a named service account with exactly `role`. Signed-in users only; a
    /// role above yours answers `FORBIDDEN`.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the organization the key works in.")] organization_id: ID,
        #[graphql(desc = "The key's display name, 1 to 64 characters.")] name: String,
        #[graphql(desc = "The role the key grants; at most your own role in the organization.")] role: RoleGql,
        #[graphql(desc = "When the key stops working, in the future; null (the default) never.")] expires_at: Option<
            DateTime<Utc>,
        >,
        #[graphql(
            desc = "The name of the service account (1 to 64 characters) the key belongs to instead of you; needs admin."
        )]
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

    /// Revokes an API key: yours, or any of the organization's (admin). It stops working at
    /// once; revoking a revoked key changes nothing.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The ID of the API key.")] id: ID,
    ) -> Result<ApiKeyObj> {
        Ok(ApiKeyObj(console(ctx).revoke_api_key(&caller(ctx)?, &id).await?))
    }
}
