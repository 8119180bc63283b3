//! `evidentsource-admin topics create|verify`, the binary as an operator
//! runs it, against a broker that requires TLS and SCRAM (tansu behind the
//! TLS/SASL front of evidentsource-local-servers): the credentials come
//! from a Secrets Manager secret (moto); a wrong password or an untrusted
//! certificate ends it within seconds with exit status 2 and a message
//! naming the cause, never showing the password.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use evidentsource_local_servers::{SecureKafka, local_aws, shared, unique_name};

/// The binary with only the given variables (and fake AWS credentials for
/// moto), the four topics named after `prefix`.
fn admin(prefix: &str, vars: &[(&str, &str)], args: &str) -> (Output, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evidentsource-admin"));
    command
        .env_clear()
        .env("AWS_ENDPOINT_URL", &shared().dynamodb_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "TRANSACTION_PROPOSALS_KAFKA_TOPIC",
            format!("{prefix}-proposals"),
        )
        .env("DATABASE_EVENTS_KAFKA_TOPIC", format!("{prefix}-events"))
        .env("ASYNC_COMMANDS_KAFKA_TOPIC", format!("{prefix}-commands"))
        .env("ASYNC_RESPONSES_KAFKA_TOPIC", format!("{prefix}-responses"))
        .envs(vars.iter().copied())
        .args(args.split_whitespace());
    let started = Instant::now();
    let output = command.output().expect("run evidentsource-admin");
    (output, started.elapsed())
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn credentials_secret(kafka: &SecureKafka) -> String {
    aws_sdk_secretsmanager::Client::new(&local_aws(&shared().dynamodb_endpoint))
        .create_secret()
        .name(unique_name("AmazonMSK_admin"))
        .secret_string(
            serde_json::json!({"username": kafka.username, "password": kafka.password}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_and_verifies_over_sasl_ssl_with_credentials_from_a_secret() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let arn = credentials_secret(kafka).await;
    let ca = kafka.ca_path.display().to_string();
    let vars = [
        ("KAFKA_BROKERS", kafka.brokers.as_str()),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
        ("KAFKA_SASL_SECRET_ARN", arn.as_str()),
        ("KAFKA_SSL_CA_LOCATION", ca.as_str()),
    ];
    let prefix = unique_name("admin");
    let options = "--partitions 1 --replication 1";
    let (created, _) = admin(&prefix, &vars, &format!("topics create {options}"));
    assert!(created.status.success(), "{}", text(&created));
    let out = String::from_utf8_lossy(&created.stdout);
    assert_eq!(out.matches("created ").count(), 4, "{}", text(&created));
    let (verified, _) = admin(&prefix, &vars, &format!("topics verify {options}"));
    assert!(verified.status.success(), "{}", text(&verified));
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout)
            .matches("ok ")
            .count(),
        4,
        "{}",
        text(&verified)
    );
}

/// Exit status 2 within seconds, the message containing each of `expected`.
fn expect_refused(output: &Output, took: Duration, expected: &[&str]) {
    let all = text(output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {all}");
    for e in expected {
        assert!(all.contains(e), "{e:?} missing: {all}");
    }
}

#[test]
fn a_wrong_password_ends_it_within_seconds_without_showing_it() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let password = unique_name("not-the-pa55word");
    let ca = kafka.ca_path.display().to_string();
    let vars = [
        ("KAFKA_BROKERS", kafka.brokers.as_str()),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", kafka.username.as_str()),
        ("KAFKA_SASL_PASSWORD", password.as_str()),
        ("KAFKA_SSL_CA_LOCATION", ca.as_str()),
    ];
    for command in ["topics create", "topics verify"] {
        let (output, took) = admin(&unique_name("refused"), &vars, command);
        expect_refused(
            &output,
            took,
            &["SASL authentication failed", "KAFKA_SASL_PASSWORD"],
        );
        assert!(!text(&output).contains(&password), "{}", text(&output));
    }
}

#[test]
fn an_untrusted_certificate_ends_it_within_seconds() {
    let kafka = SecureKafka::shared_ssl();
    // No CA setting: the system's trust store does not know the test CA.
    let vars = [
        ("KAFKA_BROKERS", kafka.brokers.as_str()),
        ("KAFKA_SECURITY_PROTOCOL", "SSL"),
    ];
    let (output, took) = admin(&unique_name("untrusted"), &vars, "topics verify");
    expect_refused(
        &output,
        took,
        &[
            "the broker's certificate is not trusted",
            "KAFKA_SSL_CA_LOCATION or KAFKA_SSL_CA_SECRET_ARN",
        ],
    );
}
