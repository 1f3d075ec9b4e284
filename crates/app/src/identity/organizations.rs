//! Organizations, their members and teams. Managing one needs its admin role; making,
//! changing or removing an owner needs an owner.

use jsc_domain::identity::{DEFAULT_ORGANIZATION, Organization, OrganizationCommand, Role};
use jsc_projections::identity::{OrganizationView, UserView};
use jsc_projector::kv_token;

use super::{get, new_id};
use crate::paging::{List, MAX_PAGE, Page, Paging, by_name};
use crate::runner::{Access, Actor};
use crate::{Caller, Console, Error, Result};

/// A team, with the organization state it was read from.
#[derive(Debug, Clone)]
pub struct Team {
    pub organization: Organization,
    pub id: String,
}

impl Team {
    pub fn team(&self) -> &jsc_domain::identity::Team {
        &self.organization.teams[&self.id]
    }
}

impl Console {
    /// The organizations the caller belongs to, by name.
    pub fn organizations(&self, caller: &Caller) -> Vec<OrganizationView> {
        let mut list: Vec<_> = self
            .organizations_with(&caller.principal, Role::Viewer)
            .into_iter()
            .filter_map(|id| get(&self.views.organizations, &id).map(|v| v.view))
            .collect();
        list.sort_by_key(|o| o.state.name.to_lowercase());
        list
    }

    /// One organization the caller belongs to; `NOT_FOUND` otherwise.
    pub fn organization(&self, caller: &Caller, id: &str) -> Result<OrganizationView> {
        self.require_org(&caller.principal, id, Role::Viewer)?;
        get(&self.views.organizations, id)
            .map(|v| v.view)
            .ok_or_else(|| Error::not_found(format!("no organization with id '{id}'")))
    }

    /// The members of an organization the caller belongs to, with their roles, by name, one
    /// page.
    pub fn members(&self, caller: &Caller, org: &OrganizationView, paging: &Paging) -> Result<Page<(UserView, Role)>> {
        self.require_org(&caller.principal, &org.state.id, Role::Viewer)?;
        let members = org
            .state
            .members
            .iter()
            .filter_map(|(uid, role)| self.user_view(uid).map(|u| (u, *role)))
            .collect();
        let list = List::new("members", &org.state.id);
        self.page(
            list,
            members,
            |(u, _)| by_name(&u.state.name, &u.state.id),
            paging,
            MAX_PAGE,
        )
    }

    /// The teams of an organization the caller belongs to, by name, one page.
    pub fn teams(&self, caller: &Caller, org: &OrganizationView, paging: &Paging) -> Result<Page<Team>> {
        self.require_org(&caller.principal, &org.state.id, Role::Viewer)?;
        let teams = org
            .state
            .teams
            .keys()
            .map(|id| Team {
                organization: org.state.clone(),
                id: id.clone(),
            })
            .collect();
        let list = List::new("teams", &org.state.id);
        self.page(list, teams, |t| by_name(&t.team().name, &t.id), paging, MAX_PAGE)
    }

    /// The members of a team the caller was already found to see, by name, one page.
    pub fn team_members(&self, team: &Team, paging: &Paging) -> Result<Page<UserView>> {
        let users = team.team().members.iter().filter_map(|u| self.user_view(u)).collect();
        let scope = format!("{}/{}", team.organization.id, team.id);
        let list = List::new("team_members", &scope);
        self.page(list, users, |u| by_name(&u.state.name, &u.state.id), paging, MAX_PAGE)
    }

    /// Creates an organization; the caller (an owner of the default organization) owns it.
    pub async fn create_organization(&self, caller: &Caller, name: String) -> Result<OrganizationView> {
        let uid = caller.require_user("create organizations")?.to_string();
        if self.org_role(&caller.principal, DEFAULT_ORGANIZATION) != Some(Role::Owner) {
            return Err(Error::forbidden(
                "only owners of the default organization create organizations",
            ));
        }
        let id = new_id();
        let ctx = self.authorize(Actor::Caller(caller), Access::Checked(Some(&id)))?;
        self.run_in::<Organization>(&ctx, &id, OrganizationCommand::Create { id: id.clone(), name })
            .await?;
        let cmd = OrganizationCommand::SetMember {
            user_id: uid,
            role: Role::Owner,
        };
        self.run_in::<Organization>(&ctx, &id, cmd).await?;
        Ok(get(&self.views.organizations, &id).expect("awaited").view)
    }

    /// Sets a member's role (admin; owner when an owner is involved).
    pub async fn set_member_role(
        &self,
        caller: &Caller,
        org: &str,
        user_id: &str,
        role: Role,
    ) -> Result<OrganizationView> {
        let mine = self.require_org(&caller.principal, org, Role::Admin)?;
        let current = self.member_role(org, user_id)?;
        if (role == Role::Owner || current == Role::Owner) && mine < Role::Owner {
            return Err(Error::forbidden("only an owner can make or change an owner"));
        }
        let cmd = OrganizationCommand::SetMember {
            user_id: user_id.to_string(),
            role,
        };
        self.org_command(caller, org, cmd).await
    }

    /// Removes a member from an organization and its teams (admin; owner for an owner).
    pub async fn remove_member(&self, caller: &Caller, org: &str, user_id: &str) -> Result<OrganizationView> {
        let mine = self.require_org(&caller.principal, org, Role::Admin)?;
        if self.member_role(org, user_id)? == Role::Owner && mine < Role::Owner {
            return Err(Error::forbidden("only an owner can remove an owner"));
        }
        let cmd = OrganizationCommand::RemoveMember {
            user_id: user_id.to_string(),
        };
        self.org_command(caller, org, cmd).await
    }

