//! The managed-cluster aggregate: a NATS cluster the console knows how to reach.
//!
//! One aggregate per cluster, id chosen by the caller (a UUID, or `local` for the embedded
//! server). Credentials only ever appear as [`Sealed`] values.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{DomainError, ErrorKind, Sealed};

pub const MAX_NAME_LEN: usize = 64;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_LEN: usize = 64;
pub const MAX_URLS: usize = 32;

/// How the console authenticates to a managed cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClusterAuth {
    #[default]
    None,
    UserPassword {
        username: String,
        password: Sealed,
    },
    Token {
        token: Sealed,
    },
    Nkey {
        seed: Sealed,
    },
    /// The content of a `.creds` file (JWT and nkey seed).
    Credentials {
        creds: Sealed,
    },
}

impl ClusterAuth {
    pub fn is_none(&self) -> bool {
        matches!(self, Self::None)
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UserPassword { .. } => "user_password",
            Self::Token { .. } => "token",
            Self::Nkey { .. } => "nkey",
            Self::Credentials { .. } => "credentials",
        }
    }
}

/// TLS settings for reaching a managed cluster. PEM certificates are public; the client
/// key is a secret and is sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsOptions {
    /// Refuse to connect without TLS.
    #[serde(default)]
    pub required: bool,
    /// Perform the TLS handshake before the server's INFO (servers with `handshake_first`).
    #[serde(default)]
    pub handshake_first: bool,
    /// CA certificate(s), PEM, to verify the server with instead of the system roots.
    #[serde(default)]
    pub ca_cert_pem: Option<String>,
    /// Client certificate, PEM, for mutual TLS.
    #[serde(default)]
    pub client_cert_pem: Option<String>,
    /// Client private key, sealed, for mutual TLS.
    #[serde(default)]
    pub client_key: Option<Sealed>,
}

/// Everything that describes how to reach and label a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterSpec {
    pub name: String,
    pub urls: Vec<String>,
    #[serde(default)]
    pub auth: ClusterAuth,
    #[serde(default)]
    pub tls: TlsOptions,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// How often the console samples this cluster, in seconds; `None`: the console's
    /// interval (`--metrics-interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_interval_secs: Option<u32>,
    /// Credentials of a user of the cluster's system account: with them the collector reads
    /// every server's JetStream report (`$SYS.REQ.SERVER.PING.JSZ`) instead of listing
    /// streams and consumers. `None` (the default): no system account.
    #[serde(default, skip_serializing_if = "ClusterAuth::is_none")]
    pub system_auth: ClusterAuth,
}

/// The shortest and longest sampling interval a cluster may have, in seconds.
pub const METRICS_INTERVAL_SECS: std::ops::RangeInclusive<u32> = 1..=3600;

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ClusterAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new sampling interval in seconds; 0 goes back to the console's interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_interval_secs: Option<u32>,
    /// New system-account credentials; `ClusterAuth::None` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_auth: Option<ClusterAuth>,
}

impl ClusterChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Applies the changes to a spec.
    pub fn apply_to(&self, spec: &mut ClusterSpec) {
        if let Some(v) = &self.name {
            spec.name = v.clone();
        }
        if let Some(v) = &self.urls {
            spec.urls = v.clone();
        }
        if let Some(v) = &self.auth {
            spec.auth = v.clone();
        }
        if let Some(v) = &self.tls {
            spec.tls = v.clone();
        }
        if let Some(v) = &self.tags {
            spec.tags = v.clone();
        }
        if let Some(v) = &self.description {
            spec.description = v.clone();
        }
        if let Some(v) = self.metrics_interval_secs {
            spec.metrics_interval_secs = (v > 0).then_some(v);
        }
        if let Some(v) = &self.system_auth {
            spec.system_auth = v.clone();
        }
    }

    /// Keeps only the fields that differ from `spec`, so an event records real changes.
    fn without_noops(mut self, spec: &ClusterSpec) -> Self {
        if self.name.as_ref() == Some(&spec.name) {
            self.name = None;
        }
        if self.urls.as_ref() == Some(&spec.urls) {
            self.urls = None;
        }
        if self.auth.as_ref() == Some(&spec.auth) {
            self.auth = None;
        }
        if self.tls.as_ref() == Some(&spec.tls) {
            self.tls = None;
        }
        if self.tags.as_ref() == Some(&spec.tags) {
            self.tags = None;
        }
        if self.description.as_ref() == Some(&spec.description) {
            self.description = None;
        }
        if self.metrics_interval_secs.map(|v| (v > 0).then_some(v)) == Some(spec.metrics_interval_secs) {
            self.metrics_interval_secs = None;
        }
        if self.system_auth.as_ref() == Some(&spec.system_auth) {
            self.system_auth = None;
        }
        self
    }
}

