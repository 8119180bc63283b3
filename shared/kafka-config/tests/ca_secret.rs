//! `KAFKA_SSL_CA_SECRET_ARN`: the brokers' CA from a Secrets Manager secret
//! (moto) in Lambda's `SERVER_ROOT_CA_CERTIFICATE` format, used in a real
//! TLS handshake together with SCRAM credentials from another secret; and
//! every way the secret can be wrong, named by the variable without
//! quoting the secret.

mod common;

use std::time::{Duration, Instant};

use common::*;
use evidentsource_kafka_config::{
    AuthFailureKind, EnvError, KafkaConnectError, KafkaSettings, probe_connection,
};
use evidentsource_local_servers::{SecureKafka, local_aws, shared, tls::TestCa, unique_name};

fn aws() -> aws_config::SdkConfig {
    local_aws(&shared().dynamodb_endpoint)
}

async fn secret(value: &str) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&aws());
    client
        .create_secret()
        .name(unique_name("evidentsource-kafka"))
        .secret_string(value)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

fn certificate_secret(pem: &str) -> String {
    serde_json::json!({ "certificate": pem }).to_string()
}

/// SASL_SSL SCRAM-SHA-512 with both the credentials and the CA in secrets.
fn from_secrets(kafka: &SecureKafka, credentials_arn: &str, ca_arn: &str) -> KafkaSettings {
    settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_SECRET_ARN", credentials_arn),
        ("KAFKA_SSL_CA_SECRET_ARN", ca_arn),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_and_the_credentials_come_from_secrets_manager() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("from-secrets");
    kafka.create_topic(&topic, 1).await.unwrap();
    let credentials = secret(
        &serde_json::json!({"username": kafka.username, "password": kafka.password}).to_string(),
    )
    .await;
    // Strict JSON, and the form AWS's documentation shows (raw line breaks
    // inside the JSON string).
    let documented = format!("{{\"certificate\":\"{}\"\n}}", kafka.ca_pem.trim());
    for value in [certificate_secret(&kafka.ca_pem), documented] {
        let ca = secret(&value).await;
        let settings = from_secrets(kafka, &credentials, &ca);
        assert_eq!(settings.ca_pem, None, "not loaded before resolve");
        let mut settings = settings;
        let context = settings.resolve(&aws()).await.unwrap();
        let config = settings.client_config();
        assert_eq!(config.get("ssl.ca.pem"), Some(kafka.ca_pem.as_str()));
        assert_eq!(
            config.get("ssl.ca.location"),
            None,
            "no file, no system CAs"
        );
        let described = format!("{:?}", KafkaSettings::describe(&config));
        assert!(described.contains("(1 PEM certificate(s))"), "{described}");
        assert!(!described.contains(&kafka.password), "{described}");

        probe_connection(&settings, &context, Some(&topic), Duration::from_secs(10)).unwrap();
        round_trip(&settings, &context, &topic).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_secret_of_another_ca_is_refused_naming_the_secret() {
    let kafka = SecureKafka::shared_ssl();
    let other = TestCa::new("not the broker's CA").unwrap();
    let ca = secret(&certificate_secret(&other.pem())).await;
    let settings = settings(&[
        ("KAFKA_BROKERS", &kafka.brokers),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
        ("KAFKA_SSL_CA_SECRET_ARN", &ca),
    ]);
    let mut settings = settings;
    let context = settings.resolve(&aws()).await.unwrap();
    let started = Instant::now();
    let error = probe_connection(&settings, &context, None, Duration::from_secs(60)).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let KafkaConnectError::Refused(refused) = &error else {
        panic!("{error}");
    };
    assert_eq!(refused.kind, AuthFailureKind::UntrustedCertificate);
    let message = error.to_string();
    assert!(message.contains("KAFKA_SSL_CA_SECRET_ARN"), "{message}");
    assert!(message.contains(&ca), "names the secret: {message}");
}

fn expect(error: EnvError, secret_text: &str) {
    assert_eq!(error.var, "KAFKA_SSL_CA_SECRET_ARN", "{error}");
    assert!(!error.to_string().contains(secret_text), "{error}");
}

#[tokio::test]
async fn a_bad_ca_secret_is_named_without_quoting_it() {
    let ssl = |arn: &str| {
        settings(&[
            ("KAFKA_BROKERS", "127.0.0.1:9"),
            ("KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("KAFKA_SSL_CA_SECRET_ARN", arn),
        ])
    };
    let marker = "MIIBsecretish";
    for value in [
        format!("-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----"),
        format!("{{\"cert\": \"{marker}\"}}"),
        format!("{{\"certificate\": \"{marker}\"}}"),
    ] {
        let arn = secret(&value).await;
        let error = ssl(&arn).resolve(&aws()).await.unwrap_err();
        expect(error, marker);
    }
    let error = ssl("no-such-secret").resolve(&aws()).await.unwrap_err();
    expect(error, marker);

    // Checked before any secret is read.
    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        KafkaSettings::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    };
    for vars in [
        &[
            ("KAFKA_BROKERS", "b:1"),
            ("KAFKA_SSL_CA_SECRET_ARN", "arn:ca"),
        ][..],
        &[
            ("KAFKA_BROKERS", "b:1"),
            ("KAFKA_SECURITY_PROTOCOL", "SSL"),
            ("KAFKA_SSL_CA_SECRET_ARN", "arn:ca"),
            ("KAFKA_SSL_CA_LOCATION", "/etc/hosts"),
        ][..],
    ] {
        expect(lookup(vars).unwrap_err(), marker);
    }
}
