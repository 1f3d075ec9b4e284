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

use crate::connection::{connection, paging};
use crate::context::{caller, console, guarded, principal};
use crate::mutation::{Outcome, input, payload};

// ---------------------------------------------------------------------------------------
// Output types
// ---------------------------------------------------------------------------------------

/// The GraphQL `Cluster` object; the schema's description is the doc comment on its impl.
#[derive(Clone)]
pub struct Cluster(pub(crate) Versioned<ClusterView>);

connection!(ClusterConnection, ClusterEdge, Cluster, "clusters");

/// A NATS cluster the console manages: where it is, how the console authenticates to it,
/// and its labels. Anyone with a role on the cluster (viewer and up) can read it;
/// credentials are never returned.
#[Object]
impl Cluster {
    /// The cluster's id, chosen by the console (a UUID, or `local` for the embedded server).
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.view.id.clone())
    }
    /// A short name, unique among the console's clusters (case-insensitive).
    async fn name(&self) -> &str {
        &self.0.view.name
    }
    /// Your role on this cluster: your role in its organization, raised by your teams'
    /// grants on it. What it allows here: viewer reads, operator also changes streams and
    /// consumers and tests the connection, admin also edits and removes the cluster.
    async fn my_role(&self, ctx: &Context<'_>) -> Result<crate::identity::RoleGql> {
        let (_, role) = console(ctx)
            .cluster_role(principal(ctx)?, &self.0.view.id)
            .ok_or_else(|| jsc_app::Error::not_found(format!("no cluster with id '{}'", self.0.view.id)))?;
        Ok(role.into())
    }
    /// The console's latest sample of the cluster (when, how, whether it answered); null
    /// before the first.
    async fn last_sample(&self, ctx: &Context<'_>) -> Result<Option<crate::metrics::ClusterSampleInfo>> {
        let latest = console(ctx).latest_sample(&caller(ctx)?, &self.0.view.id)?;
        Ok(latest.map(|s| (&s.cluster).into()))
    }
    /// JetStream storage of the console's account over a time range: file and memory bytes
    /// used, and file storage as a percent of the account's limit (the series
    /// `ACCOUNT_STORAGE_BYTES`, `ACCOUNT_MEMORY_BYTES` and `ACCOUNT_STORAGE_PERCENT` of
    /// `metrics`), from the console's samples. Errors: `VALIDATION`, `UNAVAILABLE`.
    async fn storage(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The range's start.")] from: DateTime<Utc>,
        #[graphql(desc = "The range's end; left out, now.")] to: Option<DateTime<Utc>>,
        #[graphql(desc = "Seconds per point; left out, about 300 points over the range.")] step: Option<i64>,
    ) -> Result<Vec<crate::metrics::MetricSeries>> {
        use jsc_metrics::Metric;
        let series = [
            Metric::AccountStorageBytes,
            Metric::AccountMemoryBytes,
            Metric::AccountStoragePercent,
        ]
        .map(|m| crate::metrics::key(m, &self.0.view.id, None, None))
        .to_vec();
        Ok(crate::metrics::read(ctx, series, crate::metrics::Range::shortcut(from, to, step)).await?)
    }
    /// The organization the cluster belongs to.
    async fn organization_id(&self) -> ID {
        ID(self.0.view.organization.clone())
    }
    /// Server URLs the console connects to, normalized (a bare `host:port` is shown as
    /// `nats://host:port`).
    async fn urls(&self) -> &[String] {
        &self.0.view.urls
    }
    /// How the console authenticates to the cluster; secrets are stored encrypted and never
    /// shown.
    async fn auth(&self) -> ClusterAuthInfo {
        ClusterAuthInfo {
            kind: auth_kind_from_name(&self.0.view.auth_kind),
            username: self.0.view.auth_username.clone(),
        }
    }
    /// The kind of system-account credentials the collector uses for this cluster (`NONE`:
    /// it lists streams and consumers instead); secrets are never shown.
    async fn system_auth(&self) -> ClusterAuthKind {
        auth_kind_from_name(&self.0.view.system_auth_kind)
    }
    /// Seconds between samples of this cluster, when it has its own interval; null: the
    /// console's (`--metrics-interval`).
    async fn metrics_interval(&self) -> Option<i32> {
        self.0.view.metrics_interval_secs.map(|s| s as i32)
    }
    /// The TLS settings the console connects with; the client key is never shown.
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
    /// Free-form labels for grouping and filtering clusters, sorted and without duplicates.
    async fn tags(&self) -> &[String] {
        &self.0.view.tags
    }
    /// A free-form description; empty when none was given.
    async fn description(&self) -> &str {
        &self.0.view.description
    }
    /// When the cluster was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.view.created_at
    }
    /// Who registered the cluster: the actor recorded in its history (`user:<id>`,
    /// `apikey:<id>` or `system:<component>`).
    async fn created_by(&self) -> &str {
        &self.0.view.created_by
    }
    /// When the cluster last changed (including connection tests).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.view.updated_at
    }
    /// Who made the last change, as for `createdBy`.
    async fn updated_by(&self) -> &str {
        &self.0.view.updated_by
    }
    /// Number of events in the cluster's history; it grows by one with every change.
    async fn version(&self) -> u64 {
        self.0.view.version
    }
    /// Sequence, in the console's event stream, of the last event this view reflects;
    /// compare it with `ClusterChange.sequence` to order changes.
    async fn last_sequence(&self) -> u64 {
        self.0.last_sequence
    }
    /// The result of the last `testClusterConnection`; null when the connection was never
    /// tested.
    async fn last_connection_test(&self) -> Option<ConnectionTest> {
        self.0.view.last_test.clone().map(ConnectionTest)
    }
    /// Live: the server the console is connected to on this cluster, and its health. Fails
    /// with `UNAVAILABLE` when the console cannot reach the cluster.
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
    /// Live: the JetStream usage of the console's account against its limits; null when the
    /// server has no JetStream. Fails with `UNAVAILABLE` when the cluster cannot be reached.
    async fn jetstream_account(&self, ctx: &Context<'_>) -> Result<Option<AccountUsage>> {
        Ok(console(ctx).jetstream_account(&self.0.view.id).await?.map(AccountUsage))
    }
    /// The cluster's streams, one page at a time, filtered and ordered as for `Query.streams`.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn streams(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only streams whose name has this text (case-insensitive).")] name_contains: Option<String>,
        #[graphql(desc = "Only streams that store this subject (wildcards allowed; overlapping subjects match).")]
        subject: Option<String>,
        #[graphql(
            desc = "Only streams with this placement tag, or this metadata entry: `key` (any value) or `key=value`."
        )]
        tag: Option<String>,
        #[graphql(
            desc = "The order of the list: by name (the default), or by a figure of the streams' state, either way."
        )]
        order_by: Option<crate::streams::inputs::StreamOrderBy>,
        #[graphql(
            desc = "The first `first` streams (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only streams after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` streams (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only streams before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<crate::streams::StreamConnection> {
        let filter = crate::streams::inputs::stream_filter(name_contains, subject, tag, order_by);
        let page = console(ctx)
            .stream_page(&self.0.view.id, filter, &paging(first, after, last, before))
            .await?;
        Ok(crate::streams::StreamConnection::new(page, crate::streams::StreamObj))
    }
}

