//! Aggregate ids as subject tokens: the domain's one encoding, in the subject alphabet
//! (`~XX` escapes; see [`jsc_domain::ids`]).

use jsc_domain::ids::{TokenKind, decode_token, encode_token};

/// Encodes an aggregate id into a single subject token.
pub fn encode_id(id: &str) -> String {
    encode_token(id, TokenKind::Subject)
}

/// Reverses [`encode_id`]; `None` for a token that is not a valid encoding.
pub fn decode_id(token: &str) -> Option<String> {
    decode_token(token, TokenKind::Subject)
}
