//! Lambda entry point, run on a schedule (EventBridge): a delete reclaims
//! its database's old items for a short while and queues the rest; this
//! works through that queue until the invocation's time is nearly up.
//!
//! A malformed queue entry is skipped (and left in the queue); the run goes
//! on with the others, and its result and log say how many were skipped.

use std::time::Duration;

use evidentsource_storage::{Deadline, ReclaimReport, store_from_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Time kept back from the function's deadline: more than the other
/// functions keep, because a reclaim step in flight (a query and a batch of
/// deletes) is let finish rather than abandoned.
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = &store_from_env().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = Deadline::from_lambda_keeping(event.context.deadline(), MARGIN).remaining();
        let report = store.reclaim_pending(budget).await?;
        if report.malformed > 0 {
            // Each one is logged with its key by the store.
            tracing::warn!(
                malformed = report.malformed,
                "reclaim queue entries skipped"
            );
        }
        tracing::info!(?report, "reclaim run");
        Ok::<_, Error>(run_result(&report))
    }))
    .await
}

/// The invocation's result: what the run did, for the console and for
/// whoever invokes it by hand.
fn run_result(report: &ReclaimReport) -> Value {
    json!({
        "completed": report.completed,
        "items_deleted": report.items_deleted,
        "malformed": report.malformed,
        "queue_empty": report.queue_empty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_counts_skipped_entries() {
        let report = ReclaimReport {
            completed: 2,
            items_deleted: 40,
            malformed: 1,
            queue_empty: false,
        };
        assert_eq!(
            run_result(&report),
            json!({"completed": 2, "items_deleted": 40, "malformed": 1, "queue_empty": false})
        );
    }
}
