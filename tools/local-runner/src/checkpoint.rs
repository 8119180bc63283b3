//! Where the stream event source resumes after a restart, as Lambda's
//! event source mapping does: it keeps a checkpoint per shard (the last
//! record it is done with) and reads on after it; the template's
//! `StartingPosition` applies only to a stream it has never read.
//!
//! The runner keeps those checkpoints in a small JSON file (by default
//! next to `stack.env`), per stream ARN, written after every batch that
//! moves one:
//!
//! ```json
//! {"streams": {"arn:aws:dynamodb:…/stream/…": {"updated": 1718000000000,
//!   "shards": {"shardId-…": "1100000000017454423012"}}}}
//! ```
//!
//! A record is done when the function succeeded with it, when it was
//! given up after the retries (it went to the on-failure destination), or
//! when the filter dropped it; a shard's checkpoint is its last record with
//! every earlier record of the shard done.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::{Path, PathBuf},
};

use evidentsource_dynamodb_stream::ShardStart;
use serde_json::{Map, Value, json};

/// Shard id → sequence number of the last record done.
pub type Positions = BTreeMap<String, String>;

/// Streams kept in the file: the most recently written. A runner that
/// starts its own moto gets a new stream each time; older ones are dropped.
const KEPT_STREAMS: usize = 32;

/// The event source mapping's `StartingPosition` (DynamoDB streams know
/// two; `AT_TIMESTAMP` is Kinesis only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

impl StartingPosition {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "TRIM_HORIZON" => Ok(StartingPosition::TrimHorizon),
            "LATEST" => Ok(StartingPosition::Latest),
            other => Err(format!(
                "StartingPosition {other:?} is not one of TRIM_HORIZON, LATEST"
            )),
        }
    }
}

/// Where a shard is read from: after its checkpoint; a shard without one
/// in a stream with a checkpoint is new since (a split): from its start,
/// as Lambda reads child shards; a stream never read: `starting`.
pub fn shard_start(
    checkpoint: Option<&Positions>,
    starting: StartingPosition,
    shard: &str,
) -> ShardStart {
    match checkpoint {
        Some(positions) => match positions.get(shard) {
            Some(sequence_number) => ShardStart::AfterSequenceNumber(sequence_number.clone()),
            None => ShardStart::TrimHorizon,
        },
        None => match starting {
            StartingPosition::TrimHorizon => ShardStart::TrimHorizon,
            StartingPosition::Latest => ShardStart::Latest,
        },
    }
}

/// The checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFile {
    path: PathBuf,
}

impl CheckpointFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CheckpointFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint of `stream_arn`; None when the stream was never read
    /// (no file, or no entry for it).
    pub fn load(&self, stream_arn: &str) -> Result<Option<Positions>, String> {
        let file = self.read()?;
        let Some(entry) = file["streams"].get(stream_arn) else {
            return Ok(None);
        };
        let shards = entry["shards"]
            .as_object()
            .ok_or_else(|| self.problem("an entry without shards"))?;
        shards
            .iter()
            .map(|(shard, n)| match n.as_str() {
                Some(n) => Ok((shard.clone(), n.to_owned())),
                None => Err(self.problem("a sequence number that is not a string")),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Records `positions` as the checkpoint of `stream_arn`, keeping the
    /// other streams' (the file is replaced whole: a reader never sees half
    /// of it).
    pub fn save(&self, stream_arn: &str, positions: &Positions) -> Result<(), String> {
        let mut file = self.read()?;
        let now = chrono::Utc::now().timestamp_millis();
        let streams = file["streams"].as_object_mut().expect("read() makes it");
        streams.insert(
            stream_arn.to_owned(),
            json!({ "updated": now, "shards": positions }),
        );
        while streams.len() > KEPT_STREAMS {
            let oldest = streams
                .iter()
                .min_by_key(|(_, e)| e["updated"].as_i64().unwrap_or(0))
                .map(|(arn, _)| arn.clone());
            match oldest {
                Some(arn) => streams.remove(&arn),
                None => break,
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.problem(&e.to_string()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, format!("{file:#}\n"))
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| self.problem(&e.to_string()))
    }

    /// The whole file, `{"streams": {}}` when there is none yet.
    fn read(&self) -> Result<Value, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(self.problem(&e.to_string())),
        };
        if text.trim().is_empty() {
            return Ok(json!({ "streams": {} }));
        }
        let mut value: Value = serde_json::from_str(&text)
            .map_err(|e| self.problem(&format!("not JSON ({e}); delete it to start over")))?;
        if !value["streams"].is_object() {
            if !value.is_object() {
                return Err(self.problem("not a JSON object; delete it to start over"));
            }
            value["streams"] = Value::Object(Map::new());
        }
        Ok(value)
    }

    fn problem(&self, what: &str) -> String {
        format!("stream checkpoint {}: {what}", self.path.display())
    }
}

/// The records read and not yet done, per shard, and the checkpoints they
/// leave.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    positions: Positions,
    /// Per shard, in read order: (sequence number, done).
    read: HashMap<String, VecDeque<(String, bool)>>,
    /// Sequence number → shard, for the records not done.
    open: HashMap<String, String>,
    changed: bool,
}

impl Progress {
    /// Starting from the checkpoint read at start-up.
    pub fn new(positions: Positions) -> Self {
        Progress {
            positions,
            ..Progress::default()
        }
    }

