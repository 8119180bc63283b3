//! The TLS/SASL front in front of tansu, checked with plain rdkafka clients
//! (not the suite's config crate, whose own tests use this broker): every
//! mechanism logs in and round-trips a message, a wrong password and a
//! client without TLS are turned away.

use std::time::Duration;

use evidentsource_local_servers::{SecureKafka, unique_name};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
};

fn as_user(kafka: &SecureKafka, mechanism: &str, password: &str) -> ClientConfig {
    let mut c = kafka.client_config();
    c.set("sasl.mechanism", mechanism)
        .set("sasl.password", password);
    c
}

async fn round_trip(config: &ClientConfig, topic: &str, text: &str) {
    let producer: FutureProducer = config.create().unwrap();
    producer
        .send(
            FutureRecord::<str, str>::to(topic).payload(text),
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce: {e}"));
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", unique_name("g"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(std::time::Instant::now() < deadline, "nothing read back");
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200))
            && m.payload() == Some(text.as_bytes())
        {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mechanism_logs_in_over_tls() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let topic = unique_name("front");
    kafka.create_topic(&topic, 1).await.unwrap();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        round_trip(
            &as_user(kafka, mechanism, &kafka.password),
            &topic,
            mechanism,
        )
        .await;
    }
}

#[test]
fn a_wrong_password_or_no_tls_gets_no_metadata() {
    let kafka = SecureKafka::shared_sasl_ssl();
    let wrong: BaseConsumer = as_user(kafka, "SCRAM-SHA-256", "wrong").create().unwrap();
    assert!(wrong.fetch_metadata(None, Duration::from_secs(3)).is_err());
    let mut plaintext = kafka.client_config();
    plaintext.set("security.protocol", "sasl_plaintext");
    let plaintext: BaseConsumer = plaintext.create().unwrap();
    assert!(
        plaintext
            .fetch_metadata(None, Duration::from_secs(3))
            .is_err()
    );
}
