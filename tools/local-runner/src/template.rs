//! The event source settings the runner imitates, read from `template.yaml`
//! so that local batches are the ones AWS would form.

use std::{path::Path, time::Duration};

use yaml_rust2::{Yaml, YamlLoader};

use crate::stream_source::StreamSettings;

/// The async commands' Kafka event source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaSettings {
    pub batch_size: usize,
    pub window: Duration,
}

/// Both event sources, as the template sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSources {
    pub stream: StreamSettings,
    pub stream_window: Duration,
    pub kafka: KafkaSettings,
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

    /// Reads `StreamPublisherEventSource` and `AsyncCommandsSelfManagedSource`.
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
        let stream = props("StreamPublisherEventSource")?;
        let kafka = props("AsyncCommandsSelfManagedSource")?;
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
            kafka: KafkaSettings {
                batch_size: int(kafka, "BatchSize")? as usize,
                window: Duration::from_secs(int(kafka, "MaximumBatchingWindowInSeconds")? as u64),
            },
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
        assert_eq!(
            sources.kafka,
            KafkaSettings {
                batch_size: 100,
                window: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn names_what_is_missing() {
        let e = EventSources::parse("Resources: {}").unwrap_err();
        assert!(e.contains("StreamPublisherEventSource"), "{e}");
        let e = EventSources::parse(
            "Resources:\n  StreamPublisherEventSource:\n    Properties:\n      BatchSize: many\n  AsyncCommandsSelfManagedSource:\n    Properties: {}\n",
        )
        .unwrap_err();
        assert!(e.contains("BatchSize"), "{e}");
    }
}
