//! Process-wide registry of secret strings that must never reach a log line.
//!
//! Tokens register themselves when created ([`crate::token::Token::new`]); task payload secrets
//! (model API keys, git tokens, task tokens) are registered when a task arrives. The log writer
//! passes every line through [`redact`].

use std::borrow::Cow;
use std::sync::RwLock;

/// Secrets shorter than this are not registered: replacing very short strings would mangle logs
/// without protecting anything worth protecting.
const MIN_SECRET_LEN: usize = 6;
const MASK: &str = "[REDACTED]";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remember `secret` so that [`redact`] masks it from now on.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_owned());
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by `[REDACTED]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_and_leaves_other_text() {
        register_secret("sk-test-secret-123");
        register_secret("abc"); // too short: ignored
        assert_eq!(redact("key=sk-test-secret-123 abc"), "key=[REDACTED] abc");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
