//! "Conditions at scale": conditional commits on histories of growing
//! length, next to unconditioned commits in the same run, on a warm
//! process and on a cold one, with the read units they cost; and a query
//! of one subject's events at each length. Histories are loaded through
//! the real commit path (1000-event transactions) and indexed with the
//! indexer's own code (`Store::index_database`); during the measurement
//! the index lags as it would behind a live indexer (it is brought up to
//! date every [`INDEX_EVERY`] samples).
//!
//! moto meters nothing, so read units are estimated from what each read
//! returned: ⌈response bytes / 4 KB⌉ per call (strongly consistent
//! rules). The JSON wire form is larger than DynamoDB's item sizes, so
//! this over-counts, the same way for every row.

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::config::{
    ConfigBag, Intercept, RuntimeComponents,
    interceptors::AfterDeserializationInterceptorContextRef,
};
use evidentsource_domain::{AppendCondition, DatabaseName, Limits, Selector, Transaction};
use evidentsource_local_servers::{dynamodb_client, unique_name};
use evidentsource_proto::{
    TransactRequest,
    cloudevents::{
        CloudEvent,
        cloud_event::{CloudEventAttributeValue, Data, cloud_event_attribute_value::Attr},
    },
};
use evidentsource_storage::{QueryBounds, Store, StoreConfig, table::create_table};

pub use crate::latency::ADDED_LATENCY_MS;
use crate::latency::AddedLatency;

/// The index is brought up to date after this many rounds (each round
/// takes one sample of each kind on moto as is and one with added latency:
/// the index lags by up to 2 × KINDS × INDEX_EVERY commits).
pub const INDEX_EVERY: usize = 4;
/// Events per loading transaction.
const LOAD_BATCH: u64 = 1000;

/// How a history's events spread over subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every event its own subject (one entity per event).
    SubjectPerEvent,
    /// 100 subjects, round robin.
    HundredSubjects,
}

impl Shape {
    fn subject(self, revision: u64) -> String {
        match self {
            Shape::SubjectPerEvent => format!("order-{revision}"),
            Shape::HundredSubjects => format!("order-{}", revision % 100),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shape::SubjectPerEvent => "(a) one subject per event",
            Shape::HundredSubjects => "(b) 100 subjects",
        }
    }
}

/// The operations measured at each length, side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unconditioned,
    /// `Max(subject = new, 0)`: a new entity's id is unused.
    UniqueWarm,
    UniqueCold,
    /// `Max(subject = s, last revision of s)`: the DCB decision on an
    /// existing entity, as after reading it.
    DecisionWarm,
    DecisionCold,
    /// The same on a cold process right after the indexer caught up:
    /// nothing past the watermark to read, only the index.
    DecisionColdIndexed,
}

pub const KINDS: [Kind; 6] = [
    Kind::Unconditioned,
    Kind::UniqueWarm,
    Kind::UniqueCold,
    Kind::DecisionWarm,
    Kind::DecisionCold,
    Kind::DecisionColdIndexed,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Unconditioned => "unconditioned commit",
            Kind::UniqueWarm => "`Max(subject = new, 0)`, warm",
            Kind::UniqueCold => "`Max(subject = new, 0)`, cold",
            Kind::DecisionWarm => "`Max(subject = s, last of s)`, warm",
            Kind::DecisionCold => "`Max(subject = s, last of s)`, cold",
            Kind::DecisionColdIndexed => "`Max(subject = s, last of s)`, cold, index caught up",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub millis: Vec<f64>,
    /// Estimated read units per operation.
    pub read_units: Vec<u64>,
    /// Sequential DynamoDB round trips (reads issued side by side count
    /// once), per operation.
    pub round_trips: Vec<u32>,
}

impl Samples {
    pub fn p(&self, q: f64) -> f64 {
        percentile(&self.millis, q)
    }

    pub fn round_trips_median(&self) -> f64 {
        let v: Vec<f64> = self.round_trips.iter().map(|u| *u as f64).collect();
        percentile(&v, 0.5)
    }

    pub fn read_units_median(&self) -> f64 {
        let v: Vec<f64> = self.read_units.iter().map(|u| *u as f64).collect();
        percentile(&v, 0.5)
    }
}

