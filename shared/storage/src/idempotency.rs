//! Idempotency by transaction id: a commit with a transaction id writes a
//! record of its result under the database's incarnation, in the same
//! `TransactWriteItems`; a later request with the same id finds it and gets
//! that result instead of committing again. The record keeps a fingerprint
//! of the transaction, so that an id reused for a different transaction is
//! refused.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use evidentsource_domain::{Error, Transaction};
use evidentsource_proto::BatchSummary;
use sha2::{Digest, Sha256};

use crate::{
    Store, StoreError,
    attr::{get_s, get_u64, n, s},
    attribute,
    error::classify,
    head::HeadItem,
    keys, timestamp_from_millis,
};

/// Identifies a transaction's content, to refuse a transaction id reused
/// for a different transaction. Map fields encode deterministically.
pub(crate) fn fingerprint(tx: &Transaction) -> Vec<u8> {
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

/// The record of a commit with transaction id `id`.
pub(crate) fn tx_record(
    head: &HeadItem,
    id: &str,
    summary: &BatchSummary,
    recorded: i64,
    fingerprint: &[u8],
) -> HashMap<String, AttributeValue> {
    [
        (
            attribute::PK.to_string(),
            s(&keys::tx_pk(&head.name, &head.incarnation)),
        ),
        (attribute::SK.to_string(), s(id)),
        (attribute::BATCH_ID.to_string(), s(&summary.id)),
        (attribute::BASIS.to_string(), n(summary.basis)),
        (attribute::REVISION.to_string(), n(summary.revision)),
        ("recorded_time".to_string(), n(recorded)),
        (
            "fp".to_string(),
            AttributeValue::B(fingerprint.to_vec().into()),
        ),
    ]
    .into()
}

impl Store {
    /// The result of an earlier commit with this transaction id, if any.
    pub(crate) async fn read_tx_record(
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
                    .key(
                        attribute::PK,
                        s(&keys::tx_pk(&head.name, &head.incarnation)),
                    )
                    .key(attribute::SK, s(id))
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
        let basis = get_u64(&item, attribute::BASIS)?;
        let revision = get_u64(&item, attribute::REVISION)?;
        Ok(Some(BatchSummary {
            id: get_s(&item, attribute::BATCH_ID)?,
            database: head.name.clone(),
            basis,
            revision,
            event_count: revision.saturating_sub(basis) as u32,
            recorded_time: Some(timestamp_from_millis(
                get_u64(&item, "recorded_time")? as i64
            )),
        }))
    }
}
