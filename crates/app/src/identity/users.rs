//! Users: who the caller is, the users they may see, and disabling an account.

use jsc_domain::identity::{User, UserCommand};
use jsc_projections::identity::UserView;

use super::get;
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

impl Console {
    /// The signed-in user (`None` for a service-account key).
    pub fn me(&self, caller: &Caller) -> Option<UserView> {
        caller
            .principal
            .user_id
            .as_ref()
            .and_then(|u| get(&self.views.users, u))
            .map(|v| v.view)
    }

    /// A user who belongs to one of the caller's organizations (or the caller); `NOT_FOUND`
    /// otherwise.
    pub fn user(&self, caller: &Caller, id: &str) -> Result<UserView> {
        let p = &caller.principal;
        let not_found = || Error::not_found(format!("no user with id '{id}'"));
        let mine = p.user_id.as_deref() == Some(id);
        if !mine && self.shared_organizations(p, id).is_empty() {
            return Err(not_found());
        }
        get(&self.views.users, id).map(|v| v.view).ok_or_else(not_found)
    }

    /// A user by id, for lists the caller was already found to see (members, teams).
    pub fn user_view(&self, id: &str) -> Option<UserView> {
        get(&self.views.users, id).map(|v| v.view)
    }

    /// Disables an account (its sessions and API keys stop working at once) or enables it
    /// again: an account-wide action, see [`Console::require_admin_over`].
    pub async fn set_user_disabled(&self, caller: &Caller, id: &str, disabled: bool) -> Result<UserView> {
        self.require_admin_over(&caller.principal, id)?;
        if caller.principal.user_id.as_deref() == Some(id) {
            return Err(Error::validation("you cannot disable or enable your own account"));
        }
        let cmd = if disabled {
            UserCommand::Disable
        } else {
            UserCommand::Enable
        };
        self.run::<User>(Actor::Caller(caller), Access::Checked(None), id, cmd)
            .await?;
        Ok(get(&self.views.users, id).expect("awaited").view)
    }
}
