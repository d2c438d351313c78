//! Process-wide registry of secret strings that must never reach a log line.
//!
//! Tokens register themselves for the life of the process when created
//! ([`crate::token::Token::new`]); task payload secrets (model API keys, git tokens, task tokens)
//! are held by the task ([`hold_secrets`]) from its arrival and forgotten some time after it ends,
//! unless another task or the device still holds them. The log writer passes every line through
//! [`redact`].
//!
//! Each secret is also matched in the forms it takes when embedded in JSON (escaped) or in a URL
//! (percent-encoded). Matching is one pass of an Aho-Corasick automaton over the line, rebuilt
//! lazily after the set changed: registering and matching stay linear in the size of the set and
//! of the line, whatever a payload carries.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};

/// Secrets shorter than this are not registered: replacing very short strings would mangle logs
/// without protecting anything worth protecting.
const MIN_SECRET_LEN: usize = 6;
/// Longer secrets are registered by their first this-many bytes. Building the matcher grows with
/// the square of a pattern's length for repetitive patterns (measured: 16 KiB 0.47 s, 100 KiB
/// 22 s), and the session loop waits on it; real keys and tokens are far shorter. Tasks whose
/// secrets are longer are refused ([`crate::task::payload::PayloadRefusal::SecretTooLong`]), so
/// the prefix only guards values that never reach a child.
pub const MAX_SECRET_LEN: usize = 4096;
const MASK: &str = "[REDACTED]";

static SECRETS: LazyLock<RwLock<SecretSet>> = LazyLock::new(Default::default);

/// Remember `secret` for the life of the process, so that [`redact`] masks it from now on.
pub fn register_secret(secret: &str) {
    write().insert_permanent(secret);
}

/// Whether `secret` is masked right now (by itself, not as part of another secret).
pub fn is_registered(secret: &str) -> bool {
    read().contains(secret)
}

/// `text` with every registered secret (and its escaped and encoded forms) replaced by
/// `[REDACTED]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let matcher = read().matcher.clone();
    let matcher = match matcher {
        Some(m) => m,
        None => match write().matcher() {
            Some(m) => m,
            None => return Cow::Borrowed(text),
        },
    };
    mask(&matcher, text)
}

/// Hold `secrets` for a task: they are masked until the returned hold is dropped and then
/// `forget_after` has passed (log lines about the task's end still mention them), unless another
/// holder still has them. The delay needs a tokio runtime at drop time; without one they are
/// released at once.
pub fn hold_secrets(secrets: &[String], forget_after: Duration) -> SecretHold {
    let mut set = write();
    let secrets: Vec<String> = secrets
        .iter()
        .filter_map(|s| set.hold(s))
        .collect::<Vec<_>>();
    SecretHold {
        secrets,
        forget_after,
    }
}

/// A task's claim on its secrets; see [`hold_secrets`].
#[derive(Debug)]
pub struct SecretHold {
    secrets: Vec<String>,
    forget_after: Duration,
}

impl Drop for SecretHold {
    fn drop(&mut self) {
        let secrets = std::mem::take(&mut self.secrets);
        if secrets.is_empty() {
            return;
        }
        let release = move || {
            let mut set = write();
            for s in &secrets {
                set.release(s);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if !self.forget_after.is_zero() => {
                let delay = self.forget_after;
                rt.spawn(async move {
                    tokio::time::sleep(delay).await;
                    release();
                });
            }
            _ => release(),
        }
    }
}

fn read() -> std::sync::RwLockReadGuard<'static, SecretSet> {
    SECRETS.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, SecretSet> {
    SECRETS.write().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Holders {
    /// Held for the life of the process (the device token).
    permanent: bool,
    /// Tasks holding it.
    tasks: usize,
}

/// The secrets and the automaton that finds them.
#[derive(Debug, Default)]
struct SecretSet {
    secrets: HashMap<String, Holders>,
    /// `None` after a change: rebuilt on the next [`SecretSet::matcher`].
    matcher: Option<Arc<AhoCorasick>>,
}

impl SecretSet {
    fn insert_permanent(&mut self, secret: &str) {
        if let Some(secret) = usable(secret) {
            self.entry(secret).permanent = true;
        }
    }

    /// One more task holds `secret`; the trimmed secret, when it is long enough to be one.
    fn hold(&mut self, secret: &str) -> Option<String> {
        let secret = usable(secret)?;
        self.entry(secret).tasks += 1;
        Some(secret.to_owned())
    }

    fn release(&mut self, secret: &str) {
        let Some(holders) = self.secrets.get_mut(secret) else {
            return;
        };
        holders.tasks = holders.tasks.saturating_sub(1);
        if holders.tasks == 0 && !holders.permanent {
            self.secrets.remove(secret);
            self.matcher = None;
        }
    }

    fn entry(&mut self, secret: &str) -> &mut Holders {
        if !self.secrets.contains_key(secret) {
            self.matcher = None;
        }
        self.secrets.entry(secret.to_owned()).or_default()
    }

    fn contains(&self, secret: &str) -> bool {
        usable(secret).is_some_and(|s| self.secrets.contains_key(s))
    }

    /// The automaton for the current set (`None`: nothing to mask).
    fn matcher(&mut self) -> Option<Arc<AhoCorasick>> {
        if self.secrets.is_empty() {
            return None;
        }
        if self.matcher.is_none() {
            let mut patterns: Vec<String> = self.secrets.keys().flat_map(|s| forms(s)).collect();
            patterns.sort_unstable();
            patterns.dedup();
            // Leftmost-longest: a secret that contains another is masked whole.
            let built = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .expect("an automaton of plain strings builds");
            self.matcher = Some(Arc::new(built));
        }
        self.matcher.clone()
    }
}

fn usable(secret: &str) -> Option<&str> {
    let secret = secret.trim();
    let mut end = secret.len().min(MAX_SECRET_LEN);
    while !secret.is_char_boundary(end) {
        end -= 1;
    }
    (secret.len() >= MIN_SECRET_LEN).then_some(&secret[..end])
}

fn mask<'a>(matcher: &AhoCorasick, text: &'a str) -> Cow<'a, str> {
    let mut out = String::new();
    let mut last = 0;
    for m in matcher.find_iter(text) {
        out.push_str(&text[last..m.start()]);
        out.push_str(MASK);
        last = m.end();
    }
    if last == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// The ways `secret` is written in a log line: as is, escaped inside a JSON string (also with
/// `\/`, as some encoders write it), and percent-encoded (upper- and lower-case hex, and the
/// form encoding's `+` for a space).
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_owned()];
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(secret);
    out.push(json.to_owned());
    out.push(json.replace('/', "\\/"));
    let upper = percent_encode(secret);
    out.push(upper.to_ascii_lowercase_hex());
    out.push(upper.replace("%20", "+"));
    out.push(upper);
    out.sort_unstable();
    out.dedup();
    out
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

