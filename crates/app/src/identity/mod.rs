//! Identity use cases: sign-in and sessions, invitations, organizations and teams, users,
//! API keys, and the owner account of the first start. Login, refresh and accepting an
//! invitation are the only ones open to anonymous callers; every other checks the caller.

mod api_keys;
mod bootstrap;
mod invitations;
mod organizations;
mod sessions;
mod users;

pub use api_keys::NewKey;
pub use bootstrap::{Bootstrap, DEFAULT_ADMIN_EMAIL};
pub use organizations::Team;

use chrono::{DateTime, Utc};
use jsc_projections::identity::UserView;
use jsc_projector::{Versioned, ViewCache, kv_token};

use crate::{Console, Error, RequestMeta, Result};

/// The tokens of a session. The access token goes in `Authorization: Bearer <token>`; the
/// refresh token is traded for new ones, once.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_token_expires_at: DateTime<Utc>,
    pub user_id: String,
}

pub(crate) fn get<V>(view: &ViewCache<V>, id: &str) -> Option<Versioned<V>>
where
    V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    view.get(&kv_token(id))
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn domain(e: jsc_domain::identity::IdentityError) -> Error {
    Error::validation(e.to_string())
}

fn hashing(e: jsc_secrets::Error, correlation_id: &str) -> Error {
    Error::internal(&e, correlation_id)
}

impl Console {
    pub(crate) fn user_by_email(&self, email: &str) -> Option<UserView> {
        self.views
            .users
            .filter(|u| u.state.email == email)
            .into_iter()
            .next()
            .map(|v| v.view)
    }

    /// The id of the user holding `email` by the write side's claim, which is there as soon
    /// as the registration committed (the users' view may not have it yet).
    pub(crate) async fn email_holder(&self, email: &str) -> Result<Option<String>> {
        use cqrs_es::Aggregate;
        use jsc_domain::identity::User;
        let claim = self
            .store
            .read_claim(&User::email_key(email))
            .await
            .map_err(|e| Error::unavailable(format!("could not read who holds {email}: {e}; retry in a moment")))?;
        Ok(claim
            .holder
            .and_then(|h| h.strip_prefix(&format!("{}/", User::TYPE)).map(str::to_string)))
    }

    /// Applies the login limits for `account` from the request's address.
    async fn check_limits(&self, meta: &RequestMeta, account: &str) -> Result<()> {
        let addr = crate::auth::limit_key(meta.client_addr.as_deref());
        self.auth
            .limiter
            .check(&self.auth.settings, &addr, account)
            .await
            .map_err(|wait| {
                Error::rate_limited(
                    format!(
                        "too many sign-in attempts; wait {} s and try again",
                        wait.as_secs().max(1)
                    ),
                    wait,
                )
            })
    }

    async fn password_matches(&self, user: Option<&UserView>, password: &str) -> bool {
        let phc = user
            .and_then(|u| u.state.password.as_ref())
            .and_then(|s| self.fleet.secrets().unseal(s).ok());
        jsc_secrets::verify_password(password, phc).await
    }

    /// A sealed argon2id hash of `password`, after checking it against the rules.
    async fn sealed_password(&self, password: &str, email: &str, correlation_id: &str) -> Result<jsc_domain::Sealed> {
        jsc_domain::identity::check_password(password, email).map_err(domain)?;
        let phc = jsc_secrets::hash_password(password)
            .await
            .map_err(|e| hashing(e, correlation_id))?;
        Ok(self.fleet.secrets().seal(&phc))
    }
}
