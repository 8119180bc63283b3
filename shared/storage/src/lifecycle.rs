//! The lifecycle of a database: creating it at revision 0, deleting it (a
//! tombstone head item and a reclaim queue entry, written together), each
//! with or without recording the command's reply in the same write.

use std::time::Duration;

use aws_sdk_dynamodb::{
    config::http::HttpResponse,
    error::SdkError,
    operation::transact_write_items::TransactWriteItemsError,
    types::{Put, TransactWriteItem, Update},
};
use evidentsource_domain::{DatabaseName, Error};
use evidentsource_proto::{CommandResponse, Database, command_response};

use crate::{
    Store, StoreError,
    attempt::Sends,
    attr::{n, s},
    attribute,
    backoff::backoff,
    cancellation::{cancellation, classify_transaction, failed_check, retryable_conflict},
    error::{classify, fault},
    head::{HeadItem, HeadState},
    keys, now_millis,
    reply::{Replied, Reply, ReplySlot},
};

/// The operation name of a delete's commit, in errors.
const DELETE: &str = "TransactWriteItems (delete)";

impl Store {
    /// Creates a database at revision 0.
    pub async fn create_database(&self, name: &DatabaseName) -> Result<Database, StoreError> {
        let head = HeadItem::new(name.as_str(), new_incarnation(), now_millis());
        let put = self.create_put(&head)?;
        let sends = Sends::default();
        let request = self
            .client
            .put_item()
            .table_name(&self.config.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .customize()
            .interceptor(sends.clone())
            .send();
        match self.in_time("PutItem (create)", request).await? {
            Ok(_) => {
                // Revision 0, indexed up to 0: the first commit need not
                // read it.
                self.heads.remember(&head, Some(0));
                Ok(head.database())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // A request sent again after its response was lost finds
                // its own database.
                if sends.count() > 1
                    && self
                        .read_head(name.as_str())
                        .await?
                        .is_some_and(|h| h.incarnation == head.incarnation)
                {
                    return Ok(head.database());
                }
                Err(Error::already_exists(name.as_str()).into())
            }
            Err(e) => Err(classify("PutItem (create)", e)),
        }
    }

    /// [`Store::create_database`] recording the command's response in the
    /// same write (see [`crate::reply`]).
    pub async fn create_database_replying(
        &self,
        name: &DatabaseName,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        let now = now_millis();
        let head = HeadItem::new(name.as_str(), new_incarnation(), now);
        let reply = Reply::new(
            slot,
            Some(name.as_str()),
            &database_response(head.database()),
            now,
        );
        let request = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.create_put(&head)?)
                    .build(),
            )
            .transact_items(reply.put(&self.config.table_name, slot.ttl)?)
            .send();
        match self.in_time("TransactWriteItems (create)", request).await? {
            Ok(_) => {
                self.heads.remember(&head, Some(0));
                Ok(Replied::Recorded(reply))
            }
            Err(e) => match cancellation(&e) {
                Some(reasons) if failed_check(&reasons, 1) => {
                    self.earlier_reply(&slot.correlation_id).await
                }
                Some(reasons) if failed_check(&reasons, 0) => {
                    // The same command may have created it: DynamoDB need
                    // not report every failed condition.
                    match self.read_reply(&slot.correlation_id).await? {
                        Some(reply) => Ok(Replied::Earlier(reply)),
                        None => Err(Error::already_exists(name.as_str()).into()),
                    }
                }
                _ => Err(classify_transaction("TransactWriteItems (create)", e)),
            },
        }
    }

    /// The put of a new head item: the name must be free (never used, or
    /// its database deleted).
    fn create_put(&self, head: &HeadItem) -> Result<Put, StoreError> {
        let item = serde_dynamo::to_item(head).map_err(fault)?;
        Put::builder()
            .table_name(&self.config.table_name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #st = :deleted")
            .expression_attribute_names("#st", attribute::STATE)
            .expression_attribute_values(":deleted", s(HeadState::Deleted.as_str()))
            .build()
            .map_err(fault)
    }

    /// Deletes a database: from now on it is not found, and a new database
    /// of the same name starts afresh. Returns its final state.
    pub async fn delete_database(&self, name: &DatabaseName) -> Result<Database, StoreError> {
        let name = name.as_str();
        for attempt in 1..=self.config.max_attempts {
            let head = self.active_head(name).await?;
            let now = now_millis().max(head.revision_time);
            let e = match self.delete_attempt(name, &head, now, None).await? {
                Ok(()) => return Ok(head.database()),
                Err(e) => e,
            };
            match cancellation(&e) {
                Some(reasons) if retryable_conflict(&reasons, 0) => {
                    self.delete_backoff(name, attempt).await?;
                }
                _ => return Err(classify_transaction(DELETE, e)),
            }
        }
        Err(self.delete_kept_losing(name))
    }

    /// [`Store::delete_database`] recording the command's response in the
    /// same write (see [`crate::reply`]).
    pub async fn delete_database_replying(
        &self,
        name: &DatabaseName,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        let name = name.as_str();
        for attempt in 1..=self.config.max_attempts {
            let head = self.active_head(name).await?;
            let now = now_millis().max(head.revision_time);
            let response = database_response(head.database());
            let reply = Reply::new(slot, Some(name), &response, now);
            let e = match self
                .delete_attempt(name, &head, now, Some((&reply, slot)))
                .await?
            {
                Ok(()) => return Ok(Replied::Recorded(reply)),
                Err(e) => e,
            };
            match cancellation(&e) {
                // The reply's put (the third item) failed: a reply is
                // recorded for this command already.
                Some(reasons) if failed_check(&reasons, 2) => {
                    return self.earlier_reply(&slot.correlation_id).await;
                }
                Some(reasons) if retryable_conflict(&reasons, 0) => {
                    self.delete_backoff(name, attempt).await?;
                }
                _ => return Err(classify_transaction(DELETE, e)),
            }
        }
        Err(self.delete_kept_losing(name))
    }

    /// One attempt to delete database `name`, read as `head`, at `now`,
    /// with the reply to record (the third item), if any. `Ok(Err(_))` is
    /// the attempt's own failure, for the caller to read; on success the
    /// old incarnation's items are reclaimed (within the budget) before
    /// this returns.
    async fn delete_attempt(
        &self,
        name: &str,
        head: &HeadItem,
        now: i64,
        reply: Option<(&Reply, &ReplySlot)>,
    ) -> Result<Result<(), SdkError<TransactWriteItemsError, HttpResponse>>, StoreError> {
        let ttl = now / 1000 + self.config.tombstone_ttl.as_secs() as i64;
        let update = Update::builder()
            .table_name(&self.config.table_name)
            .key(attribute::PK, s(&head.pk))
            .key(attribute::SK, s(keys::HEAD_SK))
            .update_expression("SET #st = :deleted, deleted_at = :now, #ttl = :ttl")
            // Guarding the revision too: the final state we return is exact.
            .condition_expression("#st = :active AND incarnation = :inc AND #rev = :rev")
            .expression_attribute_names("#st", attribute::STATE)
            .expression_attribute_names("#ttl", attribute::TTL)
            .expression_attribute_names("#rev", attribute::REVISION)
            .expression_attribute_values(":deleted", s(HeadState::Deleted.as_str()))
            .expression_attribute_values(":active", s(HeadState::Active.as_str()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":ttl", n(ttl))
            .expression_attribute_values(":inc", s(&head.incarnation))
            .expression_attribute_values(":rev", n(head.revision))
            .build()
            .map_err(fault)?;
        // The reclaim queue entry is written with the tombstone, so that
        // the old items are never forgotten.
        let gc = Put::builder()
            .table_name(&self.config.table_name)
            .item(attribute::PK, s(keys::GC_PK))
            .item(attribute::SK, s(&keys::gc_sk(name, &head.incarnation)))
            .item(attribute::NAME, s(name))
            .item(attribute::INCARNATION, s(&head.incarnation))
            .item(attribute::DELETED_AT, n(now))
            .build()
            .map_err(fault)?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(gc).build());
        if let Some((reply, slot)) = reply {
            request = request.transact_items(reply.put(&self.config.table_name, slot.ttl)?);
        }
        let sends = Sends::default();
        let request = request.customize().interceptor(sends.clone()).send();
        if let Err(e) = self.in_time(DELETE, request).await? {
            // A request sent again after its response was lost
            // fails on its own tombstone.
            let ours = sends.count() > 1
                && self.read_head(name).await?.is_some_and(|h| {
                    !h.is_active() && h.incarnation == head.incarnation && h.deleted_at == Some(now)
                });
            if !ours {
                return Ok(Err(e));
            }
        }
        self.facts.forget(name, &head.incarnation);
        self.heads.forget(name);
        self.reclaim_after_delete(name, &head.incarnation).await;
        Ok(Ok(()))
    }

    /// Waits before the next attempt of a delete that lost a race.
    async fn delete_backoff(&self, name: &str, attempt: u32) -> Result<(), StoreError> {
        self.pause(backoff(attempt), Duration::ZERO, || {
            format!("delete of {name:?}: the database kept changing until the deadline")
        })
        .await
    }

    /// The error of a delete that lost every race.
    fn delete_kept_losing(&self, name: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "delete of {name:?}: the database kept changing for {} attempts",
            self.config.max_attempts
        ))
    }
}

fn database_response(database: Database) -> CommandResponse {
    CommandResponse {
        result: Some(command_response::Result::Database(database)),
    }
}

/// A random 64-bit incarnation id, in hex: short, because it is part of the
/// key of every chunk.
fn new_incarnation() -> String {
    format!("{:016x}", fastrand::u64(..))
}