/// The server the console reached on a cluster, as its INFO describes it, and its health.
#[derive(SimpleObject)]
pub struct ServerDetail {
    /// The server's name (`server_name`).
    name: String,
    /// The server's unique id, a public nkey (`server_id`).
    id: String,
    /// The nats-server version, such as `2.11.4`.
    version: String,
    /// Whether JetStream is enabled on the server.
    jetstream: bool,
    /// The name of the NATS cluster the server belongs to; null for a standalone server.
    cluster_name: Option<String>,
    /// The JetStream domain the server belongs to; null when none is set.
    domain: Option<String>,
    /// Largest message payload the server accepts, in bytes.
    max_payload: u64,
    /// Other servers of the cluster, as announced.
    connect_urls: Vec<String>,
    /// Whether the server is in lame-duck mode: shutting down and asking clients to move to
    /// other servers.
    lame_duck_mode: bool,
    /// Round-trip time of a PING to the server, in milliseconds; null when it did not answer
    /// within 3 seconds.
    rtt_ms: Option<f64>,
    /// Answering pings, JetStream answering (when enabled), not in lame-duck mode.
    healthy: bool,
}

/// How the console authenticates to a cluster, without its secrets.
#[derive(SimpleObject)]
pub struct ClusterAuthInfo {
    /// The kind of credentials the console presents.
    kind: ClusterAuthKind,
    /// The user name, for user/password auth; null for every other kind.
    username: Option<String>,
}

