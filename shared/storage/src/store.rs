use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeValue, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
        TransactWriteItem, Update,
    },
};
use evidentsource_domain::{
    AppendCondition, ConditionCheck, DatabaseName, Error, Limits, OwnedFacts, Transaction, evaluate,
};
use evidentsource_proto::{
    BatchSummary, CommandResponse, Database, cloudevents::CloudEvent, command_response,
};
use sha2::{Digest, Sha256};

use crate::{
    StoreError,
    attempt::{
        BATCH_ATTR, Sends, cancellation, classify_transaction, failed_check, retryable_conflict,
        returned_head,
    },
    attr::{get_s, get_u64, n, put_new, s},
    chunk::{self, PackedChunk, pack_events},
    deadline::Deadline,
    error::{classify, fault},
    facts::{FactsCache, MAX_TRIPLES},
    head::HeadItem,
    keys, now_millis,
    reply::{Replied, Reply, ReplySlot},
    size::{check_transaction_size, item_size, write_units},
    timestamp_from_millis,
};

/// Settings of the storage layer.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub table_name: String,
    pub limits: Limits,
    /// Commit attempts when other writers keep winning the race.
    pub max_attempts: u32,
    /// How long a deleted database's tombstone head item lives (DynamoDB TTL).
    pub tombstone_ttl: Duration,
    /// Time a delete spends reclaiming the old items before answering; the
    /// rest is left to [`Store::reclaim_pending`].
    pub reclaim_budget: Duration,
    /// Most events one `read_events` call returns.
    pub max_read_events: u64,
}

impl StoreConfig {
    pub fn new(table_name: impl Into<String>) -> Self {
        StoreConfig {
            table_name: table_name.into(),
            limits: Limits::default(),
            max_attempts: 200,
            tombstone_ttl: Duration::from_secs(24 * 3600),
            reclaim_budget: Duration::from_secs(2),
            max_read_events: 1000,
        }
    }
}

/// An event as stored, with the revision it took.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub revision: u64,
    pub event: CloudEvent,
}

/// What one transaction cost, from the items actually sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitPlanSummary {
    /// Items in the `TransactWriteItems` that committed.
    pub items: usize,
    /// Chunk items among them.
    pub chunks: usize,
    /// Write units by DynamoDB's item-size rules (transactional: 2 per KB).
    pub write_units: u64,
    /// Write round trips (commit attempts sent).
    pub write_round_trips: u32,
    /// Read round trips (head, idempotency record, chunk queries).
    pub read_round_trips: u32,
    /// What DynamoDB reported, when it reports consumed capacity.
    pub reported_write_units: Option<f64>,
}

/// The storage layer over one DynamoDB table. Cheap to share: build it once
/// per cold start, and bind it to each invocation's deadline with
/// [`Store::with_deadline`].
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) config: StoreConfig,
    facts: Arc<FactsCache>,
    /// Unbound (`None`): calls are limited by the SDK's timeouts and
    /// `max_attempts` only.
    pub(crate) deadline: Option<Deadline>,
}

enum Evaluation {
    Checked(ConditionCheck),
    /// This process has already seen a newer revision than the head read:
    /// the head is stale.
    Stale,
}

impl Store {
    pub fn new(client: Client, config: StoreConfig) -> Self {
        Store {
            client,
            config,
            facts: Arc::default(),
            deadline: None,
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

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
            Ok(_) => Ok(head.database()),
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
            Ok(_) => Ok(Replied::Recorded(reply)),
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
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":deleted", s("deleted"))
            .build()
            .map_err(fault)
    }

    /// The latest state of a database.
    pub async fn get_database(&self, name: &DatabaseName) -> Result<Database, StoreError> {
        Ok(self.active_head(name.as_str()).await?.database())
    }

    /// Deletes a database: from now on it is not found, and a new database
    /// of the same name starts afresh. Returns its final state.
    pub async fn delete_database(&self, name: &DatabaseName) -> Result<Database, StoreError> {
        match self.delete_inner(name, None).await? {
            Deleted::Final(db) => Ok(db),
            Deleted::Replied(replied) => {
                replied
                    .into_reply()
                    .decode_response()
                    .and_then(|r| match r.result {
                        Some(command_response::Result::Database(db)) => Ok(db),
                        _ => Err(StoreError::Fault("delete recorded no database".into())),
                    })
            }
        }
    }

