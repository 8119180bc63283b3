//! The read → decide → append loop of dynamic consistency boundaries
//! (docs/api.md "Read → decide → append") as one call.

use std::time::Duration;

use crate::{BatchSummary, Client, ClientError, Condition, Event, Selector};

/// Attempts `decide_and_append` makes before giving up with
/// [`ClientError::Contention`].
pub const DEFAULT_DCB_ATTEMPTS: u32 = 20;

/// What one `decide_and_append` came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The events were appended.
    Appended(BatchSummary),
    /// The decision was to append nothing (it saw the events as of this
    /// revision).
    Nothing { as_of: u64 },
}

impl Client {
    /// Reads every event matching `selector`, lets `decide` choose what to
    /// append given them, and appends it on the condition that nothing
    /// matching `selector` was appended since the read
    /// (`Max(selector, as_of)`). When another writer got in between (409
    /// `FAILED_PRECONDITION`), reads and decides again, up to
    /// [`DEFAULT_DCB_ATTEMPTS`] times. `decide` returning `None` ends the
    /// loop without writing. Each decision gets its own transaction id,
    /// which that decision's retries (503, transport) reuse.
    pub async fn decide_and_append<F>(
        &self,
        name: &str,
        selector: &Selector,
        decide: F,
    ) -> Result<Decided, ClientError>
    where
        F: FnMut(&[Event]) -> Option<Vec<Event>>,
    {
        self.decide_and_append_with(name, selector, DEFAULT_DCB_ATTEMPTS, decide)
            .await
    }

    /// [`Client::decide_and_append`] with a bound of `max_attempts`
    /// decisions.
    pub async fn decide_and_append_with<F>(
        &self,
        name: &str,
        selector: &Selector,
        max_attempts: u32,
        mut decide: F,
    ) -> Result<Decided, ClientError>
    where
        F: FnMut(&[Event]) -> Option<Vec<Event>>,
    {
        for attempt in 1..=max_attempts {
            let read = self.query_all(name, selector).await?;
            let Some(events) = decide(&read.events) else {
                return Ok(Decided::Nothing { as_of: read.as_of });
            };
            let condition = Condition::max(selector.clone(), read.as_of);
            match self.transact(name, &events, &[condition], None).await {
                Ok(summary) => return Ok(Decided::Appended(summary)),
                Err(e) if e.is_conflict() => {
                    // Writers that lost together would otherwise read and
                    // collide together again.
                    let ceiling = 10 * u64::from(attempt.min(10));
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=ceiling))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Contention {
            attempts: max_attempts,
        })
    }
}
