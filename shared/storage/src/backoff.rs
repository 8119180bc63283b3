//! How long a retry loop waits before its next attempt (the deadline then
//! shortens the wait, see `Store::pause`).

use std::time::Duration;

/// Full-jitter exponential backoff: 0..min(2^attempt, 64) ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 1u64 << attempt.min(6);
    Duration::from_micros(fastrand::u64(0..cap * 1000))
}

/// Backoff after losing the race for the head item, in units of the commit
/// round trip just measured: full jitter over 2^attempt round trips, at most
/// 64. Losing means someone else just committed; the losers' retries must
/// spread out over about as many round trips as there are writers, or they
/// keep colliding and their wasted attempts crowd out the winner's.
pub(crate) fn contention_backoff(attempt: u32, round_trip: Duration) -> Duration {
    let unit = round_trip.clamp(Duration::from_millis(1), Duration::from_millis(100));
    let window = unit * (1u32 << attempt.min(6));
    let micros = window.as_micros() as u64;
    Duration::from_micros(fastrand::u64(0..micros.max(1)))
}