    /// [`Store::delete_database`] recording the command's response in the
    /// same write (see [`crate::reply`]).
    pub async fn delete_database_replying(
        &self,
        name: &DatabaseName,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        match self.delete_inner(name, Some(slot)).await? {
            Deleted::Replied(replied) => Ok(replied),
            Deleted::Final(_) => Err(StoreError::Fault("delete recorded no reply".into())),
        }
    }

    async fn delete_inner(
        &self,
        name: &DatabaseName,
        slot: Option<&ReplySlot>,
    ) -> Result<Deleted, StoreError> {
        let name = name.as_str();
        for attempt in 1..=self.config.max_attempts {
            let head = self.active_head(name).await?;
            let now = now_millis().max(head.revision_time);
            let ttl = now / 1000 + self.config.tombstone_ttl.as_secs() as i64;
            let update = Update::builder()
                .table_name(&self.config.table_name)
                .key("pk", s(&head.pk))
                .key("sk", s(keys::HEAD_SK))
                .update_expression("SET #st = :deleted, deleted_at = :now, #ttl = :ttl")
                // Guarding the revision too: the final state we return is exact.
                .condition_expression("#st = :active AND incarnation = :inc AND #rev = :rev")
                .expression_attribute_names("#st", "state")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#rev", "revision")
                .expression_attribute_values(":deleted", s("deleted"))
                .expression_attribute_values(":active", s("active"))
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
                .item("pk", s(keys::GC_PK))
                .item("sk", s(&keys::gc_sk(name, &head.incarnation)))
                .item("name", s(name))
                .item("incarnation", s(&head.incarnation))
                .item("deleted_at", n(now))
                .build()
                .map_err(fault)?;
            let reply = slot.map(|slot| {
                let response = database_response(head.database());
                (Reply::new(slot, Some(name), &response, now), slot)
            });
            let mut request = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .transact_items(TransactWriteItem::builder().put(gc).build());
            if let Some((reply, slot)) = &reply {
                request = request.transact_items(reply.put(&self.config.table_name, slot.ttl)?);
            }
            let sends = Sends::default();
            let request = request.customize().interceptor(sends.clone()).send();
            let failure = match self.in_time("TransactWriteItems (delete)", request).await? {
                Ok(_) => None,
                Err(e) => {
                    // A request sent again after its response was lost
                    // fails on its own tombstone.
                    let ours = sends.count() > 1
                        && self.read_head(name).await?.is_some_and(|h| {
                            !h.is_active()
                                && h.incarnation == head.incarnation
                                && h.deleted_at == Some(now)
                        });
                    (!ours).then_some(e)
                }
            };
            let Some(e) = failure else {
                self.facts.forget(name, &head.incarnation);
                self.reclaim_after_delete(name, &head.incarnation).await;
                return Ok(match reply {
                    Some((reply, _)) => Deleted::Replied(Replied::Recorded(reply)),
                    None => Deleted::Final(head.database()),
                });
            };
            match cancellation(&e) {
                Some(reasons) if slot.is_some() && failed_check(&reasons, 2) => {
                    let id = slot.map(|s| s.correlation_id.as_str()).unwrap_or_default();
                    return self.earlier_reply(id).await.map(Deleted::Replied);
                }
                Some(reasons) if retryable_conflict(&reasons, 0) => {
                    self.pause(backoff(attempt), Duration::ZERO, || {
                        format!("delete of {name:?}: the database kept changing until the deadline")
                    })
                    .await?;
                }
                _ => return Err(classify_transaction("TransactWriteItems (delete)", e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "delete of {name:?}: the database kept changing for {} attempts",
            self.config.max_attempts
        )))
    }

    /// Removes the deleted incarnation's items for up to `reclaim_budget`
    /// (never past the deadline); the rest is left to the reclaim queue.
    async fn reclaim_after_delete(&self, name: &str, incarnation: &str) {
        let mut until = tokio::time::Instant::now() + self.config.reclaim_budget;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline.instant());
        }
        let reclaim = self.reclaim_incarnation(name, incarnation, until);
        let error = match tokio::time::timeout_at(until, reclaim).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "out of time".to_owned(),
        };
        tracing::warn!(database = name, error, "reclaim after delete deferred");
    }

    /// Commits a transaction; see `docs/storage.md` for the protocol.
    pub async fn transact(&self, tx: &Transaction) -> Result<BatchSummary, StoreError> {
        self.transact_measured(tx).await.map(|(summary, _)| summary)
    }

    /// [`Store::transact`], also reporting what the commit cost.
    pub async fn transact_measured(
        &self,
        tx: &Transaction,
    ) -> Result<(BatchSummary, CommitPlanSummary), StoreError> {
        self.transact_inner(tx, None)
            .await
            .map(|(summary, cost, _)| (summary, cost))
    }

    /// [`Store::transact`] recording the command's response in the same
    /// write (see [`crate::reply`]). A transaction id that committed before
    /// gets its first result, recorded as this command's response.
    pub async fn transact_replying(
        &self,
        tx: &Transaction,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        let (summary, _, replied) = self.transact_inner(tx, Some(slot)).await?;
        match replied {
            Some(replied) => Ok(replied),
            None => {
                let response = batch_response(summary);
                self.record_reply(slot, Some(tx.database.as_str()), &response)
                    .await
            }
        }
    }

    /// Commits; with a slot, the response is written with the commit, and
    /// `None` in the result means the commit was an earlier one (same
    /// transaction id) whose response is not recorded yet.
    async fn transact_inner(
        &self,
        tx: &Transaction,
        slot: Option<&ReplySlot>,
    ) -> Result<(BatchSummary, CommitPlanSummary, Option<Replied>), StoreError> {
        let name = tx.database.as_str();
        // One batch id for every attempt of this call: it is how a retried
        // request recognises its own commit (see `crate::attempt`).
        let batch_id = uuid::Uuid::new_v4().to_string();
        let fingerprint = fingerprint(tx);
        let chunks = pack_events(&tx.events);
        let count = tx.events.len() as u64;
        let mut cost = CommitPlanSummary::default();
        // The revision of the head after which the transaction id was found
        // unused: a later head may hold a commit of the same id.
        let mut id_unused_at: Option<u64> = None;
        // The head a cancelled attempt returned, saving a re-read.
        let mut known_head: Option<HeadItem> = None;
        // The last commit round trip: the least time an attempt needs.
        let mut round_trip = Duration::ZERO;
        let busy = || {
            format!("transaction on {name:?}: other writers kept winning until the deadline; retry")
        };

        for attempt in 1..=self.config.max_attempts {
            let head = match known_head.take() {
                Some(head) => head,
                None => {
                    cost.read_round_trips += 1;
                    let read = tokio::time::Instant::now();
                    let head = self.active_head(name).await?;
                    // Until a commit is measured, a read is the estimate.
                    round_trip = round_trip.max(read.elapsed());
                    head
                }
            };

            if let (Some(id), None) = (&tx.transaction_id, id_unused_at) {
                cost.read_round_trips += 1;
                if let Some(summary) = self.read_tx_record(&head, id, &fingerprint).await? {
                    return Ok((summary, cost, None));
                }
                id_unused_at = Some(head.revision);
            }

            if !tx.conditions.is_empty() {
                match self.evaluate(&head, &tx.conditions, &mut cost).await? {
                    Evaluation::Stale => {
                        self.pause(backoff(attempt), round_trip, busy).await?;
                        continue;
                    }
                    Evaluation::Checked(check) => {
                        if let Err(failed) = check.result(&tx.conditions) {
                            // The head moved since the id was found unused:
                            // a concurrent request with the same id may have
                            // committed, and its commit fails our conditions.
                            // It is our result, not a failed precondition.
                            if let (Some(id), Some(at)) = (&tx.transaction_id, id_unused_at)
                                && head.revision > at
                            {
                                cost.read_round_trips += 1;
                                if let Some(summary) =
                                    self.read_tx_record(&head, id, &fingerprint).await?
                                {
                                    return Ok((summary, cost, None));
                                }
                            }
                            return Err(failed.into());
                        }
                    }
                }
            }

            let basis = head.revision;
            let revision = basis + count;
            let recorded = now_millis().max(head.revision_time);
            let summary = BatchSummary {
                id: batch_id.clone(),
                database: name.to_owned(),
                basis,
                revision,
                event_count: count as u32,
                recorded_time: Some(timestamp_from_millis(recorded)),
            };
            let mut plan =
                self.commit_items(&head, tx, &chunks, &summary, recorded, &fingerprint)?;
            let tx_index = plan.items.len() - 1;
            let reply = match slot {
                Some(slot) => {
                    let response = batch_response(summary.clone());
                    let reply = Reply::new(slot, Some(name), &response, recorded);
                    plan.bytes += item_size(&reply.to_item(slot.ttl));
                    plan.items
                        .push(reply.put(&self.config.table_name, slot.ttl)?);
                    Some(reply)
                }
                None => None,
            };
            let reply_index = plan.items.len() - 1;
            check_transaction_size(plan.bytes)?;
            // An attempt cut off at the deadline leaves its outcome unknown:
            // rather not start one that cannot finish.
            self.pause(Duration::ZERO, round_trip, busy).await?;
            cost.write_round_trips += 1;
            let sends = Sends::default();
            let sent = tokio::time::Instant::now();
            let request = self
                .client
                .transact_write_items()
                .set_transact_items(Some(plan.items))
                // Makes the SDK's retries of this request idempotent in
                // DynamoDB; `crate::attempt` covers servers without it.
                .client_request_token(uuid::Uuid::new_v4().to_string())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .customize()
                .interceptor(sends.clone())
                .send();
            let result = self
                .in_time("TransactWriteItems (transact)", request)
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "transaction on {name:?}: the commit was not answered before the \
                         deadline and may have happened; retry with the same transaction_id"
                    ))
                })?;
            round_trip = sent.elapsed() / sends.count().max(1);
            let committed = |cost: &mut CommitPlanSummary| {
                cost.items = 1 + chunks.len() + usize::from(tx.transaction_id.is_some());
                cost.chunks = chunks.len();
                cost.write_units = plan.units;
            };
            let e = match result {
                Ok(out) => {
                    committed(&mut cost);
                    cost.reported_write_units = out
                        .consumed_capacity()
                        .iter()
                        .filter_map(|c| c.capacity_units().or(c.write_capacity_units()))
                        .reduce(|a, b| a + b);
                    self.fold_in_own_events(&head, tx, basis).await;
                    return Ok((summary, cost, reply.map(Replied::Recorded)));
                }
                Err(e) => e,
            };
            let returned = returned_head(&e);
            // Sent more than once: an earlier send may have committed, and
            // this failure be about our own commit.
            if sends.count() > 1
                && self
                    .committed(returned.as_ref(), &head.incarnation, &summary)
                    .await?
            {
                committed(&mut cost);
                self.fold_in_own_events(&head, tx, basis).await;
                return Ok((summary, cost, reply.map(Replied::Recorded)));
            }
            match cancellation(&e) {
                Some(reasons) if reply.is_some() && failed_check(&reasons, reply_index) => {
                    // This command was executed concurrently.
                    let id = slot.map(|s| s.correlation_id.as_str()).unwrap_or_default();
                    let earlier = self.earlier_reply(id).await?;
                    return Ok((summary, cost, Some(earlier)));
                }
                Some(reasons)
                    if tx.transaction_id.is_some() && failed_check(&reasons, tx_index) =>
                {
                    // The same transaction id committed concurrently.
                    let id = tx.transaction_id.as_deref().unwrap_or_default();
                    let head = self.active_head(name).await?;
                    return match self.read_tx_record(&head, id, &fingerprint).await? {
                        Some(summary) => Ok((summary, cost, None)),
                        None => Err(StoreError::Unavailable(format!(
                            "transaction {id:?} reported committed but its record is not readable yet"
                        ))),
                    };
                }
                Some(reasons) if retryable_conflict(&reasons, 0) => {
                    // Another writer committed first: go again from the
                    // head it left (same incarnation), or re-read.
                    known_head =
                        returned.filter(|h| h.is_active() && h.incarnation == head.incarnation);
                    let pause = contention_backoff(attempt, round_trip);
                    self.pause(pause, round_trip, busy).await?;
                }
                _ => return Err(classify_transaction("TransactWriteItems (transact)", e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "transaction on {name:?}: other writers won the race {} times; retry",
            self.config.max_attempts
        )))
    }

    /// The items of one commit, their write units and size.
    fn commit_items(
        &self,
        head: &HeadItem,
        tx: &Transaction,
        chunks: &[PackedChunk],
        summary: &BatchSummary,
        recorded: i64,
        fingerprint: &[u8],
    ) -> Result<CommitPlan, StoreError> {
        let table = &self.config.table_name;
        let mut items = Vec::with_capacity(chunks.len() + 2);

        let mut new_head = head.clone();
        new_head.basis = summary.basis;
        new_head.revision = summary.revision;
        new_head.revision_time = recorded;
        new_head.batch_id = Some(summary.id.clone());
        let head_size = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(&new_head)
            .map(|i| item_size(&i))
            .unwrap_or(1024);
        let mut units = write_units(head_size, true);
        let mut bytes = head_size;
        let update = Update::builder()
            .table_name(table)
            .key("pk", s(&head.pk))
            .key("sk", s(keys::HEAD_SK))
            .update_expression("SET #rev = :rev, basis = :basis, revision_time = :t, batch_id = :b")
            .condition_expression("#st = :active AND incarnation = :inc AND #rev = :basis")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#rev", "revision")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":rev", n(summary.revision))
            .expression_attribute_values(":basis", n(summary.basis))
            .expression_attribute_values(":t", n(recorded))
            .expression_attribute_values(":b", s(&summary.id))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":inc", s(&head.incarnation))
            .build()
            .map_err(fault)?;
        items.push(TransactWriteItem::builder().update(update).build());

        let events_pk = keys::events_pk(&head.name, &head.incarnation);
        for c in chunks {
            let first = summary.basis + 1 + c.offset as u64;
            let mut item: HashMap<String, AttributeValue> = [
                ("pk".to_string(), s(&events_pk)),
                ("sk".to_string(), s(&keys::chunk_sk(first))),
                ("n".to_string(), n(c.count)),
                ("d".to_string(), AttributeValue::B(c.payload.clone().into())),
            ]
            .into();
            if c.offset == 0 {
                // Whose commit took basis + 1: the head's batch id is
                // overwritten by the next commit, this is not.
                item.insert(BATCH_ATTR.to_string(), s(&summary.id));
            }
            let size = item_size(&item);
            units += write_units(size, true);
            bytes += size;
            items.push(put_new(table, item)?);
        }

        if let Some(id) = &tx.transaction_id {
            let item: HashMap<String, AttributeValue> = [
                (
                    "pk".to_string(),
                    s(&keys::tx_pk(&head.name, &head.incarnation)),
                ),
                ("sk".to_string(), s(id)),
                ("batch_id".to_string(), s(&summary.id)),
                ("basis".to_string(), n(summary.basis)),
                ("revision".to_string(), n(summary.revision)),
                ("recorded_time".to_string(), n(recorded)),
                (
                    "fp".to_string(),
                    AttributeValue::B(fingerprint.to_vec().into()),
                ),
            ]
            .into();
            let size = item_size(&item);
            units += write_units(size, true);
            bytes += size;
            items.push(put_new(table, item)?);
        }
        Ok(CommitPlan {
            items,
            units,
            bytes,
        })
    }

    /// The result of an earlier commit with this transaction id, if any.
    async fn read_tx_record(
        &self,
        head: &HeadItem,
        id: &str,
        fingerprint: &[u8],
    ) -> Result<Option<BatchSummary>, StoreError> {
        let out = self
            .in_time(
                "GetItem (transaction id)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key("pk", s(&keys::tx_pk(&head.name, &head.incarnation)))
                    .key("sk", s(id))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (transaction id)", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let stored_fp = match item.get("fp") {
            Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
            _ => {
                return Err(StoreError::Fault(format!(
                    "transaction record {id:?} has no fingerprint"
                )));
            }
        };
        if stored_fp != fingerprint {
            return Err(Error::invalid_argument(
                "transaction_id",
                format!("{id:?} was already used for a different transaction"),
            )
            .into());
        }
        let basis = get_u64(&item, "basis")?;
        let revision = get_u64(&item, "revision")?;
        Ok(Some(BatchSummary {
            id: get_s(&item, "batch_id")?,
            database: head.name.clone(),
            basis,
            revision,
            event_count: revision.saturating_sub(basis) as u32,
            recorded_time: Some(timestamp_from_millis(
                get_u64(&item, "recorded_time")? as i64
            )),
        }))
    }

    /// Evaluates conditions as of the head's revision, reading only the
    /// chunks this process has not folded into its condition index yet.
    async fn evaluate(
        &self,
        head: &HeadItem,
        conditions: &[AppendCondition],
        cost: &mut CommitPlanSummary,
    ) -> Result<Evaluation, StoreError> {
        let entry = self.facts.entry(&head.name, &head.incarnation);
        let mut facts = entry.lock().await;
        if facts.scanned_to > head.revision {
            return Ok(Evaluation::Stale);
        }
        if facts.scanned_to < head.revision {
            let from = facts.scanned_to + 1;
            let (chunks, round_trips) = self.query_chunks(head, from, head.revision).await?;
            cost.read_round_trips += round_trips;
            for (first, events) in chunks {
                for (i, event) in events.iter().enumerate() {
                    let f = OwnedFacts::of(event).ok_or_else(|| {
                        StoreError::Fault(format!(
                            "stored event {} has no stream",
                            first + i as u64
                        ))
                    })?;
                    facts.add(f, first + i as u64);
                }
            }
            facts.scanned_to = head.revision;
        }
        let check = evaluate(
            conditions,
            facts.highest.iter().map(|(f, r)| (*r, f.as_facts())),
        );
        if facts.highest.len() > MAX_TRIPLES {
            drop(facts);
            self.facts.forget(&head.name, &head.incarnation);
        }
        Ok(Evaluation::Checked(check))
    }

    /// Keeps the condition index warm with our own commit, if nothing else
    /// got in between.
    async fn fold_in_own_events(&self, head: &HeadItem, tx: &Transaction, basis: u64) {
        let entry = self.facts.entry(&head.name, &head.incarnation);
        let mut facts = entry.lock().await;
        if facts.scanned_to == basis {
            for (i, f) in tx.facts.iter().enumerate() {
                facts.add(f.clone(), basis + 1 + i as u64);
            }
            facts.scanned_to = basis + tx.events.len() as u64;
        }
    }

    /// The chunks holding revisions `from..=to` (whole chunks; the first may
    /// start before `from`), with the number of query round trips.
    async fn query_chunks(
        &self,
        head: &HeadItem,
        from: u64,
        to: u64,
    ) -> Result<(Vec<(u64, Vec<CloudEvent>)>, u32), StoreError> {
        let pk = keys::events_pk(&head.name, &head.incarnation);
        let mut round_trips = 0;
        // The chunk holding `from` starts at or before it.
        let first = self
            .in_time(
                "Query (first chunk)",
                self.client
                    .query()
                    .table_name(&self.config.table_name)
                    .key_condition_expression("pk = :pk AND sk <= :from")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":from", s(&keys::chunk_sk(from)))
                    .scan_index_forward(false)
                    .limit(1)
                    .projection_expression("sk")
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("Query (first chunk)", e))?;
        round_trips += 1;
        let start = first
            .items()
            .first()
            .and_then(|i| i.get("sk"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| keys::chunk_sk(from));

        let mut chunks = Vec::new();
        let mut exclusive_start = None;
        loop {
            let page = self
                .in_time(
                    "Query (chunks)",
                    self.client
                        .query()
                        .table_name(&self.config.table_name)
                        .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":a", s(&start))
                        .expression_attribute_values(":b", s(&keys::chunk_sk(to)))
                        .consistent_read(true)
                        .set_exclusive_start_key(exclusive_start)
                        .send(),
                )
                .await?
                .map_err(|e| classify("Query (chunks)", e))?;
            round_trips += 1;
            for item in page.items() {
                let sk = get_s(item, "sk")?;
                let first: u64 = sk
                    .parse()
                    .map_err(|_| StoreError::Fault(format!("chunk key {sk:?}")))?;
                let count = get_u64(item, "n")? as usize;
                let payload = match item.get("d") {
                    Some(AttributeValue::B(b)) => b.as_ref(),
                    _ => return Err(StoreError::Fault(format!("chunk {sk} has no data"))),
                };
                let events = chunk::unpack(payload, count)
                    .map_err(|e| StoreError::Fault(format!("chunk {sk} of {pk}: {e}")))?;
                chunks.push((first, events));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => exclusive_start = Some(key),
                _ => break,
            }
        }
        Ok((chunks, round_trips))
    }

    /// The events of revisions `from..=to`, in order. `to` beyond the latest
    /// revision is clamped to it, and at most `max_read_events` are returned.
    pub async fn read_events(
        &self,
        name: &DatabaseName,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        if from == 0 {
            return Err(Error::invalid_argument("from", "event revisions start at 1").into());
        }
        if to < from {
            return Err(
                Error::invalid_argument("to", format!("{to} is before from ({from})")).into(),
            );
        }
        let head = self.active_head(name.as_str()).await?;
        let to = to
            .min(head.revision)
            .min(from.saturating_add(self.config.max_read_events - 1));
        if from > to {
            return Ok(Vec::new());
        }
        let (chunks, _) = self.query_chunks(&head, from, to).await?;
        let mut events = Vec::with_capacity((to - from + 1) as usize);
        for (first, chunk) in chunks {
            for (i, event) in chunk.into_iter().enumerate() {
                let revision = first + i as u64;
                if (from..=to).contains(&revision) {
                    events.push(StoredEvent { revision, event });
                }
            }
        }
        if events.len() as u64 != to - from + 1 {
            return Err(StoreError::Fault(format!(
                "revisions {from}..={to} of {:?}: found {} events",
                head.name,
                events.len()
            )));
        }
        Ok(events)
    }

    /// The head item, if the database exists (not deleted).
    pub(crate) async fn active_head(&self, name: &str) -> Result<HeadItem, StoreError> {
        match self.read_head(name).await? {
            Some(head) if head.is_active() => Ok(head),
            _ => Err(Error::not_found(name).into()),
        }
    }

    /// The head item as stored (also a tombstone), strongly consistent.
    pub async fn read_head(&self, name: &str) -> Result<Option<HeadItem>, StoreError> {
        let out = self
            .in_time(
                "GetItem (head)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key("pk", s(&keys::head_pk(name)))
                    .key("sk", s(keys::HEAD_SK))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (head)", e))?;
        out.item
            .map(|item| HeadItem::from_item(item).map_err(StoreError::Fault))
            .transpose()
    }
}

