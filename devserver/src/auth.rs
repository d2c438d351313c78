//! Who is calling: connect-time token checks (protocol.md §1.1), REST bearer checks, and the
//! per-address connect rate limit. Decisions are pure given the store and the clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::store::{Store, User};

pub const MISSING_TOKEN: &str = "Missing authentication token";
pub const INVALID_TOKEN: &str = "Invalid or expired token";
pub const INVALID_API_KEY: &str = "Invalid or expired API key";
pub const TOO_MANY_CONNECTS: &str = "Too many device connection attempts";
pub const AUTH_UNAVAILABLE: &str = "Authentication service unavailable";
pub const SHUTTING_DOWN: &str = "Server is shutting down";

/// How a socket authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Jwt,
    ApiKey,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
        }
    }
}

/// The token of a Socket.IO CONNECT `auth` object: only `{"token": "<non-empty string>"}` counts.
pub fn token_from_auth(auth: Option<&Value>) -> Option<&str> {
    auth?.get("token")?.as_str().filter(|t| !t.is_empty())
}

/// `on_connect`'s token check. `Err` is the CONNECT_ERROR message.
pub fn authenticate_connect(
    token: Option<&str>,
    store: &Store,
    secret: &str,
) -> Result<(User, AuthType), &'static str> {
    let token = token.ok_or(MISSING_TOKEN)?;
    if token.starts_with("wg-") {
        return match store.user_by_api_key(token) {
            Ok(Some(user)) => Ok((user, AuthType::ApiKey)),
            Ok(None) => Err(INVALID_API_KEY),
            Err(_) => Err(AUTH_UNAVAILABLE),
        };
    }
    user_from_jwt(token, store, secret)
        .map(|u| (u, AuthType::Jwt))
        .ok_or(INVALID_TOKEN)
}

/// A login JWT's user: valid HS256, not expired, has `sub`, no `scope`, user exists.
pub fn user_from_jwt(token: &str, store: &Store, secret: &str) -> Option<User> {
    let claims = crate::jwt::decode(token, secret, crate::jwt::now_secs()).ok()?;
    if claims.get("scope").is_some() {
        return None;
    }
    let sub = claims.get("sub")?.as_str()?;
    store.user_by_name(sub).ok().flatten()
}

/// A login token for `user`, valid for `lifetime`.
pub fn login_token(user: &User, secret: &str, lifetime: Duration) -> String {
    let exp = crate::jwt::now_secs() + lifetime.as_secs();
    crate::jwt::encode(
        &serde_json::json!({"sub": user.user_name, "user_id": user.id, "exp": exp}),
        secret,
    )
}

/// A per-turn task token: no `sub`, so it cannot open a device socket (protocol.md §5.1).
pub fn task_token(user: &User, task_id: i64, subtask_id: i64, secret: &str) -> String {
    let exp = crate::jwt::now_secs() + 24 * 3600;
    crate::jwt::encode(
        &serde_json::json!({"task_id": task_id, "subtask_id": subtask_id, "user_id": user.id,
            "user_name": user.user_name, "exp": exp, "type": "task_token"}),
        secret,
    )
}

/// Sliding-window connect counter per client address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    attempts: HashMap<String, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Records an attempt; `false` when it is past `max` within `window`.
    pub fn allow(&mut self, addr: &str, now: Instant, window: Duration, max: u32) -> bool {
        let q = self.attempts.entry(addr.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        q.push_back(now);
        q.len() <= max as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Storage;
    use serde_json::json;

    #[test]
    fn connect_refusals_have_the_server_texts() {
        let store = Store::open(&Storage::Memory).unwrap();
        let user = store.upsert_user("admin", "pw").unwrap();
        assert_eq!(
            authenticate_connect(None, &store, "k").unwrap_err(),
            MISSING_TOKEN
        );
        assert_eq!(token_from_auth(Some(&json!({"token": ""}))), None);
        assert_eq!(token_from_auth(Some(&json!("tok"))), None);
        assert_eq!(
            authenticate_connect(Some("junk"), &store, "k").unwrap_err(),
            INVALID_TOKEN
        );
        assert_eq!(
            authenticate_connect(Some("wg-unknown"), &store, "k").unwrap_err(),
            INVALID_API_KEY
        );
        let jwt = login_token(&user, "k", Duration::from_secs(60));
        assert_eq!(
            authenticate_connect(Some(&jwt), &store, "k").unwrap().1,
            AuthType::Jwt
        );
        assert_eq!(
            authenticate_connect(Some(&format!("Bearer {jwt}")), &store, "k").unwrap_err(),
            INVALID_TOKEN
        );
        let task = task_token(&user, 1, 2, "k");
        assert_eq!(
            authenticate_connect(Some(&task), &store, "k").unwrap_err(),
            INVALID_TOKEN
        );
        let expired = crate::jwt::encode(&json!({"sub": "admin", "exp": 1}), "k");
        assert_eq!(
            authenticate_connect(Some(&expired), &store, "k").unwrap_err(),
            INVALID_TOKEN
        );
        let scoped = crate::jwt::encode(
            &json!({"sub": "admin", "scope": "x", "exp": 9_999_999_999u64}),
            "k",
        );
        assert_eq!(
            authenticate_connect(Some(&scoped), &store, "k").unwrap_err(),
            INVALID_TOKEN
        );
    }

    #[test]
    fn rate_limit_refuses_the_31st_within_the_window() {
        let mut rl = RateLimiter::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        for i in 0..30 {
            assert!(rl.allow("1.2.3.4", t0 + Duration::from_millis(i), w, 30));
        }
        assert!(!rl.allow("1.2.3.4", t0 + Duration::from_secs(1), w, 30));
        assert!(rl.allow("5.6.7.8", t0 + Duration::from_secs(1), w, 30));
        assert!(rl.allow("1.2.3.4", t0 + Duration::from_secs(31), w, 30));
    }
}
