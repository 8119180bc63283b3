//! A wrong password against a real SASL_SSL broker: the suite's producer
//! and a consumer built from `client_config()` learn it within seconds
//! through the context, the error names the cause and the settings to
//! check, and the password shows in no error and no log line, librdkafka's
//! own logs (at debug level) included.
//!
//! Every log line of this test binary is captured (a global `tracing`
//! subscriber writing to a buffer), because librdkafka reports from its own
//! threads.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use common::*;
use evidentsource_kafka_config::{
    AuthFailureKind, KafkaConnectError, KafkaContext, verify_connection,
};
use evidentsource_local_servers::{SecureKafka, unique_name};
use rdkafka::{
    ClientContext,
    config::RDKafkaLogLevel,
    error::KafkaError,
    producer::{FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
};

const FAIL_FAST: Duration = Duration::from_secs(10);

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Everything logged so far by this test binary.
fn logs() -> String {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    });
    String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned()
}

fn wrong_password() -> String {
    unique_name("wrong-pa55word")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_producer_within_seconds_and_never_shows() {
    logs();
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("refused");
    kafka.create_topic(&topic, 1).await.unwrap();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let password = wrong_password();
        let settings = sasl_ssl(kafka, mechanism, &password);
        let context = context(&settings);
        // The suite's producer settings, with librdkafka as talkative as it
        // gets about security and connections.
        let mut config = settings.producer_config();
        config
            .set("debug", "security,broker,protocol,conf")
            .set_log_level(RDKafkaLogLevel::Debug);
        let producer: FutureProducer<KafkaContext> =
            config.create_with_context(context.clone()).unwrap();

        // A delivery wait that consults the context stops at the refusal.
        let started = Instant::now();
        let delivery = producer
            .send_result(FutureRecord::<str, str>::to(&topic).payload("never"))
            .unwrap();
        let refused = tokio::select! {
            refused = context.auth_failed() => refused,
            outcome = delivery => panic!("{mechanism}: delivery settled first: {outcome:?}"),
            () = tokio::time::sleep(Duration::from_secs(60)) => panic!("{mechanism}: no refusal in 60 s"),
        };
        let took = started.elapsed();
        assert!(took < FAIL_FAST, "{mechanism}: took {took:?}");
        assert_eq!(refused.kind, AuthFailureKind::Sasl);

        // So does the cold-start check.
        let error =
            verify_connection(producer.client(), &context, Some(&topic), FAIL_FAST).unwrap_err();
        assert!(matches!(error, KafkaConnectError::Refused(_)), "{error}");
        let message = error.to_string();
        assert!(
            message.starts_with("SASL authentication failed ("),
            "{message}"
        );
        assert!(message.contains("KAFKA_SASL_PASSWORD"), "{message}");
        assert!(
            message.contains("invalid credentials"),
            "the broker's reason: {message}"
        );
        for text in [message, format!("{error:?}"), format!("{settings:?}")] {
            assert!(!text.contains(&password), "{mechanism}: {text}");
        }
        drop(producer);
        let logs = logs();
        assert!(
            logs.contains("SASL authentication error"),
            "logs are captured"
        );
        assert!(
            logs.contains(mechanism),
            "librdkafka's debug logs are captured"
        );
        assert!(
            !logs.contains(&password),
            "{mechanism}: the password is in the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_learns_of_a_wrong_password_within_seconds() {
    logs();
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("refused-consumer");
    kafka.create_topic(&topic, 1).await.unwrap();
    let password = wrong_password();
    let settings = sasl_ssl(kafka, "SCRAM-SHA-512", &password);
    let context = context(&settings);
    let consumer = consumer_from_start(&settings, &context, &topic);
    let started = Instant::now();
    // The consumer reports the refusal as it is polled (as the local
    // runner's event source loop polls it), and records it in the context.
    let error = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .expect("recv() returns the refusal")
        .expect_err("nothing to read with a wrong password");
    assert!(
        started.elapsed() < FAIL_FAST,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Authentication),
        "{error}"
    );
    let refused = context.auth_failure().expect("recorded in the context");
    assert_eq!(refused.kind, AuthFailureKind::Sasl);
    assert!(!refused.to_string().contains(&password));
    assert!(!logs().contains(&password));
}

#[test]
fn the_context_masks_the_configured_password_in_whatever_it_reports() {
    logs();
    let kafka = SecureKafka::shared_sasl_ssl();
    let password = wrong_password();
    let context = context(&sasl_ssl(kafka, "PLAIN", &password));
    // As if librdkafka or a broker quoted it.
    context.log(
        RDKafkaLogLevel::Error,
        "FAIL",
        &format!("broker said: bad password {password} for evidentsource"),
    );
    context.error(
        KafkaError::Global(RDKafkaErrorCode::Authentication),
        &format!("SASL authentication error: {password} rejected"),
    );
    let refused = context.auth_failure().unwrap();
    assert!(refused.detail.contains("*** rejected"), "{refused}");
    let logs = logs();
    assert!(
        logs.contains("bad password *** for evidentsource"),
        "{logs}"
    );
    assert!(!logs.contains(&password));
}
