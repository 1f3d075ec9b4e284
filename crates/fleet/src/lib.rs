//! The managed clusters, seen from the console: connecting with sealed credentials,
//! probing (version, JetStream, account usage, RTT), admin calls, and running nats-server
//! children.
#![forbid(unsafe_code)]

pub mod admin;
pub mod embedded;
pub mod pool;

use std::time::{Duration, Instant};

pub use admin::Admin;
use async_nats::ConnectOptions;
use chrono::Utc;
use jsc_domain::cluster::{AccountUsage, ClusterAuth, ClusterSpec, ConnectionTest};
pub use jsc_secrets::SecretBox;
pub use pool::Pool;

/// The client name of every connection the console opens to a managed cluster. JetStream
/// API audit advisories carry it, which is how the console tells its own changes from
/// changes made outside it.
pub const CLIENT_NAME: &str = "jsconsole";

/// Why a managed cluster could not be used, in words an operator can act on.
/// Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not reach {urls}: {reason}; check that the server runs and the URL and port are right")]
    Unreachable { urls: String, reason: String },
    #[error("{urls} refused the credentials ({reason}); check the cluster's auth settings")]
    Refused { urls: String, reason: String },
    #[error("TLS to {urls} failed: {reason}; check the TLS settings and certificates")]
    Tls { urls: String, reason: String },
    #[error("{0}")]
    Credentials(String),
    #[error("{0}")]
    Secret(#[from] jsc_secrets::Error),
}

/// A connection to a managed cluster and the certificate files it reconnects with.
pub struct Connection {
    pub client: async_nats::Client,
    _files: tempfile::TempDir,
}

/// Connects to managed clusters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Fleet {
    secrets: SecretBox,
    connect_timeout: Duration,
}

