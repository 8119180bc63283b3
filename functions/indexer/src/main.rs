//! Lambda entry point: the DynamoDB client and store once per cold start.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_indexer::{handle, metrics};
use evidentsource_storage::{Deadline, store_from_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = &store_from_env().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            let deadline = Deadline::from_lambda(event.context.deadline());
            let report = handle(store, &event.payload, deadline).await;
            // One record per invocation, a failed one included.
            metrics::for_invocation(report.as_ref().ok()).emit();
            Ok::<_, Error>(report?.response)
        },
    ))
    .await
}
