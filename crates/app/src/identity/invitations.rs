//! Invitations: an admin invites an address with a role; the invitee accepts with the
//! token, creating an account or joining with the one they have. The answer is the same
//! either way, so an invitation reveals nothing about which addresses have accounts.

use chrono::Utc;
use jsc_domain::identity::{
    Invitation, InvitationCommand, NewInvitation, NewUser, Organization, OrganizationCommand, Role, User, UserCommand,
    normalize_email,
};
use jsc_projections::identity::InvitationView;

use super::{Tokens, get, new_id};
use crate::paging::{List, MAX_PAGE, Page, Paging, newest_first};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, RequestMeta, Result};

impl Console {
    /// Invites `email` into an organization with `role` (admin; owner to invite an owner).
    /// Returns the invitation and its token, to be shown once.
    pub async fn invite_user(
        &self,
        caller: &Caller,
        organization: &str,
        email: &str,
        role: Role,
    ) -> Result<(InvitationView, String)> {
        let min = if role == Role::Owner { Role::Owner } else { Role::Admin };
        let ctx = self.authorize(Actor::Caller(caller), Access::Organization(organization, min))?;
        let email = normalize_email(email).map_err(super::domain)?;
        let id = new_id();
        let cmd = InvitationCommand::Create(NewInvitation {
            id: id.clone(),
            organization: organization.to_string(),
            email,
            role,
            expires_at: Utc::now() + self.auth.settings.invitation_ttl,
        });
        self.run_in::<Invitation>(&ctx, &id, cmd).await?;
        let view = get(&self.views.invitations, &id).expect("awaited").view;
        Ok((view, self.auth.keys.invitation_token(&id)))
    }

    /// Withdraws a pending invitation (admin).
    pub async fn revoke_invitation(&self, caller: &Caller, id: &str) -> Result<InvitationView> {
        let p = &caller.principal;
        let inv = get(&self.views.invitations, id)
            .filter(|i| self.org_role(p, &i.view.state.organization).is_some())
            .ok_or_else(|| Error::not_found(format!("no invitation with id '{id}'")))?;
        let org = inv.view.state.organization.clone();
        self.run::<Invitation>(
            Actor::Caller(caller),
            Access::Organization(&org, Role::Admin),
            id,
            InvitationCommand::Revoke,
        )
        .await?;
        Ok(get(&self.views.invitations, id).expect("awaited").view)
    }

    /// The invitations of an organization, newest first (admin).
    pub fn invitations(&self, caller: &Caller, organization: &str, paging: &Paging) -> Result<Page<InvitationView>> {
        self.require_org(&caller.principal, organization, Role::Admin)?;
        let all = self.views.invitations.filter(|i| i.state.organization == organization);
        let list = List::new("invitations", organization);
        let page = self.page(
            list,
            all,
            |v| newest_first(v.view.created_at, &v.view.state.id),
            paging,
            MAX_PAGE,
        )?;
        Ok(page.map(|v| v.view))
    }

    /// Accepts an invitation. Without an account for the invited address, this creates one
    /// with `name` and `password`; with one, `password` must be its password. Answers with
    /// a session.
    pub async fn accept_invitation(
        &self,
        meta: &RequestMeta,
        token: &str,
        password: &str,
        name: &str,
    ) -> Result<Tokens> {
        let invalid = || {
            Error::unauthenticated("this invitation is not valid, was already used or has expired; ask for a new one")
        };
        let id = self.auth.keys.verify_invitation(token).ok_or_else(invalid)?;
        let inv = get(&self.views.invitations, &id).ok_or_else(invalid)?.view.state;
        if !inv.open_at(Utc::now()) {
            return Err(invalid());
        }
        self.check_limits(meta, &inv.email).await?;
        let org = inv.organization.clone();
        let registration = self.auth.registration.clone();
        let registering = registration.lock().await;
        let (user_id, new_account) = match self.user_by_email(&inv.email) {
            Some(existing) => {
                if !self.password_matches(Some(&existing), password).await {
                    return Err(Error::unauthenticated(
                        "this address already has an account: give its current password to join",
                    ));
                }
                if existing.state.disabled {
                    return Err(Error::unauthenticated("this account is disabled; ask an administrator"));
                }
                (existing.state.id, None)
            }
            None => {
                let name = if name.trim().is_empty() {
                    inv.email.split('@').next().unwrap_or("user").to_string()
                } else {
                    name.to_string()
                };
                // Checked before the invitation is spent: a bad name must not use it up.
                let name = jsc_domain::identity::normalize_display_name("name", &name).map_err(super::domain)?;
                let sealed = self.sealed_password(password, &inv.email, &meta.request_id).await?;
                (new_id(), Some((name, sealed)))
            }
        };
        self.auth.limiter.succeeded(&inv.email).await;
        let ctx = self.authorize(Actor::User { user: &user_id, meta }, Access::Checked(Some(&org)))?;
        // The invitation is spent first: of concurrent accepts, one goes on.
        let cmd = InvitationCommand::Accept {
            user_id: user_id.clone(),
        };
        self.run_in::<Invitation>(&ctx, &id, cmd).await?;
        if let Some((name, password)) = new_account {
            let cmd = UserCommand::Register(NewUser {
                id: user_id.clone(),
                email: inv.email.clone(),
                name,
                password,
            });
            self.run_in::<User>(&ctx, &user_id, cmd).await?;
        }
        drop(registering);
        let role = inv.role.unwrap_or(Role::Viewer);
        let current = get(&self.views.organizations, &org).and_then(|o| o.view.state.members.get(&user_id).copied());
        if current.is_none_or(|r| r < role) {
            let cmd = OrganizationCommand::SetMember {
                user_id: user_id.clone(),
                role,
            };
            self.run_in::<Organization>(&ctx, &org, cmd).await?;
        }
        self.start_session(meta, &user_id).await
    }
}
