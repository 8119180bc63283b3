//! An invocation's deadline: the one home of the arithmetic from Lambda's
//! deadline to the moment a handler must stop working and answer.
//!
//! Lambda kills a function at its timeout, and a killed HTTP invocation
//! reaches the caller as API Gateway's bare 500; a killed Kafka invocation
//! is retried without a word. So every wait and retry loop works against
//! the deadline *less a margin*, gives up at it with a transient error, and
//! the margin is left to answer (503 with `retry-after`, or a failed
//! invocation the event source retries).

use std::{
    future::Future,
    time::{Duration, SystemTime},
};

use tokio::time::Instant;

use crate::{Store, StoreError};

/// When a handler must have given up, to answer before Lambda's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// Time kept back from Lambda's deadline: to answer, log and flush. A
    /// DynamoDB call in flight at the deadline is abandoned, so nothing
    /// else runs in it.
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
}

impl From<Instant> for Deadline {
    fn from(instant: Instant) -> Self {
        Deadline(instant)
    }
}

impl Store {
    /// This store with every call bounded by `deadline`: DynamoDB calls in
    /// flight at the deadline are abandoned, retry loops stop before it,
    /// and both answer [`StoreError::Unavailable`]. Cheap (the client and
    /// the condition cache are shared): take one per invocation.
    pub fn with_deadline(&self, deadline: Deadline) -> Store {
        let mut bound = self.clone();
        bound.deadline = Some(deadline);
        bound
    }

    /// The deadline this store works against, if any.
    pub fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// Runs one DynamoDB call, abandoned at the deadline.
    pub(crate) async fn in_time<F: Future>(
        &self,
        operation: &str,
        call: F,
    ) -> Result<F::Output, StoreError> {
        match self.deadline {
            None => Ok(call.await),
            Some(deadline) => tokio::time::timeout_at(deadline.instant(), call)
                .await
                .map_err(|_| out_of_time(operation)),
        }
    }

    /// Sleeps `pause` before the next attempt of a retry loop, shortened so
    /// that an attempt taking `attempt` still ends before the deadline. When
    /// not even the attempt fits, the loop gives up now rather than run
    /// into the function's timeout (or start a commit it cannot see
    /// through).
    pub(crate) async fn pause(
        &self,
        mut pause: Duration,
        attempt: Duration,
        giving_up: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        if let Some(deadline) = self.deadline {
            if !deadline.allows(attempt) {
                return Err(StoreError::Unavailable(giving_up()));
            }
            pause = pause.min(deadline.remaining().saturating_sub(attempt));
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// The error of a call abandoned at the deadline.
pub(crate) fn out_of_time(operation: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{operation}: not answered before the invocation's deadline"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

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

    fn store() -> Store {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            StoreConfig::new("t"),
        )
    }

    #[tokio::test]
    async fn a_pause_ends_in_time_for_the_next_attempt_or_gives_up() {
        let store = store();
        // Unbound: sleeps as asked.
        store
            .pause(
                Duration::from_millis(1),
                Duration::from_secs(60),
                String::new,
            )
            .await
            .unwrap();

        let bound = store.with_deadline(Deadline::after(Duration::from_millis(200)));
        let started = Instant::now();
        // A 10 s pause is cut short so that a 50 ms attempt still fits.
        bound
            .pause(
                Duration::from_secs(10),
                Duration::from_millis(50),
                String::new,
            )
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "cut short");
        // An attempt that cannot fit any more: give up, at once.
        let started = Instant::now();
        let err = bound
            .pause(Duration::from_secs(10), Duration::from_secs(1), || {
                "busy".to_owned()
            })
            .await
            .unwrap_err();
        assert_eq!(err, StoreError::Unavailable("busy".into()));
        assert!(started.elapsed() < Duration::from_secs(5), "at once");
    }
}
