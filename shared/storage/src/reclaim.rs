//! Reclaiming a deleted database's items.
//!
//! A delete writes, in the same transaction as the tombstone, an entry in the
//! reclaim queue (`pk = gc`). The items of the dead incarnation (chunks and
//! idempotency records, each under one partition key) are then deleted in
//! batches: first by the delete itself within a small time budget, then by
//! [`Store::reclaim_pending`] (run on a schedule) until none are left, when
//! the queue entry goes too. The tombstone head item expires by TTL. The
//! incarnation's index items (and its index watermark) go once
//! `index_grace` has passed since the delete, and the queue entry only
//! after them.
//!
//! An entry that does not name a dead incarnation the way a delete writes
//! it (hand-written, from another release, corrupted) is skipped, counted
//! and logged with its key, and left in the queue for a person to look at:
//! reclaiming deletes items, so a guess could delete live data, and one
//! such entry must not hold up the others.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use evidentsource_domain::DatabaseName;
use evidentsource_table_schema::index as index_keys;
use tokio::time::Instant;

use crate::{
    Store, StoreError,
    attr::{get_u64, s},
    attribute,
    batch::BATCH_ITEMS,
    error::{classify, fault},
    keys,
};

/// Queue entries read per query.
const QUEUE_PAGE: i32 = 100;

/// What a reclaim run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Dead incarnations fully reclaimed (their queue entry removed).
    pub completed: usize,
    /// Items deleted.
    pub items_deleted: usize,
    /// Queue entries skipped as malformed (left in the queue).
    pub malformed: usize,
    /// Whether the queue is empty now.
    pub queue_empty: bool,
}

/// The database and incarnation a queue entry names, if it is one a delete
/// writes: a valid database name, an incarnation that keeps to its own key
/// space (no `#`), and the entry's own key derived from both.
pub(crate) fn queue_entry(
    item: &HashMap<String, AttributeValue>,
) -> Result<(String, String), String> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.as_str()),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    };
    let sk = text(attribute::SK)?;
    let name = text(attribute::NAME)?;
    let incarnation = text(attribute::INCARNATION)?;
    DatabaseName::parse(name)
        .map_err(|e| format!("name is not a database name ({})", e.message))?;
    if incarnation.is_empty() || incarnation.contains('#') {
        return Err(format!("incarnation {incarnation:?} is not one"));
    }
    if sk != keys::gc_sk(name, incarnation) {
        return Err(format!("the key {sk:?} is not {name}#{incarnation}"));
    }
    Ok((name.to_owned(), incarnation.to_owned()))
}

impl Store {
    /// Works through the reclaim queue for at most `budget`.
    pub async fn reclaim_pending(&self, budget: Duration) -> Result<ReclaimReport, StoreError> {
        let deadline = Instant::now() + budget;
        let mut report = ReclaimReport::default();
        let mut entries = 0;
        let mut start = None;
        loop {
            // Page on: malformed entries stay, and must not hide the rest.
            let page = self
                .client
                .query()
                .table_name(&self.config.table_name)
                .key_condition_expression("pk = :gc")
                .expression_attribute_values(":gc", s(keys::GC_PK))
                .set_exclusive_start_key(start.take())
                .limit(QUEUE_PAGE)
                .send()
                .await
                .map_err(|e| classify("Query (reclaim queue)", e))?;
            for entry in page.items() {
                if Instant::now() >= deadline {
                    return Ok(report);
                }
                entries += 1;
                let (name, incarnation) = match queue_entry(entry) {
                    Ok(named) => named,
                    Err(problem) => {
                        report.malformed += 1;
                        let key = match entry.get(attribute::SK) {
                            Some(AttributeValue::S(sk)) => sk.as_str(),
                            _ => "?",
                        };
                        tracing::warn!(key, problem, "reclaim queue entry skipped");
                        continue;
                    }
                };
                // A missing or unreadable time: long ago.
                let deleted_at = get_u64(entry, attribute::DELETED_AT).unwrap_or(0);
                let index_too = crate::now_millis().saturating_sub(deleted_at as i64)
                    >= self.config.index_grace.as_millis() as i64;
                let (deleted, done) = self
                    .reclaim_incarnation(&name, &incarnation, index_too, deadline)
                    .await?;
                report.items_deleted += deleted;
                if done {
                    report.completed += 1;
                }
            }
            match page.last_evaluated_key {
                Some(key) if Instant::now() < deadline => start = Some(key),
                Some(_) => return Ok(report),
                None => break,
            }
        }
        report.queue_empty = report.completed == entries;
        Ok(report)
    }

