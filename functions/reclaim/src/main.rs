//! Lambda entry point, run on a schedule (EventBridge): a delete reclaims
//! its database's old items for a short while and queues the rest; this
//! works through that queue until the invocation's time is nearly up.
//!
//! A malformed queue entry is skipped (and left in the queue); the run goes
//! on with the others, and its result and log say how many were skipped.

use std::time::Duration;

use evidentsource_reclaim::{FUNCTION, run};
use evidentsource_runtime::metrics::Metrics;
use evidentsource_storage::{Deadline, store_from_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

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
        let (result, metrics) = run(store, budget, Metrics::from_env(FUNCTION)).await;
        // One record per invocation, a failed one included.
        metrics.emit();
        Ok::<_, Error>(result?)
    }))
    .await
}