#[derive(Debug, Clone)]
pub struct Scale {
    pub shape: Shape,
    pub events: u64,
    pub load_seconds: f64,
    pub index_seconds: f64,
    /// Per kind, in [`KINDS`] order.
    pub kinds: Vec<Samples>,
    /// The same with [`ADDED_LATENCY_MS`] added to every request.
    pub with_latency: Vec<Samples>,
    /// The index's lag behind the head at each conditional sample (events).
    pub max_lag: u64,
    /// Write units the index cost for the loaded history (by item size).
    pub index_write_units: u64,
    /// A query of one subject's events (first page, up to 100).
    pub query: Samples,
    /// Events in those pages, median.
    pub query_events: f64,
}

/// Counts the read units of reads, by response size.
#[derive(Debug, Clone, Default)]
struct ReadMeter(Arc<AtomicU64>);

impl Intercept for ReadMeter {
    fn name(&self) -> &'static str {
        "ReadMeter"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_owned())
            .unwrap_or_default();
        if ["Query", "GetItem", "BatchGetItem"].contains(&operation.as_str()) {
            let bytes = context
                .response()
                .body()
                .bytes()
                .map(<[u8]>::len)
                .unwrap_or(0);
            self.0
                .fetch_add((bytes as u64).div_ceil(4096).max(1), Ordering::Relaxed);
        }
        Ok(())
    }
}

pub(crate) fn event(id: String, subject: String) -> CloudEvent {
    CloudEvent {
        id,
        source: "https://example.com/shop/orders".into(),
        spec_version: "1.0".into(),
        r#type: "com.shop.order-placed".into(),
        attributes: [(
            "subject".to_owned(),
            CloudEventAttributeValue {
                attr: Some(Attr::CeString(subject)),
            },
        )]
        .into(),
        data: Some(Data::TextData("{\"total\":42}".into())),
    }
}

pub(crate) fn transaction(
    db: &DatabaseName,
    events: Vec<CloudEvent>,
    conditions: Vec<AppendCondition>,
    id: &str,
) -> Transaction {
    Transaction::from_request(
        TransactRequest {
            database_name: db.to_string(),
            events,
            conditions: conditions.iter().map(AppendCondition::to_proto).collect(),
            transaction_id: id.into(),
        },
        &Limits::default(),
    )
    .expect("a valid transaction")
}