/// JetStream account usage and limits as reported by a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccountUsage {
    pub memory: u64,
    pub storage: u64,
    pub streams: u64,
    pub consumers: u64,
    /// Limits; -1 means unlimited.
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
}

/// The outcome of probing a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub ok: bool,
    pub tested_at: DateTime<Utc>,
    #[serde(default)]
    pub server_version: Option<String>,
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default)]
    pub jetstream: Option<bool>,
    #[serde(default)]
    pub rtt_micros: Option<u64>,
    #[serde(default)]
    pub account: Option<AccountUsage>,
    /// Why the probe failed, in words an operator can act on. Never contains secrets.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterCommand {
    Register {
        id: String,
        organization: String,
        spec: ClusterSpec,
    },
    Update {
        changes: ClusterChanges,
    },
    TestConnection,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterEvent {
    Registered {
        id: String,
        /// The organization the cluster belongs to (events from before organizations existed: the default one).
        #[serde(default = "default_organization")]
        organization: String,
        spec: ClusterSpec,
    },
    Updated {
        changes: ClusterChanges,
    },
    ConnectionTested {
        result: ConnectionTest,
    },
    Removed {
        name: String,
    },
}

impl DomainEvent for ClusterEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "ClusterRegistered",
            Self::Updated { .. } => "ClusterUpdated",
            Self::ConnectionTested { .. } => "ClusterConnectionTested",
            Self::Removed { .. } => "ClusterRemoved",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("name: a cluster named '{0}' already exists; choose another name or update that cluster")]
    NameInUse(String),
    #[error("cluster not found; list clusters to see the ids that exist")]
    NotFound,
    #[error("cluster id '{0}' is already registered; update it instead")]
    AlreadyRegistered(String),
    #[error("{0}")]
    Unavailable(String),
}

impl DomainError for ClusterError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } | Self::NameInUse(_) => ErrorKind::Validation,
            Self::NotFound => ErrorKind::NotFound,
            Self::AlreadyRegistered(_) => ErrorKind::Conflict,
            Self::Unavailable(_) => ErrorKind::Unavailable,
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ClusterError {
    ClusterError::Invalid {
        field,
        message: message.into(),
    }
}

/// Side effects the cluster aggregate needs, implemented outside the domain.
#[async_trait]
pub trait ClusterServices: Send + Sync {
    /// Whether another live cluster of `organization` (not `except_id`) already uses `name`
    /// (case-insensitive). Names are unique within an organization only: a clash must not
    /// reveal another organization's clusters.
    async fn name_in_use(&self, organization: &str, name: &str, except_id: &str) -> Result<bool, String>;
    /// Connects to the cluster described by `spec` and reports what it found.
    async fn probe(&self, spec: &ClusterSpec) -> ConnectionTest;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cluster {
    pub id: String,
    pub organization: String,
    pub registered: bool,
    pub removed: bool,
    pub spec: ClusterSpec,
    pub last_test: Option<ConnectionTest>,
}

impl Cluster {
    /// The keys a live cluster holds alone: its name within its organization, compared
    /// without ASCII case. The write side enforces them (a claim committed with the events).
    pub fn unique_keys(&self) -> Vec<String> {
        if self.live().is_ok() {
            vec![format!(
                "cluster-name/{}/{}",
                self.organization,
                self.spec.name.to_ascii_lowercase()
            )]
        } else {
            Vec::new()
        }
    }

