//! Async submit: `POST /databases/{name}/transactions?mode=async` validates
//! the transaction like the synchronous route, publishes it as a transact
//! command on the Async Commands topic (docs/contract.md §5) and answers 202 with
//! the correlation id under which its response will appear on the Async
//! Responses topic.

use std::time::Duration;

use evidentsource_cloudevents_kafka::encode;
use evidentsource_commands::CommandRequest;
use evidentsource_domain::{ErrorCode, Transaction};
use evidentsource_kafka_config::{
    EnvError, KafkaContext, KafkaSettings, ProducerProfile, Topics, base_uri_from_lookup,
};
use rdkafka::{
    error::KafkaError,
    producer::{FutureProducer, FutureRecord},
};

use crate::Refusal;

/// Largest command message accepted for async submit, value and headers:
/// below Kafka's default `max.message.bytes` (1 MB) with room for the
/// record's own overhead. Larger transactions go through the synchronous
/// route.
pub const MAX_COMMAND_BYTES: usize = 1_000_000 - 16 * 1024;

/// Namespace of the correlation ids derived from transaction ids.
const CORRELATION_NAMESPACE: uuid::Uuid = uuid::uuid!("8a3e6f0c-2d41-4b7a-9c15-6e0d9b2f4a87");

/// Where async commands go, read once at cold start.
#[derive(Debug, Clone)]
pub struct SubmitConfig {
    /// `BASE_URI`: commands have `ce_source`
    /// `{BASE_URI}/databases/{name}/transactions`.
    pub base_uri: String,
    /// `ASYNC_COMMANDS_KAFKA_TOPIC`.
    pub topic: String,
    pub kafka: KafkaSettings,
    /// How long a request waits for the broker's acknowledgement.
    pub timeout: Duration,
}

impl SubmitConfig {
    /// `None` when `KAFKA_BROKERS` is not set: the API then serves the
    /// synchronous routes only, and async submit answers 503.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, EnvError> {
        if lookup("KAFKA_BROKERS").is_none_or(|v| v.trim().is_empty()) {
            return Ok(None);
        }
        Ok(Some(SubmitConfig {
            base_uri: base_uri_from_lookup(&lookup)?,
            topic: Topics::from_lookup(&lookup).async_commands,
            kafka: KafkaSettings::from_lookup(&lookup)?,
            timeout: Duration::from_secs(10),
        }))
    }

    pub fn from_env() -> Result<Option<Self>, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// The producer of async commands, built once per cold start.
pub struct AsyncSubmit {
    config: SubmitConfig,
    producer: FutureProducer<KafkaContext>,
    context: KafkaContext,
}

impl AsyncSubmit {
    pub fn new(config: SubmitConfig, context: KafkaContext) -> Result<Self, KafkaError> {
        let producer = config.kafka.producer(
            ProducerProfile::Bounded(config.timeout),
            &config.topic,
            &context,
        )?;
        Ok(AsyncSubmit {
            config,
            producer,
            context,
        })
    }

    /// Publishes the transaction as a command; returns its correlation id
    /// once the broker has it.
    ///
    /// With a transaction id, the correlation id is derived from it, so a
    /// client retrying after a timeout sends the same command under the
    /// same correlation id and gets the one response. Without one, the
    /// correlation id (random) becomes the transaction id, so the command
    /// can never commit twice on its own.
    pub async fn submit(&self, transaction: &Transaction) -> Result<String, Refusal> {
        let mut request = transaction.to_request();
        let correlation_id = match &transaction.transaction_id {
            Some(id) => uuid::Uuid::new_v5(
                &CORRELATION_NAMESPACE,
                format!("{}\n{id}", request.database_name).as_bytes(),
            )
            .to_string(),
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                request.transaction_id = id.clone();
                id
            }
        };
        let source = format!(
            "{}/databases/{}/transactions",
            self.config.base_uri, request.database_name
        );
        let event = CommandRequest::Transact(request).to_event(
            &correlation_id,
            &uuid::Uuid::new_v4().to_string(),
            &source,
        );
        let message = encode(&event);
        let size = message.value.len()
            + message
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > MAX_COMMAND_BYTES {
            return Err(Refusal::new(
                413,
                ErrorCode::InvalidArgument,
                format!(
                    "the command would be {size} bytes, over the {MAX_COMMAND_BYTES} bytes a \
                     Kafka message may carry; submit it synchronously or split it"
                ),
            ));
        }
        let record = FutureRecord::to(&self.config.topic)
            .key(&correlation_id)
            .payload(&message.value)
            .headers(message.owned_headers());
        let sent = tokio::select! {
            biased;
            sent = self.producer.send(record, self.config.timeout) => {
                sent.map(|_| ()).map_err(|(error, _)| error.to_string())
            }
            // A refused handshake (wrong password, untrusted certificate)
            // ends the wait at once instead of at the timeout. The log names
            // the setting to fix; the client only learns that the service
            // cannot reach its broker.
            refused = self.context.auth_failed() => {
                tracing::error!(error = %refused, topic = self.config.topic, "async submit: the broker refused the connection (fix the Kafka credential or certificate setting the error names)");
                Err("the service cannot connect to its Kafka cluster".to_owned())
            }
        };
        match sent {
            Ok(()) => Ok(correlation_id),
            Err(error) => {
                tracing::warn!(
                    error,
                    topic = self.config.topic,
                    "async submit failed: answered 503 (if this persists, check the brokers and the commands topic)"
                );
                Err(Refusal::new(
                    503,
                    ErrorCode::Internal,
                    format!(
                        "the broker did not confirm the command ({error}); it may still be \
                         queued: retry with a transaction_id to be safe"
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_unless_brokers_are_set() {
        assert!(SubmitConfig::from_lookup(|_| None).unwrap().is_none());
        let vars = |k: &str| match k {
            "KAFKA_BROKERS" => Some("b:9092".to_owned()),
            "BASE_URI" => Some("https://x".to_owned()),
            _ => None,
        };
        let config = SubmitConfig::from_lookup(vars).unwrap().unwrap();
        assert_eq!(config.topic, "evidentsource-async-commands");
        let no_base = |k: &str| (k == "KAFKA_BROKERS").then(|| "b:9092".to_owned());
        assert_eq!(
            SubmitConfig::from_lookup(no_base).unwrap_err().var,
            "BASE_URI"
        );
    }
}
