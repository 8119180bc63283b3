//! Async submit: `POST /databases/{name}/transactions?mode=async` validates
//! the transaction like the synchronous route, publishes it as a transact
//! command on the Async Commands topic (docs/contract.md §5) and answers 202 with
//! the correlation id under which its response will appear on the Async
//! Responses topic.

use std::time::Duration;

use evidentsource_cloudevents_kafka::{TraceContext, encode};
use evidentsource_commands::CommandRequest;
use evidentsource_domain::{ErrorCode, Transaction};
use evidentsource_kafka_config::{
    EnvError, KafkaContext, KafkaSettings, ProducerProfile, Topics, base_uri_from_lookup,
    flush_queued,
};
use lambda_http::http::HeaderMap;
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
    ///
    /// The caller's trace context, if any, travels with the command
    /// (`ce_traceparent`, `ce_tracestate`), unchanged: this function records
    /// no span of its own, so the caller's span stays the parent.
    pub async fn submit(
        &self,
        transaction: &Transaction,
        trace: Option<&TraceContext>,
    ) -> Result<String, Refusal> {
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
        let mut event = CommandRequest::Transact(request).to_event(
            &correlation_id,
            &uuid::Uuid::new_v4().to_string(),
            &source,
        );
        if let Some(trace) = trace {
            trace.set_on(&mut event);
        }
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
        let sent = match self.producer.send_result(record) {
            Err((error, _)) => Err(error.to_string()),
            Ok(delivery) => {
                // The command is all there is to send: send it now rather
                // than after linger.ms (shared/kafka-config/src/flush.rs).
                // The flush ends when this wait does.
                let _flushing = flush_queued(&self.producer, self.config.timeout);
                tokio::select! {
                    biased;
                    // The producer's message timeout (its profile) bounds it.
                    sent = delivery => match sent {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err((error, _))) => Err(error.to_string()),
                        Err(_canceled) => Err("the producer dropped the command".to_owned()),
                    },
                    // A refused handshake (wrong password, untrusted
                    // certificate) ends the wait at once instead of at the
                    // timeout. The log names the setting to fix; the client
                    // only learns that the service cannot reach its broker.
                    refused = self.context.auth_failed() => {
                        tracing::error!(error = %refused, topic = self.config.topic, "async submit: the broker refused the connection (fix the Kafka credential or certificate setting the error names)");
                        Err("the service cannot connect to its Kafka cluster".to_owned())
                    }
                }
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

/// The trace context of an HTTP request: its W3C `traceparent` (with
/// `tracestate`), else the X-Ray trace header API Gateway adds, else the
/// invocation's X-Ray trace id (`xray`, from the Lambda context). A
/// malformed header is passed over, never refused.
pub fn trace_context(headers: &HeaderMap, xray: Option<&str>) -> Option<TraceContext> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    text("traceparent")
        .and_then(|t| TraceContext::parse(t, text("tracestate")))
        .or_else(|| text("x-amzn-trace-id").and_then(TraceContext::from_xray))
        .or_else(|| xray.and_then(TraceContext::from_xray))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_trace_context() {
        const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        const XRAY: &str =
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        const FROM_XRAY: &str = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
        const LAMBDA: &str =
            "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=0";
        const FROM_LAMBDA: &str = "00-11111111222222222222222222222222-3333333333333333-00";
        // (headers, the invocation's X-Ray id, traceparent, tracestate)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: [Case; 6] = [
            (
                &[("traceparent", W3C), ("tracestate", "k=v")],
                Some(LAMBDA),
                Some(W3C),
                Some("k=v"),
            ),
            (
                &[("traceparent", W3C), ("x-amzn-trace-id", XRAY)],
                None,
                Some(W3C),
                None,
            ),
            (
                &[("traceparent", "00-bad"), ("x-amzn-trace-id", XRAY)],
                None,
                Some(FROM_XRAY),
                None,
            ),
            (
                &[("x-amzn-trace-id", XRAY)],
                Some(LAMBDA),
                Some(FROM_XRAY),
                None,
            ),
            (
                &[(
                    "x-amzn-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793",
                )],
                Some(LAMBDA),
                Some(FROM_LAMBDA),
                None,
            ),
            (&[], None, None, None),
        ];
        for (pairs, xray, parent, state) in cases {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, v.parse().unwrap());
            }
            let trace = trace_context(&headers, xray);
            assert_eq!(
                trace.as_ref().map(|t| t.to_string()).as_deref(),
                parent,
                "{pairs:?}"
            );
            assert_eq!(
                trace.as_ref().and_then(|t| t.state.as_deref()),
                state,
                "{pairs:?}"
            );
        }
    }

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
