//! The commit protocol (see `docs/storage.md`): take the head (the one
//! this process last saw, see `crate::heads`, else read it), evaluate the
//! append conditions at it, and send the head update conditioned on the
//! basis with the chunks and the idempotency record in one
//! `TransactWriteItems`. When the head moved (another writer won the race,
//! or the remembered head was stale) go again from the head the
//! cancellation returned, after a backoff if it was a race. A transaction
//! id that committed before fails its record's put condition, and its
//! record then answers. A failed attempt that was sent more than once is
//! checked for its own commit first (`crate::attempt`); what a
//! cancellation says is read in `crate::cancellation`. Within a process,
//! commits on one database take turns (`crate::lanes`).

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
        // After this process's earlier commits on the database, from the
        // head they left (`crate::lanes`).
        let _lane = self
            .in_time(
                "waiting for this process's earlier commits on the database",
                self.lanes.of(name).held(),
            )
            .await?;
        // One batch id for every attempt of this call: it is how a retried
        // request recognises its own commit (see `crate::attempt`).
        let batch_id = uuid::Uuid::new_v4().to_string();
        let fingerprint = fingerprint(tx);
        let chunks = pack_events(&tx.events);
        let count = tx.events.len() as u64;
        let mut cost = CommitPlanSummary::default();
        // The head to go from without reading it: this process's last
        // known head (see `crate::heads`), then the head a cancelled
        // attempt returned.
        let conditional = !tx.conditions.is_empty();
        let remembered = self.heads.guess(name, conditional);
        // The index's watermark read with (or before) the head, for the
        // conditions.
        let mut watermark = remembered.as_ref().map_or(0, |k| k.watermark);
        let mut known_head: Option<HeadItem> = remembered.map(|k| k.head);
        // Whether `known_head` is a guess (remembered) rather than a head
        // read or returned now: a guess is not trusted to refuse a
        // condition, and losing the race on it is not contention.
        let mut guessed = known_head.is_some();
        // Chunks and index answers read beside the head
        // (`crate::conditions::ReadAhead`).
        let mut ahead = None;
        // Races lost to other writers (they set the backoff).
        let mut races_lost = 0;
        // The last commit round trip: the least time an attempt needs.
        let mut round_trip = self.heads.round_trip();
        let busy = || {
            format!("transaction on {name:?}: other writers kept winning until the deadline; retry")
        };

        for attempt in 1..=self.config.max_attempts {
            let head = match known_head.take() {
                // Same incarnation: the watermark read before still holds.
                Some(head) => self.heads.freshest(head),
                None => {
                    guessed = false;
                    cost.read_round_trips += 1;
                    let read = tokio::time::Instant::now();
                    let head = if conditional {
                        // The index's watermark comes in the same query;
                        // beside it, the chunks past this process's window
                        // and the index below it.
                        // Boxed, as the evaluation below.
                        let (at, read_ahead) = Box::pin(async {
                            tokio::join!(
                                self.head_and_watermark(name),
                                self.read_ahead(name, &tx.conditions)
                            )
                        })
                        .await;
                        ahead = read_ahead;
                        let at = at?
                            .filter(|at| at.head.is_active())
                            .ok_or_else(|| Error::not_found(name))?;
                        watermark = at.watermark;
                        self.heads.remember(&at.head, Some(at.watermark));
                        at.head
                    } else {
                        let head = self.active_head(name).await?;
                        self.heads.remember(&head, None);
                        head
                    };
                    // Until a commit is measured, a read is the estimate.
                    round_trip = round_trip.max(read.elapsed());
                    head
                }
            };

            if conditional {
                let mut evaluation_cost = CommitPlanSummary::default();
                // Boxed: the evaluation's state would make every caller's
                // future (and its stack in debug builds) large.
                let evaluation = Box::pin(self.evaluate(
                    &head,
                    watermark,
                    &tx.conditions,
                    ahead.take(),
                    &mut evaluation_cost,
                ))
                .await?;
                cost.read_round_trips += evaluation_cost.read_round_trips;
                let check = match evaluation {
                    // This process saw a newer revision than the guess:
                    // read the head.
                    Evaluation::Stale if guessed => continue,
                    Evaluation::Stale => {
                        self.pause(backoff(attempt), round_trip, busy).await?;
                        continue;
                    }
                    Evaluation::Checked(check) => check,
                };
                if let Err(failed) = check.result(&tx.conditions) {
                    if guessed {
                        // Decided again on the head as it is now.
                        continue;
                    }
                    // A commit of the same transaction id (an earlier
                    // request whose answer was lost, or a concurrent one)
                    // may be what fails the conditions: its result is ours,
                    // not a failed precondition.
                    if let Some(id) = &tx.transaction_id {
                        cost.read_round_trips += 1;
                        if let Some(summary) = self.read_tx_record(&head, id, &fingerprint).await? {
                            return Ok(CommitOutcome::IdCommittedBefore { summary, cost });
                        }
                    }
                    return Err(failed.into());
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
            self.heads.note_round_trip(round_trip);
            let committed = |cost: &mut CommitPlanSummary| {
                cost.items = 1 + chunks.len() + usize::from(tx.transaction_id.is_some());
                cost.chunks = chunks.len();
                cost.write_units = plan.units;
            };
            let e = match result {
                Ok(out) => {
                    committed(&mut cost);
                    self.heads.remember(&plan.head, None);
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
            match &returned {
                Some(stored) => {
                    self.heads.remember(stored, None);
                    self.heads.contended(name);
                }
                None => self.heads.forget(name),
            }
            // Sent more than once: an earlier send may have committed, and
            // this failure be about our own commit.
            if sends.count() > 1
                && self
                    .committed(returned.as_ref(), &head.incarnation, &summary)
                    .await?
            {
                committed(&mut cost);
                self.heads.remember(&plan.head, None);
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
                    if tx.transaction_id.is_some()
                        && failed_check(&reasons, tx_index)
                        // The record is in this head's incarnation: unless
                        // the database was deleted (a remembered head may
                        // be of a deleted one, whose records are not yet
                        // reclaimed), the id committed in this database.
                        && (!failed_check(&reasons, 0)
                            || returned
                                .as_ref()
                                .is_some_and(|h| h.is_active() && h.incarnation == head.incarnation)) =>
                {
                    // The id committed before (an earlier request whose
                    // answer was lost, or a concurrent one): its record is
                    // in this head's incarnation.
                    let id = tx.transaction_id.as_deref().unwrap_or_default();
                    cost.read_round_trips += 1;
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
                    // On a guess, the stored head was simply newer: go
                    // again at once. Otherwise a writer won the race.
                    let pause = if guessed {
                        Duration::ZERO
                    } else {
                        races_lost += 1;
                        contention_backoff(races_lost, round_trip)
                    };
                    guessed = false;
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
