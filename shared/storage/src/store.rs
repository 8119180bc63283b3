//! The store handle and its settings: what every other module's
//! `impl Store` works with, and how each call is bound to the invocation's
//! deadline (the deadline's arithmetic lives in `crate::deadline`).
//!
//! The jobs are in rooms of their own: the commit protocol in
//! `crate::commit` (with `crate::plan`, `crate::idempotency`,
//! `crate::conditions`, `crate::cancellation`, `crate::attempt`, the
//! remembered heads in `crate::heads` and the per-database turns in
//! `crate::lanes`), creating and deleting databases in `crate::lifecycle`,
//! reads in `crate::read`, recorded replies in `crate::reply`, reclaiming
//! in `crate::reclaim`.

use std::{future::Future, sync::Arc, time::Duration};

use aws_sdk_dynamodb::Client;
use evidentsource_domain::Limits;

use crate::{
    StoreError,
    deadline::{Deadline, out_of_time},
    facts::FactsCache,
    heads::KnownHeads,
    lanes::Lanes,
};

/// Settings of the storage layer.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub table_name: String,
    pub limits: Limits,
    /// Commit attempts when other writers keep winning the race.
    pub max_attempts: u32,
    /// How long a deleted database's tombstone head item lives (DynamoDB TTL).
    pub tombstone_ttl: Duration,
    /// Time a delete spends reclaiming the old items before answering; the
    /// rest is left to [`Store::reclaim_pending`].
    pub reclaim_budget: Duration,
    /// Most events one `read_events` call returns.
    pub max_read_events: u64,
    /// How long a deleted incarnation's index items are left before they
    /// are reclaimed: an indexer that read the head before the delete may
    /// still be writing some (docs/storage.md, "Delete and reclaim").
    pub index_grace: Duration,
    /// A condition about a window of at most this many events, with a
    /// subject prefix in its selector, reads the window's chunks rather
    /// than the prefix's postings: those are ordered by subject, so they
    /// cost what the prefix matches over all of history, while the usual
    /// DCB condition, `Max(selector, as_of)`, asks about a recent window.
    pub window_scan_events: u64,
}

impl StoreConfig {
    pub fn new(table_name: impl Into<String>) -> Self {
        StoreConfig {
            table_name: table_name.into(),
            limits: Limits::default(),
            max_attempts: 200,
            tombstone_ttl: Duration::from_secs(24 * 3600),
            reclaim_budget: Duration::from_secs(2),
            max_read_events: 1000,
            index_grace: Duration::from_secs(600),
            window_scan_events: 20_000,
        }
    }
}

/// The storage layer over one DynamoDB table. Cheap to share: build it once
/// per cold start, and bind it to each invocation's deadline with
/// [`Store::with_deadline`].
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) config: StoreConfig,
    pub(crate) facts: Arc<FactsCache>,
    /// Each database's last known head, to commit without reading it.
    pub(crate) heads: Arc<KnownHeads>,
    /// One commit at a time per database in this process.
    pub(crate) lanes: Arc<Lanes>,
    /// Unbound (`None`): calls are limited by the SDK's timeouts and
    /// `max_attempts` only.
    pub(crate) deadline: Option<Deadline>,
}

impl Store {
    pub fn new(client: Client, config: StoreConfig) -> Self {
        Store {
            client,
            config,
            facts: Arc::default(),
            heads: Arc::default(),
            lanes: Arc::default(),
            deadline: None,
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// This store with every call bounded by `deadline`: DynamoDB calls in
    /// flight at the deadline are abandoned, retry loops stop before it,
    /// and both answer [`StoreError::Unavailable`]. Cheap (the client and
    /// the per-process memories are shared): take one per invocation.
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
            pause = deadline
                .pause_before(pause, attempt)
                .ok_or_else(|| StoreError::Unavailable(giving_up()))?;
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

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
