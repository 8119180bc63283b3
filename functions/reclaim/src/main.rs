//! Lambda entry point, run on a schedule (EventBridge): a delete reclaims
//! its database's old items for a short while and queues the rest; this
//! works through that queue until the invocation's time is nearly up.

use std::time::{Duration, SystemTime};

use evidentsource_storage::{StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Time kept back from the function's deadline.
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = StorageEnv::from_env()?;
    let store = Store::new(
        dynamodb_client(&env).await,
        StoreConfig::new(&env.table_name),
    );
    let store = &store;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let budget = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(MARGIN);
        let report = store.reclaim_pending(budget).await?;
        tracing::info!(?report, "reclaim run");
        Ok::<_, Error>(())
    }))
    .await
}
