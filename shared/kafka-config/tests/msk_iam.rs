//! AWS MSK IAM: the token checked offline (SigV4 recomputed independently
//! from fixed fake credentials), and librdkafka's refresh callback served
//! inside running tokio runtimes without deadlock.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use evidentsource_kafka_config::{KafkaContext, KafkaSettings, MskIamTokenSource, ServedAdmin};
use hmac::{Hmac, Mac};
use rdkafka::{
    consumer::{Consumer, StreamConsumer},
    producer::FutureProducer,
};
use sha2::{Digest, Sha256};

const ACCESS_KEY: &str = "AKIDEXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn fake_source() -> MskIamTokenSource {
    let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "fixed-test-credentials");
    MskIamTokenSource::new("eu-central-1", SharedCredentialsProvider::new(creds))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn token_is_a_presigned_connect_url() {
    let source = fake_source();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (token, expires_ms) = source.sign().await.unwrap();

    let url = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64url without padding"),
    )
    .unwrap();
    let url = url::Url::parse(&url).unwrap();
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host_str(), Some("kafka.eu-central-1.amazonaws.com"));
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k}"))
    };

    assert_eq!(get("Action"), "kafka-cluster:Connect");
    assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
    assert_eq!(get("X-Amz-SignedHeaders"), "host");
    assert_eq!(get("X-Amz-Expires"), "900");
    let amz_date = get("X-Amz-Date");
    let date = &amz_date[..8];
    let scope = format!("{date}/eu-central-1/kafka-cluster/aws4_request");
    assert_eq!(get("X-Amz-Credential"), format!("{ACCESS_KEY}/{scope}"));

    // Expiry: signing time + 900 s, and the token says so.
    let signed_at = chrono::NaiveDateTime::parse_from_str(&amz_date, "%Y%m%dT%H%M%SZ")
        .unwrap()
        .and_utc();
    assert_eq!(expires_ms, signed_at.timestamp_millis() + 900_000);
    assert!(
        (expires_ms - before - 900_000).abs() < 5_000,
        "expires 15 minutes from now"
    );

    // Recompute the signature: canonical request of the signed parameters
    // (everything but the signature and the user agent added afterwards).
    let mut signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "X-Amz-Signature" && k != "User-Agent")
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    signed.sort();
    let query = signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let empty_payload = hex::encode(Sha256::digest(b""));
    let canonical =
        format!("GET\n/\n{query}\nhost:kafka.eu-central-1.amazonaws.com\n\nhost\n{empty_payload}");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), date);
    let k_region = hmac(&k_date, "eu-central-1");
    let k_service = hmac(&k_region, "kafka-cluster");
    let k_signing = hmac(&k_service, "aws4_request");
    assert_eq!(
        get("X-Amz-Signature"),
        hex::encode(hmac(&k_signing, &to_sign))
    );
}

fn iam_settings() -> KafkaSettings {
    // A loopback port nothing listens on: the clients never connect, but
    // librdkafka asks for a token as soon as they start.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let brokers = format!("127.0.0.1:{port}");
    KafkaSettings::from_lookup(|k| match k {
        "KAFKA_BROKERS" => Some(brokers.clone()),
        "KAFKA_SECURITY_PROTOCOL" => Some("SASL_SSL".into()),
        "KAFKA_SASL_MECHANISM" => Some("AWS_MSK_IAM".into()),
        "AWS_REGION" => Some("eu-central-1".into()),
        _ => None,
    })
    .unwrap()
}

/// Waits until the callback has signed a token: a request is counted when
/// the callback starts and the signature when it ends, and on the
/// multi-thread runtime the callback runs on librdkafka's thread, so the
/// test must not look between the two.
async fn wait_for_signed_token(source: &MskIamTokenSource, what: &str) {
    let started = Instant::now();
    while source.signed() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: no token signed in 20 s ({} requested)",
            source.requests()
        );
        // Yield to the runtime: a deadlocked callback would hang here.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(source.requests() >= 1, "{what}: signed without a request");
}

/// Exercised on the current-thread runtime (where blocking the thread on a
/// future of the same runtime deadlocks and `block_in_place` panics) and on
/// the multi-thread one, with an empty token cache so that the callback must
/// sign a token itself.
async fn refresh_callback_runs(what: &str) {
    let settings = iam_settings();

    let source = Arc::new(fake_source());
    let producer: FutureProducer<KafkaContext> = settings
        .producer_config()
        .create_with_context(KafkaContext::new(Some(source.clone())))
        .unwrap();
    wait_for_signed_token(&source, &format!("{what} producer")).await;
    drop(producer);

    let source = Arc::new(fake_source());
    let consumer: StreamConsumer<KafkaContext> = settings
        .client_config()
        .set("group.id", "msk-iam-test")
        .create_with_context(KafkaContext::new(Some(source.clone())))
        .unwrap();
    consumer.subscribe(&["t"]).unwrap();
    // recv() polls the consumer on this runtime's thread: the callback runs here.
    let recv = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await;
    // A timeout or a transport error: nothing can arrive from a closed port;
    // what matters is that recv() returned and did not hang the runtime.
    assert!(
        !matches!(recv, Ok(Ok(_))),
        "{what}: nothing to receive from a closed port"
    );
    wait_for_signed_token(&source, &format!("{what} consumer")).await;
}

/// An admin client (the topic tool's) gets a token too: rdkafka's own
/// AdminClient never asks for one (its main queue is not served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_callback_for_an_admin_client() {
    let source = Arc::new(fake_source());
    let admin = ServedAdmin::new(&iam_settings(), KafkaContext::new(Some(source.clone()))).unwrap();
    let _ = admin
        .client()
        .create_topics(
            &[rdkafka::admin::NewTopic::new(
                "t",
                1,
                rdkafka::admin::TopicReplication::Fixed(1),
            )],
            &rdkafka::admin::AdminOptions::new()
                .operation_timeout(Some(Duration::from_secs(2)))
                .request_timeout(Some(Duration::from_secs(2))),
        )
        .await;
    wait_for_signed_token(&source, "admin").await;
}

#[tokio::test(flavor = "current_thread")]
async fn refresh_callback_on_a_current_thread_runtime() {
    tokio::time::timeout(
        Duration::from_secs(60),
        refresh_callback_runs("current-thread"),
    )
    .await
    .expect("no deadlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_callback_on_a_multi_thread_runtime() {
    tokio::time::timeout(
        Duration::from_secs(60),
        refresh_callback_runs("multi-thread"),
    )
    .await
    .expect("no deadlock");
}

#[tokio::test]
async fn a_cached_token_is_reused() {
    let source = fake_source();
    source.prefetch().await.unwrap();
    let a = source.token().unwrap();
    let b = source.token().unwrap();
    assert_eq!(a.token, b.token);
    assert_eq!(source.signed(), 1, "served from the cache");
    assert!(a.lifetime_ms > 0);
}
