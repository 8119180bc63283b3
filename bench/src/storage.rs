//! Storage costs against moto: write units and round trips per transaction
//! (by DynamoDB's item-size rules on the items sent: moto meters nothing),
//! and commit rate and retries under contention.

use std::{sync::Arc, time::Instant};

use evidentsource_domain::{DatabaseName, Limits, Transaction};
use evidentsource_local_servers::{dynamodb_client, unique_name};
use evidentsource_proto::{
    TransactRequest,
    cloudevents::{CloudEvent, cloud_event::Data},
};
use evidentsource_storage::{Store, StoreConfig, table::create_table};

use crate::{latency::AddedLatency, moto::moto_busy};

pub async fn store(endpoint: &str) -> Store {
    store_with_latency(endpoint, 0).await
}

/// A store on a fresh table whose every request waits `added_ms` before
/// moto queues it ([`crate::latency`]).
pub async fn store_with_latency(endpoint: &str, added_ms: u64) -> Store {
    let client = AddedLatency::client(added_ms, &dynamodb_client(endpoint));
    let table = unique_name("bench");
    create_table(&client, &table).await.expect("table");
    Store::new(client, StoreConfig::new(table))
}

/// Incompressible data (xorshift), so compression does not flatter the figures.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u8
        })
        .collect()
}

fn transaction(db: &DatabaseName, tag: &str, count: usize, size: usize) -> Transaction {
    let events = (0..count)
        .map(|i| CloudEvent {
            id: format!("{tag}-{i}"),
            source: "https://example.com/shop/orders".into(),
            spec_version: "1.0".into(),
            r#type: "com.shop.order-placed".into(),
            data: Some(Data::BinaryData(random_bytes(
                i as u64 + tag.len() as u64 * 7919,
                size,
            ))),
            ..Default::default()
        })
        .collect();
    Transaction::from_request(
        TransactRequest {
            database_name: db.to_string(),
            events,
            conditions: vec![],
            transaction_id: tag.into(),
        },
        &Limits::default(),
    )
    .expect("a valid transaction")
}

#[derive(Debug, Clone)]
pub struct WriteCost {
    pub count: usize,
    pub size: usize,
    pub write_units: u64,
    pub write_round_trips: u32,
    pub read_round_trips: u32,
    pub items: usize,
}

pub async fn write_cost(endpoint: &str) -> Vec<WriteCost> {
    let store = store(endpoint).await;
    let db = DatabaseName::parse(unique_name("cost")).unwrap();
    store.create_database(&db).await.expect("create");
    let mut out = Vec::new();
    for size in [200, 2048] {
        for count in [1, 10, 100] {
            let t = transaction(&db, &format!("cost-{size}-{count}"), count, size);
            let (_, cost) = store.transact_measured(&t).await.expect("transact");
            out.push(WriteCost {
                count,
                size,
                write_units: cost.write_units,
                write_round_trips: cost.write_round_trips,
                read_round_trips: cost.read_round_trips,
                items: cost.items,
            });
        }
    }
    out
}

/// One contention setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub writers: usize,
    pub databases: usize,
    /// Added to every request ([`crate::latency`]); 0: moto as is.
    pub added_ms: u64,
    /// Whether the writers share one `Store` (one process: what one
    /// commits, the others' next commit goes from) or each has its own
    /// (one process each, as Lambda instances serving one request at a
    /// time are).
    pub shared: bool,
}

#[derive(Debug, Clone)]
pub struct Contention {
    pub writers: usize,
    pub databases: usize,
    pub shared: bool,
    /// Added to every request ([`crate::latency`]); 0: moto as is.
    pub added_ms: u64,
    /// Over all rounds.
    pub commits: u64,
    pub failures: u64,
    pub retries: u64,
    /// Read round trips (head, transaction id, conditions).
    pub reads: u64,
    /// Commits/s of each round.
    pub rates: Vec<f64>,
    /// The share of each round's time moto spent handling requests
    /// ([`crate::moto::moto_busy`]; empty if it does not tell).
    pub busy: Vec<f64>,
}

