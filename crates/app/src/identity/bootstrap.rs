//! The first start: the default organization and its owner account.

use jsc_domain::identity::{
    DEFAULT_ORGANIZATION, NewUser, Organization, OrganizationCommand, Role, User, UserCommand, normalize_email,
};

use super::{get, new_id};
use crate::runner::{Access, Actor};
use crate::{Console, Error, Result};

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

impl Console {
    /// On the first start: creates the default organization and its owner, with the given
    /// email and password, or a generated password.
    pub async fn bootstrap(&self, email: Option<String>, password: Option<String>) -> Result<Bootstrap> {
        let org = get(&self.views.organizations, DEFAULT_ORGANIZATION).map(|o| o.view.state);
        if org.as_ref().is_some_and(|o| !o.members.is_empty()) {
            return Ok(Bootstrap::AlreadyDone);
        }
        let ctx = self.authorize(Actor::System("bootstrap"), Access::Checked(Some(DEFAULT_ORGANIZATION)))?;
        if org.is_none() {
            let cmd = OrganizationCommand::Create {
                id: DEFAULT_ORGANIZATION.into(),
                name: "Default".into(),
            };
            // Another replica starting at the same moment may have created it: then it is there.
            match self.run_in::<Organization>(&ctx, DEFAULT_ORGANIZATION, cmd).await {
                Err(e) if e.code == crate::Code::Conflict => {}
                other => {
                    other?;
                }
            }
        }
        let email = normalize_email(email.as_deref().unwrap_or(DEFAULT_ADMIN_EMAIL))
            .map_err(|e| Error::validation(format!("admin email: {e}")))?;
        let generated = password.is_none();
        let password = password.unwrap_or_else(jsc_secrets::random_token::<18>);
        let user_id = match self.user_by_email(&email) {
            Some(u) => u.state.id,
            None => {
                let sealed = self
                    .sealed_password(&password, &email, &ctx.correlation_id)
                    .await
                    .map_err(|e| Error {
                        message: format!("admin {}", e.message),
                        ..e
                    })?;
                let user_id = new_id();
                let cmd = UserCommand::Register(NewUser {
                    id: user_id.clone(),
                    email: email.clone(),
                    name: "Owner".into(),
                    password: sealed,
                });
                match self.run_in::<User>(&ctx, &user_id, cmd).await {
                    Ok(_) => user_id,
                    // Another replica registered this email first: its account is the owner,
                    // with the password that replica was given (or showed).
                    Err(e) if e.code == crate::Code::Conflict => {
                        let holder = self.email_holder(&email).await?.ok_or(e)?;
                        self.set_owner(&ctx, holder).await?;
                        return Ok(Bootstrap::AlreadyDone);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.set_owner(&ctx, user_id).await?;
        Ok(if generated {
            Bootstrap::Generated { email, password }
        } else {
            Bootstrap::Created { email }
        })
    }

    async fn set_owner(&self, ctx: &jsc_eventstore::CommandContext, user_id: String) -> Result<()> {
        let cmd = OrganizationCommand::SetMember {
            user_id,
            role: Role::Owner,
        };
        self.run_in::<Organization>(ctx, DEFAULT_ORGANIZATION, cmd).await?;
        Ok(())
    }
}
