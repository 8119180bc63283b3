//! Lambda entry point: config and producer once per cold start.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use evidentsource_runtime::Deadline;
use evidentsource_stream_publisher::{BatchMetrics, DeadLetterQueue, Publisher, PublisherConfig};
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// How long the cold start waits for the brokers to answer (Lambda's init
/// phase has 10 s in all).
const CONNECT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut config = PublisherConfig::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let context = config.kafka.resolve(&aws).await?;
    let publisher = Arc::new(
        Publisher::new(config, context)?.with_dead_letters(DeadLetterQueue::from_env(&aws)),
    );
    // A wrong password or an untrusted certificate fails the init, with a
    // message naming the setting to fix.
    publisher.check_connection(CONNECT_CHECK)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| {
        let publisher = publisher.clone();
        async move {
            let deadline = Deadline::from_lambda(event.context.deadline());
            let started = std::time::Instant::now();
            let mut batch = BatchMetrics::default();
            let answer = publisher
                .handle_measured(&event.payload, deadline.instant(), &mut batch)
                .await;
            // One record per invocation, a failed one included.
            batch
                .for_invocation(answer.as_ref().ok(), started.elapsed())
                .emit();
            answer.map_err(Error::from)
        }
    }))
    .await
}
