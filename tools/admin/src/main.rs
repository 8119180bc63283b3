//! `evidentsource-admin topics create|verify [--partitions N] [--replication N]`
//!
//! Connection and topic names from the same variables as the functions
//! (`KAFKA_BROKERS`, `KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`, the four
//! `*_KAFKA_TOPIC`). `create` creates what is missing, then verifies
//! everything; `verify` only reports. Exit status 1 when a topic differs from
//! the recommended settings, 2 on a usage or connection error.

use std::process::ExitCode;

use evidentsource_admin::{Admin, Created, recommended};
use evidentsource_kafka_config::{KafkaSettings, Topics};

const USAGE: &str =
    "usage: evidentsource-admin topics create|verify [--partitions N] [--replication N]
  Creates the four topics (docs/contract.md §1) with retention 1 day (database events: 7 days),
  or verifies existing ones without changing them. Defaults: 3 partitions, replication 3.
  Kafka connection from KAFKA_BROKERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_* as for the functions.";

struct Args {
    create: bool,
    partitions: i32,
    replication: i32,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let create = match (it.next().map(String::as_str), it.next().map(String::as_str)) {
        (Some("topics"), Some("create")) => true,
        (Some("topics"), Some("verify")) => false,
        _ => return Err(USAGE.to_owned()),
    };
    let mut parsed = Args {
        create,
        partitions: 3,
        replication: 3,
    };
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{flag} needs a positive number\n{USAGE}"))?;
        match flag.as_str() {
            "--partitions" => parsed.partitions = value,
            "--replication" => parsed.replication = value,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(a) => a,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("evidentsource-admin: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let mut settings = KafkaSettings::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let context = settings.resolve(&aws).await?;
    let admin = Admin::new(&settings, context)?;
    let specs = recommended(&Topics::from_env(), args.partitions, args.replication);
    if args.create {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses() {
        let a = parse(&args("topics create --partitions 6 --replication 1")).unwrap();
        assert!(a.create);
        assert_eq!((a.partitions, a.replication), (6, 1));
        assert!(!parse(&args("topics verify")).unwrap().create);
        for bad in [
            "",
            "topics",
            "topics drop",
            "topics create --partitions 0",
            "topics create --x 1",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
