//! The suite's Kafka topics (docs/contract.md §1): create them with the recommended
//! settings, or verify existing ones and report every setting that differs,
//! without changing anything.
//!
//! Uses the same connection settings and authentication as the functions
//! (`KAFKA_*` variables, `evidentsource-kafka-config`), so it also works
//! against MSK with IAM or SCRAM.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use evidentsource_kafka_config::{
    KafkaConnectError, KafkaContext, KafkaSettings, ServedAdmin, Topics, probe_connection,
};
use rdkafka::{
    admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication},
    error::KafkaError,
    types::RDKafkaErrorCode,
};

/// One day, the recommended retention of every topic but Database Events.
pub const ONE_DAY_MS: i64 = 24 * 3600 * 1000;
/// Seven days, Database Events' retention (consumers may catch up later).
pub const SEVEN_DAYS_MS: i64 = 7 * ONE_DAY_MS;

/// What a topic should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    /// At least this many partitions.
    pub partitions: i32,
    /// Exactly this replication factor.
    pub replication: i32,
    /// `retention.ms`.
    pub retention_ms: i64,
}

/// The four topics with their recommended settings, with the given
/// partitions and replication (3 and 3 in production).
pub fn recommended(topics: &Topics, partitions: i32, replication: i32) -> Vec<TopicSpec> {
    let spec = |name: &str, retention_ms| TopicSpec {
        name: name.to_owned(),
        partitions,
        replication,
        retention_ms,
    };
    vec![
        spec(&topics.transaction_proposals, ONE_DAY_MS),
        spec(&topics.database_events, SEVEN_DAYS_MS),
        spec(&topics.async_commands, ONE_DAY_MS),
        spec(&topics.async_responses, ONE_DAY_MS),
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// A wrong password or an untrusted certificate (named in the
    /// message), or no broker answering.
    #[error("Kafka: {0}")]
    Connection(#[from] KafkaConnectError),
    #[error("topic {topic}: {code}")]
    Topic {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// A setting of an existing topic that differs from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Missing {
        topic: String,
    },
    TooFewPartitions {
        topic: String,
        has: i32,
        wants: i32,
    },
    Replication {
        topic: String,
        has: i32,
        wants: i32,
    },
    Retention {
        topic: String,
        has: Option<String>,
        wants: i64,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Missing { topic } => write!(f, "{topic}: does not exist"),
            Finding::TooFewPartitions { topic, has, wants } => {
                write!(f, "{topic}: {has} partitions, at least {wants} recommended")
            }
            Finding::Replication { topic, has, wants } => {
                write!(f, "{topic}: replication factor {has}, {wants} expected")
            }
            Finding::Retention { topic, has, wants } => write!(
                f,
                "{topic}: retention.ms {}, {wants} expected",
                has.as_deref().unwrap_or("not reported")
            ),
        }
    }
}

/// What `create` did with one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created(String),
    /// It existed already; verify it.
    Existed(String),
}

pub struct Admin {
    // rdkafka's AdminClient with its main queue served (the MSK IAM token,
    // errors and logs reach the context).
    client: ServedAdmin,
    settings: KafkaSettings,
    context: KafkaContext,
    connected: AtomicBool,
    timeout: Duration,
}

impl Admin {
    pub fn new(settings: &KafkaSettings, context: KafkaContext) -> Result<Self, AdminError> {
        Ok(Admin {
            client: ServedAdmin::new(settings, context.clone())?,
            settings: settings.clone(),
            context,
            connected: AtomicBool::new(false),
            timeout: Duration::from_secs(30),
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().operation_timeout(Some(self.timeout))
    }

    /// Checks the connection once, before the first request: an admin
    /// client does not serve librdkafka's events, so it would not notice a
    /// wrong password or an untrusted certificate and would wait out its
    /// timeout while librdkafka retries; the probe stops within seconds
    /// with an error naming the setting.
    fn connect(&self) -> Result<(), AdminError> {
        if !self.connected.load(Ordering::Relaxed) {
            probe_connection(&self.settings, &self.context, None, self.timeout)?;
            self.connected.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Creates the topics that do not exist; existing ones are left alone.
    pub async fn create(&self, specs: &[TopicSpec]) -> Result<Vec<Created>, AdminError> {
        self.connect()?;
        let retention: Vec<String> = specs.iter().map(|s| s.retention_ms.to_string()).collect();
        let new: Vec<NewTopic<'_>> = specs
            .iter()
            .zip(&retention)
            .map(|(s, r)| {
                NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(s.replication),
                )
                .set("retention.ms", r)
            })
            .collect();
        let mut outcome = Vec::new();
        for result in self
            .client
            .client()
            .create_topics(&new, &self.options())
            .await?
        {
            match result {
                Ok(topic) => outcome.push(Created::Created(topic)),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    outcome.push(Created::Existed(topic))
                }
                Err((topic, code)) => return Err(AdminError::Topic { topic, code }),
            }
        }
        Ok(outcome)
    }

    /// Compares existing topics with their specs; changes nothing.
    pub async fn verify(&self, specs: &[TopicSpec]) -> Result<Vec<Finding>, AdminError> {
        self.connect()?;
        let metadata = self
            .client
            .client()
            .inner()
            .fetch_metadata(None, self.timeout)?;
        let mut findings = Vec::new();
        let mut present = Vec::new();
        for spec in specs {
            let Some(topic) = metadata
                .topics()
                .iter()
                .find(|t| t.name() == spec.name && t.error().is_none())
            else {
                findings.push(Finding::Missing {
                    topic: spec.name.clone(),
                });
                continue;
            };
            present.push(spec);
            let partitions = topic.partitions().len() as i32;
            if partitions < spec.partitions {
                findings.push(Finding::TooFewPartitions {
                    topic: spec.name.clone(),
                    has: partitions,
                    wants: spec.partitions,
                });
            }
            let replication = topic
                .partitions()
                .iter()
                .map(|p| p.replicas().len() as i32)
                .min()
                .unwrap_or(0);
            if replication != spec.replication {
                findings.push(Finding::Replication {
                    topic: spec.name.clone(),
                    has: replication,
                    wants: spec.replication,
                });
            }
        }
        let resources: Vec<ResourceSpecifier<'_>> = present
            .iter()
            .map(|s| ResourceSpecifier::Topic(&s.name))
            .collect();
        if !resources.is_empty() {
            let configs = self
                .client
                .client()
                .describe_configs(&resources, &self.options())
                .await?;
            for (spec, config) in present.iter().zip(configs) {
                let has = config.ok().and_then(|c| {
                    c.entries
                        .iter()
                        .find(|e| e.name == "retention.ms")
                        .and_then(|e| e.value.clone())
                });
                if has.as_deref() != Some(spec.retention_ms.to_string().as_str()) {
                    findings.push(Finding::Retention {
                        topic: spec.name.clone(),
                        has,
                        wants: spec.retention_ms,
                    });
                }
            }
        }
        Ok(findings)
    }
}