/// The TLS settings the console connects to a cluster with. Certificates are public and
/// shown; the client key is not.
#[derive(SimpleObject)]
pub struct ClusterTls {
    /// Whether the console refuses to connect without TLS.
    required: bool,
    /// Whether the console starts the TLS handshake before the server's INFO, for servers
    /// configured with `handshake_first`.
    handshake_first: bool,
    /// The CA certificate(s), PEM, trusted to verify the server's certificate; null when
    /// none was given.
    ca_cert_pem: Option<String>,
    /// The client certificate, PEM, for mutual TLS; null without mutual TLS.
    client_cert_pem: Option<String>,
    /// Whether a client key is stored (it is never returned).
    has_client_key: bool,
}

/// The kind of credentials the console presents to a cluster.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ClusterAuthKind {
    /// No credentials: the server allows anonymous clients.
    None,
    /// A user name and password.
    UserPassword,
    /// An authentication token.
    Token,
    /// A user nkey seed (starts with `SU`); the server checks a signature made with it.
    Nkey,
    /// A `.creds` file: JWT plus nkey seed, for servers in decentralized (operator) mode.
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

/// The GraphQL `ConnectionTest` object; the schema's description is the doc comment on its impl.
pub struct ConnectionTest(DomainTest);

/// What a connection test found, as recorded in the cluster's history.
#[Object]
impl ConnectionTest {
    /// Whether the console connected and the server answered.
    async fn ok(&self) -> bool {
        self.0.ok
    }
    /// When the test ran.
    async fn tested_at(&self) -> DateTime<Utc> {
        self.0.tested_at
    }
    /// The nats-server version the server reported; null when it could not be reached.
    async fn server_version(&self) -> Option<&str> {
        self.0.server_version.as_deref()
    }
    /// The name the server reported; null when it could not be reached.
    async fn server_name(&self) -> Option<&str> {
        self.0.server_name.as_deref()
    }
    /// Whether the server has JetStream enabled; null when it could not be reached.
    async fn jetstream(&self) -> Option<bool> {
        self.0.jetstream
    }
    /// Round-trip time of a PING, in milliseconds; null when it did not answer.
    async fn rtt_ms(&self) -> Option<f64> {
        self.0.rtt_micros.map(|us| us as f64 / 1000.0)
    }
    /// JetStream usage and limits of the console's account (null without JetStream).
    async fn account(&self) -> Option<AccountUsage> {
        self.0.account.clone().map(AccountUsage)
    }
    /// Why the test failed, in words an operator can act on (never with secrets); null when
    /// it succeeded.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

/// The GraphQL `AccountUsage` object; the schema's description is the doc comment on its impl.
pub struct AccountUsage(DomainAccountUsage);

/// The JetStream usage of the account the console connects as, against the account's
/// limits. Limits of -1 are unlimited.
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
    /// Number of streams in the account.
    async fn streams(&self) -> u64 {
        self.0.streams
    }
    /// Number of consumers in the account, over all its streams.
    async fn consumers(&self) -> u64 {
        self.0.consumers
    }
    /// Most bytes of memory storage the account may use; -1 is unlimited.
    async fn max_memory(&self) -> i64 {
        self.0.max_memory
    }
    /// Most bytes of file storage the account may use; -1 is unlimited.
    async fn max_storage(&self) -> i64 {
        self.0.max_storage
    }
    /// Most streams the account may have; -1 is unlimited.
    async fn max_streams(&self) -> i64 {
        self.0.max_streams
    }
    /// Most consumers the account may have; -1 is unlimited.
    async fn max_consumers(&self) -> i64 {
        self.0.max_consumers
    }
}

