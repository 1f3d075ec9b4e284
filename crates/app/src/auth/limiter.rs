//! Login limits: failed logins per account and attempts per address.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthSettings;

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

#[cfg(test)]
mod tests {
    use super::*;

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
