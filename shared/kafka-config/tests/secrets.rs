//! SASL credentials from a Secrets Manager secret (moto), never shown.

use evidentsource_kafka_config::load_sasl_secret;
use evidentsource_local_servers::{local_aws, shared, unique_name};

fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&local_aws(&shared().dynamodb_endpoint))
}

#[tokio::test]
async fn credentials_come_from_the_secret() {
    let client = client();
    let name = unique_name("AmazonMSK_evidentsource");
    let password = "s3cret-from-secrets-manager";
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(format!(
            r#"{{"username": "evidentsource", "password": "{password}"}}"#
        ))
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let creds = load_sasl_secret(&client, &arn).await.unwrap();
    assert_eq!(creds.username, "evidentsource");
    assert_eq!(creds.password.expose(), password);
    assert!(!format!("{creds:?}").contains(password));

    let bad = unique_name("bad");
    client
        .create_secret()
        .name(&bad)
        .secret_string(format!("user=evidentsource password={password}"))
        .send()
        .await
        .unwrap();
    let err = load_sasl_secret(&client, &bad).await.unwrap_err();
    assert_eq!(err.var, "KAFKA_SASL_SECRET_ARN");
    assert!(!err.to_string().contains(password), "{err}");

    let err = load_sasl_secret(&client, "no-such-secret")
        .await
        .unwrap_err();
    assert_eq!(err.var, "KAFKA_SASL_SECRET_ARN");
}

#[tokio::test]
async fn resolve_loads_the_named_secret() {
    let client = client();
    let name = unique_name("AmazonMSK_resolve");
    client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"username": "svc", "password": "from-the-secret"}"#)
        .send()
        .await
        .unwrap();
    let settings = evidentsource_kafka_config::KafkaSettings::from_lookup(|k| match k {
        "KAFKA_BROKERS" => Some("b:9092".into()),
        "KAFKA_SECURITY_PROTOCOL" => Some("SASL_SSL".into()),
        "KAFKA_SASL_MECHANISM" => Some("SCRAM-SHA-512".into()),
        "KAFKA_SASL_SECRET_ARN" => Some(name.clone()),
        _ => None,
    })
    .unwrap();
    assert!(settings.credentials.is_none(), "not loaded before resolve");
    let aws = local_aws(&shared().dynamodb_endpoint);
    let mut resolved = settings;
    let context = resolved.resolve(&aws).await.unwrap();
    assert_eq!(resolved.client_config().get("sasl.username"), Some("svc"));
    assert_eq!(
        resolved.client_config().get("sasl.password"),
        Some("from-the-secret")
    );
    assert!(context.msk_iam().is_none());
}
