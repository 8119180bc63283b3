//! `with-local-servers -- COMMAND [ARGS...]`
//!
//! Starts moto and tansu once, runs COMMAND with
//! `EVIDENTSOURCE_TEST_DYNAMODB_ENDPOINT` and `EVIDENTSOURCE_TEST_KAFKA_BROKERS`
//! set, stops the servers and exits with COMMAND's status. `make test` runs
//! the whole test suite under it so that every test binary shares one pair.

use std::process::{Command, ExitCode};

use evidentsource_local_servers::{DYNAMODB_ENDPOINT_VAR, KAFKA_BROKERS_VAR, LocalServers};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).skip_while(|a| a == "--").collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: with-local-servers -- COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let mut servers = match LocalServers::from_env_or_start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("with-local-servers: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "with-local-servers: DynamoDB (moto) at {}, Kafka (tansu) at {}",
        servers.dynamodb_endpoint, servers.kafka_brokers
    );
    let status = Command::new(program)
        .args(rest)
        .env(DYNAMODB_ENDPOINT_VAR, &servers.dynamodb_endpoint)
        .env(KAFKA_BROKERS_VAR, &servers.kafka_brokers)
        .status();
    servers.stop();
    match status {
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("with-local-servers: could not run {program}: {e}");
            ExitCode::from(1)
        }
    }
}
