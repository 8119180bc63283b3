//! Recorded responses of async commands.
//!
//! Lambda retries whole Kafka batches, so an async command may be executed
//! twice. Its response is therefore recorded before it is published, and a
//! state change writes its response in the same `TransactWriteItems` as the
//! change itself: after a crash either both exist or neither does, and a
//! re-run finds the response instead of executing the command again (which
//! would, e.g., turn a create into `ALREADY_EXISTS`). A refusal changes
//! nothing, so it is recorded on its own with a conditional put; the first
//! recorded response for a correlation id wins.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use evidentsource_proto::{CommandResponse, Message};

use crate::{
    Store, StoreError,
    attr::{get_s, get_u64, n, put_new, s},
    attribute,
    error::classify,
    keys,
};

/// Where and how long a command's response is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySlot {
    /// The command's correlation id (the record's key).
    pub correlation_id: String,
    /// Identifies the command's content, so that a correlation id reused for
    /// a different command can be told apart from a retry.
    pub fingerprint: Vec<u8>,
    /// The response's `ce_source`, recorded so that a re-publication does
    /// not depend on the configuration of the day.
    pub source: String,
    /// How long the record lives (DynamoDB TTL): at least the retention of
    /// the commands topic, so that any re-delivery still finds it.
    pub ttl: Duration,
    /// The response's `traceparent` and `tracestate` (the command's trace,
    /// continued by its execution), recorded so that a re-published
    /// response carries the same.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

/// A recorded response, exactly as it was first recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub correlation_id: String,
    pub fingerprint: Vec<u8>,
    /// The response's `ce_source`.
    pub source: String,
    /// When it was recorded, milliseconds since the epoch (the response's
    /// `ce_time`).
    pub recorded_at: i64,
    /// The database the command was about, when known.
    pub subject: Option<String>,
    /// The encoded `CommandResponse`, kept as bytes so that every
    /// re-publication is byte-identical.
    pub response: Vec<u8>,
    /// The response's trace context, if the command had one.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl Reply {
    pub(crate) fn new(
        slot: &ReplySlot,
        subject: Option<&str>,
        response: &CommandResponse,
        recorded_at: i64,
    ) -> Self {
        Reply {
            correlation_id: slot.correlation_id.clone(),
            fingerprint: slot.fingerprint.clone(),
            source: slot.source.clone(),
            recorded_at,
            subject: subject.map(str::to_owned),
            response: response.encode_to_vec(),
            traceparent: slot.traceparent.clone(),
            tracestate: slot.tracestate.clone(),
        }
    }

    /// The decoded response.
    pub fn decode_response(&self) -> Result<CommandResponse, StoreError> {
        CommandResponse::decode(self.response.as_slice()).map_err(|e| {
            StoreError::Fault(format!(
                "reply {:?} does not decode: {e}",
                self.correlation_id
            ))
        })
    }

    pub(crate) fn to_item(&self, ttl: Duration) -> HashMap<String, AttributeValue> {
        let mut item: HashMap<String, AttributeValue> = [
            (
                attribute::PK.to_owned(),
                s(&keys::reply_pk(&self.correlation_id)),
            ),
            (attribute::SK.to_owned(), s(keys::REPLY_SK)),
            ("cid".to_owned(), s(&self.correlation_id)),
            (
                "fp".to_owned(),
                AttributeValue::B(self.fingerprint.clone().into()),
            ),
            ("src".to_owned(), s(&self.source)),
            ("at".to_owned(), n(self.recorded_at)),
            (
                "response".to_owned(),
                AttributeValue::B(self.response.clone().into()),
            ),
            (
                "ttl".to_owned(),
                n(self.recorded_at / 1000 + ttl.as_secs() as i64),
            ),
        ]
        .into();
        for (name, value) in [
            ("subject", &self.subject),
            ("tp", &self.traceparent),
            ("ts", &self.tracestate),
        ] {
            if let Some(value) = value {
                item.insert(name.to_owned(), s(value));
            }
        }
        item
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        let bytes = |name: &str| match item.get(name) {
            Some(AttributeValue::B(b)) => Ok(b.as_ref().to_vec()),
            _ => Err(StoreError::Fault(format!(
                "reply attribute {name} is missing or not binary"
            ))),
        };
        Ok(Reply {
            correlation_id: get_s(item, "cid")?,
            fingerprint: bytes("fp")?,
            source: get_s(item, "src")?,
            recorded_at: get_u64(item, "at")? as i64,
            subject: get_s(item, "subject").ok(),
            response: bytes("response")?,
            traceparent: get_s(item, "tp").ok(),
            tracestate: get_s(item, "ts").ok(),
        })
    }

    /// The transactional put that records this reply if none is recorded.
    pub(crate) fn put(&self, table: &str, ttl: Duration) -> Result<TransactWriteItem, StoreError> {
        put_new(table, self.to_item(ttl))
    }
}

/// The outcome of recording a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replied {
    /// This call recorded it (and, for a state change, made the change).
    Recorded(Reply),
    /// A response was already recorded for the correlation id; nothing was
    /// changed.
    Earlier(Reply),
}

impl Replied {
    pub fn reply(&self) -> &Reply {
        match self {
            Replied::Recorded(r) | Replied::Earlier(r) => r,
        }
    }

    pub fn into_reply(self) -> Reply {
        match self {
            Replied::Recorded(r) | Replied::Earlier(r) => r,
        }
    }
}

impl Store {
    /// The response recorded for a correlation id, if any (strongly
    /// consistent).
    pub async fn read_reply(&self, correlation_id: &str) -> Result<Option<Reply>, StoreError> {
        let out = self
            .in_time(
                "GetItem (reply)",
                self.client
                    .get_item()
                    .table_name(&self.config.table_name)
                    .key(attribute::PK, s(&keys::reply_pk(correlation_id)))
                    .key(attribute::SK, s(keys::REPLY_SK))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| classify("GetItem (reply)", e))?;
        out.item.as_ref().map(Reply::from_item).transpose()
    }

    /// Records a response that changes nothing else (a refusal), unless one
    /// is recorded already.
    pub async fn record_reply(
        &self,
        slot: &ReplySlot,
        subject: Option<&str>,
        response: &CommandResponse,
    ) -> Result<Replied, StoreError> {
        let reply = Reply::new(slot, subject, response, crate::now_millis());
        let request = self
            .client
            .put_item()
            .table_name(&self.config.table_name)
            .set_item(Some(reply.to_item(slot.ttl)))
            .condition_expression("attribute_not_exists(pk)")
            .send();
        match self.in_time("PutItem (reply)", request).await? {
            Ok(_) => Ok(Replied::Recorded(reply)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.earlier_reply(&slot.correlation_id).await
            }
            Err(e) => Err(classify("PutItem (reply)", e)),
        }
    }

    /// The reply another execution recorded first (its put won the race).
    pub(crate) async fn earlier_reply(&self, correlation_id: &str) -> Result<Replied, StoreError> {
        match self.read_reply(correlation_id).await? {
            Some(reply) => Ok(Replied::Earlier(reply)),
            None => Err(StoreError::Unavailable(format!(
                "the reply to {correlation_id:?} was reported recorded but is not readable yet"
            ))),
        }
    }
}
