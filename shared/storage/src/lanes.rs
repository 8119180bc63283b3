//! One commit at a time per database within a process.
//!
//! Why: commits on one database are serialized by its head's condition
//! anyway, whoever sends them. Two tasks of one process (the local
//! runner's concurrent requests, the async-commands function's partitions)
//! that commit to the same database at once would race each other: every
//! race lost is a cancelled write, and a read or a backoff before the next
//! attempt. Queued here instead, each commit goes from the head the one
//! before it left (`crate::heads`) in one round trip, and only other
//! processes' writers can make it lose. The queue is first come, first
//! served (`tokio::sync::Mutex`), and waiting in it is bounded by the
//! invocation's deadline like every other wait (`Store::in_time`).
//!
//! Nothing depends on it for correctness: the head's condition decides.
//!
//! Memory: a database has an entry only while a commit holds or waits for
//! its lane; the last one out removes it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Every database's lane that is in use in this process.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// A database's lane, held: dropping it lets the next commit go (and
/// forgets the lane when nobody else holds or waits for it).
#[derive(Debug)]
pub(crate) struct Held<'a> {
    lanes: &'a Lanes,
    name: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Lanes {
    /// The lane of database `name`, to wait for (`Waiting::held`).
    pub fn of(&self, name: &str) -> Waiting<'_> {
        let lane = self.map().entry(name.to_owned()).or_default().clone();
        Waiting {
            lanes: self,
            name: name.to_owned(),
            lane: Some(lane),
        }
    }

    /// Databases with a lane in use.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map().len()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AsyncMutex<()>>>> {
        // Nothing is left half-done under this lock: a poisoned map is fine.
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes `name`'s lane if only the map holds it now.
    fn release(&self, name: &str) {
        let mut map = self.map();
        if map
            .get(name)
            .is_some_and(|lane| Arc::strong_count(lane) == 1)
        {
            map.remove(name);
        }
    }
}

/// A place in a database's queue. Dropped before its turn (the deadline
/// came), it leaves the queue and forgets the lane if it was the last.
#[derive(Debug)]
pub(crate) struct Waiting<'a> {
    lanes: &'a Lanes,
    name: String,
    lane: Option<Arc<AsyncMutex<()>>>,
}

impl<'a> Waiting<'a> {
    /// Waits for this database's earlier commits in this process.
    pub async fn held(mut self) -> Held<'a> {
        // `self` keeps its place until the turn comes: a wait given up at
        // the deadline drops it, and `Drop` tidies up.
        let lane = self.lane.clone().expect("a lane until its turn");
        let guard = lane.lock_owned().await;
        self.lane = None;
        Held {
            lanes: self.lanes,
            name: std::mem::take(&mut self.name),
            guard: Some(guard),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // Still holding the lane's Arc: the turn never came.
        if let Some(lane) = self.lane.take() {
            drop(lane);
            self.lanes.release(&self.name);
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // The guard holds the lane's Arc: let go of it first.
        drop(self.guard.take());
        self.lanes.release(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_commit_at_a_time_per_database_and_no_entry_left() {
        let lanes = Lanes::default();
        let first = lanes.of("a").held().await;
        // Another database is not held up.
        let other = lanes.of("b").held().await;
        assert_eq!(lanes.len(), 2);
        // The same database waits.
        let waiting = tokio::time::timeout(Duration::from_millis(20), lanes.of("a").held()).await;
        assert!(waiting.is_err(), "a second commit on `a` went in");
        // The one that gave up left no trace beyond the held lanes.
        assert_eq!(lanes.len(), 2);
        drop(other);
        assert_eq!(lanes.len(), 1);
        drop(first);
        assert_eq!(lanes.len(), 0);
        // Free again.
        let again = tokio::time::timeout(Duration::from_millis(20), lanes.of("a").held()).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn turns_come_in_order_of_arrival() {
        let lanes = Arc::new(Lanes::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = lanes.of("a").held().await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (lanes, order) = (lanes.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _held = lanes.of("a").held().await;
                order.lock().unwrap().push(i);
            }));
            // Each in the queue before the next arrives.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        assert_eq!(lanes.len(), 0);
    }

    #[tokio::test]
    async fn a_wait_given_up_leaves_no_entry_behind() {
        let lanes = Lanes::default();
        let held = lanes.of("a").held().await;
        // Polled and queued, then given up while the lane is held.
        let gave_up = tokio::time::timeout(Duration::from_millis(10), lanes.of("a").held()).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(lanes.len(), 0);

        // Queued, the holder leaves (the turn is handed on), then given up
        // before it is polled again.
        let held = lanes.of("a").held().await;
        let mut waiting = Box::pin(lanes.of("a").held());
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(held);
        assert_eq!(lanes.len(), 1, "the waiter still has its place");
        drop(waiting);
        assert_eq!(lanes.len(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_keeps_the_lane_for_those_still_there() {
        let lanes = Lanes::default();
        let held = lanes.of("a").held().await;
        let waiting = lanes.of("a");
        drop(waiting);
        // The holder still has it: a newcomer waits.
        assert_eq!(lanes.len(), 1);
        let blocked = tokio::time::timeout(Duration::from_millis(20), lanes.of("a").held()).await;
        assert!(blocked.is_err());
        drop(held);
        assert_eq!(lanes.len(), 0);
    }
}
