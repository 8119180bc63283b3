//! The event source settings the runner imitates, read from `template.yaml`
//! so that local batches are the ones AWS would form.

use std::{path::Path, time::Duration};

use yaml_rust2::Yaml;

use crate::{
    api::DEFAULT_INTEGRATION_TIMEOUT,
    batcher::{BatchSettings, INFINITE_RETRIES},
    cfn::{self, Deployment},
    checkpoint::StartingPosition,
};

/// The async commands' Kafka event source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub batch_size: usize,
    pub window: Duration,
    /// Provisioned mode's error handling; None on demand, where a failed
    /// batch is retried until it succeeds.
    pub provisioned: Option<KafkaErrorHandling>,
}

/// A provisioned Kafka event source's error handling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaErrorHandling {
    /// `MaximumRetryAttempts` and `BisectBatchOnFunctionError`.
    pub retries: BatchSettings,
    /// `MaximumRecordAgeInSeconds` (None: -1, no limit).
    pub max_record_age: Option<Duration>,
    /// The on-failure destination: the template's SQS queue (logical id).
    pub on_failure: Option<String>,
}

/// A DynamoDB stream event source mapping and its function's timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub batch: BatchSettings,
    pub window: Duration,
    /// The `FilterCriteria` patterns (JSON).
    pub filters: Vec<String>,
    /// Where the source starts reading a stream it never read.
    pub starting_position: StartingPosition,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: the function's
    /// reported failures count; without it Lambda ignores them.
    pub partial_batch_responses: bool,
    /// The function's `Timeout`: each invocation's deadline.
    pub timeout: Duration,
}

/// The event sources, as the template sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSources {
    /// The table's stream into the publisher (`StreamPublisherEventSource`).
    pub publisher: StreamSettings,
    /// The same stream into the indexer (`IndexerEventSource`), a second
    /// reader with its own position.
    pub indexer: StreamSettings,
    pub kafka: KafkaSettings,
    /// The functions' `Timeout`s: each invocation's deadline.
    pub ingestion_timeout: Duration,
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

/// Lambda's retry limit when retries are infinite but an on-failure
/// destination is set (Kafka sources).
const RETRIES_WITH_A_DESTINATION: u32 = 10;

impl EventSources {
    /// Reads `path` as deployed with `parameters` (`Name`, `Value`).
    pub fn from_template(
        path: &Path,
        parameters: &[(String, String)],
    ) -> Result<Self, TemplateError> {
        let fail = |problem: String| TemplateError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        Self::parse(&text, parameters).map_err(fail)
    }

    /// Reads `StreamPublisherEventSource`, `IndexerEventSource`,
    /// `AsyncCommandsSelfManagedSource`, `HttpApiIntegration` and the
    /// functions' timeouts.
    pub fn parse(text: &str, parameters: &[(String, String)]) -> Result<Self, String> {
        let deployment = Deployment::new(&cfn::load(text)?, parameters)?;
        let props = |resource: &str| -> Result<&Yaml, String> {
            deployment
                .properties(resource)
                .ok_or_else(|| format!("no resource {resource} with Properties"))
        };
        let seconds = |resource: &str| -> Result<Duration, String> {
            let t = int(props(resource)?, "Timeout").map_err(|e| format!("{resource}: {e}"))?;
            Ok(Duration::from_secs(t.max(1) as u64))
        };
        let stream = |source: &str, function: &str| -> Result<StreamSettings, String> {
            let read = stream_settings(props(source)?).map_err(|e| format!("{source}: {e}"))?;
            Ok(StreamSettings {
                timeout: seconds(function)?,
                ..read
            })
        };
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
            publisher: stream("StreamPublisherEventSource", "StreamPublisherFunction")?,
            indexer: stream("IndexerEventSource", "IndexerFunction")?,
            kafka: kafka_settings(props("AsyncCommandsSelfManagedSource")?, &deployment)
                .map_err(|e| format!("AsyncCommandsSelfManagedSource: {e}"))?,
            ingestion_timeout: seconds("CommandIngestionFunction")?,
            async_timeout: seconds("AsyncCommandsFunction")?,
            integration_timeout: integration_timeout()?,
        })
    }
}