    /// Creates a team (admin).
    pub async fn create_team(&self, caller: &Caller, org: &str, name: String) -> Result<Team> {
        let team_id = new_id();
        let cmd = OrganizationCommand::CreateTeam {
            team_id: team_id.clone(),
            name,
        };
        self.team_command(caller, org, &team_id, cmd).await
    }

    /// Deletes a team (admin); its grants go with it.
    pub async fn delete_team(&self, caller: &Caller, org: &str, team_id: &str) -> Result<()> {
        let cmd = OrganizationCommand::DeleteTeam {
            team_id: team_id.to_string(),
        };
        self.org_command(caller, org, cmd).await?;
        Ok(())
    }

    /// Adds a member of the organization to a team (admin).
    pub async fn add_team_member(&self, caller: &Caller, org: &str, team_id: &str, user_id: &str) -> Result<Team> {
        let cmd = OrganizationCommand::AddTeamMember {
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
        };
        self.team_command(caller, org, team_id, cmd).await
    }

    /// Removes a user from a team (admin).
    pub async fn remove_team_member(&self, caller: &Caller, org: &str, team_id: &str, user_id: &str) -> Result<Team> {
        let cmd = OrganizationCommand::RemoveTeamMember {
            team_id: team_id.to_string(),
            user_id: user_id.to_string(),
        };
        self.team_command(caller, org, team_id, cmd).await
    }

    /// Gives a team's members `role` on one cluster of the organization, or takes it away
    /// with `None` (admin; a team grants at most admin).
    pub async fn set_team_cluster_role(
        &self,
        caller: &Caller,
        org: &str,
        team_id: &str,
        cluster_id: &str,
        role: Option<Role>,
    ) -> Result<Team> {
        self.require_org(&caller.principal, org, Role::Admin)?;
        let in_org = self
            .views
            .clusters
            .get(&kv_token(cluster_id))
            .is_some_and(|v| v.view.organization == org);
        if !in_org {
            return Err(Error::not_found(format!(
                "no cluster with id '{cluster_id}' in this organization"
            )));
        }
        if role == Some(Role::Owner) {
            return Err(Error::validation("role: a team grants at most admin on a cluster"));
        }
        let cmd = OrganizationCommand::SetTeamClusterRole {
            team_id: team_id.to_string(),
            cluster_id: cluster_id.to_string(),
            role,
        };
        self.team_command(caller, org, team_id, cmd).await
    }

    /// Replaces the organization's masking rules (admin). Every pattern must compile.
    pub async fn set_masking_rules(
        &self,
        caller: &Caller,
        org: &str,
        rules: Vec<jsc_domain::masking::MaskingRule>,
    ) -> Result<OrganizationView> {
        self.require_org(&caller.principal, org, Role::Admin)?;
        for (i, r) in rules.iter().enumerate() {
            r.check(i, |p| jsc_messages::search::regex("pattern", p).map(|_| ()))
                .map_err(Error::validation)?;
        }
        self.org_command(caller, org, OrganizationCommand::SetMaskingRules { rules })
            .await
    }

    /// The Protobuf schemas of the organization that owns `cluster_id`.
    pub(crate) fn protobuf_schemas_of_cluster(&self, cluster_id: &str) -> Vec<jsc_domain::identity::ProtobufSchema> {
        self.cluster_organization(cluster_id)
            .and_then(|org| get(&self.views.organizations, &org))
            .map(|o| o.view.state.protobuf.into_values().collect())
            .unwrap_or_default()
    }

    /// Runs a command on organization `org` as its admin; its view after.
    pub(crate) async fn organization_command(
        &self,
        caller: &Caller,
        org: &str,
        cmd: OrganizationCommand,
    ) -> Result<OrganizationView> {
        self.org_command(caller, org, cmd).await
    }

    /// The masking rules of the organization that owns `cluster_id`.
    pub(crate) fn masking_rules_of_cluster(&self, cluster_id: &str) -> Vec<jsc_domain::masking::MaskingRule> {
        self.cluster_organization(cluster_id)
            .and_then(|org| get(&self.views.organizations, &org))
            .map(|o| o.view.state.masking)
            .unwrap_or_default()
    }

    fn member_role(&self, org: &str, user_id: &str) -> Result<Role> {
        get(&self.views.organizations, org)
            .and_then(|o| o.view.state.members.get(user_id).copied())
            .ok_or_else(|| Error::not_found(format!("no member with id '{user_id}' in this organization")))
    }

    /// Runs a command that manages organization `org`: the caller must be its admin (the
    /// use cases add their own rules about owners and clusters).
    async fn org_command(&self, caller: &Caller, org: &str, cmd: OrganizationCommand) -> Result<OrganizationView> {
        self.run::<Organization>(Actor::Caller(caller), Access::Organization(org, Role::Admin), org, cmd)
            .await?;
        Ok(get(&self.views.organizations, org).expect("awaited").view)
    }

    async fn team_command(&self, caller: &Caller, org: &str, team_id: &str, cmd: OrganizationCommand) -> Result<Team> {
        let org = self.org_command(caller, org, cmd).await?;
        if !org.state.teams.contains_key(team_id) {
            return Err(Error::not_found(format!("no team with id '{team_id}'")));
        }
        Ok(Team {
            organization: org.state,
            id: team_id.to_string(),
        })
    }
}
