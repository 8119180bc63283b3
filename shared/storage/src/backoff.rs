//! How long a retry loop waits before its next attempt (the deadline then
//! shortens the wait, see `Store::pause`).

use std::time::Duration;

/// Full-jitter exponential backoff: 0..min(2^attempt, 64) ms.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 1u64 << attempt.min(6);
    Duration::from_micros(fastrand::u64(0..cap * 1000))
}

/// Lost races after which a writer stops backing off (see
/// [`contention_backoff`]).
const AGED_AFTER: u32 = 5;

/// Backoff after losing the race for the head item, in units of the commit
/// round trip just measured.
///
/// Up to [`AGED_AFTER`] losses: full jitter over 2^attempt round trips (at
/// most 32). Losing means someone else just committed; the losers' retries
/// must spread out over about as many round trips as there are writers, or
/// they keep colliding and their wasted attempts crowd out the winner's.
///
/// After that, at most half a round trip. A loser holds the head the
/// winner left, the freshest there is, while writers starting afresh read
/// theirs first; a long wait throws that lead away, and with the window
/// still growing the same few writers lost again and again while the rest
/// committed: 16 writers on one database left one commit waiting 10–22 s
/// (`make bench`, "Contention"). Aged losers go first instead; there are
/// few of them, so they rarely collide with each other.
pub(crate) fn contention_backoff(attempt: u32, round_trip: Duration) -> Duration {
    let unit = round_trip.clamp(Duration::from_millis(1), Duration::from_millis(100));
    let window = if attempt > AGED_AFTER {
        unit / 2
    } else {
        unit * (1u32 << attempt)
    };
    let micros = window.as_micros() as u64;
    Duration::from_micros(fastrand::u64(0..micros.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_losers_wait_grows_then_ages_out() {
        let ms = Duration::from_millis;
        // (attempt, round trip, the longest wait allowed)
        let table = [
            (1, ms(10), ms(20)),
            (2, ms(10), ms(40)),
            (5, ms(10), ms(320)),
            // Aged: at most half a round trip.
            (6, ms(10), ms(5)),
            (20, ms(10), ms(5)),
            // The unit is clamped: a round trip inflated by a slow store
            // does not stretch the wait past 100 ms per unit...
            (5, ms(900), ms(3200)),
            // ...and a zero measurement still spreads the losers.
            (1, Duration::ZERO, ms(2)),
        ];
        for (attempt, round_trip, longest) in table {
            let waits: Vec<Duration> = (0..2000)
                .map(|_| contention_backoff(attempt, round_trip))
                .collect();
            let max = *waits.iter().max().unwrap();
            assert!(max < longest, "attempt {attempt}: {max:?} ≥ {longest:?}");
            // Full jitter: the waits fill the window, not just its start.
            assert!(max > longest * 3 / 4, "attempt {attempt}: at most {max:?}");
        }
    }
}
