//! Sign-in and sessions: login, refresh with reuse detection, logout, revocation, password
//! changes (from the API and from the command line), and the sweeper of expired sessions.

use chrono::{DateTime, Utc};
use jsc_domain::identity::{
    NewSession, REUSE_DETECTED, RevokeReason, Session, SessionCommand, User, UserCommand, normalize_email,
};
use jsc_eventstore::CommandContext;
use jsc_secrets::AccessClaims;
use tokio_util::sync::CancellationToken;

use super::{Tokens, get, new_id};
use crate::paging::{List, MAX_PAGE, Page, Paging, newest_first};
use crate::runner::{Access, Actor};
use crate::{Caller, Code, Console, Error, RequestMeta, Result};

fn invalid_login() -> Error {
    Error::unauthenticated("wrong email or password")
}

fn session_ended() -> Error {
    Error::unauthenticated("this session has ended (signed out, revoked or expired); sign in again")
}

fn disabled() -> Error {
    Error::unauthenticated("this account is disabled; ask an administrator")
}

impl Console {
    /// Signs in with email and password. Wrong credentials, unknown addresses and locked
    /// accounts all answer alike; repeated failures are `RATE_LIMITED`.
    pub async fn login(&self, meta: &RequestMeta, email: &str, password: &str) -> Result<Tokens> {
        let account = email.trim().to_lowercase();
        self.check_limits(meta, &account).await?;
        let user = normalize_email(email).ok().and_then(|e| self.user_by_email(&e));
        if !self.password_matches(user.as_ref(), password).await {
            return Err(invalid_login());
        }
        let user = user.expect("a matching password implies a user");
        if user.state.disabled {
            return Err(disabled());
        }
        self.auth.limiter.succeeded(&account).await;
        self.start_session(meta, &user.state.id).await
    }

    /// Starts a session for `user_id` and issues its first tokens.
    pub(crate) async fn start_session(&self, meta: &RequestMeta, user_id: &str) -> Result<Tokens> {
        let session_id = new_id();
        let expires_at = Utc::now() + self.auth.settings.refresh_ttl;
        let cmd = SessionCommand::Start(NewSession {
            id: session_id.clone(),
            user_id: user_id.to_string(),
            expires_at,
        });
        let actor = Actor::User { user: user_id, meta };
        self.run::<Session>(actor, Access::Checked(None), &session_id, cmd)
            .await?;
        Ok(self.issue(user_id, &session_id, 0, expires_at))
    }

    fn issue(&self, user_id: &str, session_id: &str, generation: u64, refresh_expires: DateTime<Utc>) -> Tokens {
        let claims = AccessClaims::new(user_id, session_id, self.auth.settings.access_ttl);
        Tokens {
            access_token: self.auth.keys.sign_access(&claims),
            access_token_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
            refresh_token: self.auth.keys.refresh_token(session_id, generation),
            refresh_token_expires_at: refresh_expires,
            user_id: user_id.to_string(),
        }
    }

    /// Trades a refresh token for new tokens. Each works once: presenting one that was
    /// already traded revokes the whole session (someone copied it).
    pub async fn refresh_session(&self, meta: &RequestMeta, refresh_token: &str) -> Result<Tokens> {
        let payload = self
            .auth
            .keys
            .verify_refresh(refresh_token)
            .ok_or_else(|| Error::unauthenticated("the refresh token is not valid; sign in again"))?;
        let session = get(&self.views.sessions, &payload.sid).ok_or_else(session_ended)?;
        let user_id = session.view.state.user_id.clone();
        let user = get(&self.views.users, &user_id).map(|u| u.view.state);
        let stale = user
            .as_ref()
            .is_none_or(|u| u.disabled || u.sessions_valid_after.is_some_and(|t| t > session.view.created_at));
        let command = if stale {
            SessionCommand::Revoke {
                reason: RevokeReason::Stale,
            }
        } else {
            SessionCommand::Refresh {
                generation: payload.generation,
            }
        };
        let actor = Actor::User { user: &user_id, meta };
        let state = self
            .run::<Session>(actor, Access::Checked(None), &payload.sid, command)
            .await?
            .state;
        if state.revoked.as_deref() == Some(REUSE_DETECTED) {
            tracing::warn!(session = %payload.sid, correlation_id = %meta.request_id, "refresh token reuse: session revoked");
            return Err(Error::unauthenticated(
                "this refresh token was already used, so the session was revoked to be safe; sign in again",
            ));
        }
        if !state.active_at(Utc::now()) || state.generation != payload.generation + 1 {
            return Err(session_ended());
        }
        Ok(self.issue(
            &user_id,
            &payload.sid,
            state.generation,
            state.expires_at.unwrap_or_else(Utc::now),
        ))
    }

    /// Ends the caller's session: its tokens stop working at once.
    pub async fn logout(&self, caller: &Caller) -> Result<()> {
        let Some(sid) = &caller.principal.session_id else {
            return Err(Error::validation(
                "an API key has no session; revoke it with mutation revokeApiKey",
            ));
        };
        let cmd = SessionCommand::Revoke {
            reason: RevokeReason::SignedOut,
        };
        self.run::<Session>(Actor::Caller(caller), Access::Checked(None), sid, cmd)
            .await?;
        Ok(())
    }

