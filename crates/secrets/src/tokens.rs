//! What the signing keyring signs: access JWTs (HS256), refresh and invitation tokens
//! (`<prefix>_<base64 JSON>.<HMAC>`), download links; and the shape of API keys.
//!
//! Nothing here stores a secret in clear: a refresh or invitation token only names its
//! session or invitation (the aggregate says whether it is still good), and an API key is
//! kept as the SHA-256 of its secret.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Error;

const ISSUER: &str = "jsconsole";
const REFRESH_PREFIX: &str = "jscr";
const INVITE_PREFIX: &str = "jsci";
const CURSOR_PREFIX: &str = "jscp";
/// Download links sign `link:<message>`: no token prefix can collide with it.
const LINK_PREFIX: &str = "link:";
/// API keys look like `jsck_<id>_<secret>`: recognisable by secret scanners.
pub const API_KEY_PREFIX: &str = "jsck";

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is not valid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
}

/// HMAC keys for tokens and links, newest first: the first signs, all verify (rotation
/// keeps what an older key signed valid until it expires).
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
    pub fn from_base64_keys(keys: &[&str]) -> Result<Self, Error> {
        let mut out = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(k.trim())
                .map_err(|_| Error::BadSigningKey(i + 1))?;
            if raw.len() < 32 {
                return Err(Error::BadSigningKey(i + 1));
            }
            out.push((key_id(&raw), raw));
        }
        if out.is_empty() {
            return Err(Error::BadSigningKey(1));
        }
        Ok(Self { keys: Arc::new(out) })
    }

    /// Keys from `signing.key` in `dir` (one base64 key per line, newest first), created
    /// with a fresh key (mode 0600) when missing.
    pub fn load_or_generate(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("signing.key");
        let keys = crate::key_file(&path, "signing tokens").map_err(|source| Error::Io {
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

    fn verified_by_any(&self, message: &str, mac: &[u8]) -> bool {
        self.keys.iter().any(|(_, k)| {
            let mut m = Hmac::<Sha256>::new_from_slice(k).expect("HMAC takes any key length");
            m.update(message.as_bytes());
            m.verify_slice(mac).is_ok()
        })
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
        if !self.verified_by_any(message, &mac) {
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
    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().find(|(id, _)| id == kid))
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        match jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&key.1), &validation) {
            Ok(data) if data.claims.typ == "access" => Ok(data.claims),
            Ok(_) => Err(TokenError::Invalid),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
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

    /// A list cursor: a position `key` in the list `list` of `scope`, signed so that a
    /// client can neither forge one nor carry it to another list.
    pub fn cursor<K: Serialize>(&self, list: &str, scope: &str, key: &K) -> String {
        self.sign_token(
            CURSOR_PREFIX,
            &CursorPayload {
                l: list.into(),
                s: scope.into(),
                k: key,
            },
        )
    }

    /// The position a [`Keyring::cursor`] holds, if it was signed here for this list.
    pub fn verify_cursor<K: serde::de::DeserializeOwned>(&self, list: &str, scope: &str, cursor: &str) -> Option<K> {
        let c: CursorPayload<K> = self.verify_token(CURSOR_PREFIX, cursor)?;
        (c.l == list && c.s == scope).then_some(c.k)
    }

    /// HMAC-SHA256 of a link's `message`, hex: any replica with the keyring can check it.
    pub fn sign_link(&self, message: &str) -> String {
        Self::mac(&self.current().1, &format!("{LINK_PREFIX}{message}"))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` is [`Keyring::sign_link`] of `message` by any key (constant time).
    pub fn verify_link(&self, message: &str, signature: &str) -> bool {
        let Some(bytes) = (0..signature.len())
            .step_by(2)
            .map(|i| signature.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        self.verified_by_any(&format!("{LINK_PREFIX}{message}"), &bytes)
    }
}

#[derive(Serialize, Deserialize)]
struct CursorPayload<K> {
    l: String,
    s: String,
    k: K,
}

/// A key's public name: the first 12 hex digits of its SHA-256.
fn key_id(raw: &[u8]) -> String {
    jsc_domain::sha256_hex(raw)[..12].to_string()
}

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
    let secret = crate::random_token::<32>();
    let hash = jsc_domain::sha256_hex(secret.as_bytes());
    (format!("{API_KEY_PREFIX}_{id}_{secret}"), hash)
}

/// Splits an API key into its id and the SHA-256 of its secret.
pub fn parse_api_key(token: &str) -> Option<(&str, String)> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    Some((id, jsc_domain::sha256_hex(secret.as_bytes())))
}

/// Whether a kept hash matches a presented one (constant time).
pub fn hashes_match(kept: &str, presented: &str) -> bool {
    crate::constant_time_eq(kept.as_bytes(), presented.as_bytes())
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
        crate::install_crypto_provider();
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
        assert_eq!(ring(2).verify_access(&jwt).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn rotated_keyrings_verify_old_tokens_and_links() {
        crate::install_crypto_provider();
        let old = base64::engine::general_purpose::STANDARD.encode([1; 32]);
        let new = base64::engine::general_purpose::STANDARD.encode([2; 32]);
        let before = Keyring::from_base64_keys(&[&old]).unwrap();
        let after = Keyring::from_base64_keys(&[&new, &old]).unwrap();
        let jwt = before.sign_access(&AccessClaims::new("u", "s", Duration::from_secs(60)));
        assert!(after.verify_access(&jwt).is_ok());
        assert!(after.verify_refresh(&before.refresh_token("s", 0)).is_some());
        let sig = before.sign_link("export:a.csv:1");
        assert!(after.verify_link("export:a.csv:1", &sig));
        assert!(!after.verify_link("export:b.csv:1", &sig));
        assert!(!ring(3).verify_link("export:a.csv:1", &sig));
        assert!(!after.verify_link("export:a.csv:1", "zz"));
    }

    #[test]
    fn cursors_hold_their_position_for_their_own_list_only() {
        let a = ring(1);
        let c = a.cursor("members", "org-1", &("ann".to_string(), 7u64));
        assert_eq!(
            a.verify_cursor::<(String, u64)>("members", "org-1", &c),
            Some(("ann".to_string(), 7))
        );
        assert!(
            a.verify_cursor::<(String, u64)>("members", "org-2", &c).is_none(),
            "another scope"
        );
        assert!(
            a.verify_cursor::<(String, u64)>("teams", "org-1", &c).is_none(),
            "another list"
        );
        assert!(
            ring(2).verify_cursor::<(String, u64)>("members", "org-1", &c).is_none(),
            "another key"
        );
        let (body, mac) = c.rsplit_once('.').unwrap();
        // One character of the payload changed, the signature kept. (The payload's base64
        // need not hold any given letter, so change one that is there.)
        let mut edited: Vec<char> = body.chars().collect();
        let i = edited.len() / 2 + 3;
        edited[i] = if edited[i] == 'A' { 'B' } else { 'A' };
        let forged = format!("{}.{mac}", edited.into_iter().collect::<String>());
        assert_ne!(forged, c, "the forgery edits the cursor");
        assert!(
            a.verify_cursor::<(String, u64)>("members", "org-1", &forged).is_none(),
            "edited"
        );
        assert!(
            a.verify_cursor::<u64>("members", "org-1", "12").is_none(),
            "not a cursor"
        );
    }

    #[test]
    fn api_keys_parse_back_to_their_hash() {
        let (token, hash) = new_api_key("abc");
        assert_eq!(parse_api_key(&token), Some(("abc", hash.clone())));
        assert!(parse_api_key("jsck_abc").is_none());
        assert!(hashes_match(&hash, &hash) && !hashes_match(&hash, "x"));
    }
}
