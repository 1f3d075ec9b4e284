//! Roles that one replica at a time performs, whatever the number of consoles on one home
//! NATS: the projections, the audit writer, the watcher and reconciler, the session sweeper,
//! the metrics collector, the roll-up writer and the alert evaluator.
//!
//! A role's lease is a key of the `console_leases` KV bucket, whose values live as long as
//! the bucket's `max_age` (the lease's time to live) after they were last written.
//! - A replica takes a free lease with a create, which only one can win.
//! - The holder renews it every third of the time to live with an update on the revision
//!   it wrote last: an update that finds another revision means another replica holds the
//!   lease, and this one stops the role at once.
//! - A holder that cannot renew for a whole time to live (its NATS is away) stops the role
//!   too, since the key is gone for everyone else by then.
//! - A holder that stops deletes its key, so that another takes over at once; one that dies
//!   leaves it to expire, and another takes over within a time to live (plus a fifth).
//!
//! Time is the server's: the expiry is the stream's `max_age`, so replicas need no
//! agreement on clocks. A role must be idempotent across a change of holder (the collector
//! publishes observations; the roll-ups are named by their range).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use jsc_eventstore::HomeStorage;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The bucket of the leases.
pub const LEASES_BUCKET: &str = "console_leases";

/// How long a lease outlives its last renewal when no bucket says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6);

/// The same on a home cluster: longer than NATS takes to elect new leaders for the
/// console's streams after losing a node (4 to 9 s each, more under load), so the roles
/// keep running through it instead of stopping while nobody can renew or take a lease.
pub const CLUSTER_TTL: Duration = Duration::from_secs(15);

/// An id for this process among the replicas: host, process id and a random part (a
/// restarted process is a new replica).
pub fn replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "jsconsole".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}

/// The roles performed under a lease, as [`Leases::run`] names them.
pub const ROLES: [&str; 7] = [
    PROJECTIONS,
    AUDIT_WRITER,
    WATCHER,
    SESSION_SWEEPER,
    COLLECTOR,
    ROLLUPS,
    ALERTS,
];
/// Applies the event stream to the views in NATS KV, which every replica reads.
pub const PROJECTIONS: &str = "projections";
/// Writes the audit trail's Parquet files to the (shared) audit store.
pub const AUDIT_WRITER: &str = "audit-writer";
/// Follows the managed clusters' advisories and reconciles them, recording outside changes.
pub const WATCHER: &str = "watcher";
/// Ends the sessions that expired.
pub const SESSION_SWEEPER: &str = "session-sweeper";
/// Samples every managed cluster into the metrics stream.
pub const COLLECTOR: &str = "metrics-collector";
/// Rolls the samples up into Parquet and deletes what is past retention.
pub const ROLLUPS: &str = "metrics-rollups";
/// Evaluates the alert rules on every sample and sends the notifications.
pub const ALERTS: &str = "alerts";

/// Who performs a role, as a replica sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleHolder {
    pub role: &'static str,
    /// The replica that holds the lease; none while nobody does (between a holder's death
    /// and the next one taking over, or when no replica performs the role).
    pub holder: Option<Holder>,
}

impl crate::Console {
    /// This replica's id and who performs each role; for admins of an organization (the
    /// same who see the console's own metrics).
    pub async fn replica(&self, caller: &crate::Caller) -> crate::Result<(String, Vec<RoleHolder>)> {
        if self
            .organizations_with(&caller.principal, jsc_domain::identity::Role::Admin)
            .is_empty()
        {
            return Err(crate::Error::forbidden(
                "the console's replicas and roles are for organization admins; ask an admin of your organization",
            ));
        }
        let mut roles = Vec::new();
        for role in ROLES {
            roles.push(RoleHolder {
                role,
                holder: self.leases.holder(role).await,
            });
        }
        Ok((self.leases.id().to_string(), roles))
    }
}

/// What a lease's key holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// The replica that holds it.
    pub holder: String,
    /// When it took the lease (milliseconds since the epoch, its own clock).
    pub since_ms: i64,
}

/// The leases of one replica.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    id: Arc<str>,
    ttl: Duration,
}

/// Why a holder stopped holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// It stopped (shutdown, or the role ended); the key is deleted.
    Released,
    /// Another replica holds it now.
    Taken,
    /// No renewal succeeded for a whole time to live.
    Expired,
}

