//! API keys: shown once, kept as a sealed hash. A personal key never has more rights than
//! its user has now; a service-account key (admin) has exactly its role.

use chrono::{DateTime, Utc};
use jsc_domain::identity::{ApiKey, ApiKeyCommand, KeyOwner, NewApiKey, Role};
use jsc_projections::identity::{ApiKeyView, OrganizationView};

use super::get;
use crate::paging::{List, MAX_PAGE, Page, Paging, newest_first};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// What a new key is for.
pub struct NewKey {
    pub organization: String,
    pub name: String,
    pub role: Role,
    pub expires_at: Option<DateTime<Utc>>,
    /// A named service account (admin) instead of the caller.
    pub service_account: Option<String>,
}

impl Console {
    /// The API keys of an organization: all of them for its admins, the caller's own otherwise.
    pub fn api_keys(&self, caller: &Caller, org: &OrganizationView, paging: &Paging) -> Result<Page<ApiKeyView>> {
        let p = &caller.principal;
        let role = self.require_org(p, &org.state.id, Role::Viewer)?;
        let id = &org.state.id;
        let all = self.views.api_keys.filter(|k| {
            &k.state.organization == id
                && (role >= Role::Admin
                    || matches!(&k.state.owner, Some(KeyOwner::User { user_id }) if Some(user_id) == p.user_id.as_ref()))
        });
        let list = List::new("api_keys", id);
        let page = self.page(
            list,
            all,
            |v| newest_first(v.view.created_at, &v.view.state.id),
            paging,
            MAX_PAGE,
        )?;
        Ok(page.map(|v| v.view))
    }

    /// Creates an API key; returns it with the key itself, to be shown once.
    pub async fn create_api_key(&self, caller: &Caller, new: NewKey) -> Result<(ApiKeyView, String)> {
        let p = &caller.principal;
        let user_id = caller.require_user("create API keys")?.to_string();
        let org = new.organization.as_str();
        let mine = self.require_org(p, org, Role::Viewer)?;
        let owner = match new.service_account {
            Some(name) => {
                self.require_org(p, org, Role::Admin)?;
                KeyOwner::ServiceAccount { name }
            }
            None => KeyOwner::User { user_id },
        };
        if new.role > mine {
            return Err(Error::forbidden(format!(
                "a key cannot have more rights than you: you are {}, the key asks for {}",
                mine.as_str(),
                new.role.as_str()
            )));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (key, hash) = jsc_secrets::new_api_key(&id);
        let cmd = ApiKeyCommand::Create(NewApiKey {
            id: id.clone(),
            organization: org.to_string(),
            name: new.name,
            owner,
            role: new.role,
            expires_at: new.expires_at,
            secret_hash: self.fleet.secrets().seal(&hash),
        });
        self.run::<ApiKey>(Actor::Caller(caller), Access::Checked(Some(org)), &id, cmd)
            .await?;
        Ok((get(&self.views.api_keys, &id).expect("awaited").view, key))
    }

    /// Revokes an API key: the caller's own, or any of the organization's (admin). It stops
    /// working at once.
    pub async fn revoke_api_key(&self, caller: &Caller, id: &str) -> Result<ApiKeyView> {
        let p = &caller.principal;
        let key = get(&self.views.api_keys, id)
            .filter(|k| self.org_role(p, &k.view.state.organization).is_some())
            .ok_or_else(|| Error::not_found(format!("no API key with id '{id}'")))?
            .view
            .state;
        let own = matches!(&key.owner, Some(KeyOwner::User { user_id }) if Some(user_id) == p.user_id.as_ref());
        let access = if own {
            Access::Checked(Some(&key.organization))
        } else {
            Access::Organization(&key.organization, Role::Admin)
        };
        self.run::<ApiKey>(Actor::Caller(caller), access, id, ApiKeyCommand::Revoke)
            .await?;
        Ok(get(&self.views.api_keys, id).expect("awaited").view)
    }
}
