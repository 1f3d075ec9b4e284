//! Sealing credentials: AES-256-GCM with a key from configuration.
//!
//! The key comes from `JSCONSOLE_SECRET_KEY` (base64 of 32 bytes) or from `secret.key` in
//! the data dir, generated on first start with mode 0600. Every sealed value names the key
//! that sealed it (`v1:<key id>:<nonce>:<ciphertext>`), so keys can be rotated: older keys
//! stay listed for unsealing while the newest seals.

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsc_domain::Sealed;
use sha2::{Digest, Sha256};

const AAD: &[u8] = b"jsconsole-secret-v1";

use crate::Error;

/// Seals and unseals credentials. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    primary: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("primary", &self.primary)
            .finish_non_exhaustive()
    }
}

impl SecretBox {
    /// From one or more base64 keys; the first seals, all unseal.
    pub fn from_base64_keys(keys: &[&str]) -> Result<Self, Error> {
        let mut map = HashMap::new();
        let mut primary = None;
        for k in keys {
            let raw = STANDARD.decode(k.trim()).map_err(|_| Error::BadKey)?;
            if raw.len() != 32 {
                return Err(Error::BadKey);
            }
            let id = key_id(&raw);
            primary.get_or_insert_with(|| id.clone());
            map.insert(id, Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)));
        }
        Ok(Self {
            primary: primary.ok_or(Error::BadKey)?,
            keys: map,
        })
    }

    /// Reads `secret.key` from `dir`, generating it (mode 0600) when absent.
    pub fn load_or_generate(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("secret.key");
        let keys = crate::keyfile::key_file(&path, "sealing credentials").map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Self::from_base64_keys(&keys)
    }

    pub fn seal(&self, clear: &str) -> Sealed {
        let cipher = &self.keys[&self.primary];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: AAD,
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory data");
        Sealed::from_sealed_string(format!(
            "v1:{}:{}:{}",
            self.primary,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ct)
        ))
    }

    pub fn unseal(&self, sealed: &Sealed) -> Result<String, Error> {
        let mut parts = sealed.as_sealed_str().splitn(4, ':');
        let (Some("v1"), Some(id), Some(nonce), Some(ct)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Corrupt);
        };
        let cipher = self.keys.get(id).ok_or_else(|| Error::UnknownKey(id.to_string()))?;
        let nonce = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| Error::Corrupt)?;
        let ct = URL_SAFE_NO_PAD.decode(ct).map_err(|_| Error::Corrupt)?;
        if nonce.len() != 12 {
            return Err(Error::Corrupt);
        }
        let clear = cipher
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: AAD })
            .map_err(|_| Error::Corrupt)?;
        String::from_utf8(clear).map_err(|_| Error::Corrupt)
    }
}

/// A short, non-secret name for a key: the first 8 hex digits of its SHA-256.
fn key_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_hides_the_clear_text() {
        let dir = tempfile::tempdir().unwrap();
        let sb = SecretBox::load_or_generate(dir.path()).unwrap();
        let sealed = sb.seal("s3cret-password");
        assert!(!sealed.as_sealed_str().contains("s3cret"));
        assert_eq!(sb.unseal(&sealed).unwrap(), "s3cret-password");
        // The same key file gives the same box.
        let again = SecretBox::load_or_generate(dir.path()).unwrap();
        assert_eq!(again.unseal(&sealed).unwrap(), "s3cret-password");
    }

    #[test]
    fn another_key_cannot_unseal() {
        let a = SecretBox::from_base64_keys(&[&STANDARD.encode([1u8; 32])]).unwrap();
        let b = SecretBox::from_base64_keys(&[&STANDARD.encode([2u8; 32])]).unwrap();
        assert!(matches!(b.unseal(&a.seal("x")), Err(Error::UnknownKey(_))));
    }

    #[test]
    fn rotated_keys_still_unseal() {
        let old = STANDARD.encode([1u8; 32]);
        let new = STANDARD.encode([2u8; 32]);
        let before = SecretBox::from_base64_keys(&[&old]).unwrap();
        let after = SecretBox::from_base64_keys(&[&new, &old]).unwrap();
        assert_eq!(after.unseal(&before.seal("x")).unwrap(), "x");
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(SecretBox::from_base64_keys(&["short"]), Err(Error::BadKey)));
    }
}
