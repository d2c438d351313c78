//! One-time console sign-in links (`<url>/#login=<code>`): how the tray's demo opens the console
//! already signed in, now that the demo password is random. A code works once, for a few
//! minutes, and travels in the URL fragment, which browsers never send to a server.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::User;

/// How long a link stays valid.
pub const LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Open codes and the user each signs in.
#[derive(Default)]
pub struct SignInLinks {
    codes: HashMap<String, (User, Instant)>,
}

impl SignInLinks {
    /// A fresh code for `user`, valid until `now + LIFETIME`. Expired codes are dropped.
    pub fn issue(&mut self, user: User, now: Instant) -> String {
        self.codes.retain(|_, (_, until)| *until > now);
        let code = crate::random_token(32);
        self.codes.insert(code.clone(), (user, now + LIFETIME));
        code
    }

    /// The code's user, once: the code is gone afterwards, used or expired.
    pub fn redeem(&mut self, code: &str, now: Instant) -> Option<User> {
        let (user, until) = self.codes.remove(code)?;
        (until > now).then_some(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_expires() {
        let mut links = SignInLinks::default();
        let user = User {
            id: 1,
            user_name: "admin".into(),
        };
        let t0 = Instant::now();
        let code = links.issue(user.clone(), t0);
        assert_eq!(links.redeem("other", t0), None);
        assert_eq!(links.redeem(&code, t0), Some(user.clone()));
        assert_eq!(links.redeem(&code, t0), None, "single use");
        let late = links.issue(user, t0);
        assert_eq!(links.redeem(&late, t0 + LIFETIME), None, "expired");
    }
}
