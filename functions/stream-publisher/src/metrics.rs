//! What one invocation of the publisher reports to CloudWatch (EMF, see
//! `evidentsource_runtime::metrics` and docs/metrics.md).

use std::time::Duration;

use aws_lambda_events::event::{dynamodb::EventRecord, streams::DynamoDbEventResponse};
use evidentsource_runtime::metrics::{self, Metrics};

use crate::FailureKind;

/// The crate's short name: the `FunctionName` dimension outside Lambda.
pub const FUNCTION: &str = "stream-publisher";

/// The `Outcome` dimension's values.
pub const OUTCOMES: &[&str] = &["ok", "partial", "error"];

/// One batch's counts, filled by [`crate::Publisher::handle_measured`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchMetrics {
    /// Deliveries the broker confirmed.
    pub published: u64,
    /// Of those, records this instance had already tried in a batch that
    /// reported a failure (Lambda retried from there): duplicates on the
    /// topic that consumers dedupe by the CloudEvent id.
    pub resent: u64,
    /// Head records that can never be published (dead-lettered or not).
    pub poison: u64,
    pub failed_transient: u64,
    pub failed_permanent: u64,
    /// The approximate creation time (ms since the epoch) of the newest
    /// record published: its commit.
    pub newest_published_at: Option<i64>,
}

impl BatchMetrics {
    /// `ok` when the whole batch went out, `partial` when a record is
    /// reported for retry (or an error cut it short: `error`).
    pub fn outcome(&self, failed: bool, errored: bool) -> &'static str {
        match (
            errored,
            failed || self.failed_transient + self.failed_permanent > 0,
        ) {
            (true, _) => "error",
            (false, true) => "partial",
            (false, false) => "ok",
        }
    }

    /// The invocation's record: `failed` when the response reports a
    /// batch item failure, `errored` when the invocation returned an error;
    /// `now_ms` for the newest record's age.
    pub fn to_metrics(
        &self,
        mut metrics: Metrics,
        duration: Duration,
        failed: bool,
        errored: bool,
        now_ms: i64,
    ) -> Metrics {
        metrics
            .set_outcome(self.outcome(failed, errored))
            .count("RecordsPublished", self.published)
            .count("RecordsResent", self.resent)
            .count("PoisonRecords", self.poison)
            .count("FailedTransient", self.failed_transient)
            .count("FailedPermanent", self.failed_permanent)
            .millis("BatchDuration", duration);
        if let Some(at) = self.newest_published_at {
            let age = u64::try_from(now_ms - at).unwrap_or(0);
            metrics.millis("NewestRecordAge", Duration::from_millis(age));
        }
        metrics
    }
}

impl BatchMetrics {
    /// The invocation's record, as the function emits it: `response` is
    /// the answer (None: the invocation failed), `duration` its time.
    pub fn for_invocation(
        &self,
        response: Option<&DynamoDbEventResponse>,
        duration: Duration,
    ) -> Metrics {
        let failed = response.is_some_and(|r| !r.batch_item_failures.is_empty());
        self.to_metrics(
            Metrics::from_env(FUNCTION),
            duration,
            failed,
            response.is_none(),
            metrics::now_millis() as i64,
        )
    }

    /// A confirmed delivery of `record`; `retried_up_to`: the last record
    /// tried in this instance's last failed batch.
    pub fn published_one(&mut self, record: &EventRecord, retried_up_to: Option<&str>) {
        self.published += 1;
        if let (Some(seq), Some(up_to)) = (record.change.sequence_number.as_deref(), retried_up_to)
            && at_or_before(seq, up_to)
        {
            self.resent += 1;
        }
        // Missing from the record: the epoch (not an age worth reporting).
        let at = record
            .change
            .approximate_creation_date_time
            .timestamp_millis();
        if at > 0 {
            self.newest_published_at = Some(self.newest_published_at.map_or(at, |n| n.max(at)));
        }
    }

    pub fn count_failure(&mut self, kind: FailureKind) {
        match kind {
            FailureKind::Transient => self.failed_transient += 1,
            FailureKind::Permanent => self.failed_permanent += 1,
        }
    }
}

/// Whether stream sequence number `a` is at or before `b`: they are
/// decimal strings of growing value (no leading zeros), so a shorter one
/// is smaller.
pub fn at_or_before(a: &str, b: &str) -> bool {
    (a.len(), a) <= (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_by_what_became_of_the_batch() {
        let clean = BatchMetrics::default();
        let transient = BatchMetrics {
            failed_transient: 1,
            ..Default::default()
        };
        for (metrics, failed, errored, outcome) in [
            (&clean, false, false, "ok"),
            (&clean, true, false, "partial"),
            (&transient, false, false, "partial"),
            (&clean, false, true, "error"),
            (&transient, true, true, "error"),
        ] {
            assert_eq!(
                metrics.outcome(failed, errored),
                outcome,
                "{metrics:?} {failed} {errored}"
            );
            assert!(OUTCOMES.contains(&outcome));
        }
    }

    #[test]
    fn the_newest_records_age_is_now_less_its_commit() {
        let batch = BatchMetrics {
            published: 2,
            newest_published_at: Some(1_000),
            ..Default::default()
        };
        let m = batch.to_metrics(
            Metrics::new("N", FUNCTION),
            Duration::from_millis(3),
            false,
            false,
            1_250,
        );
        assert_eq!(m.get("NewestRecordAge"), Some(&[250.0][..]));
        assert_eq!(m.get("RecordsPublished"), Some(&[2.0][..]));
        assert_eq!(m.get("BatchDuration"), Some(&[3.0][..]));
        // Nothing published: no age (not a misleading 0).
        let empty = BatchMetrics::default().to_metrics(
            Metrics::new("N", FUNCTION),
            Duration::ZERO,
            false,
            false,
            1,
        );
        assert_eq!(empty.get("NewestRecordAge"), None);
        assert_eq!(empty.get("PoisonRecords"), Some(&[0.0][..]));
    }

    #[test]
    fn sequence_numbers_compare_by_value() {
        for (a, b, expected) in [
            ("100", "100", true),
            ("99", "100", true),
            ("100", "99", false),
            ("4000000000000000000001", "4000000000000000000002", true),
            ("4000000000000000000003", "4000000000000000000002", false),
        ] {
            assert_eq!(at_or_before(a, b), expected, "{a} {b}");
        }
    }
}
