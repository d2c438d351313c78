//! HS256 JSON Web Tokens: the login tokens (`sub`, `user_id`, `exp`) and task tokens.
//! Pure functions; the clock is passed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is not three base64url parts")]
    Malformed,
    #[error("token is not HS256")]
    WrongAlgorithm,
    #[error("signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token has no numeric exp")]
    NoExpiry,
}

/// Signs `claims` with HS256.
pub fn encode(claims: &Value, secret: &str) -> String {
    let header = B64.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
    let payload = B64.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = B64.encode(sign(signing_input.as_bytes(), secret));
    format!("{signing_input}.{signature}")
}

/// Verifies signature and `exp` (seconds since the epoch, compared with `now_secs`) and returns the claims.
pub fn decode(token: &str, secret: &str, now_secs: u64) -> Result<Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = decode_json(header_b64)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::WrongAlgorithm);
    }
    let signature = B64.decode(signature).map_err(|_| JwtError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(format!("{header_b64}.{payload}").as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Value = decode_json(payload)?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(JwtError::NoExpiry)?;
    if exp <= now_secs as f64 {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

fn sign(input: &[u8], secret: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key size");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

fn decode_json(part: &str) -> Result<Value, JwtError> {
    let bytes = B64.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let t = encode(
            &json!({"sub": "admin", "user_id": 1, "exp": 2000}),
            "s3cret",
        );
        assert_eq!(decode(&t, "s3cret", 1000).unwrap()["sub"], "admin");
        assert_eq!(decode(&t, "s3cret", 2000), Err(JwtError::Expired));
        assert_eq!(decode(&t, "other", 1000), Err(JwtError::BadSignature));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for junk in ["", "a.b", "a.b.c.d", "not-a-jwt", "e30.e30.@@@", "...."] {
            assert!(decode(junk, "k", 0).is_err(), "{junk}");
        }
    }

    #[test]
    fn missing_exp_and_wrong_alg_are_refused() {
        let t = encode(&json!({"sub": "a"}), "k");
        assert_eq!(decode(&t, "k", 0), Err(JwtError::NoExpiry));
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(r#"{"sub":"a","exp":9}"#)
        );
        assert_eq!(decode(&none, "k", 0), Err(JwtError::WrongAlgorithm));
    }
}
