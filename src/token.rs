//! The user's device token: a Wegent login JWT or a `wg-` API key.
//!
//! The token is a secret: its `Debug` and `Display` never show it, and creating one registers it
//! with [`crate::redact`] so it is masked in every log line.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// What kind of credential a token is; decides what the server lets it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A login JWT (`POST /api/auth/login`): opens the device socket and the device REST API.
    Jwt,
    /// A personal API key (`wg-…`): opens the device socket only; `/api/devices` refuses it.
    ApiKey,
}

/// A device token held in memory only.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

/// Why a pasted string is not a usable token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("the token is empty")]
    Empty,
    #[error("the token contains whitespace; paste it as one line")]
    Whitespace,
    #[error("this is neither a Wegent API key (wg-…) nor a login token (a JWT with three dot-separated parts)")]
    Unrecognised,
    #[error("this JWT has no expiry or user (it looks like a task token, which cannot open a device connection)")]
    NotALoginToken,
}

impl Token {
    /// Normalise a pasted token: trim, strip a `Bearer ` prefix (the server does not), and
    /// register it for log redaction. Does not check the format; see [`Token::check_format`].
    pub fn new(raw: &str) -> Self {
        let trimmed = raw.trim();
        let stripped = trimmed
            .strip_prefix("Bearer ")
            .or_else(|| trimmed.strip_prefix("bearer "))
            .unwrap_or(trimmed)
            .trim();
        crate::redact::register_secret(stripped);
        crate::redact::register_secret(raw);
        Token(Arc::from(stripped))
    }

    /// The secret itself, for the Socket.IO `auth` object, an `Authorization` header or the
    /// keychain. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> TokenKind {
        if self.0.starts_with("wg-") {
            TokenKind::ApiKey
        } else {
            TokenKind::Jwt
        }
    }

    /// Check the shape on the spot, before anything talks to a server.
    pub fn check_format(&self) -> Result<TokenKind, TokenFormatError> {
        let t = &*self.0;
        if t.is_empty() {
            return Err(TokenFormatError::Empty);
        }
        if t.chars().any(char::is_whitespace) {
            return Err(TokenFormatError::Whitespace);
        }
        if t.starts_with("wg-") && t.len() > 3 {
            return Ok(TokenKind::ApiKey);
        }
        let claims = jwt_claims(t).ok_or(TokenFormatError::Unrecognised)?;
        if claims.get("sub").and_then(|v| v.as_str()).is_none() {
            return Err(TokenFormatError::NotALoginToken);
        }
        Ok(TokenKind::Jwt)
    }

    /// The JWT `exp`, read without verifying the signature (the server verifies). `None` for API
    /// keys and for JWTs without `exp`.
    pub fn expires_at(&self) -> Option<SystemTime> {
        let exp = jwt_claims(&self.0)?.get("exp")?.as_f64()?;
        (exp >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
    }

    /// The user name (`sub`) of a login JWT, unverified.
    pub fn user_name(&self) -> Option<String> {
        Some(jwt_claims(&self.0)?.get("sub")?.as_str()?.to_owned())
    }

    /// A short, safe hint of which token this is, e.g. `wg-AbC…` or `eyJhbG…` (6 characters).
    pub fn hint(&self) -> String {
        let head: String = self.0.chars().take(6).collect();
        format!("{head}…")
    }
}

fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:?}, redacted)", self.kind())
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[token redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"HS256"}"#),
            e.encode(claims)
        )
    }

    #[test]
    fn strips_bearer_and_detects_kind() {
        let t = Token::new("  Bearer wg-abcdefgh ");
        assert_eq!(t.expose(), "wg-abcdefgh");
        assert_eq!(t.kind(), TokenKind::ApiKey);
        assert_eq!(t.check_format(), Ok(TokenKind::ApiKey));
        assert_eq!(t.expires_at(), None);
    }

    #[test]
    fn reads_jwt_expiry_without_verifying() {
        let t = Token::new(&jwt(r#"{"sub":"admin","user_id":1,"exp":1900000000}"#));
        assert_eq!(t.check_format(), Ok(TokenKind::Jwt));
        assert_eq!(
            t.expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(1_900_000_000))
        );
        assert_eq!(t.user_name().as_deref(), Some("admin"));
    }

    #[test]
    fn rejects_task_tokens_and_junk() {
        let task = Token::new(&jwt(r#"{"task_id":1,"type":"task_token","exp":1}"#));
        assert_eq!(task.check_format(), Err(TokenFormatError::NotALoginToken));
        assert_eq!(
            Token::new("hello").check_format(),
            Err(TokenFormatError::Unrecognised)
        );
        assert_eq!(
            Token::new("  ").check_format(),
            Err(TokenFormatError::Empty)
        );
        assert_eq!(
            Token::new("wg-a b").check_format(),
            Err(TokenFormatError::Whitespace)
        );
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let t = Token::new("wg-supersecretvalue");
        assert!(!format!("{t:?} {t}").contains("supersecret"));
    }
}
