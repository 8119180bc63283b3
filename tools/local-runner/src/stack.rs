//! The runner's own settings (ports, names, files), the table and topics it
//! makes, and `.local/stack.env`, where scripts and tools find the stack.
//!
//! The functions read their usual variables (`TABLE_NAME`, `KAFKA_BROKERS`,
//! the four `*_KAFKA_TOPIC`, `BASE_URI`, ...); the runner only adds:
//!
//! | variable | default |
//! |---|---|
//! | `EVIDENTSOURCE_API_PORT` | a free port |
//! | `EVIDENTSOURCE_DYNAMODB_PORT`, `EVIDENTSOURCE_KAFKA_PORT` | free ports (for the moto and tansu it starts) |
//! | `DYNAMODB_ENDPOINT`, `KAFKA_BROKERS` | unset: start moto / tansu; set: use that server |
//! | `ASYNC_COMMANDS_CONSUMER_GROUP` | `evidentsource-async-commands` (the template's default) |
//! | `EVIDENTSOURCE_TOPIC_PARTITIONS` | 3 |
//! | `EVIDENTSOURCE_STACK_ENV` | `.local/stack.env` at the workspace root |
//! | `EVIDENTSOURCE_STREAM_CHECKPOINT` | `stream-checkpoint.json` next to `stack.env` (the publisher's stream source) |
//! | `EVIDENTSOURCE_INDEXER_CHECKPOINT` | `indexer-checkpoint.json` next to `stack.env` (the indexer's stream source) |
//! | `EVIDENTSOURCE_TEMPLATE` | `template.yaml` at the workspace root |
//! | `EVIDENTSOURCE_TEMPLATE_PARAMETERS` | none: `Name=Value` pairs for the template's parameters, as `sam deploy --parameter-overrides` takes them (e.g. `AsyncCommandsPollerMode=Provisioned`) |

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use aws_sdk_dynamodb::{Client, error::ProvideErrorMetadata};
use evidentsource_kafka_config::Topics;
use evidentsource_local_servers::workspace_root;

/// A variable with a value the runner cannot use, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct SettingError {
    pub var: &'static str,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSettings {
    pub api_port: Option<u16>,
    pub dynamodb_port: Option<u16>,
    pub kafka_port: Option<u16>,
    /// A running DynamoDB API to use instead of starting moto.
    pub dynamodb_endpoint: Option<String>,
    /// Running brokers to use instead of starting tansu.
    pub kafka_brokers: Option<String>,
    pub table_name: String,
    pub topics: Topics,
    pub consumer_group: String,
    pub partitions: i32,
    pub env_file: PathBuf,
    /// Where the stream event source keeps its checkpoint
    /// ([`crate::checkpoint`]); it outlives the stack, unlike `env_file`.
    pub stream_checkpoint: PathBuf,
    /// The indexer's stream source's own checkpoint: a second reader of
    /// the stream, with its own position, as Lambda keeps one per mapping.
    pub indexer_checkpoint: PathBuf,
    pub template: PathBuf,
    /// The template's parameters as deployed (others keep their default).
    pub template_parameters: Vec<(String, String)>,
}

impl StackSettings {
    pub fn from_env() -> Result<Self, SettingError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let port = |var: &'static str| -> Result<Option<u16>, SettingError> {
            get(var)
                .map(|v| {
                    v.trim().parse::<u16>().map_err(|_| SettingError {
                        var,
                        problem: format!("{v:?} is not a port number"),
                    })
                })
                .transpose()
        };
        let partitions = match get("EVIDENTSOURCE_TOPIC_PARTITIONS") {
            None => 3,
            Some(v) => v
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|p| (1..=1000).contains(p))
                .ok_or(SettingError {
                    var: "EVIDENTSOURCE_TOPIC_PARTITIONS",
                    problem: format!("{v:?} is not a number of partitions (1-1000)"),
                })?,
        };
        let root = workspace_root();
        let root = root.canonicalize().unwrap_or(root);
        let env_file = get("EVIDENTSOURCE_STACK_ENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".local/stack.env"));
        Ok(StackSettings {
            api_port: port("EVIDENTSOURCE_API_PORT")?,
            dynamodb_port: port("EVIDENTSOURCE_DYNAMODB_PORT")?,
            kafka_port: port("EVIDENTSOURCE_KAFKA_PORT")?,
            dynamodb_endpoint: get("DYNAMODB_ENDPOINT"),
            kafka_brokers: get("KAFKA_BROKERS"),
            table_name: get("TABLE_NAME").unwrap_or_else(|| "evidentsource".to_owned()),
            topics: Topics::from_lookup(&lookup),
            consumer_group: get("ASYNC_COMMANDS_CONSUMER_GROUP")
                .unwrap_or_else(|| "evidentsource-async-commands".to_owned()),
            partitions,
            stream_checkpoint: get("EVIDENTSOURCE_STREAM_CHECKPOINT")
                .map(PathBuf::from)
                .unwrap_or_else(|| env_file.with_file_name("stream-checkpoint.json")),
            indexer_checkpoint: get("EVIDENTSOURCE_INDEXER_CHECKPOINT")
                .map(PathBuf::from)
                .unwrap_or_else(|| env_file.with_file_name("indexer-checkpoint.json")),
            env_file,
            template: get("EVIDENTSOURCE_TEMPLATE")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("template.yaml")),
            template_parameters: crate::cfn::parse_overrides(
                &get("EVIDENTSOURCE_TEMPLATE_PARAMETERS").unwrap_or_default(),
            )
            .map_err(|problem| SettingError {
                var: "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
                problem,
            })?,
        })
    }
}

