//! Who is calling: bearer credentials to principals, and whether a principal is still good.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jsc_domain::identity::{KeyOwner, Role};
use jsc_projector::kv_token;
use jsc_secrets::{API_KEY_PREFIX, TokenError};

use super::session_ended;
use crate::{Console, Error, KeyGrant, Principal, Result};

impl Console {
    /// Resolves a bearer credential (access JWT or API key) to a principal.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let bearer = bearer.trim();
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_api_key(bearer);
        }
        let claims = self.auth.keys.verify_access(bearer).map_err(|e| match e {
            TokenError::Expired => Error::unauthenticated(
                "the access token has expired; get a new one with mutation refreshSession or sign in again",
            ),
            TokenError::Invalid => {
                Error::unauthenticated("the access token is not valid; sign in again (mutation login)")
            }
        })?;
        let principal = Principal {
            actor: format!("user:{}", claims.sub),
            user_id: Some(claims.sub),
            session_id: Some(claims.sid),
            api_key: None,
            expires_at: DateTime::from_timestamp(claims.exp, 0),
            issued_at: DateTime::from_timestamp(claims.iat, 0),
        };
        self.revalidate(&principal)?;
        Ok(principal)
    }

    fn authenticate_api_key(&self, token: &str) -> Result<Principal> {
        let invalid = || Error::unauthenticated("the API key is not valid; create a new one (mutation createApiKey)");
        let (id, hash) = jsc_secrets::parse_api_key(token).ok_or_else(invalid)?;
        let view = self.views.api_keys.get(&kv_token(id)).ok_or_else(invalid)?.view;
        let (key, created_at) = (view.state, view.created_at);
        let stored = key
            .secret_hash
            .as_ref()
            .and_then(|s| self.fleet.secrets().unseal(s).ok())
            .ok_or_else(invalid)?;
        if !jsc_secrets::hashes_match(&stored, &hash) {
            return Err(invalid());
        }
        let principal = Principal {
            actor: format!("apikey:{}", key.id),
            user_id: match &key.owner {
                Some(KeyOwner::User { user_id }) => Some(user_id.clone()),
                _ => None,
            },
            session_id: None,
            api_key: Some(KeyGrant {
                key_id: key.id.clone(),
                organization: key.organization.clone(),
                role: key.role.unwrap_or(Role::Viewer),
            }),
            expires_at: key.expires_at,
            // A personal key made before its user's password changed dies with the old password.
            issued_at: Some(created_at),
        };
        self.revalidate(&principal)?;
        self.touch_api_key(&key.id);
        Ok(principal)
    }

    /// Whether an authenticated principal is still valid now: not expired, its session or
    /// key not revoked, its user not disabled. Long-lived connections call this on every use.
    pub fn revalidate(&self, p: &Principal) -> Result<()> {
        let now = Utc::now();
        if p.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::unauthenticated(if p.api_key.is_some() {
                "the API key has expired; create a new one"
            } else {
                "the access token has expired; get a new one with mutation refreshSession or sign in again"
            }));
        }
        if let Some(k) = &p.api_key {
            let key = self.views.api_keys.get(&kv_token(&k.key_id));
            if key.is_none_or(|k| k.view.state.revoked) {
                return Err(Error::unauthenticated("the API key was revoked; create a new one"));
            }
        }
        if let Some(sid) = &p.session_id {
            let session = self.views.sessions.get(&kv_token(sid)).ok_or_else(session_ended)?;
            if !session.view.state.active_at(now) {
                return Err(session_ended());
            }
        }
        if let Some(uid) = &p.user_id {
            let user = self
                .views
                .users
                .get(&kv_token(uid))
                .ok_or_else(|| Error::unauthenticated("the account no longer exists"))?
                .view
                .state;
            if user.disabled {
                return Err(Error::unauthenticated("this account is disabled; ask an administrator"));
            }
            if let (Some(valid_after), Some(issued)) = (user.sessions_valid_after, p.issued_at)
                && issued.timestamp() < valid_after.timestamp()
            {
                return Err(Error::unauthenticated(
                    "the password was changed after this token or key was issued; sign in again (or create a new key)",
                ));
            }
        }
        Ok(())
    }

    /// Resolves when `p` stops being valid (its expiry, a revocation, a disabled user),
    /// with the reason: what ends a subscription.
    pub async fn credential_ended(&self, p: &Principal) -> Error {
        // Taken before the first check: a change in between is seen by the check or wakes
        // the wait.
        let mut changes = self.auth.credential_changes.subscribe();
        let deadline = p.expires_at.map(|e| {
            let left = (e - Utc::now()).to_std().unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        loop {
            if let Err(e) = self.revalidate(p) {
                return e;
            }
            let changed = async {
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d, changed).await;
                }
                None => changed.await,
            }
        }
    }

    fn touch_api_key(&self, key_id: &str) {
        let Some(kv) = self.auth.key_usage.clone() else {
            return;
        };
        {
            let mut last = self.auth.last_touch.lock().expect("touch lock");
            if last.get(key_id).is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                return;
            }
            last.insert(key_id.to_string(), Instant::now());
        }
        let key = kv_token(key_id);
        tokio::spawn(async move {
            if let Err(e) = kv.put(&key, Utc::now().to_rfc3339().into()).await {
                tracing::debug!(error = %e, "could not record an API key's last use");
            }
        });
    }

    /// When an API key was last used (to the minute), if ever.
    pub async fn key_last_used(&self, key_id: &str) -> Option<DateTime<Utc>> {
        let entry = self.auth.key_usage.as_ref()?.get(kv_token(key_id)).await.ok()??;
        DateTime::parse_from_rfc3339(std::str::from_utf8(&entry).ok()?)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// Limits of the API edge that belong to authentication.
    pub fn auth_settings(&self) -> &super::AuthSettings {
        &self.auth.settings
    }
}
