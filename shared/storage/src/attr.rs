//! Item attribute helpers: building string and number attribute values,
//! reading them back from an item, and the transactional put of an item
//! that must not exist yet. Shared by every module that writes or reads
//! items, so that none of them imports another for these.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::{StoreError, error::fault};

pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn get_s(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Fault(format!(
            "item attribute {name} is missing or not a string"
        ))),
    }
}

pub(crate) fn get_u64(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Fault(format!("item attribute {name} = {v:?} is not a u64"))),
        _ => Err(StoreError::Fault(format!(
            "item attribute {name} is missing or not a number"
        ))),
    }
}

/// A transactional put of an item that must not exist yet.
pub(crate) fn put_new(
    table: &str,
    item: HashMap<String, AttributeValue>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(fault)?;
    Ok(TransactWriteItem::builder().put(put).build())
}