impl Fleet {
    pub fn new(secrets: SecretBox) -> Self {
        Self {
            secrets,
            connect_timeout: Duration::from_secs(3),
        }
    }

    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.secrets
    }

    /// Opens a connection to the cluster described by `spec`. Fails within the connect
    /// timeout when no server answers; never retries in the background.
    pub async fn connect(&self, spec: &ClusterSpec) -> Result<async_nats::Client, Error> {
        Ok(self.connect_with(spec, false).await?.client)
    }

    /// Like [`Fleet::connect`]; a `persistent` connection reconnects on its own forever
    /// after the first successful connect (the pool's connections), a probe's never does.
    pub async fn connect_with(&self, spec: &ClusterSpec, persistent: bool) -> Result<Connection, Error> {
        let urls = spec.urls.join(", ");
        // Certificates are handed to the client as files, which it reads again on every
        // reconnect: they live as long as the connection (in a private temporary dir).
        let tmp =
            tempfile::tempdir().map_err(|e| Error::Credentials(format!("cannot create a temporary directory: {e}")))?;
        let mut opts = self.options(spec, tmp.path())?;
        opts = opts
            .name(CLIENT_NAME)
            .connection_timeout(self.connect_timeout)
            // Admin calls set their own deadline (`admin::API_TIMEOUT`); a probe answers fast or not at all.
            .request_timeout(if persistent { None } else { Some(self.connect_timeout) })
            .max_reconnects(if persistent { None } else { Some(0) });
        let addrs: Vec<async_nats::ServerAddr> = spec
            .urls
            .iter()
            .map(|u| u.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: std::io::Error| Error::Unreachable {
                urls: urls.clone(),
                reason: format!("bad URL: {e}"),
            })?;
        let connect = opts.connect(addrs);
        let client = tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), connect)
            .await
            .map_err(|_| Error::Unreachable {
                urls: urls.clone(),
                reason: format!("no answer within {:?}", self.connect_timeout),
            })?
            .map_err(|e| {
                use async_nats::ConnectErrorKind as K;
                let reason = e.to_string();
                match e.kind() {
                    K::Authentication | K::AuthorizationViolation => Error::Refused {
                        urls: urls.clone(),
                        reason,
                    },
                    K::Tls => Error::Tls {
                        urls: urls.clone(),
                        reason,
                    },
                    _ => Error::Unreachable {
                        urls: urls.clone(),
                        reason,
                    },
                }
            })?;
        Ok(Connection { client, _files: tmp })
    }

    fn options(&self, spec: &ClusterSpec, tmp: &std::path::Path) -> Result<ConnectOptions, Error> {
        let mut opts = match &spec.auth {
            ClusterAuth::None => ConnectOptions::new(),
            ClusterAuth::UserPassword { username, password } => {
                ConnectOptions::with_user_and_password(username.clone(), self.secrets.unseal(password)?)
            }
            ClusterAuth::Token { token } => ConnectOptions::with_token(self.secrets.unseal(token)?),
            ClusterAuth::Nkey { seed } => ConnectOptions::with_nkey(self.secrets.unseal(seed)?),
            ClusterAuth::Credentials { creds } => ConnectOptions::with_credentials(&self.secrets.unseal(creds)?)
                .map_err(|_| Error::Credentials("the credentials file content is not valid (expected a NATS .creds file with a JWT and an nkey seed)".into()))?,
        };
        let tls = &spec.tls;
        if tls.required {
            opts = opts.require_tls(true);
        }
        if tls.handshake_first {
            opts = opts.tls_first();
        }
        let write = |name: &str, content: &str| -> Result<std::path::PathBuf, Error> {
            let p = tmp.join(name);
            std::fs::write(&p, content)
                .map_err(|e| Error::Credentials(format!("cannot write a temporary certificate file: {e}")))?;
            Ok(p)
        };
        if let Some(ca) = &tls.ca_cert_pem {
            opts = opts.add_root_certificates(write("ca.pem", ca)?);
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key) {
            let key = self.secrets.unseal(key)?;
            opts = opts.add_client_certificate(write("client.pem", cert)?, write("client.key", &key)?);
        }
        Ok(opts)
    }

    /// Connects and reports server version, JetStream, account usage and round-trip time.
    /// Never fails: a failure is a report with `ok: false` and the reason.
    #[tracing::instrument(skip(self, spec), fields(cluster = %spec.name))]
    pub async fn probe(&self, spec: &ClusterSpec) -> ConnectionTest {
        let mut report = ConnectionTest {
            ok: false,
            tested_at: Utc::now(),
            server_version: None,
            server_name: None,
            jetstream: None,
            rtt_micros: None,
            account: None,
            error: None,
        };
        let client = match self.connect(spec).await {
            Ok(c) => c,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        let info = client.server_info();
        report.server_version = Some(info.version.clone());
        report.server_name = Some(info.server_name.clone());
        report.jetstream = Some(info.jetstream);
        let started = Instant::now();
        match tokio::time::timeout(self.connect_timeout, client.flush()).await {
            Ok(Ok(())) => report.rtt_micros = Some(started.elapsed().as_micros() as u64),
            _ => {
                report.error = Some("connected, but the server did not answer a ping in time".into());
                return report;
            }
        }
        if info.jetstream {
            let js = async_nats::jetstream::new(client.clone());
            match tokio::time::timeout(self.connect_timeout, js.query_account()).await {
                Ok(Ok(acc)) => {
                    report.account = Some(AccountUsage {
                        memory: acc.memory,
                        storage: acc.storage,
                        streams: acc.streams as u64,
                        consumers: acc.consumers as u64,
                        max_memory: acc.limits.max_memory.unwrap_or(-1),
                        max_storage: acc.limits.max_storage.unwrap_or(-1),
                        max_streams: acc.limits.max_streams.unwrap_or(-1),
                        max_consumers: acc.limits.max_consumers.unwrap_or(-1),
                    });
                }
                Ok(Err(e)) => tracing::info!(error = %e, "JetStream account info unavailable"),
                Err(_) => tracing::info!("JetStream account info timed out"),
            }
        }
        report.ok = true;
        let _ = client.drain().await;
        report
    }
}
