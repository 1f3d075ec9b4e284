//! Managed clusters over GraphQL: queries from the `clusters` view, mutations as commands
//! on the cluster aggregate, and live changes from the view's watch.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use jsc_app::{ClusterFilter, Console, Error as ApiError, Result as ApiResult};
use jsc_domain::Sealed;
use jsc_domain::cluster::{
    AccountUsage as DomainAccountUsage, ClusterAuth, ClusterChanges, ClusterSpec, ConnectionTest as DomainTest,
    TlsOptions,
};
use jsc_projections::ClusterView;
use jsc_projector::{ChangeOp, Versioned};

use crate::context::{caller, console, guarded};

// ---------------------------------------------------------------------------------------
// Output types
// ---------------------------------------------------------------------------------------

/// A NATS cluster the console manages. Credentials are never returned.
pub struct Cluster(Versioned<ClusterView>);

#[Object]
impl Cluster {
    async fn id(&self) -> ID {
        ID(self.0.view.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    /// The organization the cluster belongs to.
    async fn organization_id(&self) -> ID {
        ID(self.0.view.organization.clone())
    }
    /// Server URLs the console connects to.
    async fn urls(&self) -> &[String] {
        &self.0.view.urls
    }
    /// How the console authenticates; secrets are stored encrypted and never shown.
    async fn auth(&self) -> ClusterAuthInfo {
        ClusterAuthInfo {
            kind: auth_kind_from_name(&self.0.view.auth_kind),
            username: self.0.view.auth_username.clone(),
        }
    }
    async fn tls(&self) -> ClusterTls {
        let t = &self.0.view.tls;
        ClusterTls {
            required: t.required,
            handshake_first: t.handshake_first,
            ca_cert_pem: t.ca_cert_pem.clone(),
            client_cert_pem: t.client_cert_pem.clone(),
            has_client_key: t.has_client_key,
        }
    }
    async fn tags(&self) -> &[String] {
        &self.0.view.tags
    }
    async fn description(&self) -> &str {
        &self.0.view.description
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.view.created_at
    }
    async fn created_by(&self) -> &str {
        &self.0.view.created_by
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.view.updated_at
    }
    async fn updated_by(&self) -> &str {
        &self.0.view.updated_by
    }
    /// Number of events in the cluster's history.
    async fn version(&self) -> u64 {
        self.0.view.version
    }
    /// Stream sequence of the last event this view reflects.
    async fn last_sequence(&self) -> u64 {
        self.0.last_sequence
    }
    async fn last_connection_test(&self) -> Option<ConnectionTest> {
        self.0.view.last_test.clone().map(ConnectionTest)
    }
    /// Live: the server the console is connected to on this cluster, and its health.
    async fn server(&self, ctx: &Context<'_>) -> Result<ServerDetail> {
        let d = console(ctx).server_detail(&self.0.view.id).await?;
        Ok(ServerDetail {
            name: d.name,
            id: d.id,
            version: d.version,
            jetstream: d.jetstream,
            cluster_name: d.cluster_name,
            domain: d.domain,
            max_payload: d.max_payload,
            connect_urls: d.connect_urls,
            lame_duck_mode: d.lame_duck_mode,
            rtt_ms: d.rtt_ms,
            healthy: d.healthy,
        })
    }
    /// Live: JetStream usage against the account's limits; null without JetStream.
    async fn jetstream_account(&self, ctx: &Context<'_>) -> Result<Option<AccountUsage>> {
        Ok(console(ctx).jetstream_account(&self.0.view.id).await?.map(AccountUsage))
    }
    /// The cluster's streams with their state (see `Query.streams`).
    async fn streams(
        &self,
        ctx: &Context<'_>,
        name_contains: Option<String>,
        subject: Option<String>,
        #[graphql(default = 50)] first: usize,
        after: Option<String>,
    ) -> crate::streams::StreamPage {
        let filter = jsc_app::StreamFilter { name_contains, subject };
        console(ctx).stream_page(&self.0.view.id, filter, first, after).into()
    }
}

/// The server the console reached on a cluster.
#[derive(SimpleObject)]
pub struct ServerDetail {
    name: String,
    id: String,
    version: String,
    jetstream: bool,
    cluster_name: Option<String>,
    domain: Option<String>,
    max_payload: u64,
    /// Other servers of the cluster, as announced.
    connect_urls: Vec<String>,
    lame_duck_mode: bool,
    rtt_ms: Option<f64>,
    /// Answering pings, JetStream answering (when enabled), not in lame-duck mode.
    healthy: bool,
}

#[derive(SimpleObject)]
pub struct ClusterAuthInfo {
    kind: ClusterAuthKind,
    /// The user name, for user/password auth.
    username: Option<String>,
}

#[derive(SimpleObject)]
pub struct ClusterTls {
    required: bool,
    handshake_first: bool,
    ca_cert_pem: Option<String>,
    client_cert_pem: Option<String>,
    /// Whether a client key is stored (it is never returned).
    has_client_key: bool,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ClusterAuthKind {
    None,
    UserPassword,
    Token,
    Nkey,
    /// A `.creds` file: JWT plus nkey seed.
    Credentials,
}

fn auth_kind_from_name(name: &str) -> ClusterAuthKind {
    match name {
        "user_password" => ClusterAuthKind::UserPassword,
        "token" => ClusterAuthKind::Token,
        "nkey" => ClusterAuthKind::Nkey,
        "credentials" => ClusterAuthKind::Credentials,
        _ => ClusterAuthKind::None,
    }
}

/// What a connection test found.
pub struct ConnectionTest(DomainTest);

#[Object]
impl ConnectionTest {
    async fn ok(&self) -> bool {
        self.0.ok
    }
    async fn tested_at(&self) -> DateTime<Utc> {
        self.0.tested_at
    }
    async fn server_version(&self) -> Option<&str> {
        self.0.server_version.as_deref()
    }
    async fn server_name(&self) -> Option<&str> {
        self.0.server_name.as_deref()
    }
    async fn jetstream(&self) -> Option<bool> {
        self.0.jetstream
    }
    /// Round-trip time of a PING, in milliseconds.
    async fn rtt_ms(&self) -> Option<f64> {
        self.0.rtt_micros.map(|us| us as f64 / 1000.0)
    }
    /// JetStream account usage and limits (absent without JetStream).
    async fn account(&self) -> Option<AccountUsage> {
        self.0.account.clone().map(AccountUsage)
    }
    /// Why the test failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

pub struct AccountUsage(DomainAccountUsage);

#[Object]
impl AccountUsage {
    /// Bytes of memory storage used.
    async fn memory(&self) -> u64 {
        self.0.memory
    }
    /// Bytes of file storage used.
    async fn storage(&self) -> u64 {
        self.0.storage
    }
    async fn streams(&self) -> u64 {
        self.0.streams
    }
    async fn consumers(&self) -> u64 {
        self.0.consumers
    }
    /// Limit in bytes; -1 is unlimited.
    async fn max_memory(&self) -> i64 {
        self.0.max_memory
    }
    /// Limit in bytes; -1 is unlimited.
    async fn max_storage(&self) -> i64 {
        self.0.max_storage
    }
    async fn max_streams(&self) -> i64 {
        self.0.max_streams
    }
    async fn max_consumers(&self) -> i64 {
        self.0.max_consumers
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ClusterChangeKind {
    /// The state when the subscription started (with `includeCurrent`).
    Current,
    Registered,
    Updated,
    ConnectionTested,
    Removed,
}

/// A change to a cluster, as the clusters view saw it.
#[derive(SimpleObject)]
pub struct ClusterChange {
    kind: ClusterChangeKind,
    cluster_id: ID,
    /// The cluster after the change; absent when it was removed.
    cluster: Option<Cluster>,
    /// Stream sequence of the event behind the change (absent for removals).
    sequence: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// Credentials for a cluster. Give the fields the kind needs; secrets are encrypted before
/// they are stored and are never returned. On update, a secret left out keeps the stored one
/// when the kind does not change.
#[derive(InputObject)]
pub struct ClusterAuthInput {
    kind: ClusterAuthKind,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    nkey_seed: Option<String>,
    /// The whole content of a `.creds` file.
    credentials: Option<String>,
}

#[derive(InputObject, Default)]
pub struct ClusterTlsInput {
    #[graphql(default)]
    required: bool,
    #[graphql(default)]
    handshake_first: bool,
    ca_cert_pem: Option<String>,
    client_cert_pem: Option<String>,
    /// PEM private key for mutual TLS; encrypted at rest, never returned.
    client_key_pem: Option<String>,
}

#[derive(InputObject)]
pub struct RegisterClusterInput {
    /// The organization the cluster belongs to; may be left out when you administer exactly one.
    organization_id: Option<ID>,
    name: String,
    /// `nats://host:port`, `tls://`, `ws://`, `wss://`, or a bare `host:port`.
    urls: Vec<String>,
    auth: Option<ClusterAuthInput>,
    tls: Option<ClusterTlsInput>,
    #[graphql(default)]
    tags: Vec<String>,
    #[graphql(default)]
    description: String,
}

/// Fields left out stay as they are.
#[derive(InputObject, Default)]
pub struct UpdateClusterInput {
    name: Option<String>,
    urls: Option<Vec<String>>,
    auth: Option<ClusterAuthInput>,
    tls: Option<ClusterTlsInput>,
    tags: Option<Vec<String>>,
    description: Option<String>,
}

/// Seals a given secret; a left-out one becomes "keep the stored one" on update (the
/// aggregate resolves it under its lock) and an error on register.
fn secret(c: &Console, field: &str, given: Option<String>, updating: bool) -> ApiResult<Sealed> {
    match given {
        Some(v) if !v.is_empty() => Ok(c.seal(&v)),
        _ if updating => Ok(Sealed::keep()),
        _ => Err(ApiError::validation(format!(
            "auth.{field}: required for this kind of auth"
        ))),
    }
}

impl ClusterAuthInput {
    /// Seals the secrets. On update (`updating`), a secret left out keeps the stored one
    /// if the kind does not change.
    fn into_domain(self, secrets: &Console, updating: bool) -> ApiResult<ClusterAuth> {
        Ok(match self.kind {
            ClusterAuthKind::None => ClusterAuth::None,
            ClusterAuthKind::UserPassword => ClusterAuth::UserPassword {
                username: self.username.unwrap_or_default(),
                password: secret(secrets, "password", self.password, updating)?,
            },
            ClusterAuthKind::Token => ClusterAuth::Token {
                token: secret(secrets, "token", self.token, updating)?,
            },
            ClusterAuthKind::Nkey => {
                let given = self.nkey_seed.map(|s| s.trim().to_string());
                if let Some(s) = &given
                    && !(s.starts_with("SU") && s.len() > 50)
                {
                    return Err(ApiError::validation(
                        "auth.nkeySeed: not a user nkey seed (it starts with SU); generate one with `nsc` or `nk -gen user`",
                    ));
                }
                ClusterAuth::Nkey {
                    seed: secret(secrets, "nkeySeed", given, updating)?,
                }
            }
            ClusterAuthKind::Credentials => {
                if let Some(c) = &self.credentials
                    && !c.contains("-----BEGIN NATS USER JWT-----")
                {
                    return Err(ApiError::validation(
                        "auth.credentials: not the content of a NATS .creds file (it must hold a USER JWT and an NKEY seed)",
                    ));
                }
                ClusterAuth::Credentials {
                    creds: secret(secrets, "credentials", self.credentials, updating)?,
                }
            }
        })
    }
}

impl ClusterTlsInput {
    /// On update, a client certificate given without its key keeps the stored key.
    fn into_domain(self, secrets: &Console, updating: bool) -> TlsOptions {
        let client_key = match self.client_key_pem {
            Some(k) if !k.is_empty() => Some(secrets.seal(&k)),
            _ if updating && self.client_cert_pem.is_some() => Some(Sealed::keep()),
            _ => None,
        };
        TlsOptions {
            required: self.required,
            handshake_first: self.handshake_first,
            ca_cert_pem: self.ca_cert_pem.filter(|s| !s.is_empty()),
            client_cert_pem: self.client_cert_pem.filter(|s| !s.is_empty()),
            client_key,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Roots
// ---------------------------------------------------------------------------------------

#[derive(Default)]
pub struct ClusterQuery;

#[Object]
impl ClusterQuery {
    /// Managed clusters, by name. Filter by a tag, or by part of the name (case-insensitive).
    async fn clusters(
        &self,
        ctx: &Context<'_>,
        tag: Option<String>,
        name_contains: Option<String>,
        organization_id: Option<ID>,
    ) -> Result<Vec<Cluster>> {
        let filter = ClusterFilter {
            tag,
            name_contains,
            organization_id: organization_id.map(|o| o.0),
        };
        Ok(console(ctx)
            .clusters(&caller(ctx)?, filter)
            .into_iter()
            .map(Cluster)
            .collect())
    }

    /// One cluster by id; `NOT_FOUND` when there is none.
    async fn cluster(&self, ctx: &Context<'_>, id: ID) -> Result<Cluster> {
        Ok(Cluster(console(ctx).cluster(&caller(ctx)?, &id)?))
    }
}

#[derive(Default)]
pub struct ClusterMutation;

#[Object]
impl ClusterMutation {
    /// Registers a NATS cluster for the console to manage.
    async fn register_cluster(&self, ctx: &Context<'_>, input: RegisterClusterInput) -> Result<Cluster> {
        let c = console(ctx);
        let caller = caller(ctx)?;
        let spec = ClusterSpec {
            name: input.name,
            urls: input.urls,
            auth: match input.auth {
                Some(a) => a.into_domain(c, false)?,
                None => ClusterAuth::None,
            },
            tls: input.tls.unwrap_or_default().into_domain(c, false),
            tags: input.tags,
            description: input.description,
        };
        let org = input.organization_id.map(|o| o.0);
        Ok(Cluster(c.register_cluster(&caller, org, spec).await?))
    }

    /// Changes a cluster's settings; fields left out stay as they are.
    async fn update_cluster(&self, ctx: &Context<'_>, id: ID, input: UpdateClusterInput) -> Result<Cluster> {
        let c = console(ctx);
        let caller = caller(ctx)?;
        let changes = ClusterChanges {
            name: input.name,
            urls: input.urls,
            auth: input.auth.map(|a| a.into_domain(c, true)).transpose()?,
            tls: input.tls.map(|t| t.into_domain(c, true)),
            tags: input.tags,
            description: input.description,
        };
        Ok(Cluster(c.update_cluster(&caller, &id, changes).await?))
    }

    /// Stops managing a cluster (the cluster itself is not touched). Returns its id.
    async fn remove_cluster(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        console(ctx).remove_cluster(&caller(ctx)?, &id).await?;
        Ok(id)
    }

    /// Connects to the cluster and reports what it found; the result is recorded in the
    /// cluster's history. An unreachable cluster is an `UNAVAILABLE` error saying why.
    async fn test_cluster_connection(&self, ctx: &Context<'_>, id: ID) -> Result<ConnectionTest> {
        Ok(ConnectionTest(
            console(ctx).test_cluster_connection(&caller(ctx)?, &id).await?,
        ))
    }
}

#[derive(Default)]
pub struct ClusterSubscription;

#[Subscription]
impl ClusterSubscription {
    /// Every change to a cluster (or to the one with `id`), as the clusters view applies it.
    /// With `includeCurrent`, the matching clusters are sent first as `CURRENT`, so a client
    /// needs no separate query and misses nothing in between.
    async fn cluster_changed(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        #[graphql(default)] include_current: bool,
    ) -> Result<impl Stream<Item = Result<ClusterChange>> + use<>> {
        let c = console(ctx).clone();
        let caller = caller(ctx)?;
        let p = caller.principal.clone();
        // Subscribe before taking the snapshot: a change in between is sent twice, never lost.
        let changes = c.cluster_changes();
        let only = id.map(|i| i.0);
        let current: Vec<ClusterChange> = if include_current {
            c.clusters(&caller, ClusterFilter::default())
                .into_iter()
                .filter(|v| only.as_ref().is_none_or(|o| o == &v.view.id))
                .map(|v| ClusterChange {
                    kind: ClusterChangeKind::Current,
                    cluster_id: ID(v.view.id.clone()),
                    sequence: Some(v.last_sequence),
                    cluster: Some(Cluster(v)),
                })
                .collect()
        } else {
            Vec::new()
        };
        let changes = futures::StreamExt::filter_map(changes, move |change| {
            let out = (|| {
                let subject = change.value.as_ref().or(change.previous.as_ref())?;
                let cluster_id = subject.view.id.clone();
                if only.as_ref().is_some_and(|o| o != &cluster_id) {
                    return None;
                }
                // A removed cluster is no longer in the view: judge it by its organization.
                let visible = match change.value.as_ref() {
                    Some(_) => c.cluster_role(&p, &cluster_id).is_some(),
                    None => c.org_role(&p, &subject.view.organization).is_some(),
                };
                if !visible {
                    return None;
                }
                Some(match change.op {
                    ChangeOp::Delete => ClusterChange {
                        kind: ClusterChangeKind::Removed,
                        cluster_id: ID(cluster_id),
                        cluster: None,
                        sequence: None,
                    },
                    ChangeOp::Put => {
                        let value = change.value.expect("a put has a value");
                        let kind = match value.view.last_event_type.as_str() {
                            "ClusterRegistered" => ClusterChangeKind::Registered,
                            "ClusterConnectionTested" => ClusterChangeKind::ConnectionTested,
                            _ => ClusterChangeKind::Updated,
                        };
                        ClusterChange {
                            kind,
                            cluster_id: ID(cluster_id),
                            sequence: Some(value.last_sequence),
                            cluster: Some(Cluster(value)),
                        }
                    }
                })
            })();
            futures::future::ready(out)
        });
        Ok(guarded(
            ctx,
            futures::StreamExt::chain(futures::stream::iter(current), changes),
        )?)
    }
}
