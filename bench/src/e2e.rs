//! End-to-end latency on the local stack: HTTP commit → the batch's
//! `Transacted` CloudEvent read from the database-events topic.
//!
//! The stack is the one `make dev` runs: the `local-runner` binary (a
//! sibling of the bench's own executable) as a child process, pointed at
//! the bench's moto and tansu, with its own table, topic and checkpoints.
//! Writers commit over real HTTP with the suite's Rust client; a Kafka
//! consumer, reading the (fresh) topic from before the first commit,
//! notes when each batch's event arrives, matched to its commit by
//! database (the message key) and revision (`ce_revision`).

mod arrivals;
mod runner;

pub use arrivals::{pair, transacted};

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use arrivals::Arrivals;
use evidentsource_client::{Client, Event, RetryPolicy};
use evidentsource_kafka_config::KafkaSettings;
use evidentsource_local_runner::{stream_poller, template::EventSources};
use evidentsource_local_servers::{LocalServers, workspace_root};
use runner::Runner;

/// One load: `writers` writing side by side to `databases` databases
/// (writer `w` to database `w % databases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub writers: usize,
    pub databases: usize,
}

/// Each writer on a database of its own (latency, not contention), and
/// four on one database, where commits race.
pub const LOADS: [Load; 4] = [
    Load {
        writers: 1,
        databases: 1,
    },
    Load {
        writers: 4,
        databases: 4,
    },
    Load {
        writers: 16,
        databases: 16,
    },
    Load {
        writers: 4,
        databases: 1,
    },
];

/// One commit as the writer saw it.
#[derive(Debug, Clone)]
pub struct Commit {
    pub database: String,
    pub revision: u64,
    pub sent: Instant,
    pub answered: Instant,
}

/// The figures of one load over every round.
#[derive(Debug, Clone)]
pub struct Row {
    pub load: Load,
    /// Request sent → 200 received, ms.
    pub commit_ms: Vec<f64>,
    /// Request sent → the batch's Transacted event consumed, ms.
    pub e2e_ms: Vec<f64>,
    /// Each round's end-to-end median, ms.
    pub round_p50: Vec<f64>,
    /// Commits whose event did not arrive within [`ARRIVAL_WAIT`].
    pub missing: usize,
    /// Requests that did not commit (no retries: each attempt counts).
    pub failures: usize,
}

/// What a run measured, and the settings it ran with.
#[derive(Debug, Clone)]
pub struct E2e {
    pub rows: Vec<Row>,
    pub rounds: usize,
    pub per_writer: usize,
    pub warmup: usize,
    /// (setting, value, where it comes from), read from the code and
    /// template the stack runs with.
    pub settings: Vec<(String, String, String)>,
}

/// How long the last commit's event may take before it counts as missing.
pub const ARRIVAL_WAIT: Duration = Duration::from_secs(30);

/// The consumer's longest wait for data in one fetch: what it can add to
/// an arrival if the broker holds a fetch until then.
const FETCH_WAIT_MS: &str = "10";

/// About 200 bytes of event, as the small batches.
fn event(n: usize) -> Event {
    Event::new(
        "https://bench.example.com/e2e",
        "bench.e2e.v1",
        uuid::Uuid::new_v4().to_string(),
    )
    .subject(format!("writer-{n}"))
    .data(serde_json::json!({ "n": n, "pad": "x".repeat(64) }))
}