/// A stream event source's batching, retries, filters and start (its
/// function's timeout is the caller's to set).
fn stream_settings(stream: &Yaml) -> Result<StreamSettings, String> {
    let partial_batch_responses = match stream["FunctionResponseTypes"].as_vec() {
        None => false,
        Some(types) => match types.iter().map(Yaml::as_str).collect::<Vec<_>>()[..] {
            [Some("ReportBatchItemFailures")] => true,
            _ => return Err("FunctionResponseTypes is not [ReportBatchItemFailures]".into()),
        },
    };
    Ok(StreamSettings {
        batch: BatchSettings {
            batch_size: int(stream, "BatchSize")? as usize,
            max_retries: int(stream, "MaximumRetryAttempts")? as u32,
            bisect_on_error: stream["BisectBatchOnFunctionError"]
                .as_bool()
                .ok_or("BisectBatchOnFunctionError is not a boolean")?,
        },
        window: Duration::from_secs(int(stream, "MaximumBatchingWindowInSeconds")? as u64),
        filters: match stream["FilterCriteria"]["Filters"].as_vec() {
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
        starting_position: StartingPosition::parse(
            stream["StartingPosition"]
                .as_str()
                .ok_or("StartingPosition is not a string")?,
        )?,
        partial_batch_responses,
        timeout: Duration::ZERO,
    })
}

fn int(p: &Yaml, key: &str) -> Result<i64, String> {
    p[key]
        .as_i64()
        .ok_or_else(|| format!("{key} is not a number"))
}

/// The Kafka source's batching and, in provisioned mode, its error
/// handling, refused where Lambda refuses it (error handling on demand).
fn kafka_settings(kafka: &Yaml, deployment: &Deployment) -> Result<KafkaSettings, String> {
    let batch_size = int(kafka, "BatchSize")? as usize;
    let window = Duration::from_secs(int(kafka, "MaximumBatchingWindowInSeconds")? as u64);
    const ERROR_HANDLING: [&str; 4] = [
        "MaximumRetryAttempts",
        "MaximumRecordAgeInSeconds",
        "BisectBatchOnFunctionError",
        "DestinationConfig",
    ];
    if !kafka["FunctionResponseTypes"].is_badvalue() {
        return Err(
            "FunctionResponseTypes: the runner takes no partial batch responses from Kafka".into(),
        );
    }
    if kafka["ProvisionedPollerConfig"].is_badvalue() {
        if let Some(key) = ERROR_HANDLING.iter().find(|k| !kafka[**k].is_badvalue()) {
            return Err(format!(
                "{key} needs provisioned mode (ProvisionedPollerConfig)"
            ));
        }
        return Ok(KafkaSettings {
            batch_size,
            window,
            provisioned: None,
        });
    }
    let on_failure = match &kafka["DestinationConfig"]["OnFailure"]["Destination"] {
        Yaml::BadValue => None,
        destination => {
            let queue = destination["Fn::GetAtt"][0]
                .as_str()
                .filter(|q| {
                    destination["Fn::GetAtt"][1].as_str() == Some("Arn")
                        && deployment.resource_type(q) == Some("AWS::SQS::Queue")
                })
                .ok_or(
                    "the on-failure destination is not the Arn of an SQS queue of the template",
                )?;
            Some(queue.to_owned())
        }
    };
    let max_retries = match kafka["MaximumRetryAttempts"].as_i64() {
        None | Some(-1) if on_failure.is_some() => RETRIES_WITH_A_DESTINATION,
        None | Some(-1) => INFINITE_RETRIES,
        Some(n @ 0..=10_000) => n as u32,
        Some(n) => return Err(format!("MaximumRetryAttempts {n} is not -1 or 0-10000")),
    };
    let max_record_age = match kafka["MaximumRecordAgeInSeconds"].as_i64() {
        None | Some(-1) => None,
        Some(s @ 60..=604_800) => Some(Duration::from_secs(s as u64)),
        Some(s) => {
            return Err(format!(
                "MaximumRecordAgeInSeconds {s} is not -1 or 60-604800"
            ));
        }
    };
    Ok(KafkaSettings {
        batch_size,
        window,
        provisioned: Some(KafkaErrorHandling {
            retries: BatchSettings {
                batch_size,
                max_retries,
                bisect_on_error: kafka["BisectBatchOnFunctionError"]
                    .as_bool()
                    .unwrap_or(false),
            },
            max_record_age,
            on_failure,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_repository_template() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let sources = EventSources::from_template(&path, &[]).unwrap();
        assert_eq!(
            sources.publisher.batch,
            BatchSettings {
                batch_size: 1000,
                max_retries: 10000,
                bisect_on_error: true
            }
        );
        assert_eq!(sources.publisher.window, Duration::ZERO);
        assert_eq!(sources.publisher.filters.len(), 1);
        assert!(sources.publisher.filters[0].contains("head"));
        assert!(sources.publisher.partial_batch_responses);
        assert_eq!(sources.ingestion_timeout, Duration::from_secs(15));
        assert_eq!(sources.publisher.timeout, Duration::from_secs(60));
        // The indexer: the same stream, its own mapping.
        assert_eq!(
            sources.indexer.batch,
            BatchSettings {
                batch_size: 1000,
                max_retries: 100,
                bisect_on_error: true
            }
        );
        assert_eq!(sources.indexer.window, Duration::from_secs(1));
        assert_eq!(sources.indexer.filters.len(), 1);
        assert!(sources.indexer.filters[0].contains("active"));
        assert!(sources.indexer.partial_batch_responses);
        assert_eq!(sources.indexer.timeout, Duration::from_secs(60));
        assert_eq!(
            sources.indexer.starting_position,
            StartingPosition::TrimHorizon
        );
        assert_eq!(sources.async_timeout, Duration::from_secs(120));
        assert_eq!(
            sources.kafka,
            KafkaSettings {
                batch_size: 100,
                window: Duration::from_secs(1),
                provisioned: None,
            }
        );
    }

    #[test]
    fn reads_the_starting_position_and_the_integration_timeout() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let sources = EventSources::parse(&full, &[]).unwrap();
        assert_eq!(
            sources.publisher.starting_position,
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
            let read = EventSources::parse(&full.replace(from, to), &[])
                .map(|s| (s.publisher.starting_position, s.integration_timeout));
            match (read, expected) {
                (Ok(read), Ok(expected)) => assert_eq!(read, expected, "{to}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{to}: {e}"),
                (read, expected) => panic!("{to}: {read:?}, expected {expected:?}"),
            }
        }
    }

    /// Lambda counts a function's reported failures only with
    /// `ReportBatchItemFailures`; anything else in the list is refused.
    #[test]
    fn partial_batch_responses_follow_the_function_response_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let types = "      FunctionResponseTypes: [ReportBatchItemFailures]\n";
        assert_eq!(full.matches(types).count(), 2);
        let sources = EventSources::parse(&full.replacen(types, "", 2), &[]).unwrap();
        assert!(!sources.publisher.partial_batch_responses);
        assert!(!sources.indexer.partial_batch_responses);
        let odd = full.replace(types, "      FunctionResponseTypes: [Everything]\n");
        let e = EventSources::parse(&odd, &[]).unwrap_err();
        assert!(
            e.contains("StreamPublisherEventSource: FunctionResponseTypes"),
            "{e}"
        );
    }

    #[test]
    fn names_what_is_missing() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let e = EventSources::parse(&full.replace("      Timeout: 60\n", ""), &[]).unwrap_err();
        assert!(e.contains("StreamPublisherFunction: Timeout"), "{e}");
        let e = EventSources::parse("Resources: {}", &[]).unwrap_err();
        assert!(e.contains("StreamPublisherEventSource"), "{e}");
        let e = EventSources::parse(
            "Resources:\n  StreamPublisherEventSource:\n    Properties:\n      BatchSize: many\n  AsyncCommandsSelfManagedSource:\n    Properties: {}\n",
            &[],
        )
        .unwrap_err();
        assert!(e.contains("BatchSize"), "{e}");
    }

    fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_poller_mode_parameter_sets_the_kafka_error_handling() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let provisioned = |max_retries, max_record_age| {
            Some(KafkaErrorHandling {
                retries: BatchSettings {
                    batch_size: 100,
                    max_retries,
                    bisect_on_error: true,
                },
                max_record_age,
                on_failure: Some("AsyncCommandsFailureQueue".to_owned()),
            })
        };
        let table = [
            (vec![], None),
            (vec![("AsyncCommandsPollerMode", "OnDemand")], None),
            (
                vec![("AsyncCommandsPollerMode", "Provisioned")],
                provisioned(10, None),
            ),
            (
                vec![
                    ("AsyncCommandsPollerMode", "Provisioned"),
                    ("AsyncCommandsMaximumRetryAttempts", "0"),
                    ("AsyncCommandsMaximumRecordAgeSeconds", "3600"),
                ],
                provisioned(0, Some(Duration::from_secs(3600))),
            ),
            // Settings of provisioned mode do nothing on demand.
            (vec![("AsyncCommandsMaximumRetryAttempts", "3")], None),
        ];
        for (values, expected) in table {
            let sources = EventSources::parse(&full, &pairs(&values)).unwrap();
            assert_eq!(sources.kafka.provisioned, expected, "{values:?}");
            assert_eq!(sources.kafka.batch_size, 100);
        }
    }

    #[test]
    fn kafka_error_handling_is_refused_where_lambda_refuses_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
        let full = std::fs::read_to_string(path).unwrap();
        let provisioned = pairs(&[("AsyncCommandsPollerMode", "Provisioned")]);
        // (edit, parameters, the error's words)
        type Row<'a> = (&'a str, &'a str, &'a [(String, String)], &'a str);
        let table: [Row; 5] = [
            (
                "ProvisionedPollerConfig: !If",
                "ProvisionedPollerConfigX: !If",
                // Error handling without the poller config.
                &provisioned,
                "needs provisioned mode",
            ),
            (
                "BisectBatchOnFunctionError: !If [AsyncProvisioned, true, !Ref AWS::NoValue]",
                "BisectBatchOnFunctionError: true",
                &[],
                "BisectBatchOnFunctionError needs provisioned mode",
            ),
            (
                "Destination: !GetAtt AsyncCommandsFailureQueue.Arn",
                "Destination: !GetAtt AsyncCommandsFunction.Arn",
                &provisioned,
                "not the Arn of an SQS queue",
            ),
            (
                "MaximumRecordAgeInSeconds: !If [AsyncProvisioned, !Ref AsyncCommandsMaximumRecordAgeSeconds, !Ref AWS::NoValue]",
                "MaximumRecordAgeInSeconds: !If [AsyncProvisioned, 30, !Ref AWS::NoValue]",
                &provisioned,
                "MaximumRecordAgeInSeconds 30 is not -1 or 60-604800",
            ),
            (
                "StartingPosition: TRIM_HORIZON\n      BatchSize: 100",
                "StartingPosition: TRIM_HORIZON\n      FunctionResponseTypes: [ReportBatchItemFailures]\n      BatchSize: 100",
                &[],
                "no partial batch responses",
            ),
        ];
        for (from, to, parameters, words) in table {
            assert!(full.contains(from), "{from}");
            let e = EventSources::parse(&full.replace(from, to), parameters).unwrap_err();
            assert!(e.contains(words), "{to}: {e}");
            assert!(e.contains("AsyncCommandsSelfManagedSource"), "{e}");
        }
        let e = EventSources::parse(&full, &pairs(&[("AsyncCommandsPollerMode", "Always")]))
            .unwrap_err();
        assert!(e.contains("AsyncCommandsPollerMode"), "{e}");
    }
}
