use evidentsource_kafka_config::{KafkaSettings, Topics, base_uri_from_lookup};
use evidentsource_runtime::EnvError;

/// The publisher's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// `BASE_URI`: the base of every `ce_source` (`{BASE_URI}/db/{name}`).
    pub base_uri: String,
    /// `DATABASE_EVENTS_KAFKA_TOPIC`.
    pub topic: String,
    pub kafka: KafkaSettings,
}

impl PublisherConfig {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let base_uri = base_uri_from_lookup(&lookup)?;
        let topic = Topics::from_lookup(&lookup).database_events;
        let kafka = KafkaSettings::from_lookup(&lookup)?;
        Ok(PublisherConfig {
            base_uri,
            topic,
            kafka,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<PublisherConfig, EnvError> {
        PublisherConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_and_validates() {
        let ok = config(&[
            ("BASE_URI", "https://api.example.com/"),
            ("KAFKA_BROKERS", "b:9092"),
        ])
        .unwrap();
        assert_eq!(ok.base_uri, "https://api.example.com");
        assert_eq!(ok.topic, "evidentsource-database-events");
        assert_eq!(
            config(&[("KAFKA_BROKERS", "b:9092")]).unwrap_err().var,
            "BASE_URI"
        );
        assert_eq!(
            config(&[("BASE_URI", "api.example.com"), ("KAFKA_BROKERS", "b:9092")])
                .unwrap_err()
                .var,
            "BASE_URI"
        );
        assert_eq!(
            config(&[("BASE_URI", "https://x")]).unwrap_err().var,
            "KAFKA_BROKERS"
        );
        let custom = config(&[
            ("BASE_URI", "https://x"),
            ("KAFKA_BROKERS", "b:1"),
            ("DATABASE_EVENTS_KAFKA_TOPIC", "t"),
        ]);
        assert_eq!(custom.unwrap().topic, "t");
    }
}
