//! Reconnect delays: exponential, capped, with full jitter (AWS "full jitter": a uniformly random
//! delay in `[0, min(max, initial · 2^attempt)]`), so a fleet of devices that lost the same server
//! does not come back in lockstep.

use std::time::Duration;

use crate::config::BackoffConfig;

#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// The ceiling for the current attempt, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial
            .checked_mul(factor)
            .unwrap_or(self.config.max)
            .min(self.config.max)
    }

    /// The delay before the next attempt. `jitter` is a uniform sample in `[0, 1)`.
    /// `rate_limited`: the server refused with "Too many device connection attempts"; its window
    /// is 30 s, so never come back sooner than `rate_limited_floor`.
    pub fn next_delay(&mut self, jitter: f64, rate_limited: bool) -> Duration {
        let delay = self.ceiling().mul_f64(jitter.clamp(0.0, 1.0));
        self.attempt = self.attempt.saturating_add(1);
        if rate_limited {
            // Jitter above the floor, so rate-limited devices spread out too.
            self.config.rate_limited_floor + self.config.initial.mul_f64(jitter.clamp(0.0, 1.0))
        } else {
            delay
        }
    }

    /// Forget past failures (after a stable period online, or when the user asks to reconnect).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn stable_after(&self) -> Duration {
        self.config.stable_after
    }

    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig::default())
    }

    #[test]
    fn ceiling_doubles_from_one_second_to_the_cap() {
        let mut b = backoff();
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling().as_secs();
                b.next_delay(0.5, false);
                c
            })
            .collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let mut b = backoff();
        for _ in 0..4 {
            b.next_delay(0.0, false);
        }
        let mut lo = b.clone();
        let mut hi = b.clone();
        assert_eq!(lo.next_delay(0.0, false), Duration::ZERO);
        assert_eq!(hi.next_delay(0.999_999, false).as_secs(), 15);
    }

    #[test]
    fn rate_limited_waits_at_least_the_server_window() {
        let mut b = backoff();
        let d = b.next_delay(0.0, true);
        assert!(d >= Duration::from_secs(30), "{d:?}");
        assert!(b.next_delay(0.9, true) < Duration::from_secs(32));
    }

    #[test]
    fn reset_starts_over() {
        let mut b = backoff();
        for _ in 0..10 {
            b.next_delay(1.0, false);
        }
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = backoff();
        for _ in 0..200 {
            b.next_delay(1.0, false);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(30));
    }
}
