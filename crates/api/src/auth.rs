//! Authentication and authorization: signing keys, access JWTs, signed refresh and
//! invitation tokens, API keys, password hashing, login rate limits, and the checks every
//! resolver makes.
//!
//! Nothing here stores a secret in clear: refresh and invitation tokens are signed (the
//! session or invitation aggregate says whether one is still good), password and API-key
//! hashes are sealed before they reach an event.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsc_domain::identity::{KeyOwner, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, ApiResult, Code};
use crate::state::Console;
use jsc_projections::ClusterView;

/// Installs jsonwebtoken's RustCrypto provider (it panics at first use without one).
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

const ISSUER: &str = "jsconsole";
const REFRESH_PREFIX: &str = "jscr";
const INVITE_PREFIX: &str = "jsci";
/// API keys look like `jsck_<id>_<secret>`: recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "jsck";

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
    /// Reverse proxies whose `X-Forwarded-For` is believed: the client address (for login
    /// limits and events) is then the nearest address in it that is not a trusted proxy.
    /// Empty: the header is ignored (anyone could write it).
    pub trusted_proxies: Vec<Cidr>,
}

/// An address range, `10.0.0.0/8` or `::1/128` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not an address range; write it like 10.0.0.0/8 or 192.168.1.5");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: std::net::IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let bits = |ip: std::net::IpAddr| -> (u128, u8) {
            match ip {
                std::net::IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                std::net::IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ip = match ip {
            std::net::IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        let ((net, width), (host, host_width)) = (bits(self.addr), bits(ip));
        if width != host_width {
            return false;
        }
        let shift = u32::from(width - self.prefix);
        shift >= 128 || (net >> shift) == (host >> shift)
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not one.
pub fn client_address(peer: std::net::IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> std::net::IpAddr {
    let is_trusted = |ip: std::net::IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in header.rsplit(',') {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
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
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key #{0} is not valid base64 of at least 32 bytes; generate one with `openssl rand -base64 32`")]
    Invalid(usize),
    #[error("cannot read or write the signing key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// HMAC keys for tokens, newest first: the first signs, all verify (rotation keeps tokens
/// signed by an older key valid until they expire).
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<Vec<(String, Vec<u8>)>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("keys", &self.keys.len()).finish()
    }
}

impl Keyring {
    pub fn from_base64_keys(keys: &[&str]) -> Result<Self, KeyError> {
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .map_err(|_| KeyError::Invalid(i + 1))?;
            if raw.len() < 32 {
                return Err(KeyError::Invalid(i + 1));
            }
            out.push((key_id(&raw), raw));
        }
        if out.is_empty() {
            return Err(KeyError::Invalid(1));
        }
        Ok(Self { keys: Arc::new(out) })
    }

    /// Keys from `signing.key` in `dir` (one base64 key per line, newest first), created
    /// with a fresh key (mode 0600) when missing.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("signing.key");
        let keys = jsc_fleet::secrets::key_file(&path, "signing tokens").map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Self::from_base64_keys(&keys)
    }

    fn current(&self) -> &(String, Vec<u8>) {
        &self.keys[0]
    }

    fn mac(key: &[u8], message: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(message.as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// `<prefix>_<payload>.<mac>`, payload = base64 of JSON.
    fn sign_token<T: Serialize>(&self, prefix: &str, payload: &T) -> String {
        let body = B64.encode(serde_json::to_vec(payload).expect("token payloads serialize"));
        let message = format!("{prefix}_{body}");
        let mac = B64.encode(Self::mac(&self.current().1, &message));
        format!("{message}.{mac}")
    }

    fn verify_token<T: serde::de::DeserializeOwned>(&self, prefix: &str, token: &str) -> Option<T> {
        let (message, mac) = token.rsplit_once('.')?;
        let body = message.strip_prefix(prefix)?.strip_prefix('_')?;
        let mac = B64.decode(mac).ok()?;
        let ok = self.keys.iter().any(|(_, k)| {
            let mut m = Hmac::<Sha256>::new_from_slice(k).expect("HMAC takes any key length");
            m.update(message.as_bytes());
            m.verify_slice(&mac).is_ok()
        });
        if !ok {
            return None;
        }
        serde_json::from_slice(&B64.decode(body).ok()?).ok()
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> String {
        let (kid, key) = self.current();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).expect("HS256 signing cannot fail")
    }

    /// Checks signature (HS256 only: `none` and every other algorithm are refused), key id,
    /// issuer and expiry (no leeway).
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let bad = || unauthenticated("the access token is not valid; sign in again (mutation login)");
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad())?;
        if header.alg != Algorithm::HS256 {
            return Err(bad());
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().find(|(id, _)| id == kid))
            .ok_or_else(bad)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        match jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&key.1), &validation) {
            Ok(data) if data.claims.typ == "access" => Ok(data.claims),
            Ok(_) => Err(bad()),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => Err(unauthenticated(
                "the access token has expired; get a new one with mutation refreshSession or sign in again",
            )),
            Err(_) => Err(bad()),
        }
    }

    pub fn refresh_token(&self, session_id: &str, generation: u64) -> String {
        self.sign_token(
            REFRESH_PREFIX,
            &RefreshPayload {
                sid: session_id.into(),
                generation,
            },
        )
    }

    pub fn verify_refresh(&self, token: &str) -> Option<RefreshPayload> {
        self.verify_token(REFRESH_PREFIX, token)
    }

    pub fn invitation_token(&self, invitation_id: &str) -> String {
        self.sign_token(
            INVITE_PREFIX,
            &InvitePayload {
                inv: invitation_id.into(),
            },
        )
    }

    pub fn verify_invitation(&self, token: &str) -> Option<String> {
        self.verify_token::<InvitePayload>(INVITE_PREFIX, token).map(|p| p.inv)
    }
}