/// The items of one commit attempt.
struct CommitPlan {
    items: Vec<TransactWriteItem>,
    /// Write units by DynamoDB's item-size rules.
    units: u64,
    /// Size by the same rules: what counts against the transaction limit.
    bytes: usize,
}

enum Deleted {
    Final(Database),
    Replied(Replied),
}

fn database_response(database: Database) -> CommandResponse {
    CommandResponse {
        result: Some(command_response::Result::Database(database)),
    }
}

fn batch_response(summary: BatchSummary) -> CommandResponse {
    CommandResponse {
        result: Some(command_response::Result::BatchSummary(summary)),
    }
}

/// A random 64-bit incarnation id, in hex: short, because it is part of the
/// key of every chunk.
fn new_incarnation() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Identifies a transaction's content, to refuse a transaction id reused
/// for a different transaction. Map fields encode deterministically.
fn fingerprint(tx: &Transaction) -> Vec<u8> {
    use prost::Message;
    let mut h = Sha256::new();
    for e in &tx.events {
        h.update((e.encoded_len() as u64).to_le_bytes());
        h.update(e.encode_to_vec());
    }
    for c in &tx.conditions {
        let p = c.to_proto();
        h.update((p.encoded_len() as u64).to_le_bytes());
        h.update(p.encode_to_vec());
    }
    h.finalize()[..16].to_vec()
}

/// Full-jitter exponential backoff: 0..min(2^attempt, 64) ms.
fn backoff(attempt: u32) -> Duration {
    let cap = 1u64 << attempt.min(6);
    Duration::from_micros(fastrand::u64(0..cap * 1000))
}

/// Backoff after losing the race for the head item, in units of the commit
/// round trip just measured: full jitter over 2^attempt round trips, at most
/// 64. Losing means someone else just committed; the losers' retries must
/// spread out over about as many round trips as there are writers, or they
/// keep colliding and their wasted attempts crowd out the winner's.
fn contention_backoff(attempt: u32, round_trip: Duration) -> Duration {
    let unit = round_trip.clamp(Duration::from_millis(1), Duration::from_millis(100));
    let window = unit * (1u32 << attempt.min(6));
    let micros = window.as_micros() as u64;
    Duration::from_micros(fastrand::u64(0..micros.max(1)))
}
