//! Lambda entry point: config, store and producer once per cold start.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::kafka::KafkaEvent;
use evidentsource_async_commands::{BatchReport, Processor, ProcessorConfig, metrics};
use evidentsource_storage::{Deadline, StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// How long the cold start waits for the brokers to answer (Lambda's init
/// phase has 10 s in all).
const CONNECT_CHECK: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = ProcessorConfig::from_env()?;
    let storage = StorageEnv::from_env()?;
    let store = Store::new(
        dynamodb_client(&storage).await,
        StoreConfig::new(&storage.table_name),
    );
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let context = config.kafka.resolve(&aws).await?;
    let processor = Arc::new(Processor::new(config, store, context)?);
    // A wrong password or an untrusted certificate fails the init, with a
    // message naming the setting to fix.
    processor.check_connection(CONNECT_CHECK)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KafkaEvent>| {
        let processor = processor.clone();
        async move {
            let deadline = Deadline::from_lambda(event.context.deadline());
            let mut report = BatchReport::default();
            let result = processor
                .handle_measured(&event.payload, deadline.instant(), &mut report)
                .await;
            // One record per invocation, a failed one included.
            metrics::for_invocation(&report, result.is_err()).emit();
            result?;
            tracing::info!(
                records = report.records,
                executed = report.executed,
                replayed = report.replayed,
                refused = report.refused,
                "batch handled"
            );
            Ok::<_, Error>(())
        }
    }))
    .await
}