pub(crate) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Loads and measures one history.
pub async fn measure(endpoint: &str, shape: Shape, events: u64, samples: usize) -> Scale {
    let meter = ReadMeter::default();
    let latency = AddedLatency::default();
    let base = dynamodb_client(endpoint);
    let client = aws_sdk_dynamodb::Client::from_conf(
        base.config()
            .to_builder()
            .interceptor(meter.clone())
            .interceptor(latency.clone())
            .build(),
    );
    let table = unique_name("conditions");
    create_table(&client, &table).await.expect("table");
    let config = StoreConfig::new(table);
    let loader = Store::new(client.clone(), config.clone());
    let db = DatabaseName::parse(unique_name("scale")).unwrap();
    loader.create_database(&db).await.expect("create");

    let started = Instant::now();
    let mut revision = 0;
    while revision < events {
        let n = LOAD_BATCH.min(events - revision);
        let batch = (revision + 1..=revision + n)
            .map(|r| event(format!("e{r}"), shape.subject(r)))
            .collect();
        loader
            .transact(&transaction(&db, batch, vec![], ""))
            .await
            .expect("load");
        revision += n;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let index_write_units = index(&loader, &db).await;
    let index_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "conditions: {} events {}: loaded in {load_seconds:.0} s, indexed in {index_seconds:.0} s",
        events,
        shape.label()
    );

    // The last revision of each subject the decisions use.
    let mut last: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let warm = Store::new(client.clone(), config.clone());
    let mut kinds = vec![Samples::default(); KINDS.len()];
    let mut with_latency = vec![Samples::default(); KINDS.len()];
    let mut head = events;
    let mut max_lag = 0;
    // One warm-up round for the warm process, not counted.
    for round in 0..=samples {
        let indexing = round % INDEX_EVERY == 0;
        if indexing {
            index(&loader, &db).await;
        }
        // In the rounds that index, the "index caught up" samples come
        // first (indexed again before each); then every other kind, with
        // the index lagging more and more until the next such round.
        let modes = [0, ADDED_LATENCY_MS];
        let caught_up = KINDS.len() - 1;
        let order = modes
            .into_iter()
            .filter(|_| indexing)
            .map(|mode| (mode, caught_up))
            .chain(
                modes
                    .into_iter()
                    .flat_map(|mode| (0..caught_up).map(move |k| (mode, k))),
            );
        for (mode, k) in order {
            let kind = &KINDS[k];
            latency.set(mode);
            let fresh = format!("new-{round}-{mode}-{k}");
            let existing = match shape {
                Shape::SubjectPerEvent => 1 + (round as u64 * 7919 + k as u64 * 104_729) % events,
                Shape::HundredSubjects => (round * KINDS.len() + k) as u64 % 100,
            };
            let existing_subject = shape.subject(existing);
            let existing_last = *last.entry(existing_subject.clone()).or_insert(match shape {
                Shape::SubjectPerEvent => existing,
                // Round robin: subject k was last at the largest r ≤ events
                // with r % 100 == k.
                Shape::HundredSubjects => {
                    let r = events - (events % 100) + existing;
                    if r > events { r - 100 } else { r }
                }
            });
            let (subject, condition) = match kind {
                Kind::Unconditioned => (fresh, None),
                Kind::UniqueWarm | Kind::UniqueCold => (
                    fresh.clone(),
                    Some(AppendCondition::max(Selector::SubjectEquals(fresh), 0)),
                ),
                Kind::DecisionWarm | Kind::DecisionCold | Kind::DecisionColdIndexed => (
                    existing_subject.clone(),
                    Some(AppendCondition::max(
                        Selector::SubjectEquals(existing_subject.clone()),
                        existing_last,
                    )),
                ),
            };
            let cold;
            let store = match kind {
                Kind::UniqueCold | Kind::DecisionCold | Kind::DecisionColdIndexed => {
                    cold = Store::new(client.clone(), config.clone());
                    &cold
                }
                _ => &warm,
            };
            let t = transaction(
                &db,
                vec![event(format!("m{round}-{mode}-{k}"), subject.clone())],
                condition.into_iter().collect(),
                &format!("tx-{round}-{mode}-{k}"),
            );
            if *kind == Kind::DecisionColdIndexed {
                // Not timed, not metered.
                latency.set(0);
                let before = meter.0.load(Ordering::Relaxed);
                index(&loader, &db).await;
                meter.0.store(before, Ordering::Relaxed);
                latency.set(mode);
            }
            let before = meter.0.load(Ordering::Relaxed);
            let started = Instant::now();
            let (summary, cost) = store
                .transact_measured(&t)
                .await
                .expect("a measured commit");
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            let units = meter.0.load(Ordering::Relaxed) - before;
            head = summary.revision;
            last.insert(subject, head);
            if round > 0 {
                let samples = if mode == 0 {
                    &mut kinds[k]
                } else {
                    &mut with_latency[k]
                };
                samples.millis.push(millis);
                samples.read_units.push(units);
                samples
                    .round_trips
                    .push(cost.read_round_trips + cost.write_round_trips);
            }
        }
        latency.set(0);
        let watermark = loader
            .head_and_watermark(db.as_str())
            .await
            .expect("head")
            .map(|at| at.watermark)
            .unwrap_or(0);
        max_lag = max_lag.max(head - watermark);
    }

    // Queries of one existing subject's events, as a DCB client reads
    // before deciding.
    let mut query = Samples::default();
    let mut sizes = Vec::new();
    for round in 0..samples {
        let subject = match shape {
            Shape::SubjectPerEvent => shape.subject(1 + (round as u64 * 7919) % events),
            Shape::HundredSubjects => shape.subject(round as u64 % 100),
        };
        let before = meter.0.load(Ordering::Relaxed);
        let started = Instant::now();
        let page = warm
            .query(
                db.as_str(),
                &Selector::SubjectEquals(subject),
                1,
                QueryBounds {
                    limit: 100,
                    max_bytes: 5 << 20,
                },
            )
            .await
            .expect("a query");
        query.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        query
            .read_units
            .push(meter.0.load(Ordering::Relaxed) - before);
        sizes.push(page.events.len() as f64);
    }
    Scale {
        shape,
        events,
        load_seconds,
        index_seconds,
        kinds,
        with_latency,
        max_lag,
        index_write_units,
        query,
        query_events: percentile(&sizes, 0.5),
    }
}