/// The settings the stack's path from commit to Kafka runs with.
pub fn settings(brokers: &str) -> Result<Vec<(String, String, String)>, String> {
    let template = workspace_root().join("template.yaml");
    let sources = EventSources::from_template(&template, &[]).map_err(|e| e.to_string())?;
    let p = &sources.publisher;
    // The runner's environment: the bench's, with the brokers set.
    let kafka = KafkaSettings::from_lookup(|k| match k {
        "KAFKA_BROKERS" => Some(brokers.to_owned()),
        _ => std::env::var(k).ok(),
    })
    .map_err(|e| e.to_string())?
    .producer_config();
    let producer = |k: &str| kafka.get(k).unwrap_or("librdkafka default").to_owned();
    let row = |a: &str, b: String, c: &str| (a.to_owned(), b, c.to_owned());
    Ok(vec![
        row(
            "stream poll interval (idle shard)",
            format!("{} ms", stream_poller::POLL_INTERVAL.as_millis()),
            "`stream_poller::POLL_INTERVAL` (local runner)",
        ),
        row(
            "records per GetRecords",
            stream_poller::READ_LIMIT.to_string(),
            "`stream_poller::READ_LIMIT` (local runner)",
        ),
        row(
            "publisher batch size",
            p.batch.batch_size.to_string(),
            "template.yaml `BatchSize`",
        ),
        row(
            "publisher batching window",
            format!("{} s", p.window.as_secs_f64()),
            "template.yaml `MaximumBatchingWindowInSeconds`",
        ),
        row(
            "indexer (second stream reader) batching window",
            format!("{} s", sources.indexer.window.as_secs_f64()),
            "template.yaml; it shares moto with the publisher's reader",
        ),
        row(
            "producer `linger.ms`",
            producer("linger.ms"),
            "`producer_config` (shared/kafka-config); the publisher sends a batch once enqueued (`flush_queued`)",
        ),
        row(
            "producer `acks`, `compression.type`",
            format!("{}, {}", producer("acks"), producer("compression.type")),
            "`producer_config` and `KAFKA_COMPRESSION_TYPE` (unset: the default)",
        ),
        row(
            "bench consumer `fetch.wait.max.ms`",
            FETCH_WAIT_MS.to_owned(),
            "`bench/src/e2e.rs`",
        ),
    ])
}

/// Runs the stack and measures every load in `LOADS`, interleaved.
pub async fn measure(servers: &LocalServers, scratch: &Path, quick: bool) -> Result<E2e, String> {
    let (rounds, per_writer, warmup) = if quick { (2, 10, 5) } else { (3, 30, 20) };
    let settings = settings(&servers.kafka_brokers)?;
    let runner = Runner::start(servers, &scratch.join("e2e")).await?;
    let result = measure_on(&runner, &servers.kafka_brokers, rounds, per_writer, warmup).await;
    runner.stop().await;
    let rows = result?;
    Ok(E2e {
        rows,
        rounds,
        per_writer,
        warmup,
        settings,
    })
}