    /// Removes the deleted incarnation's items for up to `reclaim_budget`
    /// (never past the deadline); the rest is left to the reclaim queue.
    pub(crate) async fn reclaim_after_delete(&self, name: &str, incarnation: &str) {
        let mut until = tokio::time::Instant::now() + self.config.reclaim_budget;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline.instant());
        }
        let index_too = self.config.index_grace.is_zero();
        let reclaim = self.reclaim_incarnation(name, incarnation, index_too, until);
        let error = match tokio::time::timeout_at(until, reclaim).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "out of time".to_owned(),
        };
        tracing::warn!(database = name, error, "reclaim after delete deferred");
    }

    /// Deletes the items of one dead incarnation until done or `deadline`,
    /// its index items too when `index_too`. Returns the items deleted and
    /// whether the incarnation is gone (its queue entry then goes as well).
    pub(crate) async fn reclaim_incarnation(
        &self,
        name: &str,
        incarnation: &str,
        index_too: bool,
        deadline: Instant,
    ) -> Result<(usize, bool), StoreError> {
        let mut deleted = 0;
        let mut partitions = vec![
            keys::events_pk(name, incarnation),
            keys::tx_pk(name, incarnation),
        ];
        if index_too {
            partitions.extend(index_keys::index_pks(name, incarnation));
        }
        for pk in partitions {
            loop {
                if Instant::now() >= deadline {
                    return Ok((deleted, false));
                }
                let page = self
                    .client
                    .query()
                    .table_name(&self.config.table_name)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&pk))
                    .projection_expression("pk, sk")
                    .limit(100)
                    .send()
                    .await
                    .map_err(|e| classify("Query (reclaim)", e))?;
                if page.items().is_empty() {
                    break;
                }
                for batch in page.items().chunks(BATCH_ITEMS) {
                    deleted += batch.len();
                    self.delete_batch(batch).await?;
                }
            }
        }
        if !index_too {
            return Ok((deleted, false));
        }
        self.client
            .delete_item()
            .table_name(&self.config.table_name)
            .key(attribute::PK, s(&keys::head_pk(name)))
            .key(attribute::SK, s(&index_keys::watermark_sk(incarnation)))
            .send()
            .await
            .map_err(|e| classify("DeleteItem (index watermark)", e))?;
        self.client
            .delete_item()
            .table_name(&self.config.table_name)
            .key(attribute::PK, s(keys::GC_PK))
            .key(attribute::SK, s(&keys::gc_sk(name, incarnation)))
            .send()
            .await
            .map_err(|e| classify("DeleteItem (reclaim queue)", e))?;
        Ok((deleted, true))
    }

    async fn delete_batch(
        &self,
        keys: &[HashMap<String, AttributeValue>],
    ) -> Result<(), StoreError> {
        let requests: Vec<WriteRequest> = keys
            .iter()
            .map(|k| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(k.clone()))
                    .build()
                    .map_err(fault)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.write_batch("BatchWriteItem (reclaim)", requests).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(attributes: &[(&str, Option<&str>)]) -> HashMap<String, AttributeValue> {
        attributes
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Some(v) => AttributeValue::S(v.to_string()),
                    None => AttributeValue::N("1".into()),
                };
                (k.to_string(), value)
            })
            .collect()
    }

    #[test]
    fn only_entries_as_a_delete_writes_them_name_an_incarnation() {
        let good = [
            ("sk", Some("orders#00ff")),
            ("name", Some("orders")),
            ("incarnation", Some("00ff")),
        ];
        assert_eq!(
            queue_entry(&item(&good)),
            Ok(("orders".into(), "00ff".into()))
        );
        // (attribute changed, its new value (None: a number), the words of
        // the problem).
        let table: [(&str, Option<Option<&str>>, &str); 9] = [
            ("name", None, "name is missing"),
            ("incarnation", None, "incarnation is missing"),
            ("sk", None, "sk is missing"),
            ("name", Some(None), "name is not a string"),
            ("incarnation", Some(None), "incarnation is not a string"),
            ("name", Some(Some("a#b")), "name"),
            ("name", Some(Some("")), "name"),
            ("incarnation", Some(Some("")), "is not one"),
            ("incarnation", Some(Some("00#ff")), "is not one"),
        ];
        for (attribute, value, words) in table {
            let mut entry = item(&good);
            match value {
                None => {
                    entry.remove(attribute);
                }
                Some(v) => {
                    entry.extend(item(&[(attribute, v)]));
                }
            }
            let problem = queue_entry(&entry).unwrap_err();
            assert!(problem.contains(words), "{attribute} {value:?}: {problem}");
        }
        let mut other_key = item(&good);
        other_key.extend(item(&[("sk", Some("orders#00fe"))]));
        assert!(
            queue_entry(&other_key)
                .unwrap_err()
                .contains("is not orders#00ff")
        );
    }
}
