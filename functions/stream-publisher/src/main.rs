//! Lambda entry point: config and producer once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_stream_publisher::{Publisher, PublisherConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Time kept back from the function's deadline to answer Lambda.
const MARGIN: std::time::Duration = std::time::Duration::from_millis(1500);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = PublisherConfig::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let (kafka, context) = config.kafka.clone().resolve(&aws).await?;
    let publisher = Arc::new(Publisher::new(
        PublisherConfig { kafka, ..config },
        context,
    )?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| {
        let publisher = publisher.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            let deadline = tokio::time::Instant::now() + remaining.saturating_sub(MARGIN);
            publisher
                .handle(&event.payload, deadline)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
