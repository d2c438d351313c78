//! On-the-spot checks of what the user pastes in the token window (format, JWT expiry, server
//! URL). Pure: the clock is a parameter. How a token's expiry is put into words is the core's
//! ([`wegent_executor::token_expiry`]), shared with the CLI.

use std::time::SystemTime;

use serde::Serialize;
use wegent_executor::token::{Token, TokenKind};
pub use wegent_executor::token_expiry::{expiry, human_duration, Expiry};

/// What the window shows under the token field while the user types. Never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenVerdict {
    /// The format is usable (the server may still refuse it).
    pub ok: bool,
    /// `"jwt"` / `"api_key"` when recognised.
    pub kind: Option<TokenKind>,
    /// One sentence for the user.
    pub message: String,
    /// A safe hint like `eyJhbG…`.
    pub hint: Option<String>,
}

pub fn check_token(raw: &str, now: SystemTime) -> TokenVerdict {
    let token = Token::new(raw);
    let kind = match token.check_format() {
        Ok(kind) => kind,
        Err(e) => {
            return TokenVerdict {
                ok: false,
                kind: None,
                message: capitalise(&e.to_string()) + ".",
                hint: None,
            }
        }
    };
    let hint = Some(token.hint());
    let (ok, message) = match (kind, expiry(token.expires_at(), now)) {
        (TokenKind::ApiKey, _) => (
            true,
            "API key: it can connect this device, but cannot set it as your default device \
             (use Sign in for that)."
                .to_owned(),
        ),
        (TokenKind::Jwt, Expiry::Expired { ago }) => (
            false,
            format!(
                "This login token expired {} ago. Sign in again or copy a fresh token.",
                human_duration(ago)
            ),
        ),
        (TokenKind::Jwt, Expiry::Soon { remaining }) => (
            true,
            format!(
                "Login token, but it expires in {}: you will need a new one soon.",
                human_duration(remaining)
            ),
        ),
        (TokenKind::Jwt, Expiry::Valid { remaining }) => (
            true,
            format!(
                "Login token for {}, valid for {}.",
                token.user_name().unwrap_or_else(|| "your account".into()),
                human_duration(remaining)
            ),
        ),
        (TokenKind::Jwt, Expiry::Never) => (true, "Login token without an expiry.".to_owned()),
    };
    TokenVerdict {
        ok,
        kind: Some(kind),
        message,
        hint,
    }
}

/// Why a typed server URL cannot be used; each says what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error("Enter the address of your Wegent server, e.g. https://wegent.example.com")]
    Empty,
    #[error("{0:?} must start with http:// or https://, e.g. https://wegent.example.com")]
    NotHttp(String),
    #[error("{0:?} has no valid host name")]
    NoHost(String),
}

/// Normalise a server URL typed by the user: trims, adds nothing silently except removing a
/// trailing `/` or `/api` (people paste the API base), and refuses anything that is not http(s).
pub fn check_server_url(raw: &str) -> Result<String, ServerUrlError> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(ServerUrlError::Empty);
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ServerUrlError::NotHttp(url.to_owned()))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ServerUrlError::NoHost(url.to_owned()));
    }
    let mut normalised = url.trim_end_matches('/').to_owned();
    if let Some(base) = normalised.strip_suffix("/api") {
        normalised = base.to_owned();
    }
    Ok(normalised)
}

/// The first letter in upper case (errors from lower layers start in lower case).
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::time::{Duration, UNIX_EPOCH};

    fn jwt(claims: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"HS256"}"#),
            e.encode(claims)
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn valid_login_token_names_user_and_lifetime() {
        let v = check_token(
            &jwt(r#"{"sub":"alice","exp":1000000}"#),
            at(1000000 - 3 * 86400),
        );
        assert!(v.ok);
        assert_eq!(v.kind, Some(TokenKind::Jwt));
        assert_eq!(v.message, "Login token for alice, valid for 3 days.");
        assert_eq!(v.hint.as_deref(), Some("eyJhbG…"));
    }

    #[test]
    fn expired_token_is_refused_on_the_spot() {
        let v = check_token(&jwt(r#"{"sub":"alice","exp":1000}"#), at(1000 + 7200));
        assert!(!v.ok);
        assert!(v.message.contains("expired 2 h ago"), "{}", v.message);
    }

    #[test]
    fn expiring_token_is_accepted_with_a_warning() {
        let v = check_token(&jwt(r#"{"sub":"a","exp":5000}"#), at(5000 - 600));
        assert!(v.ok);
        assert!(v.message.contains("expires in 10 min"), "{}", v.message);
    }

    #[test]
    fn api_key_warns_about_default_device() {
        let v = check_token("wg-0123456789abcdef", at(0));
        assert!(v.ok);
        assert_eq!(v.kind, Some(TokenKind::ApiKey));
        assert!(v.message.contains("cannot set it as your default"));
    }

    #[test]
    fn junk_is_explained_and_never_echoed() {
        let v = check_token("not a token at all", at(0));
        assert!(!v.ok);
        assert!(v.message.starts_with("The token contains whitespace"));
        assert!(!v.message.contains("not a token"));
        let v = check_token("", at(0));
        assert_eq!(v.message, "The token is empty.");
    }

    #[test]
    fn server_urls_are_normalised_or_refused() {
        assert_eq!(
            check_server_url(" https://wegent.example.com/api/ ").unwrap(),
            "https://wegent.example.com"
        );
        assert_eq!(
            check_server_url("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert!(check_server_url("wegent.example.com")
            .unwrap_err()
            .to_string()
            .contains("http://"));
        assert!(check_server_url("").is_err());
        assert!(check_server_url("https:///x").is_err());
    }
}