/// A key's public name: the first 12 hex digits of its SHA-256.
fn key_id(raw: &[u8]) -> String {
    jsc_domain::stream::sha256_hex(raw)[..12].to_string()
}

/// Cryptographically random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand_core::OsRng.fill_bytes(&mut b);
    b
}

use rand_core::RngCore;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub jti: String,
    pub typ: String,
}

impl AccessClaims {
    pub fn new(user_id: &str, session_id: &str, ttl: Duration) -> Self {
        let now = Utc::now().timestamp();
        Self {
            sub: user_id.into(),
            sid: session_id.into(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.into(),
            jti: uuid::Uuid::now_v7().to_string(),
            typ: "access".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshPayload {
    pub sid: String,
    #[serde(rename = "gen")]
    pub generation: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct InvitePayload {
    inv: String,
}

/// An API key as shown once: `jsck_<id>_<secret>`, and the SHA-256 of the secret to keep.
pub fn new_api_key(id: &str) -> (String, String) {
    let secret = B64.encode(random_bytes::<32>());
    let hash = jsc_domain::stream::sha256_hex(secret.as_bytes());
    (format!("{API_KEY_PREFIX}_{id}_{secret}"), hash)
}

/// Splits an API key into its id and the SHA-256 of its secret.
pub fn parse_api_key(token: &str) -> Option<(&str, String)> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    Some((id, jsc_domain::stream::sha256_hex(secret.as_bytes())))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------

pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_BYTES: usize = 1024;

pub fn check_password_policy(password: &str, email: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::validation(format!(
            "password: use at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation(format!(
            "password: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    if password.trim().eq_ignore_ascii_case(email.trim()) {
        return Err(ApiError::validation("password: must not be your email address"));
    }
    Ok(())
}

/// Argon2 costs ~19 MiB and a core for tens of milliseconds per hash: at most one hash per
/// core runs at once, so a burst of logins queues instead of exhausting memory.
async fn hashing_permit() -> tokio::sync::SemaphorePermit<'static> {
    static HASHING: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    HASHING
        .get_or_init(|| {
            tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
        })
        .acquire()
        .await
        .expect("the hashing semaphore is never closed")
}

/// Argon2id with the default (OWASP) parameters, off the async runtime.
pub async fn hash_password(password: &str) -> ApiResult<String> {
    use argon2::PasswordHasher;
    let password = password.to_string();
    let _permit = hashing_permit().await;
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(&e, "password-hash"))?
    .map_err(|e| ApiError::internal(&e, "password-hash"))
}

/// Verifies `password` against a PHC string; with `None` it hashes against a dummy so an
/// unknown account costs as much time as a known one.
pub async fn verify_password(password: &str, phc: Option<String>) -> bool {
    use argon2::{PasswordHash, PasswordVerifier};
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let password = password.to_string();
    let _permit = hashing_permit().await;
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| {
                    use argon2::PasswordHasher;
                    argon2::Argon2::default()
                        .hash_password(b"not a password anyone has")
                        .map(|h| h.to_string())
                        .unwrap_or_default()
                })
                .clone()
        });
        let ok = PasswordHash::new(&phc)
            .map(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// Login rate limits
// ---------------------------------------------------------------------------------------

/// Failed logins per account and attempts per address, in memory (per replica).
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// Counts an attempt from `addr` and says how long to wait when `addr` or `account`
    /// is over its limit.
    pub fn check(&self, settings: &AuthSettings, addr: &str, account: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        {
            let mut attempts = self.attempts.lock().expect("limiter lock");
            if attempts.len() > 100_000 {
                attempts.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < minute));
            }
            let q = attempts.entry(addr.to_string()).or_default();
            while q.front().is_some_and(|t| now.duration_since(*t) >= minute) {
                q.pop_front();
            }
            if q.len() >= settings.attempts_per_minute {
                return Err(minute.saturating_sub(now.duration_since(q[0])));
            }
            q.push_back(now);
        }
        let mut failures = self.failures.lock().expect("limiter lock");
        if failures.len() > 100_000 {
            failures.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < settings.lockout));
        }
        let q = failures.entry(account.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= settings.lockout) {
            q.pop_front();
        }
        if q.len() >= settings.max_failures {
            return Err(settings.lockout.saturating_sub(now.duration_since(q[0])));
        }
        // Counted as a failure until it succeeds: a burst of concurrent guesses cannot all
        // pass the check before the first one is found wrong.
        q.push_back(now);
        Ok(())
    }

    /// The attempt of `account` succeeded: its failures are forgotten.
    pub fn succeeded(&self, account: &str) {
        self.failures.lock().expect("limiter lock").remove(account);
    }
}