impl Leases {
    /// Opens (or creates) the bucket with `ttl` for replica `id`. A bucket that exists keeps
    /// its own time to live, so that every replica on it agrees.
    pub async fn open(home: &HomeStorage, ttl: Duration, id: impl Into<String>) -> Result<Self, String> {
        let js = home.jetstream();
        let kv = home
            .bucket(kv::Config {
                bucket: LEASES_BUCKET.to_string(),
                description: "JetStream Console: which replica performs each background role".into(),
                history: 1,
                max_age: ttl,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        let mut stream = js
            .get_stream(format!("KV_{LEASES_BUCKET}"))
            .await
            .map_err(|e| e.to_string())?;
        let ttl = match stream.info().await.map_err(|e| e.to_string())?.config.max_age {
            d if d.is_zero() => ttl,
            d => d,
        };
        Ok(Self {
            kv,
            id: id.into().into(),
            ttl,
        })
    }

    /// This replica's id, as its leases name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The time to live of every lease in the bucket.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Who holds `role` now, if anyone.
    pub async fn holder(&self, role: &str) -> Option<Holder> {
        let value = self.kv.get(role).await.ok()??;
        serde_json::from_slice(&value).ok()
    }

    /// Runs `work` whenever this replica holds the lease `role`, until `shutdown`: it waits
    /// for the lease, runs `work` with a token that fires when the lease is lost or at
    /// shutdown, and waits again after a loss. If `work` returns on its own, the lease is
    /// released and `run` returns.
    pub async fn run<F, Fut>(&self, role: &'static str, shutdown: CancellationToken, mut work: F)
    where
        F: FnMut(CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        let held = metrics::gauge!("jsconsole_lease_held", "role" => role);
        held.set(0.0);
        loop {
            let since_ms = chrono::Utc::now().timestamp_millis();
            let revision = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.acquire(role, since_ms) => r,
            };
            let since = std::time::Instant::now();
            tracing::info!(role, replica = %self.id, "took the lease: this replica performs the role");
            held.set(1.0);
            metrics::counter!("jsconsole_lease_acquired_total", "role" => role).increment(1);
            let token = shutdown.child_token();
            let finished = {
                let token = token.clone();
                let work = work(token.clone());
                async move {
                    work.await;
                    token.cancel();
                }
            };
            let ((), ended) = tokio::join!(finished, async {
                let ended = self.keep(role, revision, since_ms, &token).await;
                token.cancel();
                ended
            });
            held.set(0.0);
            match ended {
                Ended::Released => {
                    tracing::info!(role, held_for = ?since.elapsed(), "released the lease");
                    return;
                }
                Ended::Taken => tracing::warn!(role, "another replica holds the lease now: stopped the role"),
                Ended::Expired => tracing::warn!(
                    role,
                    ttl = ?self.ttl,
                    "could not renew the lease for its whole time to live: stopped the role until it is won again"
                ),
            }
        }
    }

    /// Waits until this replica wins `role`; returns the revision it wrote.
    async fn acquire(&self, role: &str, since_ms: i64) -> u64 {
        let mut warned = false;
        loop {
            match self.kv.create(role, self.body(since_ms)).await {
                Ok(revision) => return revision,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(role, error = %e, "cannot reach the lease bucket; retrying");
                }
                Err(_) => {}
            }
            tokio::time::sleep(self.ttl / 5).await;
        }
    }

    /// Renews `role` until it is lost or `token` fires (then releases it).
    async fn keep(&self, role: &str, mut revision: u64, since_ms: i64, token: &CancellationToken) -> Ended {
        let mut renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = token.cancelled() => {
                    // Lets another replica take over at once (a failure leaves it to expire).
                    let _ = self.kv.delete_expect_revision(role, Some(revision)).await;
                    return Ended::Released;
                }
                _ = tokio::time::sleep(self.ttl / 3) => {}
            }
            match self.kv.update(role, self.body(since_ms), revision).await {
                Ok(r) => {
                    revision = r;
                    renewed = tokio::time::Instant::now();
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => return Ended::Taken,
                Err(e) => {
                    tracing::warn!(role, error = %e, "could not renew the lease");
                    if renewed.elapsed() >= self.ttl {
                        return Ended::Expired;
                    }
                }
            }
        }
    }

    fn body(&self, since_ms: i64) -> bytes::Bytes {
        serde_json::to_vec(&Holder {
            holder: self.id.to_string(),
            since_ms,
        })
        .expect("a holder serializes")
        .into()
    }
}
