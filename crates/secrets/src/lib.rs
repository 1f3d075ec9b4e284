//! Keys, and everything they protect — one crate, one rule for which key does what:
//!
//! | key | from | does |
//! |---|---|---|
//! | sealing key ([`SecretBox`]) | `--secret-key` / `<data dir>/secret.key` | encrypts what must be read back: cluster credentials, password hashes, API-key hashes, before they enter an event |
//! | signing keyring ([`Keyring`]) | `--signing-key` / `<data dir>/signing.key` | signs what is handed out and checked later: access JWTs, refresh and invitation tokens, download links |
//!
//! Both take a list of keys, newest first: the newest seals or signs, every key listed
//! unseals or verifies, so a key is rotated by putting a new one in front and dropping the
//! old one once nothing it protects is still in use. Passwords are argon2id hashes
//! ([`hash_password`]), computed off the async runtime, one per core at a time.
#![forbid(unsafe_code)]

mod keyfile;
mod passwords;
mod sealing;
mod tokens;

pub use keyfile::key_file;
pub use passwords::{hash_password, verify_password};
pub use sealing::SecretBox;
pub use tokens::{
    API_KEY_PREFIX, AccessClaims, Keyring, RefreshPayload, TokenError, hashes_match, new_api_key, parse_api_key,
};

/// What can go wrong with keys and sealed values. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the secret key must be base64 of exactly 32 bytes (generate one with `openssl rand -base64 32`)")]
    BadKey,
    #[error("signing key #{0} is not valid base64 of at least 32 bytes; generate one with `openssl rand -base64 32`")]
    BadSigningKey(usize),
    #[error("cannot read or write the key file {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a stored credential was sealed with key '{0}', which is not configured; add that key back to unseal it")]
    UnknownKey(String),
    #[error("a stored credential could not be unsealed (wrong key or corrupted value)")]
    Corrupt,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Installs jsonwebtoken's RustCrypto provider (it panics at first use without one).
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// Cryptographically random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand_core::RngCore;
    let mut b = [0u8; N];
    rand_core::OsRng.fill_bytes(&mut b);
    b
}

/// A random password or token of `N` bytes, URL-safe base64 without padding.
pub fn random_token<const N: usize>() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
