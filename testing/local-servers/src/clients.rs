//! Clients pointed at the local servers, as tests and local tools need them.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    types::RDKafkaErrorCode,
};

/// A DynamoDB client for moto: fixed fake credentials, `us-east-1`.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-servers",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The AWS settings every SDK client of a test uses against moto (which
/// serves all its services on one endpoint): fixed fake credentials,
/// `us-east-1`. `aws_sdk_sqs::Client::new(&local_aws(endpoint))` and so on.
pub fn local_aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-servers",
            )),
        )
        .build()
}

/// Base rdkafka settings for the local broker. Consumer groups on tansu join
/// in about half the session timeout, so it is kept short.
pub fn kafka_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "30000");
    config
}

/// Waits until the broker answers a metadata request.
pub fn wait_for_kafka(brokers: &str, timeout: Duration) -> Result<(), String> {
    let consumer: BaseConsumer = kafka_config(brokers)
        .create()
        .map_err(|e| format!("kafka client: {e}"))?;
    let started = Instant::now();
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) if started.elapsed() > timeout => {
                return Err(format!("no metadata from {brokers} in {timeout:?}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Creates a topic (replication 1); an existing topic is fine.
pub async fn create_topic(brokers: &str, name: &str, partitions: i32) -> Result<(), String> {
    create_topic_with(&kafka_config(brokers), name, partitions).await
}

/// [`create_topic`] with the given client settings (e.g. TLS and SASL).
pub async fn create_topic_with(
    config: &ClientConfig,
    name: &str,
    partitions: i32,
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().map_err(|e| format!("admin client: {e}"))?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| format!("create topic {name}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(format!("create topic {topic}: {code}")),
        }
    }
    Ok(())
}