impl Contention {
    /// Median commits/s over the rounds.
    pub fn rate(&self) -> f64 {
        crate::publisher::median(&self.rates)
    }

    pub fn retries_per_commit(&self) -> f64 {
        self.retries as f64 / self.commits.max(1) as f64
    }

    pub fn reads_per_commit(&self) -> f64 {
        self.reads as f64 / self.commits.max(1) as f64
    }

    /// Median share of the rounds' time moto was busy, if known.
    pub fn busy(&self) -> Option<f64> {
        (!self.busy.is_empty()).then(|| crate::publisher::median(&self.busy))
    }
}

/// Each `(writers, databases)` setup, `rounds` times, interleaved with the
/// order rotating every round (moto's speed drifts over a run; the setups
/// must see the same drift). See [`contention_round`].
pub async fn contention(
    endpoint: &str,
    setups: &[Setup],
    rounds: usize,
    per_writer: usize,
) -> Vec<Contention> {
    let mut results: Vec<Contention> = setups
        .iter()
        .map(|s| Contention {
            writers: s.writers,
            databases: s.databases,
            shared: s.shared,
            added_ms: s.added_ms,
            commits: 0,
            failures: 0,
            retries: 0,
            reads: 0,
            rates: Vec::new(),
            busy: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for turn in 0..setups.len() {
            let r = &mut results[(round + turn) % setups.len()];
            contention_round(endpoint, r, per_writer).await;
        }
    }
    results
}

/// `writers` tasks, each committing `per_writer` single-event transactions
/// (with a transaction id, no conditions: every one must commit) to database
/// `w % databases`, on a fresh table, through one shared `Store` or one
/// each; the client's connections are opened before the clock starts, so
/// every setup starts warm.
async fn contention_round(endpoint: &str, into: &mut Contention, per_writer: usize) {
    let (writers, databases) = (into.writers, into.databases);
    let store = Arc::new(store_with_latency(endpoint, into.added_ms).await);
    let stores: Vec<Arc<Store>> = (0..writers)
        .map(|_| {
            if into.shared {
                store.clone()
            } else {
                Arc::new(Store::new(store.client().clone(), store.config().clone()))
            }
        })
        .collect();
    let mut names = Vec::new();
    for _ in 0..databases {
        let db = DatabaseName::parse(unique_name("hot")).unwrap();
        store.create_database(&db).await.expect("create");
        names.push(db);
    }
    let warm: Vec<_> = (0..writers)
        .map(|w| {
            let store = stores[w].clone();
            let db = names[w % databases].clone();
            tokio::spawn(async move { store.read_head(db.as_str()).await.expect("warm-up read") })
        })
        .collect();
    for w in warm {
        w.await.expect("warm-up task");
    }
    let busy_before = moto_busy(endpoint);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = stores[w].clone();
            let db = names[w % databases].clone();
            tokio::spawn(async move {
                let (mut commits, mut failures, mut retries, mut reads) = (0u64, 0u64, 0u64, 0u64);
                for i in 0..per_writer {
                    let t = transaction(&db, &format!("w{w}-{i}"), 1, 200);
                    match store.transact_measured(&t).await {
                        Ok((_, cost)) => {
                            commits += 1;
                            retries += u64::from(cost.write_round_trips.saturating_sub(1));
                            reads += u64::from(cost.read_round_trips);
                        }
                        Err(e) => {
                            failures += 1;
                            eprintln!("writer {w}: {e}");
                        }
                    }
                }
                (commits, failures, retries, reads)
            })
        })
        .collect();
    let mut commits = 0;
    for t in tasks {
        let (c, f, r, reads) = t.await.expect("writer task");
        commits += c;
        into.failures += f;
        into.retries += r;
        into.reads += reads;
    }
    let elapsed = started.elapsed();
    into.commits += commits;
    into.rates.push(commits as f64 / elapsed.as_secs_f64());
    if let (Some(before), Some(after)) = (busy_before, moto_busy(endpoint)) {
        into.busy
            .push(after.saturating_sub(before) as f64 / elapsed.as_nanos().max(1) as f64);
    }
}
