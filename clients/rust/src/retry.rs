//! When to send a request again, and after how long. Only what cannot have
//! been refused for its content is retried: a 503 (storage throttled, or
//! the database too busy before the deadline) and a transport fault. Every
//! 4xx is an answer about the request itself, and sending it again gets
//! the same answer. A transaction is retried with the same transaction id,
//! so a commit the first attempt made is answered, never repeated.

use std::time::Duration;

/// Bounds on retrying one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff; each retry doubles it, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

/// What an attempt came to, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer (connect, I/O or timeout).
    Transport,
}

pub(crate) fn is_retryable(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Status(503) | Outcome::Transport)
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (after `attempt` failed ones,
    /// `attempt` ≥ 1), or `None` when the bounds say stop. Full jitter:
    /// a random wait up to the exponential ceiling, so clients that failed
    /// together do not come back together; a `retry-after` is a floor.
    pub(crate) fn delay(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.max_delay);
        let wait = ceiling
            .mul_f64(jitter.clamp(0.0, 1.0))
            .max(retry_after.unwrap_or_default().min(self.max_delay));
        (elapsed + wait <= self.max_elapsed).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_503_and_transport_faults_are_retried() {
        for (outcome, retry) in [
            (Outcome::Status(503), true),
            (Outcome::Transport, true),
            (Outcome::Status(500), false),
            (Outcome::Status(502), false),
            (Outcome::Status(400), false),
            (Outcome::Status(404), false),
            (Outcome::Status(409), false),
            (Outcome::Status(413), false),
            (Outcome::Status(429), false),
            (Outcome::Status(200), false),
        ] {
            assert_eq!(is_retryable(outcome), retry, "{outcome:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_bounds() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_elapsed: Duration::from_secs(2),
        };
        let ms = Duration::from_millis;
        let zero = Duration::ZERO;
        for (attempt, elapsed, retry_after, jitter, expected) in [
            (1, zero, None, 1.0, Some(ms(100))),
            (2, zero, None, 1.0, Some(ms(200))),
            (3, zero, None, 1.0, Some(ms(350))), // capped at max_delay
            (4, zero, None, 1.0, Some(ms(350))),
            (5, zero, None, 1.0, None), // max_attempts reached
            (2, zero, None, 0.5, Some(ms(100))),
            (2, zero, None, 0.0, Some(zero)),
            (1, zero, Some(ms(300)), 0.0, Some(ms(300))), // retry-after a floor
            (1, zero, Some(Duration::from_secs(60)), 0.0, Some(ms(350))),
            (2, ms(1900), None, 0.5, Some(ms(100))),
            (2, ms(1950), None, 1.0, None), // past max_elapsed
        ] {
            assert_eq!(
                policy.delay(attempt, elapsed, retry_after, jitter),
                expected,
                "attempt {attempt} after {elapsed:?}, retry-after {retry_after:?}, jitter {jitter}"
            );
        }
    }
}
