//! DynamoDB's item-size rules, to state and test what a write costs.
//!
//! Size = Σ (attribute name bytes + value size); strings are their UTF-8
//! length, binaries their length, numbers about one byte per two
//! significant digits plus one. A write consumes one write unit per started
//! KB of the item (the larger of old and new for an update); a transactional
//! write consumes two.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    significant.div_ceil(2) + 1
}

/// DynamoDB's limit on the aggregate size of the items of one
/// `TransactWriteItems` ("4 MB"), taken as 4,000,000 bytes to stay on the
/// safe side of however it is counted. Event data is limited to 1 MiB per
/// transaction, but extension attributes are not, so a transaction within
/// every other limit can exceed it.
pub const MAX_TRANSACTION_BYTES: usize = 4_000_000;

/// Refuses a transaction of `bytes` (the items of its `TransactWriteItems`)
/// over [`MAX_TRANSACTION_BYTES`] as bad input: DynamoDB would refuse it
/// with a `ValidationException`, which reads as a fault (500); moto would
/// accept it.
pub(crate) fn check_transaction_size(bytes: usize) -> Result<(), crate::StoreError> {
    if bytes <= MAX_TRANSACTION_BYTES {
        return Ok(());
    }
    Err(evidentsource_domain::Error::invalid_argument(
        "events",
        format!(
            "the transaction takes {bytes} bytes as stored; DynamoDB's limit for one \
             transaction is {MAX_TRANSACTION_BYTES} bytes (event data and attributes, after \
             compression): split it or send smaller events"
        ),
    )
    .into())
}

/// Write units of one write of an item of `size` bytes.
pub fn write_units(size: usize, transactional: bool) -> u64 {
    let units = (size.max(1)).div_ceil(1024) as u64;
    if transactional { 2 * units } else { units }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let item: HashMap<String, AttributeValue> = [
            ("pk".to_string(), AttributeValue::S("db#accounts".into())), // 2 + 11
            ("revision".to_string(), AttributeValue::N("150".into())),   // 8 + 2
            ("d".to_string(), AttributeValue::B(vec![0; 100].into())),   // 1 + 100
        ]
        .into();
        assert_eq!(item_size(&item), 13 + 10 + 101);
        assert_eq!(write_units(1024, false), 1);
        assert_eq!(write_units(1025, false), 2);
        assert_eq!(write_units(1025, true), 4);
        assert_eq!(write_units(0, true), 2);
        assert_eq!(number_size("0"), 2);
        assert_eq!(number_size("1705314600123"), 8);
    }
}
