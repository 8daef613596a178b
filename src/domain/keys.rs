//! Secrets: agent keys (`dlg_`), project tokens (`dlp_`) and webhook
//! secrets (`whsec_`). Only SHA-256 hashes of keys and tokens are stored;
//! they carry 256 random bits, so a fast hash is enough, and comparison of
//! hashes is constant-time.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AGENT_KEY_PREFIX: &str = "dlg_";
pub const PROJECT_TOKEN_PREFIX: &str = "dlp_";
/// Characters of a key kept in clear for display and lookup.
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// 32 bytes from the OS CSPRNG.
fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// 32 random bytes as 43 url-safe characters.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

pub fn new_agent_key() -> String {
    format!("{AGENT_KEY_PREFIX}{}", random_token())
}

pub fn new_project_token() -> String {
    format!("{PROJECT_TOKEN_PREFIX}{}", random_token())
}

/// `whsec_` + standard base64 of 32 random bytes: the form Standard
/// Webhooks verifiers decode into the HMAC key (SPEC §9).
pub fn new_webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(random_bytes()))
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_LEN).collect()
}

/// Constant-time equality of two hex hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let key = new_agent_key();
        assert!(key.starts_with("dlg_") && key.len() == 47, "{key}");
        assert!(key[4..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(key, new_agent_key());
        assert!(new_project_token().starts_with("dlp_"));
    }

    #[test]
    fn hashes_compare_equal_only_for_the_same_secret() {
        let k = new_agent_key();
        assert!(hashes_match(&hash(&k), &hash(&k)));
        assert!(!hashes_match(&hash(&k), &hash(&new_agent_key())));
    }
}