    /// A record read from `shard`; `done` when nothing is to be done with
    /// it (the filter dropped it).
    pub fn read(&mut self, shard: &str, sequence_number: &str, done: bool) {
        if !done {
            self.open
                .insert(sequence_number.to_owned(), shard.to_owned());
        }
        self.read
            .entry(shard.to_owned())
            .or_default()
            .push_back((sequence_number.to_owned(), done));
        self.advance(shard);
    }

    /// Records done (delivered, or given up).
    pub fn done<'a>(&mut self, sequence_numbers: impl IntoIterator<Item = &'a str>) {
        let mut shards = Vec::new();
        for n in sequence_numbers {
            let Some(shard) = self.open.remove(n) else {
                continue;
            };
            if let Some(entry) = self
                .read
                .get_mut(&shard)
                .and_then(|q| q.iter_mut().find(|(s, _)| s == n))
            {
                entry.1 = true;
            }
            shards.push(shard);
        }
        for shard in shards {
            self.advance(&shard);
        }
    }

    /// The checkpoints now.
    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Whether a checkpoint moved since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    fn advance(&mut self, shard: &str) {
        let Some(queue) = self.read.get_mut(shard) else {
            return;
        };
        let mut last = None;
        while queue.front().is_some_and(|(_, done)| *done) {
            last = queue.pop_front().map(|(n, _)| n);
        }
        if let Some(n) = last {
            self.positions.insert(shard.to_owned(), n);
            self.changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(pairs: &[(&str, &str)]) -> Positions {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_starting_position_applies_only_to_a_stream_never_read() {
        use StartingPosition::*;
        let after = |n: &str| ShardStart::AfterSequenceNumber(n.into());
        let checkpoint = positions(&[("s1", "17")]);
        let table = [
            (None, TrimHorizon, "s1", ShardStart::TrimHorizon),
            (None, Latest, "s1", ShardStart::Latest),
            (Some(&checkpoint), TrimHorizon, "s1", after("17")),
            (Some(&checkpoint), Latest, "s1", after("17")),
            // A shard born after the checkpoint is read from its start.
            (Some(&checkpoint), Latest, "s2", ShardStart::TrimHorizon),
        ];
        for (checkpoint, starting, shard, expected) in table {
            assert_eq!(
                shard_start(checkpoint, starting, shard),
                expected,
                "{checkpoint:?} {starting:?} {shard}"
            );
        }
        assert_eq!(StartingPosition::parse("LATEST"), Ok(Latest));
        assert!(StartingPosition::parse("AT_TIMESTAMP").is_err());
    }

    #[test]
    fn a_checkpoint_moves_only_past_records_done_with_all_before_them() {
        let mut p = Progress::new(positions(&[("s1", "0")]));
        let read = |p: &mut Progress, n: &str, done: bool| p.read("s1", n, done);
        read(&mut p, "1", false);
        read(&mut p, "2", true); // filtered out
        read(&mut p, "3", false);
        assert_eq!(p.positions()["s1"], "0");
        assert!(!p.take_changed());
        p.done(["3"]);
        assert_eq!(p.positions()["s1"], "0", "1 is not done yet");
        p.done(["1"]);
        assert_eq!(p.positions()["s1"], "3", "1, 2 and 3 are done");
        assert!(p.take_changed());
        assert!(!p.take_changed());
        read(&mut p, "4", true);
        assert_eq!(p.positions()["s1"], "4", "filtered with nothing open");
        assert!(p.take_changed());
        p.done(["99"]);
        assert!(!p.take_changed(), "an unknown record changes nothing");
    }

    #[test]
    fn shards_move_apart() {
        let mut p = Progress::default();
        p.read("a", "10", false);
        p.read("b", "20", false);
        p.read("b", "21", false);
        p.done(["21", "10"]);
        assert_eq!(p.positions(), &positions(&[("a", "10")]));
        p.done(["20"]);
        assert_eq!(p.positions(), &positions(&[("a", "10"), ("b", "21")]));
    }

    #[test]
    fn the_file_keeps_each_streams_checkpoint() {
        let dir = std::env::temp_dir().join(format!("checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = CheckpointFile::new(dir.join("sub/stream-checkpoint.json"));
        assert_eq!(file.load("arn-1"), Ok(None), "no file yet");
        file.save("arn-1", &positions(&[("s", "5")])).unwrap();
        file.save("arn-2", &positions(&[("s", "7")])).unwrap();
        file.save("arn-1", &positions(&[("s", "6")])).unwrap();
        assert_eq!(file.load("arn-1"), Ok(Some(positions(&[("s", "6")]))));
        assert_eq!(file.load("arn-2"), Ok(Some(positions(&[("s", "7")]))));
        assert_eq!(file.load("arn-3"), Ok(None));
        for i in 0..KEPT_STREAMS + 3 {
            file.save(&format!("many-{i:02}"), &Positions::new())
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(file.load("arn-1"), Ok(None), "the oldest are dropped");
        assert!(
            file.load(&format!("many-{:02}", KEPT_STREAMS + 2))
                .unwrap()
                .is_some()
        );
        std::fs::write(file.path(), "{not json").unwrap();
        let e = file.load("arn-1").unwrap_err();
        assert!(
            e.contains("stream-checkpoint.json") && e.contains("delete it"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
