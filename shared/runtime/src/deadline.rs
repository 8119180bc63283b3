//! An invocation's deadline: the one home of the arithmetic from Lambda's
//! deadline to the moment a handler must stop working and answer.
//!
//! Lambda kills a function at its timeout, and a killed HTTP invocation
//! reaches the caller as API Gateway's bare 500; a killed Kafka invocation
//! is retried without a word. So every wait and retry loop works against
//! the deadline *less a margin*, gives up at it with a transient error, and
//! the margin is left to answer (503 with `retry-after`, or a failed
//! invocation the event source retries).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// When a handler must have given up, to answer before Lambda's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// Time kept back from Lambda's deadline: to answer, log and flush. A
    /// call in flight at the deadline (DynamoDB, a Kafka delivery) is
    /// abandoned, so nothing else runs in it.
    pub const MARGIN: Duration = Duration::from_millis(1500);

    pub fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline(Instant::now() + budget)
    }

    /// An invocation with Lambda's deadline `lambda` (the context's
    /// `deadline()`): that moment less [`Deadline::MARGIN`].
    pub fn from_lambda(lambda: SystemTime) -> Self {
        Self::from_lambda_keeping(lambda, Self::MARGIN)
    }

    /// As [`Deadline::from_lambda`], keeping `margin` back instead: for a
    /// handler whose last step takes longer than [`Deadline::MARGIN`].
    pub fn from_lambda_keeping(lambda: SystemTime, margin: Duration) -> Self {
        let remaining = lambda.duration_since(SystemTime::now()).unwrap_or_default();
        Self::after(remaining.saturating_sub(margin))
    }

    /// An invocation starting now of a function with this `Timeout` (the
    /// template's): how the local runner and tests invoke a handler.
    pub fn for_timeout(timeout: Duration) -> Self {
        Self::after(timeout.saturating_sub(Self::MARGIN))
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether `work` started now would still end before the deadline.
    pub fn allows(self, work: Duration) -> bool {
        Instant::now() + work < self.0
    }

    /// `pause` shortened so that an attempt taking `attempt` after it still
    /// ends before the deadline; `None` when not even the attempt fits.
    pub fn pause_before(self, pause: Duration, attempt: Duration) -> Option<Duration> {
        if !self.allows(attempt) {
            return None;
        }
        Some(pause.min(self.remaining().saturating_sub(attempt)))
    }
}

impl From<Instant> for Deadline {
    fn from(instant: Instant) -> Self {
        Deadline(instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bounds from one side only, with slack: a loaded machine makes time
    /// pass between the lines, never less.
    #[test]
    fn arithmetic_from_lambdas_deadline() {
        let in_ten = SystemTime::now() + Duration::from_secs(10);
        let d = Deadline::from_lambda(in_ten);
        assert!(d.remaining() <= Duration::from_millis(8500));
        assert!(d.remaining() > Duration::from_secs(5));
        assert_eq!(
            Deadline::from_lambda(SystemTime::now() - Duration::from_secs(1)).remaining(),
            Duration::ZERO
        );
        let d = Deadline::for_timeout(Duration::from_secs(15));
        assert!(d.remaining() <= Duration::from_millis(13_500));
        assert!(d.remaining() > Duration::from_secs(10));
        assert!(d.allows(Duration::from_secs(1)));
        assert!(!d.allows(Duration::from_secs(14)));
    }

    /// The pause before a retry: cut short so that the attempt after it
    /// still ends before the deadline, none when not even the attempt fits.
    #[test]
    fn pauses_leave_room_for_the_attempt() {
        let d = Deadline::after(Duration::from_secs(10));
        let secs = Duration::from_secs;
        for (pause, attempt, at_most, at_least) in [
            (secs(1), secs(1), Some(secs(1)), Some(secs(1))),
            (secs(20), secs(1), Some(secs(9)), Some(secs(8))),
            (secs(20), secs(9), Some(secs(1)), Some(Duration::ZERO)),
            (secs(1), secs(11), None, None),
        ] {
            let got = d.pause_before(pause, attempt);
            assert_eq!(got.is_some(), at_most.is_some(), "{pause:?} {attempt:?}");
            if let (Some(got), Some(at_most), Some(at_least)) = (got, at_most, at_least) {
                assert!(
                    got <= at_most && got >= at_least,
                    "{pause:?} {attempt:?}: {got:?}"
                );
            }
        }
    }
}
