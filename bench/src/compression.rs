//! The producers' compression codecs side by side, on the same batches of
//! database events: what each costs in publisher throughput and saves on
//! the wire. The default (`KAFKA_COMPRESSION_TYPE` unset) is chosen from
//! this table, within what every mainstream client decodes with a plain
//! install (none or gzip).
//!
//! Per codec and batch size, interleaved round by round (the codec order
//! rotates): the publisher's handler (records/s), and a raw producer with
//! the same settings sending the same messages pre-encoded, whose
//! librdkafka statistics give the bytes it sent to the brokers (the sum of
//! every broker's `txbytes`, before and after the batch).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use evidentsource_kafka_config::{Compression, KafkaContext};
use evidentsource_stream_publisher::{Publisher, PublisherConfig, producer_config};
use rdkafka::{ClientContext, Statistics, producer::FutureProducer};

use crate::{
    publisher::{BASE_URI, Encoded, median, pre_encode, rounds, run_handler, run_raw},
    records,
};

/// How often librdkafka reports its statistics to [`WireBytes`].
const STATS_INTERVAL: Duration = Duration::from_millis(50);

/// One codec at one batch size.
#[derive(Debug, Clone)]
pub struct CodecRun {
    pub codec: Compression,
    pub records: usize,
    /// Handler records/s, one per round.
    pub handler: Vec<f64>,
    /// Bytes sent to the brokers per record, one per round.
    pub wire_bytes: Vec<f64>,
    /// Key + headers + value of one message, before compression.
    pub message_bytes: f64,
}

impl CodecRun {
    pub fn handler_rate(&self) -> f64 {
        median(&self.handler)
    }

    pub fn bytes_per_record(&self) -> f64 {
        median(&self.wire_bytes)
    }
}

/// A client context that keeps the latest total of bytes sent.
#[derive(Clone, Default)]
struct WireBytes {
    /// (statistics reports seen, Σ brokers' txbytes in the latest one)
    latest: Arc<Mutex<(u64, u64)>>,
}

impl ClientContext for WireBytes {
    fn stats(&self, statistics: Statistics) {
        let sent = statistics.brokers.values().map(|b| b.txbytes).sum();
        let mut latest = self.latest.lock().unwrap();
        *latest = (latest.0 + 1, sent);
    }
}

impl WireBytes {
    /// The total of a report made after this call (so it counts everything
    /// delivered before it).
    async fn settled(&self) -> u64 {
        let seen = self.latest.lock().unwrap().0;
        loop {
            tokio::time::sleep(STATS_INTERVAL).await;
            let (count, sent) = *self.latest.lock().unwrap();
            if count >= seen + 2 {
                return sent;
            }
        }
    }
}

fn config(brokers: &str, topic: &str, codec: Compression) -> PublisherConfig {
    let vars = [
        ("BASE_URI", BASE_URI),
        ("KAFKA_BROKERS", brokers),
        ("DATABASE_EVENTS_KAFKA_TOPIC", topic),
        ("KAFKA_COMPRESSION_TYPE", codec.name()),
    ];
    PublisherConfig::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .expect("publisher config")
}

/// Sends `encoded` and returns the bytes that went to the brokers.
async fn wire_bytes(
    producer: &FutureProducer<WireBytes>,
    stats: &WireBytes,
    topic: &str,
    encoded: &Encoded,
) -> u64 {
    let before = stats.settled().await;
    run_raw(producer, topic, encoded).await;
    stats.settled().await - before
}

fn message_bytes(encoded: &Encoded) -> f64 {
    let total: usize = encoded
        .0
        .iter()
        .map(|(key, m)| {
            key.len()
                + m.value.len()
                + m.headers
                    .iter()
                    .map(|(name, value)| name.len() + value.len())
                    .sum::<usize>()
        })
        .sum();
    total as f64 / encoded.0.len() as f64
}

struct Contender {
    codec: Compression,
    publisher: Publisher,
    producer: FutureProducer<WireBytes>,
    stats: WireBytes,
}