/// What happened to a cluster, in a `ClusterChange`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ClusterChangeKind {
    /// The state when the subscription started (with `includeCurrent`).
    Current,
    /// The cluster was registered (`registerCluster`).
    Registered,
    /// The cluster's settings changed (`updateCluster`).
    Updated,
    /// A connection test ran; its result is `cluster.lastConnectionTest`.
    ConnectionTested,
    /// The console stopped managing the cluster (`removeCluster`).
    Removed,
}

/// A change to a cluster, as the clusters view saw it.
#[derive(SimpleObject)]
pub struct ClusterChange {
    /// What happened.
    kind: ClusterChangeKind,
    /// The id of the cluster that changed.
    cluster_id: ID,
    /// The cluster after the change; absent when it was removed.
    // Boxed: a change waits in every subscriber's stream, which stays small while idle.
    cluster: Option<Box<Cluster>>,
    /// Sequence, in the console's event stream, of the event behind the change (absent for
    /// removals); the same as `cluster.lastSequence`.
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
    /// The kind of credentials; decides which of the other fields are read.
    kind: ClusterAuthKind,
    /// The user name, for `USER_PASSWORD` (required there).
    username: Option<String>,
    /// The password, for `USER_PASSWORD`.
    password: Option<String>,
    /// The token, for `TOKEN`.
    token: Option<String>,
    /// A user nkey seed (starts with `SU`), for `NKEY`; generate one with `nsc` or
    /// `nk -gen user`.
    nkey_seed: Option<String>,
    /// The whole content of a `.creds` file (user JWT and nkey seed), for `CREDENTIALS`.
    credentials: Option<String>,
}

/// TLS settings for reaching a cluster. Left out on register, TLS is not required; given on
/// update, it replaces the stored settings.
#[derive(InputObject, Default)]
pub struct ClusterTlsInput {
    /// Refuse to connect without TLS. Defaults to false.
    #[graphql(default)]
    required: bool,
    /// Start the TLS handshake before the server's INFO, for servers configured with
    /// `handshake_first`. Defaults to false.
    #[graphql(default)]
    handshake_first: bool,
    /// CA certificate(s), PEM, to trust when verifying the server's certificate.
    ca_cert_pem: Option<String>,
    /// Client certificate, PEM, for mutual TLS; give it together with `clientKeyPem`. On
    /// update, a certificate given without a key keeps the stored key.
    client_cert_pem: Option<String>,
    /// PEM private key for mutual TLS; encrypted at rest, never returned.
    client_key_pem: Option<String>,
}

input! {
/// A cluster to register for the console to manage (mutation registerCluster).
RegisterClusterInput {
    /// The organization the cluster belongs to; may be left out when you administer exactly one.
    organization_id: Option<ID>,
    /// A short name, unique among the console's clusters (case-insensitive): at most 64
    /// letters, digits, spaces, `-`, `_` or `.`.
    name: String,
    /// Server URLs, 1 to 32: `nats://host:port`, `tls://`, `ws://`, `wss://`, or a bare
    /// `host:port` (taken as `nats://`). Credentials belong in `auth`, not in a URL.
    urls: Vec<String>,
    /// The credentials the console presents; left out, it connects without any.
    auth: Option<ClusterAuthInput>,
    /// TLS settings; left out, TLS is not required and no client certificate is sent.
    tls: Option<ClusterTlsInput>,
    /// Free-form labels, at most 32 of at most 64 characters each. Defaults to none.
    #[graphql(default)]
    tags: Vec<String>,
    /// A free-form description of at most 1024 characters. Defaults to empty.
    #[graphql(default)]
    description: String,
    /// Seconds between samples of this cluster (1 to 3600); left out, the console's
    /// interval (`--metrics-interval`, 10 s by default).
    metrics_interval: Option<i32>,
    /// Credentials of a user in the cluster's system account. With them every sample is one
    /// `$SYS.REQ.SERVER.PING.JSZ` to all servers (each reporting the streams it leads)
    /// instead of paged stream and consumer lists. Left out, none.
    system_auth: Option<ClusterAuthInput>,
}
}