async fn measure_on(
    runner: &Runner,
    brokers: &str,
    rounds: usize,
    per_writer: usize,
    warmup: usize,
) -> Result<Vec<Row>, String> {
    let arrivals = Arrivals::start(brokers, &runner.topic).await?;
    // One attempt per commit: a retry would hide a slow or failed one.
    let client = Client::new(&runner.api_url)
        .map_err(|e| e.to_string())?
        .with_retry_policy(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    // Warm: connections, the publisher's producer, the consumer's fetches.
    let warm = run_load(
        &client,
        Load {
            writers: 1,
            databases: 1,
        },
        warmup,
        "warm",
    )
    .await?;
    let (_, missing) = arrivals.wait_for(&warm.0).await;
    if missing > 0 {
        return Err(format!(
            "e2e warmup: {missing} of {warmup} Transacted events not read within {ARRIVAL_WAIT:?} (runner log: {})",
            runner.log.display()
        ));
    }
    let mut rows: Vec<Row> = LOADS
        .iter()
        .map(|&load| Row {
            load,
            commit_ms: Vec::new(),
            e2e_ms: Vec::new(),
            round_p50: Vec::new(),
            missing: 0,
            failures: 0,
        })
        .collect();
    for round in 0..rounds {
        // The order rotates each round, so no load always follows another.
        for i in 0..LOADS.len() {
            let row = &mut rows[(i + round) % LOADS.len()];
            let tag = format!("r{round}");
            let (commits, failures) = run_load(&client, row.load, per_writer, &tag).await?;
            let (e2e, missing) = arrivals.wait_for(&commits).await;
            row.commit_ms
                .extend(commits.iter().map(|c| ms(c.answered - c.sent)));
            row.round_p50.push(percentile(&e2e, 50.0));
            row.e2e_ms.extend(e2e);
            row.missing += missing;
            row.failures += failures;
        }
    }
    for r in &rows {
        eprintln!(
            "e2e {:>2} writers on {:>2} database(s): commit p50 {:.1} ms p99 {:.1} ms; end to end p50 {:.1} ms p99 {:.1} ms ({} commits, {} missing, {} failures)",
            r.load.writers,
            r.load.databases,
            percentile(&r.commit_ms, 50.0),
            percentile(&r.commit_ms, 99.0),
            percentile(&r.e2e_ms, 50.0),
            percentile(&r.e2e_ms, 99.0),
            r.commit_ms.len(),
            r.missing,
            r.failures
        );
    }
    Ok(rows)
}

/// Creates the load's databases (not timed), then its writers commit
/// `per_writer` one-event batches each, back to back.
async fn run_load(
    client: &Client,
    load: Load,
    per_writer: usize,
    tag: &str,
) -> Result<(Vec<Commit>, usize), String> {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut names = Vec::new();
    for d in 0..load.databases {
        let name = format!("e2e-{tag}-w{}-{d}-{suffix}", load.writers);
        client
            .create_database(&name)
            .await
            .map_err(|e| format!("create {name}: {e}"))?;
        names.push(name);
    }
    let mut writers = Vec::new();
    for w in 0..load.writers {
        let (client, database) = (client.clone(), names[w % load.databases].clone());
        writers.push(tokio::spawn(async move {
            let mut commits = Vec::new();
            let mut failures = 0;
            for _ in 0..per_writer {
                let batch = [event(w)];
                let tx = uuid::Uuid::new_v4().to_string();
                let sent = Instant::now();
                match client.transact(&database, &batch, &[], Some(&tx)).await {
                    Ok(summary) => commits.push(Commit {
                        database: database.clone(),
                        revision: summary.revision,
                        sent,
                        answered: Instant::now(),
                    }),
                    Err(e) => {
                        failures += 1;
                        eprintln!("e2e: a commit to {database} failed: {e}");
                    }
                }
            }
            (commits, failures)
        }));
    }
    let mut all = (Vec::new(), 0);
    for w in writers {
        let (commits, failures) = w.await.map_err(|e| e.to_string())?;
        all.0.extend(commits);
        all.1 += failures;
    }
    Ok(all)
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `values`; NaN when
/// there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What AWS documents of its DynamoDB Streams poller, for reading the
/// local figures (Lambda developer guide, "Using AWS Lambda with Amazon
/// DynamoDB", and "Lambda parameters for Amazon DynamoDB event source
/// mappings").
fn aws_note() -> String {
    format!(
        "**On AWS.** The AWS Lambda developer guide says Lambda polls the shards of a DynamoDB stream at a base rate of four times a second and, with the default `MaximumBatchingWindowInSeconds` of 0 (the publisher's), invokes the function as soon as records are available; a batching window (up to 5 minutes) makes it gather records until the batch is full, the window ends or the payload reaches 6 MB. The local poller reads an idle shard every {} ms (`POLL_INTERVAL`) and applies the same batching rules, but differs in the rest: the template's `ParallelizationFactor` 4 (AWS's default 1, at most 10) lets AWS publish up to four batches of a busy shard at once, one item's records still in order, where the local runner reads each shard one batch at a time; the stream is moto's, which serves one request at a time and is shared with the commits and the indexer's reader; and on AWS the stream's own propagation delay, DynamoDB's and MSK's network latency and Lambda's invocation overhead replace the local costs. These figures describe the local stack, not a deployment.",
        stream_poller::POLL_INTERVAL.as_millis()
    )
}

/// The report's section.
pub fn render(md: &mut String, e2e: &E2e) {
    let _ = writeln!(md, "## 7. End-to-end latency\n");
    let _ = writeln!(
        md,
        "The local stack as `make dev` runs it (the `local-runner` binary, {} build, against the bench's moto and tansu, \
with its own table and database-events topic), driven over HTTP with the Rust client (`clients/rust`, one attempt per request, no retries). \
Each writer commits {} batches of one event (about 200 B, with a transaction id) back to back; a consumer assigned every partition of the topic \
before the first commit notes when each batch's `Transacted` event arrives, matched to its commit by key (database) and `ce_revision`. \
**commit** = request sent → 200 received; **end to end** = request sent → event consumed. Each writer has a database of its own, so the rows \
measure latency under load, not contention; the last row puts 4 writers on one database, where commits race. Loads interleaved, {} rounds with \
the order rotating, after {} warm-up commits; percentiles are nearest-rank over every commit of the load (with few commits p99 is the slowest).\n",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        e2e.per_writer,
        e2e.rounds,
        e2e.warmup
    );
    let _ = writeln!(
        md,
        "| writers | databases | commits | commit p50 | commit p99 | end to end p50 | end to end p99 | rounds' end-to-end p50 | missing | failures |\n|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
    );
    for r in &e2e.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} | {} |",
            r.load.writers,
            r.load.databases,
            r.commit_ms.len(),
            percentile(&r.commit_ms, 50.0),
            percentile(&r.commit_ms, 99.0),
            percentile(&r.e2e_ms, 50.0),
            percentile(&r.e2e_ms, 99.0),
            r.round_p50
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect::<Vec<_>>()
                .join(" "),
            r.missing,
            r.failures
        );
    }
    let _ = writeln!(
        md,
        "\nThe stack's settings on this path, read from the code and template it runs with:\n\n| setting | value | from |\n|---|---|---|"
    );
    for (setting, value, from) in &e2e.settings {
        let _ = writeln!(md, "| {setting} | {value} | {from} |");
    }
    let _ = writeln!(md, "\n{}\n", aws_note());
}

