//! Concurrent retries of one transaction id (issue 16, item 1): whatever
//! the timing, every one of them gets the first result and exactly one
//! commit happens, even when the transaction's own condition would fail
//! against its own commit.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use evidentsource_domain::{AppendCondition, Selector};
use evidentsource_storage::Store;

const ROUNDS: usize = 100;
const REQUESTS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_transaction_id_all_get_the_first_result() {
    let shared_store = Arc::new(store().await);
    // A second "process" (its own condition cache) takes every third request.
    let other = Arc::new(Store::new(
        shared_store.client().clone(),
        shared_store.config().clone(),
    ));
    let name = new_db();
    shared_store.create_database(&name).await.unwrap();

    for round in 0..ROUNDS {
        let subject = format!("order-{round}");
        // Uniqueness on its own subject: false as soon as it committed.
        let condition =
            vec![AppendCondition::max(Selector::SubjectEquals(subject.clone()), 0).to_proto()];
        let t = Arc::new(tx(
            &name,
            vec![
                event(
                    &format!("{round}-a"),
                    "orders",
                    Some(&subject),
                    "placed",
                    50,
                ),
                event(&format!("{round}-b"), "orders", Some(&subject), "paid", 50),
            ],
            condition,
            &format!("place-{round}"),
        ));
        let before = shared_store.get_database(&name).await.unwrap().revision;

        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let store = if i % 3 == 2 {
                    other.clone()
                } else {
                    shared_store.clone()
                };
                let t = t.clone();
                // Staggered like requests arriving over a few round trips:
                // some are still checking while others have committed.
                let delay = stagger(i, round);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    store.transact(&t).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }

        let first = answers
            .iter()
            .find_map(|a| a.as_ref().ok())
            .unwrap_or_else(|| panic!("round {round}: no request committed: {answers:?}"))
            .clone();
        for (i, answer) in answers.iter().enumerate() {
            assert_eq!(
                answer.as_ref(),
                Ok(&first),
                "round {round}, request {i}: every retry gets the first result"
            );
        }
        let head = shared_store.get_database(&name).await.unwrap();
        assert_eq!(
            head.revision,
            before + 2,
            "round {round}: exactly one commit"
        );
        assert_eq!((first.basis, first.revision), (before, before + 2));
    }
}

/// A start delay of 0–20 ms, fixed per request and round. The race needs a
/// request that found the id unused before another committed and evaluates
/// after: 100 rounds of 10 staggered requests hit it in each of 8 runs
/// on the code before the fix (first in round 5 to 76).
fn stagger(i: usize, round: usize) -> Duration {
    Duration::from_micros(Rng::new(&format!("{i}-{round}")).next() % 20_000)
}
