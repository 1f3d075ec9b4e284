//! Authentication (who is calling: access tokens, API keys, revalidation of long-lived
//! connections), authorization (what they may do: roles per organization and cluster), and
//! the limits that protect sign-in.

mod access;
mod authenticate;
mod limiter;
mod net;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use limiter::{LOGIN_LIMITS_BUCKET, LoginLimiter};
pub use net::{Cidr, client_address, limit_key};

/// Lifetimes and limits of the authentication layer.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub invitation_ttl: Duration,
    /// Failed logins of one account within `lockout` before it is locked for the rest of it.
    pub max_failures: usize,
    pub lockout: Duration,
    /// Login attempts from one address per minute.
    pub attempts_per_minute: usize,
    /// A WebSocket must send `connection_init` within this time, or it is closed.
    pub connection_init_timeout: Duration,
    /// Subscriptions open at once on one WebSocket connection.
    pub max_subscriptions_per_connection: usize,
    /// WebSocket connections open at once: in total, from one address, of one user (or API key).
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub max_connections_per_user: usize,
    /// Messages that may wait unread for one WebSocket client (at most `outbox_bytes` of
    /// them): its subscriptions wait while they do, and a client that reads none of them for
    /// `outbox_stall` is disconnected as too slow (close code 1008).
    pub outbox_messages: usize,
    pub outbox_bytes: usize,
    pub outbox_stall: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed: the client address (for login
    /// limits and events) is then the nearest address in it that is not a trusted proxy.
    /// Empty: the header is ignored (anyone could write it).
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
            attempts_per_minute: 30,
            connection_init_timeout: Duration::from_secs(10),
            max_subscriptions_per_connection: 100,
            max_connections: 16_384,
            max_connections_per_address: 1_024,
            max_connections_per_user: 256,
            outbox_messages: 256,
            outbox_bytes: 4 << 20,
            outbox_stall: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
        }
    }
}

/// Bucket of API-key last-use times (observations, not events).
pub const KEY_USAGE_BUCKET: &str = "auth_key_usage";

/// The identity side's own state: keys, limits, and what is observed rather than recorded.
#[derive(Clone)]
pub(crate) struct Auth {
    pub keys: jsc_secrets::Keyring,
    pub settings: AuthSettings,
    pub limiter: Arc<LoginLimiter>,
    /// When each API key was last used, written at most once a minute per key.
    pub key_usage: Option<async_nats::jetstream::kv::Store>,
    pub last_touch: Arc<Mutex<HashMap<String, Instant>>>,
    /// Held from "is this address free?" to "the account is in the users view", so two
    /// invitations for one new address accepted at once make one account (in a replica;
    /// across replicas the users view decides).
    pub registration: Arc<tokio::sync::Mutex<()>>,
    /// Moves on at every change to sessions, users or API keys: what a subscription waits
    /// on to check its caller again (one small receiver each, not three of the views').
    pub credential_changes: tokio::sync::watch::Sender<u64>,
}

/// Forwards every change of the sessions, users and API keys views to one counter, until
/// `shutdown`.
pub(crate) fn credential_changes(
    views: &crate::console::Views,
    shutdown: tokio_util::sync::CancellationToken,
) -> tokio::sync::watch::Sender<u64> {
    use crate::changes::changed;
    let (tx, _) = tokio::sync::watch::channel(0u64);
    let (mut sessions, mut users, mut keys) = (
        views.sessions.subscribe(),
        views.users.subscribe(),
        views.api_keys.subscribe(),
    );
    let bump = tx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changed(&mut sessions) => {}
                _ = changed(&mut users) => {}
                _ = changed(&mut keys) => {}
            }
            bump.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    tx
}

fn session_ended() -> crate::Error {
    crate::Error::unauthenticated("this session has ended (signed out, revoked or expired); sign in again")
}