input! {
/// Changes to a cluster's settings (mutation updateCluster). Fields left out stay as they
/// are.
UpdateClusterInput {
    /// The cluster's id.
    id: ID,
    /// A new name, with the same rules as on register.
    name: Option<String>,
    /// New server URLs, replacing the stored list. Stored secrets only go to the servers
    /// they were given for: changing the URLs needs `auth` (and the TLS client key, if one
    /// is set) again.
    urls: Option<Vec<String>>,
    /// New credentials. A secret left out keeps the stored one when the kind does not change.
    auth: Option<ClusterAuthInput>,
    /// New TLS settings, replacing the stored ones.
    tls: Option<ClusterTlsInput>,
    /// New labels, replacing the stored ones.
    tags: Option<Vec<String>>,
    /// A new description.
    description: Option<String>,
    /// A new sampling interval in seconds (1 to 3600); 0 goes back to the console's.
    metrics_interval: Option<i32>,
    /// New system-account credentials, with the same rules as `auth` (a secret left out
    /// keeps the stored one); kind `NONE` removes them.
    system_auth: Option<ClusterAuthInput>,
}
}

/// Seals a given secret; a left-out one becomes "keep the stored one" on update (the
/// aggregate resolves it under its lock) and an error on register.
fn secret(c: &Console, input: &str, field: &str, given: Option<String>, updating: bool) -> ApiResult<Sealed> {
    match given {
        Some(v) if !v.is_empty() => Ok(c.seal(&v)),
        _ if updating => Ok(Sealed::keep()),
        _ => Err(ApiError::validation(format!(
            "{input}.{field}: required for this kind of auth"
        ))),
    }
}

/// A sampling interval as given (the domain checks its range; 0 on update resets it).
fn interval(secs: i32) -> ApiResult<u32> {
    u32::try_from(secs).map_err(|_| {
        ApiError::validation(format!(
            "metricsInterval: {secs} is out of range: sample every 1 to 3600 seconds"
        ))
    })
}

