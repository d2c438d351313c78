//! When a login token expires, in words: one classification and one phrasing, shared by the CLI
//! and the tray. Pure: the clock is a parameter. The device never verifies a token locally; `exp`
//! is only read to warn the user in time (see [`crate::token::Token::expires_at`]).

use std::time::{Duration, SystemTime};

/// Warn this long before a login token expires (Wegent login tokens last 7 days).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(24 * 60 * 60);

/// Where a token stands with respect to its `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// API key or JWT without `exp`.
    Never,
    Valid {
        remaining: Duration,
    },
    /// Expires within [`EXPIRY_WARNING`].
    Soon {
        remaining: Duration,
    },
    Expired {
        ago: Duration,
    },
}

pub fn expiry(expires_at: Option<SystemTime>, now: SystemTime) -> Expiry {
    let Some(at) = expires_at else {
        return Expiry::Never;
    };
    match at.duration_since(now) {
        Ok(remaining) if remaining.is_zero() => Expiry::Expired {
            ago: Duration::ZERO,
        },
        Ok(remaining) if remaining <= EXPIRY_WARNING => Expiry::Soon { remaining },
        Ok(remaining) => Expiry::Valid { remaining },
        Err(e) => Expiry::Expired { ago: e.duration() },
    }
}

impl Expiry {
    /// `expires in 5 h` / `expired 2 h ago`; `None` when the token does not expire.
    pub fn phrase(self) -> Option<String> {
        match self {
            Self::Never => None,
            Self::Valid { remaining } | Self::Soon { remaining } => {
                Some(format!("expires in {}", human_duration(remaining)))
            }
            Self::Expired { ago } => Some(format!("expired {} ago", human_duration(ago))),
        }
    }
}

/// "3 days", "5 h", "12 min", "40 s": coarse on purpose, for menus, notifications and status
/// lines. Rounded to the nearest unit, so a token issued for 7 days a second ago reads "7 days",
/// not "6 days".
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let nearest = |unit: u64| (s + unit / 2) / unit;
    match s {
        0..=59 => format!("{s} s"),
        60..=3569 => format!("{} min", nearest(60)),
        3570..=169_199 => format!("{} h", nearest(3600)),
        _ => format!("{} days", nearest(86_400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expiry_classification() {
        assert_eq!(expiry(None, at(5)), Expiry::Never);
        assert_eq!(
            expiry(Some(at(100)), at(40)),
            Expiry::Soon {
                remaining: Duration::from_secs(60)
            }
        );
        assert_eq!(
            expiry(Some(at(200_000)), at(0)),
            Expiry::Valid {
                remaining: Duration::from_secs(200_000)
            }
        );
        assert_eq!(
            expiry(Some(at(10)), at(70)),
            Expiry::Expired {
                ago: Duration::from_secs(60)
            }
        );
        assert_eq!(
            expiry(Some(at(10)), at(10)),
            Expiry::Expired {
                ago: Duration::ZERO
            }
        );
    }

    #[test]
    fn phrases_say_when() {
        assert_eq!(expiry(None, at(0)).phrase(), None);
        assert_eq!(
            expiry(Some(at(7 * 86_400)), at(0)).phrase().as_deref(),
            Some("expires in 7 days")
        );
        assert_eq!(
            expiry(Some(at(3600)), at(0)).phrase().as_deref(),
            Some("expires in 1 h")
        );
        assert_eq!(
            expiry(Some(at(0)), at(7200)).phrase().as_deref(),
            Some("expired 2 h ago")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(8)), "8 s");
        assert_eq!(human_duration(Duration::from_secs(130)), "2 min");
        assert_eq!(human_duration(Duration::from_secs(5 * 3600)), "5 h");
        assert_eq!(human_duration(Duration::from_secs(7 * 86400)), "7 days");
        assert_eq!(human_duration(Duration::from_secs(7 * 86400 - 3)), "7 days");
        assert_eq!(human_duration(Duration::from_secs(3599)), "1 h");
        assert_eq!(human_duration(Duration::from_secs(89)), "1 min");
    }
}
