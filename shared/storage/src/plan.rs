//! The items of one commit attempt: the head update conditioned on the
//! basis, the chunk puts, the idempotency record; with their size (what
//! counts against DynamoDB's transaction limit) and write units (what the
//! commit costs).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use evidentsource_domain::Transaction;
use evidentsource_proto::BatchSummary;

use crate::{
    Store, StoreError,
    attempt::BATCH_ATTR,
    attr::{n, put_new, s},
    attribute,
    chunk::PackedChunk,
    error::fault,
    head::{HeadItem, HeadState},
    idempotency::tx_record,
    keys,
    recent::{HEAD_BUDGET, Recent},
    recorded::RECORDED_ATTR,
    size::{item_size, write_units},
};

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

/// The items of one commit attempt.
pub(crate) struct CommitPlan {
    pub items: Vec<TransactWriteItem>,
    /// The head as the commit leaves it.
    pub head: HeadItem,
    /// Write units by DynamoDB's item-size rules.
    pub units: u64,
    /// Size by the same rules: what counts against the transaction limit.
    pub bytes: usize,
}

impl Store {
    /// The items of one commit, their write units and size.
    pub(crate) fn commit_items(
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
        // The recent facts take what the head leaves of its first KB, so
        // they cost no write unit.
        new_head.recent = None;
        let without_recent = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(&new_head)
            .map(|i| item_size(&i))
            .unwrap_or(HEAD_BUDGET)
            + attribute::RECENT.len();
        let recent = Recent::after(head, &tx.facts, HEAD_BUDGET.saturating_sub(without_recent));
        let head_size = without_recent + recent.0.len();
        new_head.recent = Some(recent.clone());
        let mut units = write_units(head_size, true);
        let mut bytes = head_size;
        let update = Update::builder()
            .table_name(table)
            .key(attribute::PK, s(&head.pk))
            .key(attribute::SK, s(keys::HEAD_SK))
            .update_expression(
                "SET #rev = :rev, basis = :basis, revision_time = :t, batch_id = :b, #rf = :rf",
            )
            .condition_expression("#st = :active AND incarnation = :inc AND #rev = :basis")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .expression_attribute_names("#rev", attribute::REVISION)
            .expression_attribute_names("#st", attribute::STATE)
            .expression_attribute_names("#rf", attribute::RECENT)
            .expression_attribute_values(":rf", AttributeValue::B(recent.0.into()))
            .expression_attribute_values(":rev", n(summary.revision))
            .expression_attribute_values(":basis", n(summary.basis))
            .expression_attribute_values(":t", n(recorded))
            .expression_attribute_values(":b", s(&summary.id))
            .expression_attribute_values(":active", s(HeadState::Active.as_str()))
            .expression_attribute_values(":inc", s(&head.incarnation))
            .build()
            .map_err(fault)?;
        items.push(TransactWriteItem::builder().update(update).build());

        let events_pk = keys::events_pk(&head.name, &head.incarnation);
        for c in chunks {
            let first = summary.basis + 1 + c.offset as u64;
            let mut item: HashMap<String, AttributeValue> = [
                (attribute::PK.to_string(), s(&events_pk)),
                (attribute::SK.to_string(), s(&keys::chunk_sk(first))),
                ("n".to_string(), n(c.count)),
                ("d".to_string(), AttributeValue::B(c.payload.clone().into())),
            ]
            .into();
            if c.offset == 0 {
                // Whose commit took basis + 1: the head's batch id is
                // overwritten by the next commit, this is not.
                item.insert(BATCH_ATTR.to_string(), s(&summary.id));
                // When it was recorded (the head's `revision_time` of this
                // commit, overwritten by the next one): with `b`, what a
                // re-published Transacted event needs byte for byte.
                item.insert(RECORDED_ATTR.to_string(), n(recorded));
            }
            let size = item_size(&item);
            units += write_units(size, true);
            bytes += size;
            items.push(put_new(table, item)?);
        }

        if let Some(id) = &tx.transaction_id {
            let item = tx_record(head, id, summary, recorded, fingerprint);
            let size = item_size(&item);
            units += write_units(size, true);
            bytes += size;
            items.push(put_new(table, item)?);
        }
        Ok(CommitPlan {
            items,
            head: new_head,
            units,
            bytes,
        })
    }
}