/// The targets table's rows: the issue sets no figure, so reported only.
pub fn target_rows(md: &mut String, e2e: &E2e) {
    for r in e2e
        .rows
        .iter()
        .filter(|r| r.load.writers == r.load.databases)
    {
        let _ = writeln!(
            md,
            "| end-to-end latency, {} writer(s) (HTTP commit → Transacted on Kafka; commit) | p50 {:.0} ms, p99 {:.0} ms; commit p50 {:.0} ms, p99 {:.0} ms | reported (no target set) |",
            r.load.writers,
            percentile(&r.e2e_ms, 50.0),
            percentile(&r.e2e_ms, 99.0),
            percentile(&r.commit_ms, 50.0),
            percentile(&r.commit_ms, 99.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ten: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        let table: [(&[f64], f64, f64); 10] = [
            (&ten, 50.0, 5.0),
            (&ten, 99.0, 10.0),
            (&ten, 10.0, 1.0),
            (&ten, 100.0, 10.0),
            (&hundred, 50.0, 50.0),
            (&hundred, 99.0, 99.0),
            (&[7.0], 99.0, 7.0),
            (&[3.0, 1.0], 50.0, 1.0),
            // A rank between two values is the higher one.
            (&[4.0, 1.0, 3.0, 2.0], 30.0, 2.0),
            (&[10.0, 20.0, 30.0], 40.0, 20.0),
        ];
        for (values, p, want) in table {
            assert_eq!(percentile(values, p), want, "p{p} of {values:?}");
        }
        assert!(percentile(&[], 50.0).is_nan());
    }
}
