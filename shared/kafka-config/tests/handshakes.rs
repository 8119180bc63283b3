//! Real TLS and SASL handshakes with this crate's settings: SSL against a
//! CA made at test time with hostname verification on, SASL_SSL with
//! SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, through the suite's producer
//! settings and a consumer built from `client_config()`; and a broker
//! certificate that is untrusted or names another host stops a connection
//! check within seconds with an error naming the setting.

mod common;

use std::time::{Duration, Instant};

use common::*;
use evidentsource_kafka_config::{
    AuthFailureKind, KafkaConnectError, KafkaSettings, probe_connection,
};
use evidentsource_local_servers::{SecureKafka, SecureKafkaOptions, tls::TestCa, unique_name};

/// A refusal must be reported well before librdkafka's own timeouts.
const FAIL_FAST: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_verifies_the_broker_against_the_test_ca() {
    let kafka = SecureKafka::shared_ssl();
    let topic = unique_name("ssl");
    kafka.create_topic(&topic, 1).await.unwrap();
    let ca = kafka.ca_path.display().to_string();
    let settings = settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
        ("KAFKA_SSL_CA_LOCATION", &ca),
    ]);
    // Hostname verification is librdkafka's default and nobody turns it off.
    for config in [settings.client_config(), settings.producer_config()] {
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            None,
            "left at librdkafka's default (https)"
        );
    }
    let context = context(&settings);
    probe_connection(&settings, &context, None, FAIL_FAST).unwrap();
    round_trip(&settings, &context, &topic).await;
    assert_eq!(context.auth_failure(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_and_plain_over_tls() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("sasl");
    kafka.create_topic(&topic, 1).await.unwrap();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let settings = sasl_ssl(kafka, mechanism, &kafka.password);
        let context = context(&settings);
        probe_connection(&settings, &context, Some(&topic), FAIL_FAST)
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        round_trip(&settings, &context, &topic).await;
        assert_eq!(context.auth_failure(), None, "{mechanism}");
    }
}

/// Checks the connection of `settings` and expects a certificate refusal
/// naming `variable`, within [`FAIL_FAST`].
fn expect_untrusted(settings: &KafkaSettings, variable: &str) {
    let context = context(settings);
    let started = Instant::now();
    // A generous timeout: the refusal must come first, and fast.
    let error = probe_connection(settings, &context, None, Duration::from_secs(60)).unwrap_err();
    let took = started.elapsed();
    let KafkaConnectError::Refused(refused) = &error else {
        panic!("expected a refusal, got {error}");
    };
    assert_eq!(
        refused.kind,
        AuthFailureKind::UntrustedCertificate,
        "{error}"
    );
    assert!(took < FAIL_FAST, "took {took:?}: {error}");
    let message = error.to_string();
    assert!(
        message.starts_with("TLS: the broker's certificate is not trusted"),
        "{message}"
    );
    assert!(message.contains(variable), "{message}");
    assert_eq!(context.auth_failure().as_ref(), Some(refused));
}

#[test]
fn a_certificate_from_another_ca_is_refused_within_seconds() {
    let kafka = SecureKafka::shared_ssl();
    let other = TestCa::new("some other CA").unwrap().write_pem().unwrap();
    let other = other.display().to_string();
    let settings = settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
        ("KAFKA_SSL_CA_LOCATION", &other),
    ]);
    expect_untrusted(&settings, "KAFKA_SSL_CA_LOCATION");
    // Without a CA setting, the system's trust store does not know it either.
    let system = settings_without_ca(kafka);
    expect_untrusted(&system, "KAFKA_SSL_CA_SECRET_ARN");
}

fn settings_without_ca(kafka: &SecureKafka) -> KafkaSettings {
    settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
    ])
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    // Signed by the CA the client trusts, but for another name: only
    // hostname verification can refuse it.
    let kafka = SecureKafka::start(SecureKafkaOptions {
        sasl: false,
        cert_names: vec!["broker.invalid".into()],
        ..Default::default()
    })
    .unwrap();
    let ca = kafka.ca_path.display().to_string();
    let settings = settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
        ("KAFKA_SSL_CA_LOCATION", &ca),
    ]);
    expect_untrusted(&settings, "names the host in KAFKA_BROKERS");
}
