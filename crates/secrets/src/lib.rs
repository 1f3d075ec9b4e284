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

/// Installs the console's JWT crypto: HS256 only (it panics at first use without one).
pub fn install_crypto_provider() {
    let _ = hs256::PROVIDER.install_default();
}

/// The only JWT algorithm the console signs or accepts, HS256, as a jsonwebtoken provider.
/// jsonwebtoken's own RustCrypto provider brings RSA and elliptic curves the console never
/// uses, among them the `rsa` crate with a timing side channel (RUSTSEC-2023-0071) that
/// `cargo deny` refuses: without them that code is not even linked.
mod hs256 {
    use hmac::{Hmac, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
    use sha2::Sha256;

    pub(super) static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: signer,
        verifier_factory: verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };

    struct Hs256(Hmac<Sha256>);

    impl Hs256 {
        fn new(algorithm: &Algorithm, family: AlgorithmFamily, key: &[u8]) -> Result<Self> {
            if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
                return Err(ErrorKind::InvalidAlgorithm.into());
            }
            Ok(Self(
                Hmac::new_from_slice(key).map_err(|_| ErrorKind::InvalidKeyFormat)?,
            ))
        }
    }

    fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
        Ok(Box::new(Hs256::new(algorithm, key.family(), key.as_bytes())?))
    }

    fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
        Ok(Box::new(Hs256::new(algorithm, key.family(), key.try_get_as_bytes()?)?))
    }

    impl signature::Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            Ok(self.0.clone().chain_update(msg).finalize().into_bytes().to_vec())
        }
    }

    impl signature::Verifier<Vec<u8>> for Hs256 {
        fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
            // Constant time, as hmac's verify_slice compares.
            self.0
                .clone()
                .chain_update(msg)
                .verify_slice(sig)
                .map_err(signature::Error::from_source)
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }
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

#[cfg(test)]
mod tests {
    use jsonwebtoken::crypto::{sign, verify};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

    const MESSAGE: &[u8] = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0";
    /// HMAC-SHA256 of MESSAGE under 32 bytes of 7, computed apart (Python's hmac module).
    const SIGNATURE: &str = "G25MSxtiEykL2FdPy5Z3lopuJZMr63ioNMjur-gsOWA";

    #[test]
    fn hs256_signs_as_the_standard_says_and_refuses_every_other_algorithm() {
        crate::install_crypto_provider();
        let key = [7u8; 32];
        assert_eq!(
            sign(MESSAGE, &EncodingKey::from_secret(&key), Algorithm::HS256).unwrap(),
            SIGNATURE
        );
        let decoding = DecodingKey::from_secret(&key);
        assert!(verify(SIGNATURE, MESSAGE, &decoding, Algorithm::HS256).unwrap());
        assert!(
            !verify(
                SIGNATURE,
                b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ2In0",
                &decoding,
                Algorithm::HS256
            )
            .unwrap()
        );
        assert!(
            !verify(
                SIGNATURE,
                MESSAGE,
                &DecodingKey::from_secret(&[8u8; 32]),
                Algorithm::HS256
            )
            .unwrap()
        );
        for other in [
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            assert!(
                sign(MESSAGE, &EncodingKey::from_secret(&key), other).is_err(),
                "{other:?} signed"
            );
            assert!(
                verify(SIGNATURE, MESSAGE, &decoding, other).is_err(),
                "{other:?} verified"
            );
        }
    }
}