/// Indexes up to the head; returns the write units it took.
pub(crate) async fn index(store: &Store, db: &DatabaseName) -> u64 {
    let mut units = 0;
    loop {
        let progress = store
            .index_database(db.as_str(), Duration::from_secs(3600))
            .await
            .expect("index");
        units += progress.write_units;
        if progress.watermark >= progress.head {
            return units;
        }
    }
}

/// The report's section.
pub fn render(md: &mut String, scales: &[Scale], samples: usize) {
    let _ = writeln!(
        md,
        "## Conditions at scale\n\n\
         Histories loaded through the commit path (1000-event transactions, one stream, one type) and indexed with the indexer's code; \
         then, side by side in rounds, {samples} samples of each operation below, each a one-event commit with a transaction id. \
         \"Warm\": one process that has committed before (its window of recent facts starts at the watermark); \
         \"cold\": a new `Store` each time (no window: head and watermark, then the index, and beside it the chunks past the watermark unless the head's recent facts rule them out, docs/storage.md \"Recent facts on the head\"); \
         \"index caught up\": a cold process right after the indexer caught up, so that nothing is past the watermark (the chunks past it cost moto about half a millisecond per item, DynamoDB one call). \
         The index is brought up to date every {INDEX_EVERY} rounds, so it lags as behind a live indexer. \
         Read units: ⌈response bytes / 4 KB⌉ per read call, an over-estimate (JSON is larger than DynamoDB's item sizes), the same for every row. \
         Timings are on moto, which answers one request at a time: reads that DynamoDB would serve side by side (the idempotency record, the index, the chunks past the watermark) queue there one after another, \
         so the last column gives the round trips in sequence as DynamoDB would take them.\n"
    );
    let _ = writeln!(
        md,
        "| history | operation | p50 ms | p99 ms | × unconditioned (p50) | read units (median) | round trips in sequence (median) |\n|---|---|---:|---:|---:|---:|---:|"
    );
    for s in scales {
        let base = s.kinds[0].p(0.5);
        for (kind, samples) in KINDS.iter().zip(&s.kinds) {
            let _ = writeln!(
                md,
                "| {} events, {} | {} | {:.1} | {:.1} | {:.2} | {:.0} | {:.0} |",
                s.events,
                s.shape.label(),
                kind.label(),
                samples.p(0.5),
                samples.p(0.99),
                samples.p(0.5) / base,
                samples.read_units_median(),
                samples.round_trips_median()
            );
        }
    }
    let _ = writeln!(
        md,
        "\nThe same operations in the same rounds, with {ADDED_LATENCY_MS} ms added to every request before moto queues it (`x-moto-latency-ms`, scripts/moto_server.py): \
         a stand-in for DynamoDB's own in-region latency, which reads sent side by side overlap, where moto's one-at-a-time queue adds them up. \
         A fixed {ADDED_LATENCY_MS} ms for every call is a simplification (DynamoDB's transactions take longer than its reads, which would make the ratios smaller).\n\n\
         | history | operation | p50 ms | p99 ms | × unconditioned (p50) |\n|---|---|---:|---:|---:|"
    );
    for s in scales {
        let base = s.with_latency[0].p(0.5);
        for (kind, samples) in KINDS.iter().zip(&s.with_latency) {
            let _ = writeln!(
                md,
                "| {} events, {} | {} | {:.1} | {:.1} | {:.2} |",
                s.events,
                s.shape.label(),
                kind.label(),
                samples.p(0.5),
                samples.p(0.99),
                samples.p(0.5) / base
            );
        }
    }
    let _ = writeln!(
        md,
        "\nA query of one subject's events (`POST /databases/{{name}}/query` in storage: first page, up to 100 events), {samples} times, on the warm process:\n\n\
         | history | events per page (median) | p50 ms | p99 ms | × the same query at the smallest history (p50) | read units (median) |\n|---|---:|---:|---:|---:|---:|"
    );
    for s in scales {
        let smallest = scales
            .iter()
            .filter(|o| o.shape == s.shape)
            .min_by_key(|o| o.events)
            .map(|o| o.query.p(0.5))
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            md,
            "| {} events, {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.0} |",
            s.events,
            s.shape.label(),
            s.query_events,
            s.query.p(0.5),
            s.query.p(0.99),
            s.query.p(0.5) / smallest,
            s.query.read_units_median()
        );
    }
    let _ = writeln!(
        md,
        "\nWhat the index costs to write (by item size, 1 WU per started KB, not transactional), next to the commit's 0.46 WU/event for 100 × 200 B: {}.\n",
        scales
            .iter()
            .map(|s| format!(
                "{} {}: {:.2} WU/event",
                s.shape.label(),
                s.events,
                s.index_write_units as f64 / s.events as f64
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let _ = writeln!(
        md,
        "Projected to 10M events (one subject per event): the rows above do not depend on the history's length, because every read is a seek in one partition \
         (the head's, one subject's postings, the chunks past the watermark) and a function holds one page, a bounded window and one query page; what grows is storage \
         (≈ 2.1 GB of chunks and ≈ 1.1 GB of postings at 10M) and the indexer's one-time work for a database that predates it (≈ 1 WU per event). \
         Without the index, a cold conditional commit read the whole history: ≈ 3 s at 300k events, beyond the function's timeout somewhere past 1M (docs/storage.md).\n"
    );
    let _ = writeln!(
        md,
        "Loading and indexing (moto): {}.\n",
        scales
            .iter()
            .map(|s| format!(
                "{} events {}: {:.0} s + {:.0} s, index lag ≤ {} events",
                s.events,
                s.shape.label(),
                s.load_seconds,
                s.index_seconds,
                s.max_lag
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// The Targets table's rows: `verdict` renders met / missed.
pub fn target_rows(md: &mut String, scales: &[Scale], verdict: fn(bool) -> &'static str) {
    let largest = scales
        .iter()
        .filter(|s| s.shape == Shape::SubjectPerEvent)
        .max_by_key(|s| s.events);
    if let Some(s) = largest {
        // The worst p50 ratio to the unconditioned commit among the kinds
        // `of` picks.
        let worst = |kinds: &[Samples], of: fn(Kind) -> bool| {
            let base = kinds[0].p(0.5);
            KINDS
                .iter()
                .zip(kinds)
                .skip(1)
                .filter(|(kind, _)| of(**kind))
                .map(|(_, k)| k.p(0.5) / base)
                .fold(0.0, f64::max)
        };
        let warm = |k: Kind| matches!(k, Kind::UniqueWarm | Kind::DecisionWarm);
        let cold = |k: Kind| !matches!(k, Kind::UniqueWarm | Kind::DecisionWarm);
        for (kinds, on) in [
            (&s.kinds, "on moto as it answers".to_owned()),
            (
                &s.with_latency,
                format!(
                    "with {ADDED_LATENCY_MS} ms added to each request outside moto's queue (a stand-in for DynamoDB's latency)"
                ),
            ),
        ] {
            let (w, c) = (worst(kinds, warm), worst(kinds, cold));
            let _ = writeln!(
                md,
                "| {} events, one subject per event: a conditional commit, warm or cold, ≤ 1.5 × the unconditioned commit (p50), {on} | worst {:.2} × (warm {w:.2} ×, cold {c:.2} ×) | {} (warm {}, cold {}) |",
                s.events,
                w.max(c),
                verdict(w.max(c) <= 1.5),
                verdict(w <= 1.5),
                verdict(c <= 1.5)
            );
        }
        let smallest = scales
            .iter()
            .filter(|o| o.shape == Shape::SubjectPerEvent)
            .min_by_key(|o| o.events);
        if let Some(small) = smallest {
            let ratio = s.query.p(0.5) / small.query.p(0.5);
            let _ = writeln!(
                md,
                "| a one-subject query at {} events ≤ 2 × the same query at {} events (p50) | {ratio:.2} × | {} |",
                s.events,
                small.events,
                verdict(ratio <= 2.0)
            );
        }
    }
}