trait LowercaseHex {
    fn to_ascii_lowercase_hex(&self) -> String;
}

impl LowercaseHex for String {
    /// The `%XX` escapes in lower case, the rest untouched.
    fn to_ascii_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut hex_left = 0;
        for c in self.chars() {
            if c == '%' {
                hex_left = 2;
                out.push(c);
            } else if hex_left > 0 {
                hex_left -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
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

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        register_secret("inner-secret-77");
        register_secret("outer-inner-secret-77-tail");
        assert_eq!(
            redact("a outer-inner-secret-77-tail b inner-secret-77"),
            "a [REDACTED] b [REDACTED]"
        );
    }

    #[test]
    fn json_escaped_forms_are_masked() {
        register_secret("p\"w\\d/with-quote-slash");
        let line = serde_json::json!({"key": "p\"w\\d/with-quote-slash"}).to_string();
        assert_eq!(redact(&line), r#"{"key":"[REDACTED]"}"#);
        assert_eq!(
            redact(r#"{"key":"p\"w\\d\/with-quote-slash"}"#),
            r#"{"key":"[REDACTED]"}"#
        );
    }

    #[test]
    fn percent_encoded_forms_are_masked() {
        register_secret("s3cr3t/pa ss:word");
        for encoded in [
            "s3cr3t%2Fpa%20ss%3Aword",
            "s3cr3t%2fpa%20ss%3aword",
            "s3cr3t%2Fpa+ss%3Aword",
        ] {
            assert_eq!(
                redact(&format!("https://h/?k={encoded}&x=1")),
                "https://h/?k=[REDACTED]&x=1",
                "{encoded}"
            );
        }
    }

    #[test]
    fn a_task_hold_is_forgotten_after_its_delay_unless_still_held() {
        let secret = "task-held-secret-0001".to_owned();
        let shared = "task-shared-secret-0002".to_owned();
        let first = hold_secrets(&[secret.clone(), shared.clone()], Duration::ZERO);
        let second = hold_secrets(std::slice::from_ref(&shared), Duration::ZERO);
        assert!(is_registered(&secret) && is_registered(&shared));
        drop(first);
        assert!(!is_registered(&secret), "released without a delay");
        assert_eq!(redact(&secret), secret.as_str());
        assert!(is_registered(&shared), "the second task still holds it");
        drop(second);
        assert!(!is_registered(&shared));
    }

    #[test]
    fn a_permanent_secret_outlives_task_holds() {
        let token = "device-token-held-by-a-task-too";
        register_secret(token);
        drop(hold_secrets(&[token.to_owned()], Duration::ZERO));
        assert!(is_registered(token));
    }

    #[tokio::test]
    async fn the_forget_delay_runs_on_the_runtime() {
        let secret = "delayed-forget-secret-0003".to_owned();
        let delay = Duration::from_millis(50);
        let dropped = std::time::Instant::now();
        drop(hold_secrets(std::slice::from_ref(&secret), delay));
        assert!(is_registered(&secret), "kept during the delay");
        tokio::time::timeout(Duration::from_secs(10), async {
            while is_registered(&secret) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("forgotten after the delay");
        assert!(dropped.elapsed() >= delay);
    }

    #[test]
    fn forms_cover_escaped_and_encoded_spellings() {
        assert_eq!(forms("plain-secret"), vec!["plain-secret".to_owned()]);
        let f = forms("a b/c\"d");
        for expected in [
            "a b/c\"d",
            "a b/c\\\"d",
            "a b\\/c\\\"d",
            "a%20b%2Fc%22d",
            "a%20b%2fc%22d",
            "a+b%2Fc%22d",
        ] {
            assert!(f.iter().any(|x| x == expected), "{expected} in {f:?}");
        }
    }

    #[test]
    fn a_huge_secret_is_registered_by_its_prefix_and_cheaply() {
        // 1 MB of one letter: the whole value as a pattern took minutes to build (quadratic).
        let huge = "q".repeat(1_000_000);
        let _hold = hold_secrets(std::slice::from_ref(&huge), Duration::ZERO);
        assert!(is_registered(&huge));
        let line = format!("header={huge}");
        let masked = redact(&line);
        assert!(masked.starts_with("header=[REDACTED]"));
        assert!(masked.len() < line.len());
    }
}
