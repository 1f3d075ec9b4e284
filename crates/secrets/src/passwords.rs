//! Argon2id password hashes, computed off the async runtime.

use crate::Error;

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

/// Argon2id with the default (OWASP) parameters: a PHC string.
pub async fn hash_password(password: &str) -> Result<String, Error> {
    use argon2::PasswordHasher;
    let password = password.to_string();
    let _permit = hashing_permit().await;
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::Hashing(e.to_string()))?
    .map_err(|e| Error::Hashing(e.to_string()))
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

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = super::hash_password("correct horse battery").await.unwrap();
        assert!(super::verify_password("correct horse battery", Some(phc.clone())).await);
        assert!(!super::verify_password("wrong horse battery", Some(phc)).await);
        assert!(!super::verify_password("anything", None).await);
    }
}