    /// The refusal when another cluster holds one of [`Self::unique_keys`].
    pub fn key_taken(&self, _key: &str) -> ClusterError {
        ClusterError::NameInUse(self.spec.name.clone())
    }

    fn live(&self) -> Result<(), ClusterError> {
        if self.registered && !self.removed {
            Ok(())
        } else {
            Err(ClusterError::NotFound)
        }
    }
}

impl Aggregate for Cluster {
    const TYPE: &'static str = "cluster";
    type Command = ClusterCommand;
    type Event = ClusterEvent;
    type Error = ClusterError;
    type Services = Arc<dyn ClusterServices>;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ClusterCommand::Register { id, organization, spec } => {
                if self.registered {
                    return Err(ClusterError::AlreadyRegistered(id));
                }
                let spec = normalize_spec(spec)?;
                ensure_name_free(services, &organization, &spec.name, &id).await?;
                sink.write(ClusterEvent::Registered { id, organization, spec }, self)
                    .await;
            }
            ClusterCommand::Update { mut changes } => {
                self.live()?;
                // Stored secrets go only to the servers they were given for.
                let auth_kept = changes.auth.as_ref().is_none_or(auth_secret_is_keep);
                let system_kept = changes.system_auth.as_ref().is_none_or(auth_secret_is_keep);
                let key_kept = changes
                    .tls
                    .as_ref()
                    .is_none_or(|t| t.client_key.as_ref().is_some_and(Sealed::is_keep));
                if let Some(auth) = changes.auth.take() {
                    changes.auth = Some(keep_auth_secret(auth, &self.spec.auth, AuthField::Auth)?);
                }
                if let Some(auth) = changes.system_auth.take() {
                    changes.system_auth = Some(keep_auth_secret(auth, &self.spec.system_auth, AuthField::System)?);
                }
                if let Some(tls) = changes.tls.as_mut()
                    && tls.client_key.as_ref().is_some_and(Sealed::is_keep)
                {
                    tls.client_key = self.spec.tls.client_key.clone();
                }
                let changes = normalize_changes(changes)?.without_noops(&self.spec);
                if changes.is_empty() {
                    return Ok(());
                }
                if changes.urls.is_some()
                    && ((auth_kept && self.spec.auth != ClusterAuth::None)
                        || (system_kept && self.spec.system_auth != ClusterAuth::None)
                        || (key_kept && self.spec.tls.client_key.is_some()))
                {
                    return Err(invalid(
                        "urls",
                        "changing where the console connects needs the credentials again (auth, systemAuth \
                         and the TLS client key, those that are set): stored secrets are only ever sent to the servers they were given for",
                    ));
                }
                if let Some(name) = &changes.name {
                    ensure_name_free(services, &self.organization, name, &self.id).await?;
                }
                sink.write(ClusterEvent::Updated { changes }, self).await;
            }
            ClusterCommand::TestConnection => {
                self.live()?;
                let result = services.probe(&self.spec).await;
                sink.write(ClusterEvent::ConnectionTested { result }, self).await;
            }
            ClusterCommand::Remove => {
                self.live()?;
                let name = self.spec.name.clone();
                sink.write(ClusterEvent::Removed { name }, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ClusterEvent::Registered { id, organization, spec } => {
                self.id = id;
                self.organization = organization;
                self.registered = true;
                self.spec = spec;
            }
            ClusterEvent::Updated { changes } => changes.apply_to(&mut self.spec),
            ClusterEvent::ConnectionTested { result } => self.last_test = Some(result),
            ClusterEvent::Removed { .. } => self.removed = true,
        }
    }
}

fn default_organization() -> String {
    crate::identity::DEFAULT_ORGANIZATION.to_string()
}

/// Whether an auth in an update keeps the stored secret.
fn auth_secret_is_keep(auth: &ClusterAuth) -> bool {
    match auth {
        ClusterAuth::None => false,
        ClusterAuth::UserPassword { password, .. } => password.is_keep(),
        ClusterAuth::Token { token } => token.is_keep(),
        ClusterAuth::Nkey { seed } => seed.is_keep(),
        ClusterAuth::Credentials { creds } => creds.is_keep(),
    }
}

/// Which credentials of a cluster: the ones it is reached with, or its system account's.
#[derive(Clone, Copy)]
enum AuthField {
    Auth,
    System,
}

impl AuthField {
    /// The input field names: the whole, then username, password, token, nkeySeed, credentials.
    fn names(self) -> [&'static str; 6] {
        match self {
            Self::Auth => [
                "auth",
                "auth.username",
                "auth.password",
                "auth.token",
                "auth.nkeySeed",
                "auth.credentials",
            ],
            Self::System => [
                "systemAuth",
                "systemAuth.username",
                "systemAuth.password",
                "systemAuth.token",
                "systemAuth.nkeySeed",
                "systemAuth.credentials",
            ],
        }
    }
}

/// Replaces a "keep" secret with the stored one, which must be of the same kind.
fn keep_auth_secret(auth: ClusterAuth, current: &ClusterAuth, field: AuthField) -> Result<ClusterAuth, ClusterError> {
    let missing = |field: &'static str| invalid(field, "required: the stored one is for another kind of auth");
    let [_, _, password_f, token_f, nkey_f, creds_f] = field.names();
    Ok(match (auth, current) {
        (ClusterAuth::UserPassword { username, password }, ClusterAuth::UserPassword { password: old, .. })
            if password.is_keep() =>
        {
            ClusterAuth::UserPassword {
                username,
                password: old.clone(),
            }
        }
        (ClusterAuth::Token { token }, ClusterAuth::Token { token: old }) if token.is_keep() => {
            ClusterAuth::Token { token: old.clone() }
        }
        (ClusterAuth::Nkey { seed }, ClusterAuth::Nkey { seed: old }) if seed.is_keep() => {
            ClusterAuth::Nkey { seed: old.clone() }
        }
        (ClusterAuth::Credentials { creds }, ClusterAuth::Credentials { creds: old }) if creds.is_keep() => {
            ClusterAuth::Credentials { creds: old.clone() }
        }
        (ClusterAuth::UserPassword { password, .. }, _) if password.is_keep() => return Err(missing(password_f)),
        (ClusterAuth::Token { token }, _) if token.is_keep() => return Err(missing(token_f)),
        (ClusterAuth::Nkey { seed }, _) if seed.is_keep() => return Err(missing(nkey_f)),
        (ClusterAuth::Credentials { creds }, _) if creds.is_keep() => return Err(missing(creds_f)),
        (other, _) => other,
    })
}

async fn ensure_name_free(
    services: &Arc<dyn ClusterServices>,
    organization: &str,
    name: &str,
    id: &str,
) -> Result<(), ClusterError> {
    match services.name_in_use(organization, name, id).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(ClusterError::NameInUse(name.to_string())),
        Err(e) => Err(ClusterError::Unavailable(format!(
            "could not check whether the name is free ({e}); retry in a moment"
        ))),
    }
}