impl ClusterAuthInput {
    /// Seals the secrets. On update (`updating`), a secret left out keeps the stored one
    /// if the kind does not change.
    /// `input` names the field it was given in (`auth`, `systemAuth`) for error messages.
    fn into_domain(self, secrets: &Console, input: &str, updating: bool) -> ApiResult<ClusterAuth> {
        Ok(match self.kind {
            ClusterAuthKind::None => ClusterAuth::None,
            ClusterAuthKind::UserPassword => ClusterAuth::UserPassword {
                username: self.username.unwrap_or_default(),
                password: secret(secrets, input, "password", self.password, updating)?,
            },
            ClusterAuthKind::Token => ClusterAuth::Token {
                token: secret(secrets, input, "token", self.token, updating)?,
            },
            ClusterAuthKind::Nkey => {
                let given = self.nkey_seed.map(|s| s.trim().to_string());
                if let Some(s) = &given
                    && !(s.starts_with("SU") && s.len() > 50)
                {
                    return Err(ApiError::validation(format!(
                        "{input}.nkeySeed: not a user nkey seed (it starts with SU); generate one with `nsc` or `nk -gen user`"
                    )));
                }
                ClusterAuth::Nkey {
                    seed: secret(secrets, input, "nkeySeed", given, updating)?,
                }
            }
            ClusterAuthKind::Credentials => {
                if let Some(c) = &self.credentials
                    && !c.contains("-----BEGIN NATS USER JWT-----")
                {
                    return Err(ApiError::validation(format!(
                        "{input}.credentials: not the content of a NATS .creds file (it must hold a USER JWT and an NKEY seed)"
                    )));
                }
                ClusterAuth::Credentials {
                    creds: secret(secrets, input, "credentials", self.credentials, updating)?,
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
            // An empty certificate is refused, not taken for none: leaving it out is none.
            ca_cert_pem: self.ca_cert_pem,
            client_cert_pem: self.client_cert_pem,
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
    /// The managed clusters the caller has a role on (viewer and up), by name. Filter by a
    /// tag, by part of the name (case-insensitive), or by organization; one page. Errors:
    /// `UNAUTHENTICATED`; `VALIDATION` for a bad cursor or page size.
    #[graphql(complexity = "crate::connection::per_item(first, last, child_complexity)")]
    async fn clusters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only clusters with this tag (exact match).")] tag: Option<String>,
        #[graphql(desc = "Only clusters whose name has this text (case-insensitive).")] name_contains: Option<String>,
        #[graphql(desc = "Only clusters of this organization.")] organization_id: Option<ID>,
        #[graphql(
            desc = "The first `first` clusters (after `after`): 0 to 500; the first 50 when neither `first` nor `last` is given."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Only clusters after this cursor (an `endCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        after: Option<String>,
        #[graphql(desc = "The last `last` clusters (before `before`): 0 to 500.")] last: Option<i32>,
        #[graphql(
            desc = "Only clusters before this cursor (a `startCursor` or edge `cursor` of this list; `VALIDATION` otherwise)."
        )]
        before: Option<String>,
    ) -> Result<ClusterConnection> {
        let filter = ClusterFilter {
            tag,
            name_contains,
            organization_id: organization_id.map(|o| o.0),
        };
        let page = console(ctx).clusters(&caller(ctx)?, filter, &paging(first, after, last, before))?;
        Ok(ClusterConnection::new(page, Cluster))
    }

    /// One cluster by id, for a viewer of it; `NOT_FOUND` when there is none or the caller
    /// has no role on it.
    async fn cluster(&self, ctx: &Context<'_>, #[graphql(desc = "The cluster's id.")] id: ID) -> Result<Cluster> {
        Ok(Cluster(console(ctx).cluster(&caller(ctx)?, &id)?))
    }
}

#[derive(Default)]
pub struct ClusterMutation;

#[Object]
impl ClusterMutation {
    /// Registers a NATS cluster for the console to manage; needs the admin role in the
    /// organization. Errors: `VALIDATION`
    /// (a bad field, a name in use), `FORBIDDEN`, `NOT_FOUND` (organization), `UNAVAILABLE`.
    async fn register_cluster(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cluster to register.")] input: RegisterClusterInput,
    ) -> Result<RegisterClusterPayload> {
        let c = console(ctx);
        let caller = caller(ctx)?;
        let spec = ClusterSpec {
            name: input.name,
            urls: input.urls,
            auth: match input.auth {
                Some(a) => a.into_domain(c, "auth", false)?,
                None => ClusterAuth::None,
            },
            tls: input.tls.unwrap_or_default().into_domain(c, false),
            tags: input.tags,
            description: input.description,
            metrics_interval_secs: input.metrics_interval.map(interval).transpose()?,
            system_auth: match input.system_auth {
                Some(a) => a.into_domain(c, "systemAuth", false)?,
                None => ClusterAuth::None,
            },
        };
        let org = input.organization_id.map(|o| o.0);
        let cluster = c.register_cluster(&caller, org, spec).await?;
        Ok(RegisterClusterPayload {
            cluster: Cluster(cluster),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Changes a cluster's settings; fields left out stay as they are. Needs the admin role
    /// on the cluster. Errors: `VALIDATION`, `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` (a
    /// concurrent change), `UNAVAILABLE`.
    async fn update_cluster(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cluster and the settings to change.")] input: UpdateClusterInput,
    ) -> Result<UpdateClusterPayload> {
        let c = console(ctx);
        let caller = caller(ctx)?;
        let changes = ClusterChanges {
            name: input.name,
            urls: input.urls,
            auth: input.auth.map(|a| a.into_domain(c, "auth", true)).transpose()?,
            tls: input.tls.map(|t| t.into_domain(c, true)),
            tags: input.tags,
            description: input.description,
            metrics_interval_secs: input.metrics_interval.map(interval).transpose()?,
            system_auth: input
                .system_auth
                .map(|a| a.into_domain(c, "systemAuth", true))
                .transpose()?,
        };
        let cluster = c.update_cluster(&caller, &input.id, changes).await?;
        Ok(UpdateClusterPayload {
            cluster: Cluster(cluster),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Stops managing a cluster (the cluster itself, its streams and consumers are not
    /// touched) and forgets its credentials. Needs the admin role on the cluster. Errors:
    /// `NOT_FOUND`, `FORBIDDEN`, `CONFLICT`, `UNAVAILABLE`.
    async fn remove_cluster(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cluster to stop managing.")] input: RemoveClusterInput,
    ) -> Result<RemoveClusterPayload> {
        let caller = caller(ctx)?;
        console(ctx).remove_cluster(&caller, &input.id).await?;
        Ok(RemoveClusterPayload {
            cluster_id: input.id,
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }

    /// Connects to the cluster and reports what it found; the result is recorded in the
    /// cluster's history. Needs the operator role on the cluster. An unreachable cluster is
    /// an `UNAVAILABLE` error saying why (the failed attempt is recorded all the same);
    /// other errors: `NOT_FOUND`, `FORBIDDEN`.
    async fn test_cluster_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cluster to connect to.")] input: TestClusterConnectionInput,
    ) -> Result<TestClusterConnectionPayload> {
        let caller = caller(ctx)?;
        let test = console(ctx).test_cluster_connection(&caller, &input.id).await?;
        Ok(TestClusterConnectionPayload {
            test: ConnectionTest(test),
            outcome: Outcome::of(&caller.meta, input.client_mutation_id),
        })
    }
}

payload! {
    /// What mutation registerCluster answers.
    RegisterClusterPayload {
        /// The cluster as registered.
        cluster: Cluster,
    }
}

payload! {
    /// What mutation updateCluster answers.
    UpdateClusterPayload {
        /// The cluster with its new settings.
        cluster: Cluster,
    }
}

input! {
    /// Stops managing a cluster (mutation removeCluster).
    RemoveClusterInput {
        /// The cluster's id.
        id: ID,
    }
}

payload! {
    /// What mutation removeCluster answers.
    RemoveClusterPayload {
        /// The id of the cluster the console no longer manages.
        cluster_id: ID,
    }
}

input! {
    /// Tests the connection to a cluster (mutation testClusterConnection).
    TestClusterConnectionInput {
        /// The cluster's id.
        id: ID,
    }
}

payload! {
    /// What mutation testClusterConnection answers.
    TestClusterConnectionPayload {
        /// What the console found when it connected.
        test: ConnectionTest,
    }
}

#[derive(Default)]
pub struct ClusterSubscription;

#[Subscription]
impl ClusterSubscription {
    /// Every change to a cluster the caller can see (or to the one with `id`), as the
    /// clusters view applies it. With `includeCurrent`, the matching clusters are sent first
    /// as `CURRENT`, so a client needs no separate query and misses nothing in between (a
    /// change may arrive twice). Ends with `UNAUTHENTICATED` when the caller's credential
    /// does; `VALIDATION` when the connection has too many subscriptions open.
    async fn cluster_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only changes to this cluster; left out, changes to every cluster the caller can see.")]
        id: Option<ID>,
        #[graphql(
            default,
            desc = "Send the matching clusters as they are now, as `CURRENT`, before any change. Defaults to false."
        )]
        include_current: bool,
    ) -> Result<impl Stream<Item = Result<ClusterChange>> + use<>> {
        let c = console(ctx).clone();
        let caller = caller(ctx)?;
        let p = caller.principal.clone();
        // Subscribe before taking the snapshot: a change in between is sent twice, never lost.
        let changes = c.cluster_changes();
        let only = id.map(|i| i.0);
        let current: Vec<ClusterChange> = if include_current {
            c.visible_clusters(&caller, ClusterFilter::default())
                .into_iter()
                .filter(|v| only.as_ref().is_none_or(|o| o == &v.view.id))
                .map(|v| ClusterChange {
                    kind: ClusterChangeKind::Current,
                    cluster_id: ID(v.view.id.clone()),
                    sequence: Some(v.last_sequence),
                    cluster: Some(Box::new(Cluster(v))),
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
                            cluster: Some(Box::new(Cluster(std::sync::Arc::unwrap_or_clone(value)))),
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