// ---------------------------------------------------------------------------------------
// Principals and checks
// ---------------------------------------------------------------------------------------

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user:<id>` or `apikey:<id>`: what events record as the actor.
    pub actor: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub api_key: Option<KeyGrant>,
    /// When the credential stops being valid (access token expiry, API key expiry).
    pub expires_at: Option<DateTime<Utc>>,
    /// When the access token was issued.
    pub issued_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    pub organization: String,
    pub role: Role,
}

/// What the HTTP layer found in `Authorization` (or `connection_init`).
#[derive(Debug, Clone)]
pub enum AuthState {
    Anonymous,
    Invalid(ApiError),
    /// Checked as the request arrived (an HTTP request lives for milliseconds).
    Authenticated(Principal),
    /// Checked at `connection_init` of a WebSocket, which may live for hours: checked again
    /// on every use.
    Connection(Principal),
}

pub fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::Unauthenticated, message)
}

pub fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::Forbidden, message)
}

fn session_ended() -> ApiError {
    unauthenticated("this session has ended (signed out, revoked or expired); sign in again")
}

impl Console {
    /// Resolves a bearer credential (access JWT or API key) to a principal.
    pub fn authenticate(&self, bearer: &str) -> ApiResult<Principal> {
        let bearer = bearer.trim();
        if bearer.starts_with(API_KEY_PREFIX) {
            return self.authenticate_api_key(bearer);
        }
        let claims = self.auth.keys.verify_access(bearer)?;
        let principal = Principal {
            actor: format!("user:{}", claims.sub),
            user_id: Some(claims.sub),
            session_id: Some(claims.sid),
            api_key: None,
            expires_at: DateTime::from_timestamp(claims.exp, 0),
            issued_at: DateTime::from_timestamp(claims.iat, 0),
        };
        self.revalidate(&principal)?;
        Ok(principal)
    }

    fn authenticate_api_key(&self, token: &str) -> ApiResult<Principal> {
        let invalid = || unauthenticated("the API key is not valid; create a new one (mutation createApiKey)");
        let (id, hash) = parse_api_key(token).ok_or_else(invalid)?;
        let view = self
            .auth
            .api_keys
            .get(&jsc_projector::kv_token(id))
            .ok_or_else(invalid)?
            .view;
        let (key, created_at) = (view.state, view.created_at);
        let stored = key
            .secret_hash
            .as_ref()
            .and_then(|s| self.fleet.secrets().unseal(s).ok())
            .ok_or_else(invalid)?;
        if !constant_time_eq(stored.as_bytes(), hash.as_bytes()) {
            return Err(invalid());
        }
        let principal = Principal {
            actor: format!("apikey:{}", key.id),
            user_id: match &key.owner {
                Some(KeyOwner::User { user_id }) => Some(user_id.clone()),
                _ => None,
            },
            session_id: None,
            api_key: Some(KeyGrant {
                key_id: key.id.clone(),
                organization: key.organization.clone(),
                role: key.role.unwrap_or(Role::Viewer),
            }),
            expires_at: key.expires_at,
            // A personal key made before its user's password changed dies with the old password.
            issued_at: Some(created_at),
        };
        self.revalidate(&principal)?;
        self.auth.touch_api_key(&key.id);
        Ok(principal)
    }

    /// Whether an authenticated principal is still valid now: not expired, its session or
    /// key not revoked, its user not disabled. Subscriptions call this when identity views
    /// change.
    pub fn revalidate(&self, p: &Principal) -> ApiResult<()> {
        let now = Utc::now();
        if p.expires_at.is_some_and(|e| e <= now) {
            return Err(unauthenticated(if p.api_key.is_some() {
                "the API key has expired; create a new one"
            } else {
                "the access token has expired; get a new one with mutation refreshSession or sign in again"
            }));
        }
        if let Some(k) = &p.api_key {
            let key = self.auth.api_keys.get(&jsc_projector::kv_token(&k.key_id));
            if key.is_none_or(|k| k.view.state.revoked) {
                return Err(unauthenticated("the API key was revoked; create a new one"));
            }
        }
        if let Some(sid) = &p.session_id {
            let session = self
                .auth
                .sessions
                .get(&jsc_projector::kv_token(sid))
                .ok_or_else(session_ended)?;
            if !session.view.state.active_at(now) {
                return Err(session_ended());
            }
        }
        if let Some(uid) = &p.user_id {
            let user = self
                .auth
                .users
                .get(&jsc_projector::kv_token(uid))
                .ok_or_else(|| unauthenticated("the account no longer exists"))?
                .view
                .state;
            if user.disabled {
                return Err(unauthenticated("this account is disabled; ask an administrator"));
            }
            if let (Some(valid_after), Some(issued)) = (user.sessions_valid_after, p.issued_at)
                && issued.timestamp() < valid_after.timestamp()
            {
                return Err(unauthenticated(
                    "the password was changed after this token or key was issued; sign in again (or create a new key)",
                ));
            }
        }
        Ok(())
    }

    /// The caller's role in `org`, if any. A key acts with its role, never more than its
    /// user has now.
    pub fn org_role(&self, p: &Principal, org: &str) -> Option<Role> {
        let members = || {
            self.auth
                .organizations
                .get(&jsc_projector::kv_token(org))
                .map(|o| o.view.state)
        };
        let user_role = |uid: &str| members().and_then(|o| o.members.get(uid).copied());
        match (&p.api_key, &p.user_id) {
            (Some(k), _) if k.organization != org => None,
            (Some(k), Some(uid)) => user_role(uid).map(|r| r.min(k.role)),
            (Some(k), None) => members().map(|_| k.role),
            (None, Some(uid)) => user_role(uid),
            (None, None) => None,
        }
    }

    /// The caller's role on a cluster: the organization role raised by team grants.
    pub fn cluster_role(&self, p: &Principal, cluster_id: &str) -> Option<(String, Role)> {
        let cluster = self.cluster_view.get(&jsc_projector::kv_token(cluster_id))?.view;
        let org = self.organization(&cluster.organization)?;
        let role = role_on_cluster(p, &org, cluster_id)?;
        Some((cluster.organization, role))
    }

    /// A filter over clusters for one request: the caller's role on each cluster of the
    /// view, each organization looked up once (a list of many clusters costs one lookup
    /// per organization, not per cluster).
    pub fn cluster_roles<'a>(&'a self, p: &'a Principal) -> impl FnMut(&ClusterView) -> Option<Role> + 'a {
        let mut orgs: HashMap<String, Option<jsc_domain::identity::Organization>> = HashMap::new();
        move |cluster| {
            let org = orgs
                .entry(cluster.organization.clone())
                .or_insert_with(|| self.organization(&cluster.organization));
            role_on_cluster(p, org.as_ref()?, &cluster.id)
        }
    }

    fn organization(&self, id: &str) -> Option<jsc_domain::identity::Organization> {
        self.auth
            .organizations
            .get(&jsc_projector::kv_token(id))
            .map(|o| o.view.state)
    }

    /// The organizations where the caller has at least `min`.
    pub fn organizations_with(&self, p: &Principal, min: Role) -> Vec<String> {
        self.auth
            .organizations
            .list()
            .into_iter()
            .map(|o| o.view.state.id)
            .filter(|id| self.org_role(p, id).is_some_and(|r| r >= min))
            .collect()
    }

    /// `NOT_FOUND` when the caller is not in `org` (they never learn it exists),
    /// `FORBIDDEN` when their role is below `min`.
    pub fn require_org(&self, p: &Principal, org: &str, min: Role) -> ApiResult<Role> {
        match self.org_role(p, org) {
            None => Err(ApiError::not_found(format!("no organization with id '{org}'"))),
            Some(r) if r < min => Err(forbidden(format!(
                "this needs the {} role in the organization; you are {}",
                min.as_str(),
                r.as_str()
            ))),
            Some(r) => Ok(r),
        }
    }

    /// Like [`Self::require_org`] for a cluster (and everything on it); returns its organization.
    pub fn require_cluster(&self, p: &Principal, cluster_id: &str, min: Role) -> ApiResult<String> {
        match self.cluster_role(p, cluster_id) {
            None => Err(ApiError::not_found(format!(
                "no cluster with id '{cluster_id}'; list clusters to see the ids that exist"
            ))),
            Some((_, r)) if r < min => Err(forbidden(format!(
                "this needs the {} role on the cluster; you are {}",
                min.as_str(),
                r.as_str()
            ))),
            Some((org, _)) => Ok(org),
        }
    }
}

/// The caller's role on `cluster_id` of `org`: the organization role raised by team grants;
/// a key never above its role, nor above its user.
fn role_on_cluster(p: &Principal, org: &jsc_domain::identity::Organization, cluster_id: &str) -> Option<Role> {
    match (&p.api_key, &p.user_id) {
        (Some(k), _) if k.organization != org.id => None,
        (Some(k), Some(uid)) => org.cluster_role(uid, cluster_id).map(|r| r.min(k.role)),
        (Some(k), None) => Some(k.role),
        (None, Some(uid)) => org.cluster_role(uid, cluster_id),
        (None, None) => None,
    }
}

/// The identity side of the console: keys, views, limits.
#[derive(Clone)]
pub struct Auth {
    pub keys: Keyring,
    pub settings: AuthSettings,
    pub limiter: Arc<LoginLimiter>,
    pub users: jsc_projector::ViewCache<jsc_projections::identity::UserView>,
    pub organizations: jsc_projector::ViewCache<jsc_projections::identity::OrganizationView>,
    pub invitations: jsc_projector::ViewCache<jsc_projections::identity::InvitationView>,
    pub sessions: jsc_projector::ViewCache<jsc_projections::identity::SessionView>,
    pub api_keys: jsc_projector::ViewCache<jsc_projections::identity::ApiKeyView>,
    /// When each API key was last used, written at most once a minute per key to the
    /// `auth_key_usage` bucket (an observation, not an event).
    pub key_usage: Option<async_nats::jetstream::kv::Store>,
    pub last_touch: Arc<Mutex<HashMap<String, Instant>>>,
    /// Held from "is this address free?" to "the account is in the users view", so two
    /// invitations for one new address accepted at once make one account (in a replica;
    /// across replicas the users view decides, see the notes).
    pub registration: Arc<tokio::sync::Mutex<()>>,
}

/// Bucket of API-key last-use times.
pub const KEY_USAGE_BUCKET: &str = "auth_key_usage";

impl Auth {
    fn touch_api_key(&self, key_id: &str) {
        let Some(kv) = self.key_usage.clone() else {
            return;
        };
        {
            let mut last = self.last_touch.lock().expect("touch lock");
            if last.get(key_id).is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                return;
            }
            last.insert(key_id.to_string(), Instant::now());
        }
        let key = jsc_projector::kv_token(key_id);
        tokio::spawn(async move {
            if let Err(e) = kv.put(&key, Utc::now().to_rfc3339().into()).await {
                tracing::debug!(error = %e, "could not record an API key's last use");
            }
        });
    }

    /// When an API key was last used (to the minute), if ever.
    pub async fn key_last_used(&self, key_id: &str) -> Option<DateTime<Utc>> {
        let entry = self
            .key_usage
            .as_ref()?
            .get(jsc_projector::kv_token(key_id))
            .await
            .ok()??;
        DateTime::parse_from_rfc3339(std::str::from_utf8(&entry).ok()?)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(n: u8) -> Keyring {
        let k = base64::engine::general_purpose::STANDARD.encode([n; 32]);
        Keyring::from_base64_keys(&[&k]).unwrap()
    }

    #[test]
    fn signed_tokens_round_trip_and_refuse_other_keys() {
        install_crypto_provider();
        let a = ring(1);
        let t = a.refresh_token("s1", 3);
        let p = a.verify_refresh(&t).unwrap();
        assert_eq!((p.sid.as_str(), p.generation), ("s1", 3));
        assert!(ring(2).verify_refresh(&t).is_none());
        assert!(
            a.verify_invitation(&t).is_none(),
            "a refresh token is not an invitation"
        );
        let jwt = a.sign_access(&AccessClaims::new("u", "s", Duration::from_secs(60)));
        assert!(a.verify_access(&jwt).is_ok());
        assert_eq!(ring(2).verify_access(&jwt).unwrap_err().code, Code::Unauthenticated);
    }

    #[test]
    fn rotated_keyrings_verify_old_tokens() {
        install_crypto_provider();
        let old = base64::engine::general_purpose::STANDARD.encode([1; 32]);
        let new = base64::engine::general_purpose::STANDARD.encode([2; 32]);
        let before = Keyring::from_base64_keys(&[&old]).unwrap();
        let after = Keyring::from_base64_keys(&[&new, &old]).unwrap();
        let jwt = before.sign_access(&AccessClaims::new("u", "s", Duration::from_secs(60)));
        assert!(after.verify_access(&jwt).is_ok());
        assert!(after.verify_refresh(&before.refresh_token("s", 0)).is_some());
    }

    #[test]
    fn api_keys_parse_back_to_their_hash() {
        let (token, hash) = new_api_key("abc");
        assert_eq!(parse_api_key(&token), Some(("abc", hash)));
        assert!(parse_api_key("jsck_abc").is_none());
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        // Not from a proxy: the header is ignored.
        assert_eq!(
            client_address(ip("203.0.113.9"), Some("198.51.100.1"), &trusted),
            ip("203.0.113.9")
        );
        // From a proxy: the nearest untrusted hop, whatever the client wrote before it.
        assert_eq!(
            client_address(ip("10.1.2.3"), Some("1.2.3.4, 198.51.100.1, 10.9.9.9"), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("::1"), Some("198.51.100.1"), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_address(ip("10.1.2.3"), None, &trusted), ip("10.1.2.3"));
        assert_eq!(
            client_address(ip("10.1.2.3"), Some("garbage"), &trusted),
            ip("10.1.2.3")
        );
        assert!("10.0.0.0/33".parse::<Cidr>().is_err() && "nope".parse::<Cidr>().is_err());
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        assert!(!"10.0.0.0/8".parse::<Cidr>().unwrap().contains(ip("11.0.0.1")));
    }

    #[test]
    fn the_limiter_locks_an_account_after_repeated_failures() {
        let s = AuthSettings {
            max_failures: 2,
            ..Default::default()
        };
        let l = LoginLimiter::default();
        // Attempts count until they succeed, so concurrent ones cannot slip through.
        assert!(l.check(&s, "a", "x").is_ok());
        assert!(l.check(&s, "a", "x").is_ok());
        assert!(l.check(&s, "a", "x").is_err());
        assert!(l.check(&s, "a", "y").is_ok(), "other accounts are not affected");
        l.succeeded("y");
        assert!(l.check(&s, "a", "y").is_ok());
        assert!(l.check(&s, "a", "y").is_ok(), "a success forgets the failures");
    }
}
