//! Lambda entry point: the DynamoDB client and store once per cold start.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_indexer::handle;
use evidentsource_storage::{Deadline, StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let env = StorageEnv::from_env()?;
    let store = Store::new(
        dynamodb_client(&env).await,
        StoreConfig::new(&env.table_name),
    );
    let store = &store;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            let deadline = Deadline::from_lambda(event.context.deadline());
            let report = handle(store, &event.payload, deadline).await?;
            Ok::<_, Error>(report.response)
        },
    ))
    .await
}
