//! What a caller may do: their role in an organization (a key never above its role, nor
//! above its user), raised on single clusters by team grants. Another organization's
//! resources answer `NOT_FOUND`, never `FORBIDDEN`: callers never learn they exist.

use std::collections::HashMap;

use jsc_domain::identity::{DEFAULT_ORGANIZATION, Organization, Role};
use jsc_projections::ClusterView;
use jsc_projections::identity::OrganizationView;
use jsc_projector::kv_token;

use crate::{Console, Error, Principal, Result};

impl Console {
    /// The caller's role in `org`, if any.
    pub fn org_role(&self, p: &Principal, org: &str) -> Option<Role> {
        let members = || self.organization_state(org);
        let user_role = |uid: &str| members().and_then(|o| o.members.get(uid).copied());
        match (&p.api_key, &p.user_id) {
            (Some(k), _) if k.organization != org => None,
            (Some(k), Some(uid)) => user_role(uid).map(|r| r.min(k.role)),
            (Some(k), None) => members().map(|_| k.role),
            (None, Some(uid)) => user_role(uid),
            (None, None) => None,
        }
    }

    /// The caller's role on a cluster: the organization role raised by team grants; with
    /// the cluster's organization.
    pub fn cluster_role(&self, p: &Principal, cluster_id: &str) -> Option<(String, Role)> {
        let cluster = self.views.clusters.get(&kv_token(cluster_id))?.view;
        let org = self.organization_state(&cluster.organization)?;
        let role = role_on_cluster(p, &org, cluster_id)?;
        Some((cluster.organization, role))
    }

    /// A filter over clusters for one request: the caller's role on each cluster of the
    /// view, each organization looked up once (a list of many clusters costs one lookup
    /// per organization, not per cluster).
    pub fn cluster_roles<'a>(&'a self, p: &'a Principal) -> impl FnMut(&ClusterView) -> Option<Role> + 'a {
        let mut orgs: HashMap<String, Option<Organization>> = HashMap::new();
        move |cluster| {
            let org = orgs
                .entry(cluster.organization.clone())
                .or_insert_with(|| self.organization_state(&cluster.organization));
            role_on_cluster(p, org.as_ref()?, &cluster.id)
        }
    }

    pub(crate) fn organization_state(&self, id: &str) -> Option<Organization> {
        self.views.organizations.get(&kv_token(id)).map(|o| o.view.state)
    }

    /// The organizations where the caller has at least `min`.
    pub fn organizations_with(&self, p: &Principal, min: Role) -> Vec<String> {
        self.views
            .organizations
            .list()
            .into_iter()
            .map(|o| o.view.state.id)
            .filter(|id| self.org_role(p, id).is_some_and(|r| r >= min))
            .collect()
    }

    /// The organization a caller means: the one given, or else the only one where they have
    /// at least `min` (`FORBIDDEN` with none, `VALIDATION` asking for `organizationId` with
    /// several). `doing` names the operation in the message (`registering a cluster`).
    pub fn organization_for(&self, p: &Principal, given: Option<String>, min: Role, doing: &str) -> Result<String> {
        if let Some(o) = given {
            return Ok(o);
        }
        match self.organizations_with(p, min).as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::forbidden(format!(
                "{doing} needs the {} role in an organization",
                min.as_str()
            ))),
            _ => Err(Error::validation(format!(
                "organizationId: you are {} or above in several organizations; say which one {doing} is for",
                min.as_str()
            ))),
        }
    }

    /// `NOT_FOUND` when the caller is not in `org`, `FORBIDDEN` when their role is below `min`.
    pub fn require_org(&self, p: &Principal, org: &str, min: Role) -> Result<Role> {
        match self.org_role(p, org) {
            None => Err(Error::not_found(format!("no organization with id '{org}'"))),
            Some(r) if r < min => Err(Error::forbidden(format!(
                "this needs the {} role in the organization; you are {}",
                min.as_str(),
                r.as_str()
            ))),
            Some(r) => Ok(r),
        }
    }

    /// Like [`Self::require_org`] for a cluster (and everything on it); returns its organization.
    pub fn require_cluster(&self, p: &Principal, cluster_id: &str, min: Role) -> Result<String> {
        match self.cluster_role(p, cluster_id) {
            None => Err(Error::not_found(format!(
                "no cluster with id '{cluster_id}'; list clusters to see the ids that exist"
            ))),
            Some((_, r)) if r < min => Err(Error::forbidden(format!(
                "this needs the {} role on the cluster; you are {}",
                min.as_str(),
                r.as_str()
            ))),
            Some((org, _)) => Ok(org),
        }
    }

    /// The organizations a user belongs to that the caller can see, with the user's role.
    pub fn shared_organizations(&self, p: &Principal, user_id: &str) -> Vec<(OrganizationView, Role)> {
        self.views
            .organizations
            .list()
            .into_iter()
            .filter_map(|o| {
                let role = *o.view.state.members.get(user_id)?;
                self.org_role(p, &o.view.state.id)?;
                Some((o.view, role))
            })
            .collect()
    }

    /// For account-wide actions on another user (disable, enable, their sessions and history):
    /// the caller must administer the user in *every* organization the user belongs to (owner
    /// where the user is an owner), or own the default organization (the installation's
    /// administrators). An admin of one organization cannot lock a user out of another.
    /// `NOT_FOUND` when they share no organization.
    pub fn require_admin_over(&self, p: &Principal, user_id: &str) -> Result<()> {
        if self.shared_organizations(p, user_id).is_empty() {
            return Err(Error::not_found(format!("no user with id '{user_id}'")));
        }
        if p.api_key.is_none() && self.org_role(p, DEFAULT_ORGANIZATION) == Some(Role::Owner) {
            return Ok(());
        }
        let all = self
            .views
            .organizations
            .filter(|o| o.state.members.contains_key(user_id));
        let allowed = all.iter().all(|o| {
            let target = o.view.state.members[user_id];
            self.org_role(p, &o.view.state.id)
                .is_some_and(|mine| mine >= Role::Admin && (mine == Role::Owner || target < Role::Owner))
        });
        if allowed {
            Ok(())
        } else {
            Err(Error::forbidden(
                "this acts on the whole account: it needs the admin role (owner for an owner) in every organization \
                 the user belongs to",
            ))
        }
    }
}

/// The caller's role on `cluster_id` of `org`: the organization role raised by team grants;
/// a key never above its role, nor above its user.
fn role_on_cluster(p: &Principal, org: &Organization, cluster_id: &str) -> Option<Role> {
    match (&p.api_key, &p.user_id) {
        (Some(k), _) if k.organization != org.id => None,
        (Some(k), Some(uid)) => org.cluster_role(uid, cluster_id).map(|r| r.min(k.role)),
        (Some(k), None) => Some(k.role),
        (None, Some(uid)) => org.cluster_role(uid, cluster_id),
        (None, None) => None,
    }
}
