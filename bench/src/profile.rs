//! `evidentsource-bench profile handler|raw RECORDS BATCHES`: one contender
//! alone, BATCHES batches of RECORDS records in a row against the local
//! tansu (started here, in its own processes), for a sampling profiler to
//! watch, e.g. `perf record -F 999 -g -- evidentsource-bench profile
//! handler 10000 30` on a build with symbols
//! (`CARGO_PROFILE_RELEASE_STRIP=none`). Prints the records/s and the
//! process's CPU per record, so that a frame's share of the samples reads
//! as µs per record.

use std::time::Duration;

use evidentsource_kafka_config::KafkaContext;
use evidentsource_local_servers::{LocalServers, create_topic, unique_name};
use evidentsource_stream_publisher::Publisher;

use crate::{
    cpu,
    publisher::{self, median, pre_encode, run_handler, run_raw},
    records,
};

pub async fn run(contender: &str, records: usize, batches: usize) -> Result<String, String> {
    if !["handler", "raw"].contains(&contender) {
        return Err(format!("{contender:?}: handler or raw"));
    }
    let servers = LocalServers::start(None, None).map_err(|e| e.to_string())?;
    let topic = unique_name("bench-profile");
    create_topic(&servers.kafka_brokers, &topic, 3).await?;
    let config = publisher::config(&servers.kafka_brokers, &topic);
    let event = records::stream_event(records);
    let encoded = pre_encode(&event);
    // Only the profiled contender's producer exists: no other producer's
    // threads in the samples.
    let mut rates = Vec::new();
    let mut cpus = Vec::new();
    if contender == "handler" {
        let publisher =
            Publisher::new(config, KafkaContext::default()).map_err(|e| e.to_string())?;
        run_handler(&publisher, &records::stream_event(100)).await;
        for _ in 0..batches {
            let (rate, cpu) = cpu::timed(records, run_handler(&publisher, &event)).await;
            rates.push(rate);
            cpus.push(cpu);
        }
    } else {
        let raw = publisher::raw_producer(&config);
        run_raw(&raw, &topic, &pre_encode(&records::stream_event(100))).await;
        for _ in 0..batches {
            let (rate, cpu) = cpu::timed(records, run_raw(&raw, &topic, &encoded)).await;
            rates.push(rate);
            cpus.push(cpu);
        }
    }
    // Let the last deliveries' bookkeeping finish before the servers stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(format!(
        "{contender} {records} records x {batches}: {:.0} records/s, {:.2} µs CPU/record (medians)",
        median(&rates),
        median(&cpus)
    ))
}
