//! Identity queries and mutations: each translates its arguments into one use case of the
//! application and its answer back.

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use jsc_app::identity::NewKey;
use jsc_domain::identity::Role;

use super::{ApiKeyObj, AuthPayload, InvitationObj, OrganizationObj, RoleGql, TeamObj, UserObj};
use crate::context::{caller, console, meta};
use crate::mutation::{Outcome, input, payload};

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
        #[graphql(desc = "The account's email address and password.")] input: LoginInput,
    ) -> Result<LoginPayload> {
        let meta = meta(ctx);
        let r = console(ctx).login(&meta, &input.email, &input.password).await;
        Ok(LoginPayload {
            tokens: with_retry_after(ctx, r)?.into(),
            outcome: Outcome::of(&meta, input.client_mutation_id),
        })
    }

    /// Trades a refresh token for new tokens; no access token needed. Each refresh token
    /// works once: presenting one already traded revokes the whole session (someone copied
    /// it); that, an invalid token and an ended session answer `UNAUTHENTICATED`.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The refresh token to trade.")] input: RefreshSessionInput,
    ) -> Result<RefreshSessionPayload> {
        let meta = meta(ctx);
        let tokens = console(ctx).refresh_session(&meta, &input.refresh_token).await?;
        Ok(RefreshSessionPayload {
            tokens: tokens.into(),
            outcome: Outcome::of(&meta, input.client_mutation_id),
        })
    }

    /// Ends the current session: its access and refresh tokens stop working at once.
    /// `VALIDATION` when signed in with an API key (revoke it instead).
    async fn logout(
        &self,
        ctx: &Context<'_>,
        #[graphql(default, desc = "Nothing but an optional `clientMutationId`; may be left out.")] input: LogoutInput,
    ) -> Result<LogoutPayload> {
        let caller = caller(ctx)?;
        console(ctx).logout(&caller).await?;
        Ok(LogoutPayload {
            session_id: ID(caller.principal.session_id.clone().unwrap_or_default()),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Ends a session at once: one of yours (a lost laptop), or another user's if you are
    /// admin (owner, for an owner) in every organization they belong to. `NOT_FOUND` or
    /// `FORBIDDEN` otherwise.
    async fn revoke_session(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The session to end.")] input: RevokeSessionInput,
    ) -> Result<RevokeSessionPayload> {
        let caller = caller(ctx)?;
        console(ctx).revoke_session(&caller, &input.id).await?;
        Ok(RevokeSessionPayload {
            session_id: input.id,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Changes your password. Every session and token issued before ends; the answer is a
    /// fresh session. A wrong current password answers `UNAUTHENTICATED` (repeated:
    /// `RATE_LIMITED`); an API key answers `FORBIDDEN`.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your current password and the new one.")] input: ChangePasswordInput,
    ) -> Result<ChangePasswordPayload> {
        let caller = caller(ctx)?;
        let r = console(ctx)
            .change_password(&caller, &input.current_password, &input.new_password)
            .await;
        Ok(ChangePasswordPayload {
            tokens: with_retry_after(ctx, r)?.into(),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Invites `email` into an organization with `role` (admin; owner to invite an owner;
    /// `FORBIDDEN` otherwise). The invitation expires after 7 days by default.
    async fn invite_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom to invite, where, and with which role.")] input: InviteUserInput,
    ) -> Result<InviteUserPayload> {
        let caller = caller(ctx)?;
        let (view, token) = console(ctx)
            .invite_user(&caller, &input.organization_id, &input.email, input.role.into())
            .await?;
        Ok(InviteUserPayload {
            invitation: InvitationObj(view),
            token,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Withdraws a pending invitation so its token stops working (admin). `NOT_FOUND` when
    /// it is not pending any more.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation to withdraw.")] input: RevokeInvitationInput,
    ) -> Result<RevokeInvitationPayload> {
        let caller = caller(ctx)?;
        let view = console(ctx).revoke_invitation(&caller, &input.id).await?;
        Ok(RevokeInvitationPayload {
            invitation: InvitationObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Accepts an invitation; no credentials needed. Without an account for the invited
    /// address, this creates one with `name` and `password`; with one, `password` must be
    /// its password. Answers with a session; an invalid, used or expired token answers
    /// `UNAUTHENTICATED`.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's token and the account's password.")] input: AcceptInvitationInput,
    ) -> Result<AcceptInvitationPayload> {
        let meta = meta(ctx);
        let r = console(ctx)
            .accept_invitation(&meta, &input.token, &input.password, &input.name)
            .await;
        Ok(AcceptInvitationPayload {
            tokens: with_retry_after(ctx, r)?.into(),
            outcome: Outcome::of(&meta, input.client_mutation_id),
        })
    }

    /// Disables an account: it cannot sign in, and its sessions and API keys stop working at
    /// once, until enableUser. Needs admin (owner, for an owner) in every organization the
    /// user belongs to, or owner of the default organization; `VALIDATION` for your own
    /// account.
    async fn disable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account to disable.")] input: DisableUserInput,
    ) -> Result<DisableUserPayload> {
        let caller = caller(ctx)?;
        let user = console(ctx).set_user_disabled(&caller, &input.id, true).await?;
        Ok(DisableUserPayload {
            user: UserObj(user),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Enables a disabled account again (needs the same roles as disableUser): it can sign
    /// in, and its API keys and the sessions not ended meanwhile work again.
    async fn enable_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account to enable.")] input: EnableUserInput,
    ) -> Result<EnableUserPayload> {
        let caller = caller(ctx)?;
        let user = console(ctx).set_user_disabled(&caller, &input.id, false).await?;
        Ok(EnableUserPayload {
            user: UserObj(user),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates an organization and makes you its owner. Only owners of the default
    /// organization, signed in as a user, may (`FORBIDDEN` otherwise).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new organization.")] input: CreateOrganizationInput,
    ) -> Result<CreateOrganizationPayload> {
        let caller = caller(ctx)?;
        let org = console(ctx).create_organization(&caller, input.name).await?;
        Ok(CreateOrganizationPayload {
            organization: OrganizationObj(org),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Sets a member's role (admin; owner to make or change an owner). `NOT_FOUND` for a
    /// non-member; `CONFLICT` when it would leave the organization without an owner.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member and their new role.")] input: SetMemberRoleInput,
    ) -> Result<SetMemberRolePayload> {
        let caller = caller(ctx)?;
        let org = console(ctx)
            .set_member_role(&caller, &input.organization_id, &input.user_id, input.role.into())
            .await?;
        Ok(SetMemberRolePayload {
            organization: OrganizationObj(org),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Removes a member from an organization and its teams (admin; owner to remove an
    /// owner). `CONFLICT` for the last owner.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member to remove.")] input: RemoveMemberInput,
    ) -> Result<RemoveMemberPayload> {
        let caller = caller(ctx)?;
        let org = console(ctx)
            .remove_member(&caller, &input.organization_id, &input.user_id)
            .await?;
        Ok(RemoveMemberPayload {
            organization: OrganizationObj(org),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates a team with no members or grants (admin).
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new team.")] input: CreateTeamInput,
    ) -> Result<CreateTeamPayload> {
        let caller = caller(ctx)?;
        let team = console(ctx)
            .create_team(&caller, &input.organization_id, input.name)
            .await?;
        Ok(CreateTeamPayload {
            team: TeamObj(team),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Deletes a team (admin); its cluster grants go with it. `NOT_FOUND` for an unknown
    /// team.
    async fn delete_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team to delete.")] input: DeleteTeamInput,
    ) -> Result<DeleteTeamPayload> {
        let caller = caller(ctx)?;
        console(ctx)
            .delete_team(&caller, &input.organization_id, &input.team_id)
            .await?;
        Ok(DeleteTeamPayload {
            team_id: input.team_id,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Adds a member of the organization to a team (admin); adding a member twice changes
    /// nothing. `NOT_FOUND` for an unknown team or a non-member.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and the member to add.")] input: AddTeamMemberInput,
    ) -> Result<AddTeamMemberPayload> {
        let caller = caller(ctx)?;
        let team = console(ctx)
            .add_team_member(&caller, &input.organization_id, &input.team_id, &input.user_id)
            .await?;
        Ok(AddTeamMemberPayload {
            team: TeamObj(team),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Removes a user from a team (admin); they stay a member of the organization.
    /// `NOT_FOUND` when the user is not in the team.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team and the member to remove.")] input: RemoveTeamMemberInput,
    ) -> Result<RemoveTeamMemberPayload> {
        let caller = caller(ctx)?;
        let team = console(ctx)
            .remove_team_member(&caller, &input.organization_id, &input.team_id, &input.user_id)
            .await?;
        Ok(RemoveTeamMemberPayload {
            team: TeamObj(team),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Gives a team's members `role` on one cluster of the organization, or takes it away
    /// with `role: null` (admin). `NOT_FOUND` for a cluster of another organization.
    async fn set_team_cluster_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team, the cluster and the role.")] input: SetTeamClusterRoleInput,
    ) -> Result<SetTeamClusterRolePayload> {
        let caller = caller(ctx)?;
        let role: Option<Role> = input.role.map(Into::into);
        let team = console(ctx)
            .set_team_cluster_role(&caller, &input.organization_id, &input.team_id, &input.cluster_id, role)
            .await?;
        Ok(SetTeamClusterRolePayload {
            team: TeamObj(team),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Creates an API key, shown once. Without `serviceAccount` it acts for you; with it
    /// (admin), for a named service account with exactly `role`. Signed-in users only; a
    /// role above yours answers `FORBIDDEN`.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new key.")] input: CreateApiKeyInput,
    ) -> Result<CreateApiKeyPayload> {
        let caller = caller(ctx)?;
        let new = NewKey {
            organization: input.organization_id.0,
            name: input.name,
            role: input.role.into(),
            expires_at: input.expires_at,
            service_account: input.service_account,
        };
        let (view, key) = console(ctx).create_api_key(&caller, new).await?;
        Ok(CreateApiKeyPayload {
            api_key: ApiKeyObj(view),
            key,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Revokes an API key: yours, or any of the organization's (admin). It stops working at
    /// once; revoking a revoked key changes nothing.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The key to revoke.")] input: RevokeApiKeyInput,
    ) -> Result<RevokeApiKeyPayload> {
        let caller = caller(ctx)?;
        let view = console(ctx).revoke_api_key(&caller, &input.id).await?;
        Ok(RevokeApiKeyPayload {
            api_key: ApiKeyObj(view),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

input! {
    /// Signs in (mutation login).
    LoginInput {
        /// The account's email address (case-insensitive).
        email: String,
        /// The account's password.
        password: String,
    }
}

payload! {
    /// What mutation login answers: the new session's tokens.
    LoginPayload {
        #[graphql(flatten)]
        tokens: AuthPayload,
    }
}

input! {
    /// Trades a refresh token for new tokens (mutation refreshSession).
    RefreshSessionInput {
        /// The latest refresh token of the session, from the payload of login,
        /// refreshSession, changePassword or acceptInvitation.
        refresh_token: String,
    }
}

payload! {
    /// What mutation refreshSession answers: the session's new tokens.
    RefreshSessionPayload {
        #[graphql(flatten)]
        tokens: AuthPayload,
    }
}

input! {
    /// Ends the current session (mutation logout).
    #[derive(Default)]
    LogoutInput {}
}

payload! {
    /// What mutation logout answers.
    LogoutPayload {
        /// The ID of the session that ended.
        session_id: ID,
    }
}

input! {
    /// Ends a session (mutation revokeSession).
    RevokeSessionInput {
        /// The ID of the session (see User.sessions).
        id: ID,
    }
}

payload! {
    /// What mutation revokeSession answers.
    RevokeSessionPayload {
        /// The ID of the session that ended.
        session_id: ID,
    }
}

input! {
    /// Changes your password (mutation changePassword).
    ChangePasswordInput {
        /// Your current password.
        current_password: String,
        /// The new password: at least 12 characters, at most 1,024 bytes, and not your email
        /// address (`VALIDATION` otherwise).
        new_password: String,
    }
}

payload! {
    /// What mutation changePassword answers: the tokens of a fresh session.
    ChangePasswordPayload {
        #[graphql(flatten)]
        tokens: AuthPayload,
    }
}

input! {
    /// Invites someone into an organization (mutation inviteUser).
    InviteUserInput {
        /// The ID of the organization to invite into.
        organization_id: ID,
        /// The address to invite, `name@example.com` (`VALIDATION` otherwise).
        email: String,
        /// The role the invitee gets in the organization.
        role: RoleGql,
    }
}

payload! {
    /// What mutation inviteUser answers: the invitation and its token, shown this once.
    /// Hand the token to the invitee, who accepts it with mutation acceptInvitation. The
    /// answer is the same whether or not the address already has an account.
    InviteUserPayload {
        /// The invitation.
        invitation: InvitationObj,
        /// The secret token the invitee passes to mutation acceptInvitation; it is not
        /// shown again.
        token: String,
    }
}

input! {
    /// Withdraws a pending invitation (mutation revokeInvitation).
    RevokeInvitationInput {
        /// The ID of the invitation.
        id: ID,
    }
}

payload! {
    /// What mutation revokeInvitation answers.
    RevokeInvitationPayload {
        /// The invitation, now revoked.
        invitation: InvitationObj,
    }
}

input! {
    /// Accepts an invitation (mutation acceptInvitation).
    AcceptInvitationInput {
        /// The invitation's token, from inviteUser's payload.
        token: String,
        /// The new account's password (at least 12 characters), or the existing account's
        /// password.
        password: String,
        /// The new account's display name; empty (the default) uses the part of the address
        /// before `@`. Ignored for an existing account.
        #[graphql(default)]
        name: String,
    }
}

payload! {
    /// What mutation acceptInvitation answers: the tokens of a session of the account.
    AcceptInvitationPayload {
        #[graphql(flatten)]
        tokens: AuthPayload,
    }
}

input! {
    /// Disables an account (mutation disableUser).
    DisableUserInput {
        /// The ID of the user.
        id: ID,
    }
}

payload! {
    /// What mutation disableUser answers.
    DisableUserPayload {
        /// The user, now disabled.
        user: UserObj,
    }
}

input! {
    /// Enables a disabled account (mutation enableUser).
    EnableUserInput {
        /// The ID of the user.
        id: ID,
    }
}

payload! {
    /// What mutation enableUser answers.
    EnableUserPayload {
        /// The user, now enabled.
        user: UserObj,
    }
}

input! {
    /// Creates an organization (mutation createOrganization).
    CreateOrganizationInput {
        /// The organization's display name, 1 to 64 characters.
        name: String,
    }
}

payload! {
    /// What mutation createOrganization answers.
    CreateOrganizationPayload {
        /// The new organization, with you as its owner.
        organization: OrganizationObj,
    }
}

input! {
    /// Sets a member's role (mutation setMemberRole).
    SetMemberRoleInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the member.
        user_id: ID,
        /// The member's new role.
        role: RoleGql,
    }
}

payload! {
    /// What mutation setMemberRole answers.
    SetMemberRolePayload {
        /// The organization, with the member's new role.
        organization: OrganizationObj,
    }
}

input! {
    /// Removes a member from an organization (mutation removeMember).
    RemoveMemberInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the member.
        user_id: ID,
    }
}

payload! {
    /// What mutation removeMember answers.
    RemoveMemberPayload {
        /// The organization, without the member.
        organization: OrganizationObj,
    }
}

input! {
    /// Creates a team (mutation createTeam).
    CreateTeamInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The team's name, 1 to 64 characters, unique in the organization ignoring case
        /// (`VALIDATION` otherwise).
        name: String,
    }
}

payload! {
    /// What mutation createTeam answers.
    CreateTeamPayload {
        /// The new team.
        team: TeamObj,
    }
}

input! {
    /// Deletes a team (mutation deleteTeam).
    DeleteTeamInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the team.
        team_id: ID,
    }
}

payload! {
    /// What mutation deleteTeam answers.
    DeleteTeamPayload {
        /// The ID of the deleted team.
        team_id: ID,
    }
}

input! {
    /// Adds a member to a team (mutation addTeamMember).
    AddTeamMemberInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the team.
        team_id: ID,
        /// The ID of the user, a member of the organization.
        user_id: ID,
    }
}

payload! {
    /// What mutation addTeamMember answers.
    AddTeamMemberPayload {
        /// The team, with the member.
        team: TeamObj,
    }
}

input! {
    /// Removes a user from a team (mutation removeTeamMember).
    RemoveTeamMemberInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the team.
        team_id: ID,
        /// The ID of the user.
        user_id: ID,
    }
}

payload! {
    /// What mutation removeTeamMember answers.
    RemoveTeamMemberPayload {
        /// The team, without the user.
        team: TeamObj,
    }
}

input! {
    /// Grants a team a role on a cluster, or takes it away (mutation setTeamClusterRole).
    SetTeamClusterRoleInput {
        /// The ID of the organization.
        organization_id: ID,
        /// The ID of the team.
        team_id: ID,
        /// The ID of a cluster of the organization.
        cluster_id: ID,
        /// The role to grant, at most `ADMIN` (`VALIDATION` for `OWNER`); null removes the
        /// grant.
        role: Option<RoleGql>,
    }
}

payload! {
    /// What mutation setTeamClusterRole answers.
    SetTeamClusterRolePayload {
        /// The team, with its grants as they are now.
        team: TeamObj,
    }
}

input! {
    /// Creates an API key (mutation createApiKey).
    CreateApiKeyInput {
        /// The ID of the organization the key works in.
        organization_id: ID,
        /// The key's display name, 1 to 64 characters.
        name: String,
        /// The role the key grants; at most your own role in the organization.
        role: RoleGql,
        /// When the key stops working, in the future; null (the default) never.
        expires_at: Option<DateTime<Utc>>,
        /// The name of the service account (1 to 64 characters) the key belongs to instead
        /// of you; needs admin.
        service_account: Option<String>,
    }
}

payload! {
    /// What mutation createApiKey answers: the key, shown this once (only its hash is
    /// kept).
    CreateApiKeyPayload {
        /// The new key's details.
        api_key: ApiKeyObj,
        /// The secret key itself, sent as `Authorization: Bearer <key>`; it is not shown
        /// again.
        key: String,
    }
}

input! {
    /// Revokes an API key (mutation revokeApiKey).
    RevokeApiKeyInput {
        /// The ID of the API key.
        id: ID,
    }
}

payload! {
    /// What mutation revokeApiKey answers.
    RevokeApiKeyPayload {
        /// The key, now revoked.
        api_key: ApiKeyObj,
    }
}
