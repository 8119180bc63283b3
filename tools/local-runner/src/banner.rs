//! What `local-runner` prints once the stack is up without a command: where
//! everything is, and commands to copy.

use std::path::Path;

use evidentsource_local_servers::LocalServers;

use crate::stack::{StackInfo, StackSettings};

pub fn print(info: &StackInfo, servers: &LocalServers, settings: &StackSettings) {
    let started = |name: &str| {
        servers
            .processes()
            .iter()
            .find(|p| p.name() == name)
            .map(|p| format!("{name}, log {}", p.log_path().display()))
            .unwrap_or_else(|| "yours".to_owned())
    };
    let t = &info.topics;
    // Relative to where the user is, when it is below.
    let env_file = std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            settings
                .env_file
                .strip_prefix(cwd)
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| settings.env_file.clone());
    let env = env_file.display();
    println!(
        r#"
EvidentSource is running locally (Ctrl-C stops everything).

  HTTP API       {api}
  DynamoDB       {ddb}   ({moto}; table {table})
  Kafka          {kafka}   ({tansu})
  Topics         {events} (database events)
                 {commands} -> {responses} (async commands)
                 {proposals}
  Stack          {env}

In another terminal:

  set -a; . {env}; set +a
  curl -s -X POST "$API_URL/databases" -H 'content-type: application/json' -d '{{"name": "accounts"}}'
  curl -s -X POST "$API_URL/databases/accounts/transactions" -H 'content-type: application/json' -d '{{
    "transaction_id": "open-42",
    "events": [{{"specversion": "1.0", "id": "e-1", "source": "https://example.com/bank/accounts",
                "type": "com.bank.account-opened", "subject": "account-42", "data": {{"owner": "Ada"}}}}],
    "conditions": [{{"selector": {{"subject_equals": "account-42"}}, "max": 0}}]}}'
  curl -s -X POST "$API_URL/databases/accounts/transactions?mode=async" -H 'content-type: application/json' -d '{{
    "events": [{{"specversion": "1.0", "id": "e-2", "source": "https://example.com/bank/accounts",
                "type": "com.bank.deposited", "subject": "account-42", "data": {{"amount": 10}}}}]}}'
  curl -s "$API_URL/databases/accounts"
  curl -s "$API_URL/databases/accounts/events?from=1&to=100"
  curl -s -X POST "$API_URL/databases/accounts/query" -H 'content-type: application/json' -d '{{"selector": {{"subject_equals": "account-42"}}}}'
  curl -s -X DELETE "$API_URL/databases/accounts"

Watch the database events as a consumer sees them:

  set -a; . {env}; set +a; cargo run -q -p evidentsource-database-events-consumer

Run the demo scenario against this stack:

  cargo run -q -p evidentsource-local-runner --bin demo
"#,
        api = info.api_url,
        ddb = info.dynamodb_endpoint,
        moto = started("moto"),
        table = info.table_name,
        kafka = info.kafka_brokers,
        tansu = started("tansu"),
        events = t.database_events,
        commands = t.async_commands,
        responses = t.async_responses,
        proposals = t.transaction_proposals,
    );
}
