//! database-events-consumer [--group ID] [--exit-when-idle SECONDS]
//!
//! Reads the Database Events topic (DATABASE_EVENTS_KAFKA_TOPIC) with the
//! suite's Kafka settings (KAFKA_BROKERS, KAFKA_SECURITY_PROTOCOL, ...; see
//! the README), prints every event and flags gaps, conflicting duplicates
//! and invalid messages. Without `--group`, a group of its own reads the
//! whole topic and every database must start with Created; with one, the
//! group resumes where it left off. Exits 1 if it found a violation (with
//! --exit-when-idle).

use std::time::Duration;

use evidentsource_database_events_consumer::{DatabaseEvents, StartAt, consume};
use evidentsource_kafka_config::{KafkaSettings, Topics};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut group = None;
    let mut idle = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--group", Some(g)) => group = Some(g),
            ("--exit-when-idle", Some(s)) => match s.parse() {
                Ok(secs) => idle = Some(Duration::from_secs(secs)),
                Err(_) => {
                    return usage(&format!("--exit-when-idle {s:?}: not a number of seconds"));
                }
            },
            (other, _) => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let (group, start) = match group {
        Some(g) => (g, StartAt::Committed),
        None => (
            format!("evidentsource-example-consumer-{}", std::process::id()),
            StartAt::Beginning,
        ),
    };
    let run = async {
        let mut settings = KafkaSettings::from_env().map_err(|e| e.to_string())?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let context = settings.resolve(&aws).await.map_err(|e| e.to_string())?;
        let mut config = settings.client_config();
        // Joins (and rejoins after a restart) sooner than the 45 s default.
        config.set("session.timeout.ms", "10000");
        let topic = Topics::from_env().database_events;
        let events =
            DatabaseEvents::subscribe_with_context(&config, &group, &topic, start, context)
                .map_err(|e| e.to_string())?;
        consume(events, &mut std::io::stdout(), idle, None).await
    };
    match run.await {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(violations) => {
            eprintln!("{violations} violation(s) of the contract found");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("database-events-consumer: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn usage(problem: &str) -> std::process::ExitCode {
    eprintln!(
        "database-events-consumer: {problem}\nusage: database-events-consumer [--group ID] [--exit-when-idle SECONDS]"
    );
    std::process::ExitCode::from(2)
}