    /// Ends a session at once: one of the caller's, or a user's they administer.
    pub async fn revoke_session(&self, caller: &Caller, id: &str) -> Result<()> {
        let p = &caller.principal;
        let not_found = || Error::not_found(format!("no active session with id '{id}'"));
        let session = get(&self.views.sessions, id)
            .map(|s| s.view.state)
            .ok_or_else(not_found)?;
        if p.user_id.as_ref() != Some(&session.user_id) {
            self.require_admin_over(p, &session.user_id)
                .map_err(|e| if e.code == Code::NotFound { not_found() } else { e })?;
        }
        let cmd = SessionCommand::Revoke {
            reason: RevokeReason::RevokedBy(p.actor.clone()),
        };
        self.run::<Session>(Actor::Caller(caller), Access::Checked(None), &session.id, cmd)
            .await?;
        Ok(())
    }

    /// The signed-in sessions of a user (not signed out, revoked or expired), newest first:
    /// the caller's own, or a user's they administer. With whether each is the caller's.
    pub fn sessions_of(
        &self,
        caller: &Caller,
        user_id: &str,
        paging: &Paging,
    ) -> Result<Page<(jsc_projections::identity::SessionView, bool)>> {
        let p = &caller.principal;
        if p.user_id.as_deref() != Some(user_id) {
            self.require_admin_over(p, user_id)?;
        }
        let now = Utc::now();
        let list = self
            .views
            .sessions
            .filter(|s| s.state.user_id == user_id && s.state.active_at(now))
            .into_iter()
            .map(|s| {
                let current = p.session_id.as_ref() == Some(&s.view.state.id);
                (s.view, current)
            })
            .collect();
        let order = |(s, _): &(jsc_projections::identity::SessionView, bool)| newest_first(s.created_at, &s.state.id);
        self.page(List::new("sessions", user_id), list, order, paging, MAX_PAGE)
    }

    /// Changes the caller's password. Every session and token issued before ends; the
    /// answer is a fresh session.
    pub async fn change_password(&self, caller: &Caller, current_password: &str, new_password: &str) -> Result<Tokens> {
        let uid = caller.require_user("change a password")?.to_string();
        let user = get(&self.views.users, &uid).map(|u| u.view);
        let email = user.as_ref().map(|u| u.state.email.clone()).unwrap_or_default();
        self.check_limits(&caller.meta, &email).await?;
        if !self.password_matches(user.as_ref(), current_password).await {
            return Err(Error::unauthenticated("the current password is wrong"));
        }
        self.auth.limiter.succeeded(&email).await;
        let ctx = caller.context(None);
        self.set_password(&ctx, &uid, &email, new_password).await?;
        self.start_session(&caller.meta, &uid).await
    }

    /// Sets a new password for the account with `email`, ends its sessions and enables it
    /// if it was disabled: `jsconsole users reset-password` for a locked-out owner, run by
    /// an operator with the console's keys. Returns the account's id.
    pub async fn reset_password(&self, email: &str, new_password: &str) -> Result<String> {
        let email = normalize_email(email).map_err(super::domain)?;
        let user = self
            .user_by_email(&email)
            .ok_or_else(|| Error::not_found(format!("no account with the email {email}")))?;
        let uid = user.state.id.clone();
        let ctx = CommandContext::system("cli");
        self.set_password(&ctx, &uid, &email, new_password).await?;
        if user.state.disabled {
            self.run_in::<User>(&ctx, &uid, UserCommand::Enable).await?;
        }
        Ok(uid)
    }

    /// The one way a password changes: the rules, the sealed hash, and every session ended.
    async fn set_password(&self, ctx: &CommandContext, uid: &str, email: &str, password: &str) -> Result<()> {
        let sealed = self.sealed_password(password, email, &ctx.correlation_id).await?;
        self.run_in::<User>(ctx, uid, UserCommand::ChangePassword { password: sealed })
            .await?;
        // Sessions of this second are cut off by the timestamp check; end them explicitly too.
        for s in self.views.sessions.filter(|s| s.state.user_id == uid) {
            let cmd = SessionCommand::Revoke {
                reason: RevokeReason::PasswordChanged,
            };
            self.run_in::<Session>(ctx, &s.view.state.id, cmd).await?;
        }
        Ok(())
    }

    /// Ends sessions whose refresh tokens have expired (reason `expired`), so the sessions
    /// view holds only live sessions. Runs every `interval` until `shutdown`; another
    /// replica doing the same is harmless (revoking twice writes nothing).
    pub(crate) async fn sweep_expired_sessions(&self, interval: std::time::Duration, shutdown: CancellationToken) {
        loop {
            let now = Utc::now();
            let expired = self
                .views
                .sessions
                .filter(|s| s.state.expires_at.is_some_and(|e| e <= now));
            if !expired.is_empty() {
                let ctx = CommandContext::system("session-sweeper");
                for s in expired {
                    let cmd = SessionCommand::Revoke {
                        reason: RevokeReason::Expired,
                    };
                    if let Err(e) = self.repos.sessions.execute(&s.view.state.id, cmd, &ctx).await {
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
}
