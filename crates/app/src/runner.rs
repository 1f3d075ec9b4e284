//! The one path every command takes: authorize → build the context → execute → map the
//! error → wait until the view shows it (read-your-writes) → refresh what caches it.
//!
//! Use cases say *who* issues a command ([`Actor`]) and *what access* it needs
//! ([`Access`]); [`Console::run`] does the rest, the same way for every aggregate.

use std::future::Future;

use cqrs_es::Aggregate;
use jsc_domain::DomainError;
use jsc_domain::identity::Role;
use jsc_eventstore::{CommandContext, Committed, Repository};
use jsc_projector::ViewCache;

use crate::{Caller, Console, Error, RequestMeta, Result};

/// Who issues a command.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    /// An authenticated caller.
    Caller(&'a Caller),
    /// A user acting through a request before they hold a token (sign-in, accepting an
    /// invitation): `user` is their id.
    User { user: &'a str, meta: &'a RequestMeta },
    /// The console itself (`system:<component>`).
    System(&'static str),
}

/// What access a command needs, and so which organization its events belong to.
#[derive(Clone, Copy)]
pub enum Access<'a> {
    /// At least `Role` on the cluster (and so on everything on it).
    Cluster(&'a str, Role),
    /// At least `Role` in the organization.
    Organization(&'a str, Role),
    /// The use case checked its own rule (or the actor is the console itself); the events
    /// belong to this organization, if any.
    Checked(Option<&'a str>),
}

/// An aggregate the runner can execute: where its repository is, which view shows it, and
/// what to refresh once it changed.
pub(crate) trait Routed: Aggregate + Clone + Send + Sync + 'static
where
    Self::Command: Clone,
    Self::Error: DomainError + 'static,
{
    /// The view's name, for messages.
    const VIEW: &'static str;
    fn repository(c: &Console) -> &Repository<Self>;
    /// Waits until the view reflects stream sequence `seq`; false on timeout.
    fn wait_view(c: &Console, seq: u64) -> impl Future<Output = bool> + Send;
    /// The managed cluster and stream whose live state a change of this aggregate changes,
    /// if any: the runner reads that stream's state again once the view shows the change.
    fn stream_of(_state: &Self) -> Option<(&str, &str)> {
        None
    }
}

pub(crate) async fn wait<V>(c: &Console, view: &ViewCache<V>, seq: u64) -> bool
where
    V: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    view.wait_for(seq, c.view_wait).await
}

impl Console {
    /// The command context for `actor` under `access`, after checking it.
    pub(crate) fn authorize(&self, actor: Actor<'_>, access: Access<'_>) -> Result<CommandContext> {
        let org = match (actor, access) {
            (Actor::Caller(c), Access::Cluster(id, min)) => Some(self.require_cluster(&c.principal, id, min)?),
            (Actor::Caller(c), Access::Organization(org, min)) => {
                self.require_org(&c.principal, org, min)?;
                Some(org.to_string())
            }
            (_, Access::Cluster(id, _)) => self.cluster_organization(id),
            (_, Access::Organization(org, _)) | (_, Access::Checked(Some(org))) => Some(org.to_string()),
            (_, Access::Checked(None)) => None,
        };
        let org = org.as_deref();
        Ok(match actor {
            Actor::Caller(c) => c.context(org),
            Actor::User { user, meta } => meta.command_context(&format!("user:{user}"), org),
            Actor::System(component) => CommandContext::system(component).in_organization(org),
        })
    }

    /// Runs `command` on aggregate `id` of type `A` for `actor`, after checking `access`,
    /// and returns once the aggregate's view shows the change.
    pub(crate) async fn run<A>(
        &self,
        actor: Actor<'_>,
        access: Access<'_>,
        id: &str,
        command: A::Command,
    ) -> Result<Committed<A>>
    where
        A: Routed,
        A::Command: Clone,
        A::Error: DomainError + 'static,
    {
        let ctx = self.authorize(actor, access)?;
        self.run_in(&ctx, id, command).await
    }

    /// Like [`Self::run`] with a context already built (several commands of one use case).
    pub(crate) async fn run_in<A>(&self, ctx: &CommandContext, id: &str, command: A::Command) -> Result<Committed<A>>
    where
        A: Routed,
        A::Command: Clone,
        A::Error: DomainError + 'static,
    {
        let started = std::time::Instant::now();
        let executed = A::repository(self).execute(id, command, ctx).await;
        let labels = [("aggregate", A::VIEW)];
        metrics::histogram!("jsconsole_command_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
        let committed = match executed {
            Ok(c) => {
                metrics::counter!("jsconsole_commits_total", &labels).increment(1);
                c
            }
            Err(e) => {
                let e = Error::from_command(e, &ctx.correlation_id);
                if e.code == crate::Code::Conflict {
                    metrics::counter!("jsconsole_command_conflicts_total", &labels).increment(1);
                }
                metrics::counter!("jsconsole_command_failures_total", "aggregate" => A::VIEW, "code" => e.code.as_str())
                    .increment(1);
                return Err(e);
            }
        };
        if self.wait_for_views && !A::wait_view(self, committed.stream_sequence).await {
            let seq = committed.stream_sequence;
            tracing::warn!(seq, view = A::VIEW, correlation_id = %ctx.correlation_id, "view lagging");
            return Err(Error {
                applied: Some(crate::Applied::Yes),
                ..Error::unavailable(format!(
                    "the change was saved (event stream sequence {seq}) but the {} view has not caught up yet; \
                     query again in a moment",
                    A::VIEW
                ))
            });
        }
        if let Some((cluster, stream)) = A::stream_of(&committed.state) {
            self.live.stream_changed(cluster, stream).await;
        }
        Ok(committed)
    }
}

macro_rules! routed {
    ($agg:ty, $view:literal, $field:ident $(, cluster: |$s:ident| $cluster:expr)?) => {
        impl Routed for $agg {
            const VIEW: &'static str = $view;
            fn repository(c: &Console) -> &Repository<Self> {
                &c.repos.$field
            }
            fn wait_view(c: &Console, seq: u64) -> impl Future<Output = bool> + Send {
                wait(c, &c.views.$field, seq)
            }
            $(
                fn stream_of($s: &Self) -> Option<(&str, &str)> {
                    Some($cluster)
                }
            )?
        }
    };
}

routed!(jsc_domain::cluster::Cluster, "clusters", clusters);
routed!(jsc_domain::identity::User, "users", users);
routed!(jsc_domain::identity::Organization, "organizations", organizations);
routed!(jsc_domain::identity::Invitation, "invitations", invitations);
routed!(jsc_domain::identity::Session, "sessions", sessions);
routed!(jsc_domain::identity::ApiKey, "api_keys", api_keys);
routed!(jsc_domain::alerts::AlertRule, "alert_rules", alert_rules);
routed!(
    jsc_domain::alerts::NotificationChannel,
    "notification_channels",
    channels
);
routed!(jsc_domain::alerts::AlertPolicy, "alert_policies", alert_policies);
routed!(jsc_domain::alerts::Silence, "silences", silences);
routed!(jsc_domain::alerts::Alert, "alerts", alerts);
routed!(jsc_domain::stream::Stream, "streams", streams, cluster: |s| (&s.cluster_id, &s.name));
routed!(jsc_domain::consumer::Consumer, "consumers", consumers, cluster: |s| (&s.cluster_id, &s.stream));