/// Validates a whole spec and returns it in canonical form (trimmed, URLs normalized,
/// tags deduplicated and sorted).
pub fn normalize_spec(spec: ClusterSpec) -> Result<ClusterSpec, ClusterError> {
    Ok(ClusterSpec {
        name: normalize_name(&spec.name)?,
        urls: normalize_urls(&spec.urls)?,
        auth: validate_auth(spec.auth, AuthField::Auth)?,
        tls: validate_tls(spec.tls)?,
        tags: normalize_tags(&spec.tags)?,
        description: normalize_description(&spec.description)?,
        metrics_interval_secs: spec.metrics_interval_secs.map(validate_interval).transpose()?,
        system_auth: validate_auth(spec.system_auth, AuthField::System)?,
    })
}

fn normalize_changes(c: ClusterChanges) -> Result<ClusterChanges, ClusterError> {
    Ok(ClusterChanges {
        name: c.name.as_deref().map(normalize_name).transpose()?,
        urls: c.urls.as_deref().map(normalize_urls).transpose()?,
        auth: c.auth.map(|a| validate_auth(a, AuthField::Auth)).transpose()?,
        tls: c.tls.map(validate_tls).transpose()?,
        tags: c.tags.as_deref().map(normalize_tags).transpose()?,
        description: c.description.as_deref().map(normalize_description).transpose()?,
        // 0 goes back to the console's interval.
        metrics_interval_secs: c
            .metrics_interval_secs
            .map(|v| if v == 0 { Ok(0) } else { validate_interval(v) })
            .transpose()?,
        system_auth: c.system_auth.map(|a| validate_auth(a, AuthField::System)).transpose()?,
    })
}