/// Every codec at every size, `rounds` interleaved rounds each.
pub async fn compare(
    brokers: &str,
    topic: &str,
    sizes: &[usize],
    rounds: usize,
) -> Result<Vec<CodecRun>, String> {
    let mut contenders = Vec::new();
    for codec in Compression::ALL {
        let config = config(brokers, topic, codec);
        let publisher =
            Publisher::new(config.clone(), KafkaContext::default()).map_err(|e| e.to_string())?;
        let stats = WireBytes::default();
        let producer = producer_config(&config)
            .set(
                "statistics.interval.ms",
                STATS_INTERVAL.as_millis().to_string(),
            )
            .create_with_context(stats.clone())
            .map_err(|e| e.to_string())?;
        contenders.push(Contender {
            codec,
            publisher,
            producer,
            stats,
        });
    }
    let mut results = Vec::new();
    for &size in sizes {
        let event = records::stream_event(size);
        let encoded = pre_encode(&event);
        let warm = records::stream_event(100);
        let mut runs: Vec<CodecRun> = contenders
            .iter()
            .map(|c| CodecRun {
                codec: c.codec,
                records: size,
                handler: Vec::new(),
                wire_bytes: Vec::new(),
                message_bytes: message_bytes(&encoded),
            })
            .collect();
        for c in &contenders {
            run_handler(&c.publisher, &warm).await;
            wire_bytes(&c.producer, &c.stats, topic, &pre_encode(&warm)).await;
        }
        let started = Instant::now();
        for round in 0..rounds {
            for turn in 0..contenders.len() {
                let i = (round + turn) % contenders.len();
                let c = &contenders[i];
                runs[i]
                    .handler
                    .push(run_handler(&c.publisher, &event).await);
                let bytes = wire_bytes(&c.producer, &c.stats, topic, &encoded).await;
                runs[i].wire_bytes.push(bytes as f64 / size as f64);
            }
        }
        for r in &runs {
            eprintln!(
                "compression {:<6} {size:>6} records: handler {:>9.0}/s, {:>6.1} bytes/record on the wire ({:.0} before compression)",
                r.codec.name(),
                r.handler_rate(),
                r.bytes_per_record(),
                r.message_bytes
            );
        }
        eprintln!("  ({:.1} s)", started.elapsed().as_secs_f64());
        results.extend(runs);
    }
    Ok(results)
}

/// The report's table: per batch size, each codec's handler rate and bytes
/// per record, both also relative to no compression.
pub fn table(md: &mut String, runs: &[CodecRun]) {
    use std::fmt::Write as _;
    let _ = writeln!(
        md,
        "| records | codec | handler records/s | vs none | bytes/record on the wire | vs none | plain-install readers |\n|---:|---|---:|---:|---:|---:|---|"
    );
    for run in runs {
        let Some(none) = runs
            .iter()
            .find(|r| r.records == run.records && r.codec == Compression::None)
        else {
            continue;
        };
        let readers = match run.codec {
            Compression::None | Compression::Gzip => "every client",
            _ => "librdkafka-based, Java; not kafka-python, kafkajs",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:.2} | {readers} |",
            run.records,
            run.codec.name(),
            run.handler_rate(),
            run.handler_rate() / none.handler_rate(),
            run.bytes_per_record(),
            run.bytes_per_record() / none.bytes_per_record(),
        );
    }
    if let Some(first) = runs.first() {
        let _ = writeln!(
            md,
            "\nOne message before compression: {:.0} bytes (key, `ce_` headers, protobuf body).",
            first.message_bytes
        );
    }
    let _ = writeln!(md, "\nEvery run (handler records/s; bytes/record):\n\n```");
    for run in runs {
        let _ = writeln!(
            md,
            "{:>6} {:<6}: [{}]  [{}]",
            run.records,
            run.codec.name(),
            rounds(&run.handler),
            rounds(&run.wire_bytes)
        );
    }
    let _ = writeln!(md, "```\n");
}
