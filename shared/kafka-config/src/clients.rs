//! Every producer and consumer of the suite, built from a profile: the
//! connection ([`KafkaSettings::client_config`]), the producer defaults of
//! docs/contract.md §7 ([`KafkaSettings::producer_config`]) and what the
//! profile's job needs on top. Producers connect at once
//! ([`crate::connect_early`]), so no first event waits for it.

use std::time::Duration;

use rdkafka::{
    ClientConfig, consumer::StreamConsumer, error::KafkaError, producer::FutureProducer,
};

use crate::{KafkaContext, KafkaSettings, connect_early};

/// What a producer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerProfile {
    /// The database events. `enable.gapless.guarantee`: a delivery that
    /// fails for good stops the producer instead of leaving a gap before
    /// the records after it. No message timeout: librdkafka never gives a
    /// record up; the handler's deadline bounds how long it waits, and the
    /// batch is retried whole.
    Gapless,
    /// Each message settled, delivered or failed, within this long: the
    /// HTTP async submit, whose caller waits for it.
    Bounded(Duration),
    /// The contract's defaults (the async responses, tools, tests).
    Standard,
}

/// What a consumer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerProfile<'a> {
    /// Lambda's Kafka event source, as the local runner imitates it: a
    /// member of `group` that commits offsets itself once a batch is done,
    /// starts where the group never committed at the earliest offset
    /// (`TRIM_HORIZON`), and keeps its partitions while a batch is retried.
    EventSource { group: &'a str },
    /// A downstream consumer group (the example consumer): commits as it
    /// reads, starts at the earliest offset.
    Subscriber { group: &'a str },
    /// Reads partitions it assigns itself, from the start, and commits
    /// nothing (the demo's checks).
    Reader,
}

impl KafkaSettings {
    /// The properties of a producer for `profile`.
    pub fn producer_config_for(&self, profile: ProducerProfile) -> ClientConfig {
        let mut c = self.producer_config();
        match profile {
            ProducerProfile::Gapless => {
                c.set("enable.gapless.guarantee", "true")
                    .set("message.timeout.ms", "0");
            }
            ProducerProfile::Bounded(timeout) => {
                // At least 1 ms: 0 would mean no timeout at all.
                c.set("message.timeout.ms", timeout.as_millis().max(1).to_string());
            }
            ProducerProfile::Standard => {}
        }
        c
    }

    /// A producer for `profile` that starts connecting now, asking for
    /// `topic`'s metadata.
    pub fn producer(
        &self,
        profile: ProducerProfile,
        topic: &str,
        context: &KafkaContext,
    ) -> Result<FutureProducer<KafkaContext>, KafkaError> {
        let producer: FutureProducer<KafkaContext> = self
            .producer_config_for(profile)
            .create_with_context(context.clone())?;
        connect_early(&producer, topic);
        Ok(producer)
    }

    /// The properties of a consumer for `profile`.
    pub fn consumer_config(&self, profile: ConsumerProfile<'_>) -> ClientConfig {
        let mut c = self.client_config();
        c.set("auto.offset.reset", "earliest");
        match profile {
            ConsumerProfile::EventSource { group } => {
                c.set("group.id", group)
                    .set("enable.auto.commit", "false")
                    // Joins within seconds (a broker admits a member after
                    // up to half the session timeout).
                    .set("session.timeout.ms", "6000")
                    .set("heartbeat.interval.ms", "1000")
                    // A failing batch is retried without polling, as
                    // Lambda retries it: stay in the group meanwhile.
                    .set("max.poll.interval.ms", "3600000");
            }
            ConsumerProfile::Subscriber { group } => {
                c.set("group.id", group)
                    .set("enable.auto.commit", "true")
                    // Joins (and rejoins after a restart) sooner than the
                    // 45 s default.
                    .set("session.timeout.ms", "10000");
            }
            ConsumerProfile::Reader => {
                // librdkafka wants a group even when partitions are
                // assigned; a fresh one commits nothing anyone reads.
                c.set(
                    "group.id",
                    format!("evidentsource-reader-{}", uuid::Uuid::new_v4()),
                )
                .set("enable.auto.commit", "false");
            }
        }
        c
    }

    /// A consumer for `profile` (subscribing or assigning is the caller's).
    pub fn consumer(
        &self,
        profile: ConsumerProfile<'_>,
        context: &KafkaContext,
    ) -> Result<StreamConsumer<KafkaContext>, KafkaError> {
        self.consumer_config(profile)
            .create_with_context(context.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> KafkaSettings {
        KafkaSettings::from_lookup(|k| (k == "KAFKA_BROKERS").then(|| "127.0.0.1:9".to_owned()))
            .unwrap()
    }

    #[test]
    fn each_producer_profile_sets_only_what_its_job_needs() {
        let base = settings().producer_config();
        // (profile, properties that differ from the contract's defaults)
        let table: [(ProducerProfile, &[(&str, &str)]); 4] = [
            (ProducerProfile::Standard, &[]),
            (
                ProducerProfile::Gapless,
                &[
                    ("enable.gapless.guarantee", "true"),
                    ("message.timeout.ms", "0"),
                ],
            ),
            (
                ProducerProfile::Bounded(Duration::from_secs(10)),
                &[("message.timeout.ms", "10000")],
            ),
            (
                ProducerProfile::Bounded(Duration::ZERO),
                &[("message.timeout.ms", "1")],
            ),
        ];
        for (profile, changes) in table {
            let config = settings().producer_config_for(profile);
            let mut expected: Vec<(String, String)> = KafkaSettings::describe(&base);
            for (k, v) in changes {
                expected.retain(|(key, _)| key != k);
                expected.push((k.to_string(), v.to_string()));
            }
            expected.sort();
            assert_eq!(KafkaSettings::describe(&config), expected, "{profile:?}");
            // Every producer is idempotent and waits for all replicas.
            assert_eq!(config.get("enable.idempotence"), Some("true"));
            assert_eq!(config.get("acks"), Some("all"));
        }
    }

    #[test]
    fn each_consumer_profile_commits_as_its_job_needs() {
        // (profile, group, enable.auto.commit, max.poll.interval.ms)
        let table: [(ConsumerProfile, Option<&str>, &str, Option<&str>); 3] = [
            (
                ConsumerProfile::EventSource { group: "g" },
                Some("g"),
                "false",
                Some("3600000"),
            ),
            (
                ConsumerProfile::Subscriber { group: "s" },
                Some("s"),
                "true",
                None,
            ),
            (ConsumerProfile::Reader, None, "false", None),
        ];
        for (profile, group, auto_commit, poll_interval) in table {
            let c = settings().consumer_config(profile);
            match group {
                Some(g) => assert_eq!(c.get("group.id"), Some(g)),
                None => assert!(
                    c.get("group.id")
                        .unwrap()
                        .starts_with("evidentsource-reader-")
                ),
            }
            assert_eq!(
                c.get("enable.auto.commit"),
                Some(auto_commit),
                "{profile:?}"
            );
            assert_eq!(c.get("max.poll.interval.ms"), poll_interval, "{profile:?}");
            assert_eq!(c.get("auto.offset.reset"), Some("earliest"));
            assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:9"));
        }
        // Two readers never share a group.
        assert_ne!(
            settings()
                .consumer_config(ConsumerProfile::Reader)
                .get("group.id"),
            settings()
                .consumer_config(ConsumerProfile::Reader)
                .get("group.id")
        );
    }
}