fn validate_interval(secs: u32) -> Result<u32, ClusterError> {
    if METRICS_INTERVAL_SECS.contains(&secs) {
        Ok(secs)
    } else {
        Err(invalid(
            "metricsInterval",
            format!(
                "{secs} s is out of range: sample every {} to {} seconds",
                METRICS_INTERVAL_SECS.start(),
                METRICS_INTERVAL_SECS.end()
            ),
        ))
    }
}

pub fn normalize_name(name: &str) -> Result<String, ClusterError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(
            "name",
            "must not be empty; give the cluster a short name such as 'prod-eu'",
        ));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(invalid("name", format!("must be at most {MAX_NAME_LEN} characters")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ')))
    {
        return Err(invalid(
            "name",
            format!("contains '{c}'; use letters, digits, spaces, '-', '_' or '.'"),
        ));
    }
    Ok(name.to_string())
}

/// Accepts `nats://`, `tls://`, `ws://`, `wss://` URLs or a bare `host:port` (taken as
/// `nats://`). Credentials in a URL are refused: they belong in `auth`, where they are sealed.
pub fn normalize_urls(urls: &[String]) -> Result<Vec<String>, ClusterError> {
    if urls.is_empty() {
        return Err(invalid(
            "urls",
            "give at least one server URL, such as nats://127.0.0.1:4222",
        ));
    }
    if urls.len() > MAX_URLS {
        return Err(invalid("urls", format!("at most {MAX_URLS} URLs")));
    }
    let mut out = Vec::with_capacity(urls.len());
    for raw in urls {
        let trimmed = raw.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("nats://{trimmed}")
        };
        let bad = |why: &str| invalid("urls", format!("'{trimmed}' is not a valid server URL: {why}"));
        let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "nats" | "tls" | "ws" | "wss") {
            return Err(bad("the scheme must be nats, tls, ws or wss"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "urls",
                "remove the credentials from the URL and give them in `auth`, where they are stored encrypted",
            ));
        }
        let mut s = url.to_string();
        if s.ends_with('/') && url.path() == "/" {
            s.pop();
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn validate_auth(auth: ClusterAuth, field: AuthField) -> Result<ClusterAuth, ClusterError> {
    let [whole, username_f, ..] = field.names();
    let kept = match &auth {
        ClusterAuth::UserPassword { password: s, .. }
        | ClusterAuth::Token { token: s }
        | ClusterAuth::Nkey { seed: s }
        | ClusterAuth::Credentials { creds: s } => s.is_keep(),
        ClusterAuth::None => false,
    };
    if kept {
        return Err(invalid(whole, "a secret is required: there is no stored one to keep"));
    }
    match auth {
        ClusterAuth::UserPassword { username, password } => {
            let username = username.trim().to_string();
            if username.is_empty() {
                return Err(invalid(username_f, "must not be empty for user/password auth"));
            }
            Ok(ClusterAuth::UserPassword { username, password })
        }
        other => Ok(other),
    }
}

fn validate_tls(tls: TlsOptions) -> Result<TlsOptions, ClusterError> {
    for (field, pem) in [
        ("tls.caCertPem", &tls.ca_cert_pem),
        ("tls.clientCertPem", &tls.client_cert_pem),
    ] {
        if let Some(pem) = pem {
            check_certificates_pem(pem).map_err(|m| invalid(field, m))?;
        }
    }
    if tls.client_cert_pem.is_some() != tls.client_key.is_some() {
        return Err(invalid(
            "tls",
            "give both the client certificate and the client key for mutual TLS, or neither",
        ));
    }
    Ok(tls)
}

/// One or more certificates in PEM: every block a `CERTIFICATE` whose body is base64 of a
/// DER sequence. A key, a request, a file path or a truncated paste is refused here, with
/// what to send, rather than when the console first connects.
fn check_certificates_pem(pem: &str) -> Result<(), String> {
    use base64::Engine;
    const WANT: &str =
        "send the certificate itself, PEM-encoded (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)";
    let mut rest = pem.trim();
    if rest.is_empty() {
        return Err(format!("must not be empty; {WANT}, or leave the field out"));
    }
    let mut blocks = 0;
    while !rest.is_empty() {
        let Some(after_begin) = rest.strip_prefix("-----BEGIN ") else {
            return Err(format!("is not PEM: text outside a -----BEGIN/-----END block; {WANT}"));
        };
        let Some((label, after_label)) = after_begin.split_once("-----") else {
            return Err(format!("is not PEM: a -----BEGIN line is not closed; {WANT}"));
        };
        if label != "CERTIFICATE" {
            return Err(format!("holds a {label}, not a CERTIFICATE; {WANT}"));
        }
        let end = "-----END CERTIFICATE-----";
        let Some((body, after)) = after_label.split_once(end) else {
            return Err(format!("is not PEM: a certificate has no {end} line; {WANT}"));
        };
        let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .map_err(|_| format!("is not PEM: a certificate's body is not base64; {WANT}"))?;
        if !is_one_der_sequence(&der) {
            return Err(format!(
                "is not a certificate: a block's content is cut short or is not DER; {WANT}"
            ));
        }
        blocks += 1;
        rest = after.trim_start();
    }
    debug_assert!(blocks > 0);
    Ok(())
}

/// Whether `der` is exactly one DER SEQUENCE (what a certificate is): its length field
/// accounts for every byte, so a paste cut short is caught.
fn is_one_der_sequence(der: &[u8]) -> bool {
    let (Some(&0x30), Some(&first)) = (der.first(), der.get(1)) else {
        return false;
    };
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || der.len() < 2 + n {
            return false;
        }
        (
            der[2..2 + n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            2 + n,
        )
    };
    len > 0 && header + len == der.len()
}

fn normalize_tags(tags: &[String]) -> Result<Vec<String>, ClusterError> {
    let mut set = BTreeSet::new();
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty() {
            return Err(invalid("tags", "a tag must not be empty"));
        }
        if tag.chars().count() > MAX_TAG_LEN {
            return Err(invalid(
                "tags",
                format!("a tag must be at most {MAX_TAG_LEN} characters"),
            ));
        }
        crate::names::check_text("the tag", tag).map_err(|m| invalid("tags", m))?;
        set.insert(tag.to_string());
    }
    if set.len() > MAX_TAGS {
        return Err(invalid("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(set.into_iter().collect())
}

fn normalize_description(d: &str) -> Result<String, ClusterError> {
    let d = d.trim();
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(d.to_string())
}
