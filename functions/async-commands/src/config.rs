use std::time::Duration;

use evidentsource_kafka_config::{EnvError, KafkaSettings, Topics, base_uri_from_lookup};

/// How long a recorded response lives unless `RESPONSE_RECORD_TTL_SECONDS`
/// says otherwise: a week, well over the commands topic's recommended
/// retention of one day (docs/contract.md §1).
pub const DEFAULT_RESPONSE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The processor's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    /// `BASE_URI`: responses have `ce_source` = `{BASE_URI}/async-commands`.
    pub base_uri: String,
    /// `ASYNC_RESPONSES_KAFKA_TOPIC`.
    pub responses_topic: String,
    /// `RESPONSE_RECORD_TTL_SECONDS`: how long a response is remembered for
    /// re-delivered commands. Must be at least the commands topic's
    /// retention, or a command re-delivered after it could run again.
    pub response_ttl: Duration,
    pub kafka: KafkaSettings,
}

impl ProcessorConfig {
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let base_uri = base_uri_from_lookup(&lookup)?;
        let response_ttl = match lookup("RESPONSE_RECORD_TTL_SECONDS").filter(|v| !v.is_empty()) {
            None => DEFAULT_RESPONSE_TTL,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(secs) if secs >= 3600 => Duration::from_secs(secs),
                _ => {
                    return Err(EnvError::new(
                        "RESPONSE_RECORD_TTL_SECONDS",
                        format!(
                            "{v:?}: give whole seconds, at least 3600 and no less than the \
                             commands topic's retention"
                        ),
                    ));
                }
            },
        };
        Ok(ProcessorConfig {
            base_uri,
            responses_topic: Topics::from_lookup(&lookup).async_responses,
            response_ttl,
            kafka: KafkaSettings::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ProcessorConfig, EnvError> {
        ProcessorConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn reads_and_validates() {
        let base = [("BASE_URI", "https://x"), ("KAFKA_BROKERS", "b:9092")];
        let ok = config(&base).unwrap();
        assert_eq!(ok.responses_topic, "evidentsource-async-responses");
        assert_eq!(ok.response_ttl, DEFAULT_RESPONSE_TTL);
        let custom = config(&[
            base[0],
            base[1],
            ("ASYNC_RESPONSES_KAFKA_TOPIC", "r"),
            ("RESPONSE_RECORD_TTL_SECONDS", "86400"),
        ])
        .unwrap();
        assert_eq!(custom.responses_topic, "r");
        assert_eq!(custom.response_ttl, Duration::from_secs(86400));
        for bad in ["60", "-1", "a day"] {
            let e = config(&[base[0], base[1], ("RESPONSE_RECORD_TTL_SECONDS", bad)]);
            assert_eq!(e.unwrap_err().var, "RESPONSE_RECORD_TTL_SECONDS", "{bad}");
        }
        assert_eq!(config(&base[1..]).unwrap_err().var, "BASE_URI");
    }
}
