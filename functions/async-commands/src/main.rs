//! Lambda entry point: config, store and producer once per cold start.

use std::{sync::Arc, time::Duration};

use aws_lambda_events::kafka::KafkaEvent;
use evidentsource_async_commands::{Processor, ProcessorConfig};
use evidentsource_storage::{StorageEnv, Store, StoreConfig, dynamodb_client};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Time kept back from the function's deadline to answer Lambda.
const MARGIN: Duration = Duration::from_millis(1500);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ProcessorConfig::from_env()?;
    let storage = StorageEnv::from_env()?;
    let store = Store::new(
        dynamodb_client(&storage).await,
        StoreConfig::new(&storage.table_name),
    );
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (kafka, context) = config.kafka.clone().resolve(&aws).await?;
    let processor = Arc::new(Processor::new(
        ProcessorConfig { kafka, ..config },
        store,
        context,
    )?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KafkaEvent>| {
        let processor = processor.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = tokio::time::Instant::now() + remaining.saturating_sub(MARGIN);
            let report = processor.handle(&event.payload, deadline).await?;
            tracing::info!(?report, "batch handled");
            Ok::<_, Error>(())
        }
    }))
    .await
}