/// Where the running stack is, as written to `stack.env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackInfo {
    pub api_url: String,
    pub kafka_brokers: String,
    pub dynamodb_endpoint: String,
    pub table_name: String,
    pub topics: Topics,
    /// The async commands' on-failure queue, in provisioned mode.
    pub async_failure_queue_url: Option<String>,
}

impl StackInfo {
    /// `KEY=value` pairs: the stack's addresses and names, under the
    /// variables the functions and tools read.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("API_URL", self.api_url.clone()),
            ("KAFKA_BROKERS", self.kafka_brokers.clone()),
            ("DYNAMODB_ENDPOINT", self.dynamodb_endpoint.clone()),
            ("TABLE_NAME", self.table_name.clone()),
        ];
        let t = &self.topics;
        for ((var, _), value) in Topics::VARS.iter().zip([
            &t.transaction_proposals,
            &t.database_events,
            &t.async_commands,
            &t.async_responses,
        ]) {
            vars.push((var, value.clone()));
        }
        if let Some(url) = &self.async_failure_queue_url {
            vars.push(("ASYNC_COMMANDS_FAILURE_QUEUE_URL", url.clone()));
        }
        vars
    }

    /// Writes `path` whole or not at all (a reader never sees half a file).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = String::from("# The running local stack (written by local-runner).\n");
        for (k, v) in self.vars() {
            text.push_str(&format!("{k}={v}\n"));
        }
        let tmp = path.with_extension("env.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Reads a `KEY=value` file such as `stack.env` (comments and blank lines
/// skipped).
pub fn read_env_file(path: &Path) -> std::io::Result<Vec<(String, String)>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// Creates the table unless it exists; returns its stream ARN.
pub async fn ensure_table(client: &Client, name: &str) -> Result<String, String> {
    match client.describe_table().table_name(name).send().await {
        Ok(out) => {
            return out
                .table()
                .and_then(|t| t.latest_stream_arn())
                .map(str::to_owned)
                .ok_or_else(|| format!("table {name} exists but has no stream"));
        }
        Err(e) if e.code() == Some("ResourceNotFoundException") => {}
        Err(e) => return Err(format!("DescribeTable {name}: {}", e.into_service_error())),
    }
    evidentsource_storage::table::create_table(client, name)
        .await
        .map_err(|e| format!("CreateTable {name}: {e}"))
}

/// Waits until `ready` holds, checking every 100 ms, at most `timeout`.
pub async fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<StackSettings, SettingError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StackSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_pick_free_ports_and_start_servers() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.api_port, s.dynamodb_port, s.kafka_port),
            (None, None, None)
        );
        assert_eq!((s.dynamodb_endpoint, s.kafka_brokers), (None, None));
        assert_eq!(s.table_name, "evidentsource");
        assert_eq!(s.topics, Topics::default());
        assert_eq!(s.consumer_group, "evidentsource-async-commands");
        assert_eq!(s.partitions, 3);
        assert!(s.env_file.ends_with(".local/stack.env"));
    }

    #[test]
    fn env_sets_ports_names_and_servers() {
        let s = settings(&[
            ("EVIDENTSOURCE_API_PORT", "8080"),
            ("EVIDENTSOURCE_KAFKA_PORT", "9092"),
            ("TABLE_NAME", "t"),
            ("ASYNC_COMMANDS_KAFKA_TOPIC", "cmds"),
            ("KAFKA_BROKERS", "127.0.0.1:9093"),
            ("EVIDENTSOURCE_TOPIC_PARTITIONS", "1"),
        ])
        .unwrap();
        assert_eq!((s.api_port, s.kafka_port), (Some(8080), Some(9092)));
        assert_eq!(s.table_name, "t");
        assert_eq!(s.topics.async_commands, "cmds");
        assert_eq!(s.kafka_brokers.as_deref(), Some("127.0.0.1:9093"));
        assert_eq!(s.partitions, 1);
        let s = settings(&[(
            "EVIDENTSOURCE_TEMPLATE_PARAMETERS",
            "AsyncCommandsPollerMode=Provisioned AsyncCommandsMaximumRetryAttempts=1",
        )])
        .unwrap();
        assert_eq!(
            s.template_parameters,
            [
                (
                    "AsyncCommandsPollerMode".to_owned(),
                    "Provisioned".to_owned()
                ),
                (
                    "AsyncCommandsMaximumRetryAttempts".to_owned(),
                    "1".to_owned()
                )
            ]
        );
    }

    #[test]
    fn the_stream_checkpoint_is_next_to_stack_env_unless_set() {
        let s = settings(&[]).unwrap();
        assert!(
            s.stream_checkpoint
                .ends_with(".local/stream-checkpoint.json")
        );
        let s = settings(&[("EVIDENTSOURCE_STACK_ENV", "/tmp/x/stack.env")]).unwrap();
        assert_eq!(
            s.stream_checkpoint,
            PathBuf::from("/tmp/x/stream-checkpoint.json")
        );
        assert_eq!(
            s.indexer_checkpoint,
            PathBuf::from("/tmp/x/indexer-checkpoint.json")
        );
        let s = settings(&[("EVIDENTSOURCE_INDEXER_CHECKPOINT", "/var/ix.json")]).unwrap();
        assert_eq!(s.indexer_checkpoint, PathBuf::from("/var/ix.json"));
        let s = settings(&[
            ("EVIDENTSOURCE_STACK_ENV", "/tmp/x/stack.env"),
            ("EVIDENTSOURCE_STREAM_CHECKPOINT", "/var/cp.json"),
        ])
        .unwrap();
        assert_eq!(s.stream_checkpoint, PathBuf::from("/var/cp.json"));
    }

    #[test]
    fn bad_values_are_named() {
        let e = settings(&[("EVIDENTSOURCE_API_PORT", "eighty")]).unwrap_err();
        assert_eq!(e.var, "EVIDENTSOURCE_API_PORT");
        let e = settings(&[("EVIDENTSOURCE_DYNAMODB_PORT", "70000")]).unwrap_err();
        assert_eq!(e.var, "EVIDENTSOURCE_DYNAMODB_PORT");
        let e = settings(&[("EVIDENTSOURCE_TOPIC_PARTITIONS", "0")]).unwrap_err();
        assert_eq!(e.var, "EVIDENTSOURCE_TOPIC_PARTITIONS");
        let e = settings(&[("EVIDENTSOURCE_TEMPLATE_PARAMETERS", "Provisioned")]).unwrap_err();
        assert_eq!(e.var, "EVIDENTSOURCE_TEMPLATE_PARAMETERS");
    }

    #[test]
    fn stack_env_round_trips() {
        let info = StackInfo {
            api_url: "http://127.0.0.1:1".into(),
            kafka_brokers: "127.0.0.1:2".into(),
            dynamodb_endpoint: "http://127.0.0.1:3".into(),
            table_name: "t".into(),
            topics: Topics::default(),
            async_failure_queue_url: None,
        };
        let dir = std::env::temp_dir().join(format!("stack-env-{}", std::process::id()));
        let path = dir.join("stack.env");
        info.write(&path).unwrap();
        let read = read_env_file(&path).unwrap();
        let keys: Vec<&str> = read.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "API_URL",
                "KAFKA_BROKERS",
                "DYNAMODB_ENDPOINT",
                "TABLE_NAME",
                "TRANSACTION_PROPOSALS_KAFKA_TOPIC",
                "DATABASE_EVENTS_KAFKA_TOPIC",
                "ASYNC_COMMANDS_KAFKA_TOPIC",
                "ASYNC_RESPONSES_KAFKA_TOPIC"
            ]
        );
        assert_eq!(read[0].1, "http://127.0.0.1:1");
        assert_eq!(read[5].1, "evidentsource-database-events");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
