//! The commit protocol (see `docs/storage.md`): read the head, answer a
//! transaction id that committed before from its record, evaluate the
//! append conditions, and send the head update conditioned on the basis
//! with the chunks and the idempotency record in one `TransactWriteItems`;
//! when another writer wins the race for the head, back off and go again
//! from the head it left. A failed attempt that was sent more than once is
//! checked for its own commit first (`crate::attempt`); what a cancellation
//! says is read in `crate::cancellation`.

use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use evidentsource_domain::{Error, Transaction};
use evidentsource_proto::{BatchSummary, CommandResponse, command_response};

use crate::{
    Store, StoreError,
    attempt::Sends,
    backoff::{backoff, contention_backoff},
    cancellation::{
        cancellation, classify_transaction, failed_check, retryable_conflict, returned_head,
    },
    chunk::pack_events,
    conditions::Evaluation,
    head::HeadItem,
    idempotency::fingerprint,
    now_millis,
    plan::CommitPlanSummary,
    reply::{Replied, Reply, ReplySlot},
    size::{check_transaction_size, item_size},
    timestamp_from_millis,
};

/// How a call of the commit protocol ended.
enum CommitOutcome {
    /// This call committed the transaction. With a reply slot, the
    /// command's response was recorded in the same write (`reply`), so
    /// `reply` is `None` exactly when no slot was given.
    Committed {
        summary: BatchSummary,
        cost: CommitPlanSummary,
        reply: Option<Reply>,
    },
    /// The transaction id committed before (an earlier request, or a
    /// concurrent one with the same id): that commit's result. Nothing was
    /// committed now, and no response is recorded for it yet.
    IdCommittedBefore {
        summary: BatchSummary,
        cost: CommitPlanSummary,
    },
    /// With a reply slot only: a response was already recorded for the
    /// command (it was executed concurrently); nothing was committed.
    ReplyRecordedBefore(Replied),
}

impl Store {
    /// Commits a transaction; see `docs/storage.md` for the protocol.
    pub async fn transact(&self, tx: &Transaction) -> Result<BatchSummary, StoreError> {
        self.transact_measured(tx).await.map(|(summary, _)| summary)
    }

    /// [`Store::transact`], also reporting what the commit cost.
    pub async fn transact_measured(
        &self,
        tx: &Transaction,
    ) -> Result<(BatchSummary, CommitPlanSummary), StoreError> {
        match self.transact_inner(tx, None).await? {
            CommitOutcome::Committed { summary, cost, .. }
            | CommitOutcome::IdCommittedBefore { summary, cost } => Ok((summary, cost)),
            // Only a commit with a reply slot checks for a recorded reply.
            CommitOutcome::ReplyRecordedBefore(_) => Err(StoreError::Fault(
                "a commit without a reply slot found a recorded reply".into(),
            )),
        }
    }

    /// [`Store::transact`] recording the command's response in the same
    /// write (see [`crate::reply`]). A transaction id that committed before
    /// gets its first result, recorded as this command's response.
    pub async fn transact_replying(
        &self,
        tx: &Transaction,
        slot: &ReplySlot,
    ) -> Result<Replied, StoreError> {
        match self.transact_inner(tx, Some(slot)).await? {
            CommitOutcome::Committed {
                reply: Some(reply), ..
            } => Ok(Replied::Recorded(reply)),
            CommitOutcome::ReplyRecordedBefore(replied) => Ok(replied),
            // An earlier commit's result becomes this command's response.
            CommitOutcome::IdCommittedBefore { summary, .. }
            | CommitOutcome::Committed { summary, .. } => {
                let response = batch_response(summary);
                self.record_reply(slot, Some(tx.database.as_str()), &response)
                    .await
            }
        }
    }

    /// Commits; with a slot, the response is written with the commit (see
    /// [`CommitOutcome`]).
    async fn transact_inner(
        &self,
        tx: &Transaction,
        slot: Option<&ReplySlot>,
    ) -> Result<CommitOutcome, StoreError> {
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
        // The index's watermark read with the head (conditions only).
        let mut watermark = 0;
        // The last commit round trip: the least time an attempt needs.
        let mut round_trip = Duration::ZERO;
        let busy = || {
            format!("transaction on {name:?}: other writers kept winning until the deadline; retry")
        };

        for attempt in 1..=self.config.max_attempts {
            let head = match known_head.take() {
                // Same incarnation: the watermark read before still holds.
                Some(head) => head,
                None => {
                    cost.read_round_trips += 1;
                    let read = tokio::time::Instant::now();
                    let head = if tx.conditions.is_empty() {
                        self.active_head(name).await?
                    } else {
                        // The index's watermark comes in the same query.
                        let at = self
                            .head_and_watermark(name)
                            .await?
                            .filter(|at| at.head.is_active())
                            .ok_or_else(|| Error::not_found(name))?;
                        watermark = at.watermark;
                        at.head
                    };
                    // Until a commit is measured, a read is the estimate.
                    round_trip = round_trip.max(read.elapsed());
                    head
                }
            };

            // The transaction id's record and the conditions are read at
            // once: both depend only on the head.
            let id_to_check = match (&tx.transaction_id, id_unused_at) {
                (Some(id), None) => Some(id),
                _ => None,
            };
            let mut evaluation_cost = CommitPlanSummary::default();
            let (recorded, evaluation) = tokio::join!(
                async {
                    match id_to_check {
                        Some(id) => self.read_tx_record(&head, id, &fingerprint).await,
                        None => Ok(None),
                    }
                },
                async {
                    if tx.conditions.is_empty() {
                        return Ok(None);
                    }
                    // Boxed: the evaluation's state would make every
                    // caller's future (and its stack in debug builds) large.
                    Box::pin(self.evaluate(&head, watermark, &tx.conditions, &mut evaluation_cost))
                        .await
                        .map(Some)
                }
            );
            // Side by side, they take the longer one's round trips.
            cost.read_round_trips += evaluation_cost
                .read_round_trips
                .max(u32::from(id_to_check.is_some()));
            if id_to_check.is_some() {
                if let Some(summary) = recorded? {
                    return Ok(CommitOutcome::IdCommittedBefore { summary, cost });
                }
                id_unused_at = Some(head.revision);
            }

            if let Some(evaluation) = evaluation? {
                match evaluation {
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
                                    return Ok(CommitOutcome::IdCommittedBefore { summary, cost });
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
                    return Ok(CommitOutcome::Committed {
                        summary,
                        cost,
                        reply,
                    });
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
                return Ok(CommitOutcome::Committed {
                    summary,
                    cost,
                    reply,
                });
            }
            match cancellation(&e) {
                Some(reasons) if reply.is_some() && failed_check(&reasons, reply_index) => {
                    // This command was executed concurrently.
                    let id = slot.map(|s| s.correlation_id.as_str()).unwrap_or_default();
                    let earlier = self.earlier_reply(id).await?;
                    return Ok(CommitOutcome::ReplyRecordedBefore(earlier));
                }
                Some(reasons)
                    if tx.transaction_id.is_some() && failed_check(&reasons, tx_index) =>
                {
                    // The same transaction id committed concurrently.
                    let id = tx.transaction_id.as_deref().unwrap_or_default();
                    let head = self.active_head(name).await?;
                    return match self.read_tx_record(&head, id, &fingerprint).await? {
                        Some(summary) => Ok(CommitOutcome::IdCommittedBefore { summary, cost }),
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
}

fn batch_response(summary: BatchSummary) -> CommandResponse {
    CommandResponse {
        result: Some(command_response::Result::BatchSummary(summary)),
    }
}
