//! `evidentsource-admin`: see [`evidentsource_admin::args::USAGE`].
//!
//! Connection settings from the same variables as the functions: Kafka
//! (`KAFKA_*`, the four `*_KAFKA_TOPIC`, `BASE_URI`), the table
//! (`TABLE_NAME`, `DYNAMODB_ENDPOINT`), the dead-letter queue
//! (`DEAD_LETTER_QUEUE_URL`). Exit status 1 when something differs or
//! partly failed, 2 on a usage or connection error.

use std::process::ExitCode;

use evidentsource_admin::{
    Admin, Created,
    args::{Command, parse},
    databases, dlq, recommended,
    republish::{RepublishError, Republisher},
};
use evidentsource_kafka_config::{KafkaSettings, Topics};
use evidentsource_storage::{StorageEnv, Store, StoreConfig, dynamodb_client};
use evidentsource_stream_publisher::PublisherConfig;

/// A failure with its exit status.
struct Failed(u8, String);

impl<E: std::fmt::Display> From<E> for Failed {
    /// Settings and connections: what to fix is in the message.
    fn from(e: E) -> Self {
        Failed(2, e.to_string())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match run(command).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failed(code, message)) => {
            eprintln!("evidentsource-admin: {message}");
            ExitCode::from(code)
        }
    }
}

async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

async fn store() -> Result<Store, Failed> {
    let env = StorageEnv::from_env()?;
    Ok(Store::new(
        dynamodb_client(&env).await,
        StoreConfig::new(&env.table_name),
    ))
}

async fn republisher() -> Result<Republisher, Failed> {
    let mut config = PublisherConfig::from_env()?;
    let context = config.kafka.resolve(&aws().await).await?;
    let republisher = Republisher::new(store().await?, config, context)?;
    republisher.check_connection()?;
    Ok(republisher)
}

fn republish_failed(e: RepublishError) -> Failed {
    Failed(e.exit_code(), e.to_string())
}

/// `Ok(false)`: done, but something differs or failed (exit 1).
async fn run(command: Command) -> Result<bool, Failed> {
    match command {
        Command::Topics {
            create,
            partitions,
            replication,
        } => topics(create, partitions, replication).await,
        Command::DatabasesList { json } => {
            let rows = databases::list(&store().await?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", databases::table(&rows));
            }
            Ok(true)
        }
        Command::DatabasesDescribe { name, json } => {
            let Some(row) = databases::describe(&store().await?, &name).await? else {
                return Err(Failed(2, format!("database {name:?} is not in the table")));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&row)?);
            } else {
                print!("{}", databases::details(&row));
            }
            Ok(true)
        }
        Command::Republish {
            database,
            from_revision,
        } => {
            let sent = republisher()
                .await?
                .republish(&database, from_revision)
                .await
                .map_err(republish_failed)?;
            println!("republished {sent} events of {database:?} (all acknowledged)");
            Ok(true)
        }
        Command::DlqReplay {
            queue_url,
            max_messages,
        } => {
            let url = queue_url
                .or_else(|| std::env::var(dlq::QUEUE_URL_VAR).ok())
                .filter(|u| !u.is_empty())
                .ok_or_else(|| {
                    Failed(
                        2,
                        format!("no queue: pass --queue-url or set {}", dlq::QUEUE_URL_VAR),
                    )
                })?;
            let republisher = republisher().await?;
            let sqs = aws_sdk_sqs::Client::new(&aws().await);
            let done = dlq::replay(&sqs, &url, &republisher, max_messages)
                .await
                .map_err(|e| match e {
                    dlq::DlqError::Republish(e) => republish_failed(e),
                    other => Failed(2, other.to_string()),
                })?;
            for (db, sent) in &done.republished {
                println!("republished {db:?}: {sent} events");
            }
            for db in &done.gone {
                println!("gone        {db:?}: no head item, nothing to republish");
            }
            for (db, why) in &done.failed {
                println!("FAILED      {db:?}: {why}");
            }
            for (id, why) in &done.malformed {
                println!("MALFORMED   message {id}: {why} (left in the queue)");
            }
            println!(
                "{} messages deleted, {} left in the queue",
                done.deleted, done.kept
            );
            Ok(done.is_complete())
        }
    }
}

async fn topics(create: bool, partitions: i32, replication: i32) -> Result<bool, Failed> {
    let mut settings = KafkaSettings::from_env()?;
    let context = settings.resolve(&aws().await).await?;
    let admin = Admin::new(&settings, context)?;
    let specs = recommended(&Topics::from_env(), partitions, replication);
    if create {
        for outcome in admin.create(&specs).await? {
            match outcome {
                Created::Created(t) => println!("created {t}"),
                Created::Existed(t) => println!("exists  {t} (left as it is)"),
            }
        }
    }
    let findings = admin.verify(&specs).await?;
    for spec in &specs {
        let own: Vec<_> = findings
            .iter()
            .filter(|f| f.to_string().starts_with(&format!("{}:", spec.name)))
            .collect();
        if own.is_empty() {
            println!(
                "ok      {} (>= {} partitions, replication {}, retention.ms {})",
                spec.name, spec.partitions, spec.replication, spec.retention_ms
            );
        }
        for f in own {
            println!("DIFFERS {f}");
        }
    }
    Ok(findings.is_empty())
}
