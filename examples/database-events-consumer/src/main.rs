//! database-events-consumer [--group ID] [--exit-when-idle SECONDS]
//!
//! Reads the Database Events topic (DATABASE_EVENTS_KAFKA_TOPIC) with the
//! suite's Kafka settings (KAFKA_BROKERS, KAFKA_SECURITY_PROTOCOL, ...; see
//! the README) from the beginning, prints every event and flags gaps and
//! duplicates. Exits 1 if it found a problem (with --exit-when-idle).

use std::time::Duration;

use evidentsource_kafka_config::{ConsumerProfile, KafkaSettings, Topics};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut group = "evidentsource-example-consumer".to_string();
    let mut idle = None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--group", Some(g)) => group = g,
            ("--exit-when-idle", Some(s)) => match s.parse() {
                Ok(secs) => idle = Some(Duration::from_secs(secs)),
                Err(_) => {
                    return usage(&format!("--exit-when-idle {s:?}: not a number of seconds"));
                }
            },
            (other, _) => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let run = async {
        let mut settings = KafkaSettings::from_env().map_err(|e| e.to_string())?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let context = settings.resolve(&aws).await.map_err(|e| e.to_string())?;
        let consumer = settings
            .consumer(ConsumerProfile::Subscriber { group: &group }, &context)
            .map_err(|e| e.to_string())?;
        let topic = Topics::from_env().database_events;
        evidentsource_database_events_consumer::consume_with(
            consumer,
            &topic,
            &mut std::io::stdout(),
            idle,
            None,
        )
        .await
    };
    match run.await {
        Ok(0) => std::process::ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("{problems} problem(s) found");
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
