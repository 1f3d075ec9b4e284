//! Login limits: failed logins per account and attempts per address, shared by every
//! replica through a NATS KV bucket, so that N replicas allow no more guesses than one and
//! a locked account is locked at each of them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};

use jsc_eventstore::HomeStorage;

use super::AuthSettings;

/// The bucket of the shared limits: one key per address and per account (hashed), holding
/// the times of its recent attempts or failures. Keys nobody touched for a day expire.
pub const LOGIN_LIMITS_BUCKET: &str = "auth_login_limits";

/// How long an untouched key stays in the bucket (longer than any lockout).
const KEY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Attempts at a compare-and-set before the shared count is given up for the local one.
const CAS_TRIES: usize = 16;

/// Failed logins per account and attempts per address: in NATS KV when the console has
/// one, and in memory as the fallback when the bucket cannot be reached (the limits then
/// hold per replica, and a warning says so).
#[derive(Default)]
pub struct LoginLimiter {
    shared: Option<kv::Store>,
    local: Mutex<HashMap<String, Vec<u64>>>,
}

/// Which count a key belongs to.
#[derive(Clone, Copy)]
enum Count {
    /// Attempts from one address, per minute.
    Address,
    /// Failures of one account, per lockout.
    Account,
}

impl Count {
    fn key(self, name: &str) -> String {
        let digest = jsc_domain::sha256_hex(name.as_bytes());
        match self {
            Self::Address => format!("addr.{}", &digest[..40]),
            Self::Account => format!("account.{}", &digest[..40]),
        }
    }
}

impl LoginLimiter {
    /// A limiter sharing its counts through `LOGIN_LIMITS_BUCKET` (created if missing).
    pub async fn shared(home: &HomeStorage) -> Result<Self, String> {
        let store = home
            .bucket(kv::Config {
                bucket: LOGIN_LIMITS_BUCKET.into(),
                description: "JetStream Console: recent sign-in attempts per address and failures per account".into(),
                history: 1,
                max_age: KEY_MAX_AGE,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        Ok(Self {
            shared: Some(store),
            local: Mutex::default(),
        })
    }

    /// Counts an attempt from `addr` and says how long to wait when `addr` or `account`
    /// is over its limit. The attempt counts as a failure of `account` until
    /// [`Self::succeeded`]: a burst of concurrent guesses cannot all pass the check before
    /// the first one is found wrong.
    pub async fn check(&self, settings: &AuthSettings, addr: &str, account: &str) -> Result<(), Duration> {
        self.admit(
            Count::Address,
            addr,
            Duration::from_secs(60),
            settings.attempts_per_minute,
        )
        .await?;
        self.admit(Count::Account, account, settings.lockout, settings.max_failures)
            .await
    }

    /// The attempt of `account` succeeded: its failures are forgotten.
    pub async fn succeeded(&self, account: &str) {
        let key = Count::Account.key(account);
        if let Some(store) = &self.shared
            && let Err(e) = store.delete(&key).await
        {
            tracing::warn!(error = %e, "could not clear an account's failed sign-ins in NATS");
        }
        self.local.lock().expect("limiter lock").remove(&key);
    }

    async fn admit(&self, count: Count, name: &str, window: Duration, limit: usize) -> Result<(), Duration> {
        let key = count.key(name);
        let now = now_ms();
        if let Some(store) = &self.shared {
            match admit_shared(store, &key, now, window, limit).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::warn!(error = %e, "sign-in limits could not be shared through NATS; counting on this replica alone");
                }
            }
        }
        let mut local = self.local.lock().expect("limiter lock");
        if local.len() > 100_000 {
            let day = KEY_MAX_AGE.as_millis() as u64;
            local.retain(|_, times| times.last().is_some_and(|t| now.saturating_sub(*t) < day));
        }
        admit(local.entry(key).or_default(), now, window, limit)
    }
}

/// Counts one more event at `now` (ms since the epoch) in `times` unless `limit` of them
/// fall within `window`; then says how long until the oldest leaves it.
fn admit(times: &mut Vec<u64>, now: u64, window: Duration, limit: usize) -> Result<(), Duration> {
    let window = window.as_millis() as u64;
    times.retain(|t| now.saturating_sub(*t) < window);
    if times.len() >= limit {
        let oldest = times.iter().min().copied().unwrap_or(now);
        let wait = window.saturating_sub(now.saturating_sub(oldest));
        return Err(Duration::from_millis(wait.max(1)));
    }
    times.push(now);
    Ok(())
}

/// [`admit`] on a key of the bucket, by compare-and-set: replicas counting at the same time
/// retry on each other's writes, so none is lost.
async fn admit_shared(
    store: &kv::Store,
    key: &str,
    now: u64,
    window: Duration,
    limit: usize,
) -> Result<Result<(), Duration>, String> {
    for _ in 0..CAS_TRIES {
        let entry = store.entry(key).await.map_err(|e| e.to_string())?;
        let (mut times, revision) = match entry {
            Some(e) if e.operation == kv::Operation::Put => (
                serde_json::from_slice::<Vec<u64>>(&e.value).unwrap_or_default(),
                Some(e.revision),
            ),
            Some(e) => (Vec::new(), Some(e.revision)),
            None => (Vec::new(), None),
        };
        let verdict = admit(&mut times, now, window, limit);
        if verdict.is_err() {
            return Ok(verdict);
        }
        let body = serde_json::to_vec(&times).expect("numbers serialize").into();
        let written = match revision {
            Some(r) => store
                .update(key, body, r)
                .await
                .map(|_| ())
                .map_err(|e| (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string())),
            None => store
                .create(key, body)
                .await
                .map(|_| ())
                .map_err(|e| (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string())),
        };
        match written {
            Ok(()) => return Ok(Ok(())),
            // Another replica wrote first: read its count and try again.
            Err((true, _)) => continue,
            Err((false, e)) => return Err(e),
        }
    }
    Err(format!("{key}: {CAS_TRIES} concurrent writers in a row"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limiter_locks_an_account_after_repeated_failures() {
        let s = AuthSettings {
            max_failures: 2,
            ..Default::default()
        };
        let l = LoginLimiter::default();
        // Attempts count until they succeed, so concurrent ones cannot slip through.
        assert!(l.check(&s, "a", "x").await.is_ok());
        assert!(l.check(&s, "a", "x").await.is_ok());
        assert!(l.check(&s, "a", "x").await.is_err());
        assert!(l.check(&s, "a", "y").await.is_ok(), "other accounts are not affected");
        l.succeeded("y").await;
        assert!(l.check(&s, "a", "y").await.is_ok());
        assert!(l.check(&s, "a", "y").await.is_ok(), "a success forgets the failures");
    }

    #[test]
    fn a_window_admits_its_limit_and_says_when_the_oldest_leaves() {
        let w = Duration::from_secs(60);
        let mut times = vec![1_000, 20_000];
        assert_eq!(admit(&mut times, 30_000, w, 2), Err(Duration::from_millis(31_000)));
        // The first has left the window at 61 s.
        assert_eq!(admit(&mut times, 61_000, w, 2), Ok(()));
        assert_eq!(times, vec![20_000, 61_000]);
    }
}
