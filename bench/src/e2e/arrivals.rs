//! The consumer side of the end-to-end measurement: when each batch's
//! Transacted event is read, and which commit it belongs to.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use evidentsource_database_events::TRANSACTED;
use evidentsource_local_servers::unique_name;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
    message::Headers,
};

use super::{ARRIVAL_WAIT, Commit, FETCH_WAIT_MS, ms};

/// When each (database, revision)'s Transacted event was read.
type Seen = Arc<Mutex<HashMap<(String, u64), Instant>>>;

/// A consumer of every partition of the topic from its start (the topic
/// is the runner's own, so that is before the first commit), noting each
/// Transacted event's arrival.
pub struct Arrivals {
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    pub async fn start(brokers: &str, topic: &str) -> Result<Self, String> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", unique_name("bench-e2e"))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", FETCH_WAIT_MS)
            .create()
            .map_err(|e| format!("e2e consumer: {e}"))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map_err(|e| format!("e2e consumer: metadata of {topic}: {e}"))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            return Err(format!("e2e consumer: {topic} has no partitions"));
        }
        let mut list = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
        }
        consumer.assign(&list).map_err(|e| e.to_string())?;
        let seen: Seen = Arc::default();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok(message) = consumer.recv().await {
                    let at = Instant::now();
                    let headers = message
                        .headers()
                        .into_iter()
                        .flat_map(|h| h.iter().map(|header| (header.key, header.value)));
                    if let Some(key) = transacted(message.key(), headers) {
                        seen.lock().unwrap().entry(key).or_insert(at);
                    }
                }
            }
        });
        Ok(Arrivals { seen, task })
    }

    /// Waits (at most [`ARRIVAL_WAIT`]) for every commit's event; the
    /// end-to-end times in ms, and how many never came.
    pub async fn wait_for(&self, commits: &[Commit]) -> (Vec<f64>, usize) {
        let until = Instant::now() + ARRIVAL_WAIT;
        loop {
            let (e2e, missing) = pair(commits, &self.seen.lock().unwrap());
            if missing == 0 || Instant::now() >= until {
                return (e2e, missing);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The (database, revision) a message announces, if it is a Transacted
/// event: the key is the database, `ce_revision` the revision after it.
pub fn transacted<'a>(
    key: Option<&[u8]>,
    headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> Option<(String, u64)> {
    let database = std::str::from_utf8(key?).ok()?;
    let (mut ty, mut revision) = (None, None);
    for (k, v) in headers {
        let v = v.and_then(|v| std::str::from_utf8(v).ok());
        match k {
            "ce_type" => ty = v,
            "ce_revision" => revision = v.and_then(|v| v.parse::<u64>().ok()),
            _ => {}
        }
    }
    if ty? != TRANSACTED {
        return None;
    }
    Some((database.to_owned(), revision?))
}

/// Each commit's end-to-end time (ms) where its event was read, and how
/// many commits have none yet.
pub fn pair(commits: &[Commit], seen: &HashMap<(String, u64), Instant>) -> (Vec<f64>, usize) {
    let mut e2e = Vec::with_capacity(commits.len());
    for c in commits {
        if let Some(at) = seen.get(&(c.database.clone(), c.revision)) {
            e2e.push(ms(at.saturating_duration_since(c.sent)));
        }
    }
    let missing = commits.len() - e2e.len();
    (e2e, missing)
}

#[cfg(test)]
mod tests {
    use evidentsource_database_events::CREATED;

    use super::*;

    /// Key, headers, the (database, revision) matched.
    type Case = (
        Option<&'static [u8]>,
        Vec<(&'static str, Option<&'static [u8]>)>,
        Option<(&'static str, u64)>,
    );

    #[test]
    fn only_transacted_events_with_key_and_revision_match() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            pairs
                .iter()
                .map(|(k, v)| (*k, Some(v.as_bytes())))
                .collect::<Vec<_>>()
        };
        let table: [Case; 7] = [
            (
                Some(b"db"),
                h(&[("ce_type", TRANSACTED), ("ce_revision", "7")]),
                Some(("db", 7)),
            ),
            // Header order does not matter; other headers are ignored.
            (
                Some(b"db"),
                h(&[
                    ("ce_revision", "12"),
                    ("ce_basis", "11"),
                    ("ce_type", TRANSACTED),
                ]),
                Some(("db", 12)),
            ),
            (
                Some(b"db"),
                h(&[("ce_type", CREATED), ("ce_revision", "0")]),
                None,
            ),
            (
                None,
                h(&[("ce_type", TRANSACTED), ("ce_revision", "7")]),
                None,
            ),
            (Some(b"db"), h(&[("ce_type", TRANSACTED)]), None),
            (
                Some(b"db"),
                h(&[("ce_type", TRANSACTED), ("ce_revision", "x")]),
                None,
            ),
            (
                Some(b"db"),
                vec![("ce_type", None), ("ce_revision", Some(b"7"))],
                None,
            ),
        ];
        for (key, headers, want) in table {
            let got = transacted(key, headers.clone());
            assert_eq!(
                got,
                want.map(|(d, r)| (d.to_owned(), r)),
                "{key:?} {headers:?}"
            );
        }
    }

    #[test]
    fn commits_pair_with_their_own_database_and_revision() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let commit = |db: &str, revision, sent| Commit {
            database: db.to_owned(),
            revision,
            sent: at(sent),
            answered: at(sent + 5),
        };
        let seen: HashMap<(String, u64), Instant> = [
            (("a".to_owned(), 1), at(100)),
            (("a".to_owned(), 2), at(250)),
            (("b".to_owned(), 1), at(300)),
        ]
        .into_iter()
        .collect();
        let table: [(Vec<Commit>, Vec<f64>, usize); 4] = [
            (
                vec![commit("a", 1, 10), commit("a", 2, 50)],
                vec![90.0, 200.0],
                0,
            ),
            // Same revision, other database: its own arrival.
            (vec![commit("b", 1, 20)], vec![280.0], 0),
            (vec![commit("a", 3, 10), commit("c", 1, 0)], vec![], 2),
            (vec![commit("b", 2, 0), commit("a", 1, 0)], vec![100.0], 1),
        ];
        for (commits, want, missing) in table {
            let (e2e, m) = pair(&commits, &seen);
            assert_eq!((e2e, m), (want, missing), "{commits:?}");
        }
    }
}
