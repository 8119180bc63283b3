//! The event source settings the runner imitates, read from `template.yaml`
//! so that local batches are the ones AWS would form.

use std::{path::Path, time::Duration};

use yaml_rust2::{Yaml, YamlLoader};

use crate::{
    api::DEFAULT_INTEGRATION_TIMEOUT, checkpoint::StartingPosition, stream_source::StreamSettings,
};

/// The async commands' Kafka event source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaSettings {
    pub batch_size: usize,
    pub window: Duration,
}

/// Both event sources, as the template sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    pub stream: StreamSettings,
    pub stream_window: Duration,
    /// The stream source's `FilterCriteria` patterns (JSON).
    pub stream_filters: Vec<String>,
    /// Where the stream source starts reading a stream it never read.
    pub stream_starting_position: StartingPosition,
    pub kafka: KafkaSettings,
    /// The functions' `Timeout`s: each invocation's deadline.
    pub ingestion_timeout: Duration,
    pub publisher_timeout: Duration,
    pub async_timeout: Duration,
    /// The HTTP API integration's `TimeoutInMillis` (30 s when unset).
    pub integration_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("template {path}: {problem}")]
pub struct TemplateError {
    path: String,
    problem: String,
}

impl EventSources {
    pub fn from_template(path: &Path) -> Result<Self, TemplateError> {
        let fail = |problem: String| TemplateError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(fail)
    }

    /// Reads `StreamPublisherEventSource`, `AsyncCommandsSelfManagedSource`,
    /// `HttpApiIntegration` and the functions' timeouts.
    pub fn parse(text: &str) -> Result<Self, String> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let doc = docs.first().ok_or("empty template")?;
        let props = |resource: &str| -> Result<&Yaml, String> {
            let p = &doc["Resources"][resource]["Properties"];
            if p.is_badvalue() {
                Err(format!("no resource {resource} with Properties"))
            } else {
                Ok(p)
            }
        };
        let int = |p: &Yaml, key: &str| -> Result<i64, String> {
            p[key]
                .as_i64()
                .ok_or_else(|| format!("{key} is not a number"))
        };
        let seconds = |resource: &str| -> Result<Duration, String> {
            let t = int(props(resource)?, "Timeout").map_err(|e| format!("{resource}: {e}"))?;
            Ok(Duration::from_secs(t.max(1) as u64))
        };
        let stream = props("StreamPublisherEventSource")?;
        let kafka = props("AsyncCommandsSelfManagedSource")?;
        let integration_timeout = || -> Result<Duration, String> {
            let integration = props("HttpApiIntegration")?;
            if integration["TimeoutInMillis"].is_badvalue() {
                return Ok(DEFAULT_INTEGRATION_TIMEOUT);
            }
            let ms = int(integration, "TimeoutInMillis")?;
            // API Gateway's range for HTTP APIs.
            if !(50..=30_000).contains(&ms) {
                return Err(format!("TimeoutInMillis {ms} is not within 50-30000"));
            }
            Ok(Duration::from_millis(ms as u64))
        };
        Ok(EventSources {
            stream: StreamSettings {
                batch_size: int(stream, "BatchSize")? as usize,
                max_retries: int(stream, "MaximumRetryAttempts")? as u32,
                bisect_on_error: stream["BisectBatchOnFunctionError"]
                    .as_bool()
                    .ok_or("BisectBatchOnFunctionError is not a boolean")?,
            },
            stream_window: Duration::from_secs(
                int(stream, "MaximumBatchingWindowInSeconds")? as u64
            ),
            stream_filters: match stream["FilterCriteria"]["Filters"].as_vec() {
                None => Vec::new(),
                Some(filters) => filters
                    .iter()
                    .map(|f| {
                        f["Pattern"]
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| "a FilterCriteria filter has no Pattern".to_owned())
                    })
                    .collect::<Result<_, _>>()?,
            },
            stream_starting_position: StartingPosition::parse(
                stream["StartingPosition"]
                    .as_str()
                    .ok_or("StartingPosition is not a string")?,
            )?,
            kafka: KafkaSettings {
                batch_size: int(kafka, "BatchSize")? as usize,
                window: Duration::from_secs(int(kafka, "MaximumBatchingWindowInSeconds")? as u64),
            },
            ingestion_timeout: seconds("CommandIngestionFunction")?,
            publisher_timeout: seconds("StreamPublisherFunction")?,
            async_timeout: seconds("AsyncCommandsFunction")?,
            integration_timeout: integration_timeout()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_repository_template() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let sources = EventSources::from_template(&path).unwrap();
        assert_eq!(
            sources.stream,
            StreamSettings {
                batch_size: 1000,
                max_retries: 10000,
                bisect_on_error: true
            }
        );
        assert_eq!(sources.stream_window, Duration::ZERO);
        assert_eq!(sources.stream_filters.len(), 1);
        assert!(sources.stream_filters[0].contains("head"));
        assert_eq!(sources.ingestion_timeout, Duration::from_secs(15));
        assert_eq!(sources.publisher_timeout, Duration::from_secs(60));
        assert_eq!(sources.async_timeout, Duration::from_secs(120));
        assert_eq!(
            sources.kafka,
            KafkaSettings {
                batch_size: 100,
                window: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn reads_the_starting_position_and_the_integration_timeout() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let sources = EventSources::parse(&full).unwrap();
        assert_eq!(
            sources.stream_starting_position,
            StartingPosition::TrimHorizon
        );
        assert_eq!(sources.integration_timeout, Duration::from_secs(20));
        // (edit of the template, the value read or the error's words).
        type Read = Result<(StartingPosition, Duration), &'static str>;
        let table: [(&str, &str, Read); 5] = [
            (
                "StartingPosition: TRIM_HORIZON",
                "StartingPosition: LATEST",
                Ok((StartingPosition::Latest, Duration::from_secs(20))),
            ),
            (
                "TimeoutInMillis: 20000",
                "TimeoutInMillis: 1500",
                Ok((StartingPosition::TrimHorizon, Duration::from_millis(1500))),
            ),
            (
                "      TimeoutInMillis: 20000\n",
                "",
                Ok((StartingPosition::TrimHorizon, DEFAULT_INTEGRATION_TIMEOUT)),
            ),
            (
                "TimeoutInMillis: 20000",
                "TimeoutInMillis: 45000",
                Err("45000"),
            ),
            (
                "StartingPosition: TRIM_HORIZON",
                "StartingPosition: AT_TIMESTAMP",
                Err("AT_TIMESTAMP"),
            ),
        ];
        for (from, to, expected) in table {
            assert!(full.contains(from), "{from}");
            let read = EventSources::parse(&full.replace(from, to))
                .map(|s| (s.stream_starting_position, s.integration_timeout));
            match (read, expected) {
                (Ok(read), Ok(expected)) => assert_eq!(read, expected, "{to}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{to}: {e}"),
                (read, expected) => panic!("{to}: {read:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn names_what_is_missing() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let e = EventSources::parse(&full.replace("      Timeout: 60\n", "")).unwrap_err();
        assert!(e.contains("StreamPublisherFunction: Timeout"), "{e}");
        let e = EventSources::parse("Resources: {}").unwrap_err();
        assert!(e.contains("StreamPublisherEventSource"), "{e}");
        let e = EventSources::parse(
            "Resources:\n  StreamPublisherEventSource:\n    Properties:\n      BatchSize: many\n  AsyncCommandsSelfManagedSource:\n    Properties: {}\n",
        )
        .unwrap_err();
        assert!(e.contains("BatchSize"), "{e}");
    }
}
