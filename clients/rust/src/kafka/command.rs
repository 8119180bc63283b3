//! An async command as the client builds it, encoded the way the contract
//! says (docs/contract.md §5): a binary-mode CloudEvent, value in
//! protobuf, key and `ce_correlationid` the correlation id; and its
//! response, typed.

use evidentsource_cloudevents_kafka::{BinaryMessage, encode};
use evidentsource_commands::{CommandRequest, ContentKind, ReceivedResponse, cloudevent_from_json};
use evidentsource_proto::{
    AppendCondition, CreateDatabaseRequest, DeleteDatabaseRequest, Timestamp, TransactRequest,
    command_response,
};

use crate::{BatchSummary, ClientError, Condition, Database, ErrorCode, Event};

/// A command for the Async Commands topic.
#[derive(Debug, Clone, PartialEq)]
pub enum AsyncCommand {
    CreateDatabase {
        name: String,
    },
    /// Without a `transaction_id` one is generated when the command is
    /// built, so a re-submitted command commits at most once.
    Transact {
        database: String,
        events: Vec<Event>,
        conditions: Vec<Condition>,
        transaction_id: Option<String>,
    },
    DeleteDatabase {
        name: String,
    },
}

/// What a command that succeeded answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// create-database and delete-database: the database's state.
    Database(Database),
    /// transact: the committed batch.
    Batch(BatchSummary),
}

impl AsyncCommand {
    /// The contract's request. Errors name the field at fault
    /// (`events[1].time`), as the HTTP API would.
    pub(crate) fn request(&self) -> Result<CommandRequest, ClientError> {
        Ok(match self {
            AsyncCommand::CreateDatabase { name } => {
                CommandRequest::CreateDatabase(CreateDatabaseRequest {
                    database_name: name.clone(),
                })
            }
            AsyncCommand::DeleteDatabase { name } => {
                CommandRequest::DeleteDatabase(DeleteDatabaseRequest {
                    database_name: name.clone(),
                })
            }
            AsyncCommand::Transact {
                database,
                events,
                conditions,
                transaction_id,
            } => {
                let events = events
                    .iter()
                    .enumerate()
                    .map(|(i, event)| {
                        let json = serde_json::to_value(event)
                            .map_err(|e| ClientError::Request(format!("events[{i}]: {e}")))?;
                        // The message starts with the field ("time: ..."):
                        // prefixed, it names the event too.
                        cloudevent_from_json(json).map_err(|e| {
                            ClientError::Request(e.within(&format!("events[{i}]")).message)
                        })
                    })
                    .collect::<Result<_, _>>()?;
                // The HTTP API's condition JSON is the protobuf JSON
                // mapping of AppendCondition.
                let conditions = conditions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        serde_json::to_value(c)
                            .and_then(serde_json::from_value::<AppendCondition>)
                            .map_err(|e| ClientError::Request(format!("conditions[{i}]: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
                CommandRequest::Transact(TransactRequest {
                    database_name: database.clone(),
                    events,
                    conditions,
                    transaction_id: transaction_id
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                })
            }
        })
    }

    /// The message to produce (key: `correlation_id`). Built once per
    /// submit: a re-send is the same bytes, which the function answers
    /// like the first.
    pub(crate) fn message(
        &self,
        correlation_id: &str,
        source: &str,
    ) -> Result<BinaryMessage, ClientError> {
        let request = self.request()?;
        let event = request.to_event_with(
            correlation_id,
            &uuid::Uuid::new_v4().to_string(),
            source,
            ContentKind::Protobuf,
        );
        Ok(encode(&event))
    }
}

/// The outcome a response stands for: its result, or its error typed by
/// the contract's code.
pub(crate) fn outcome(response: &ReceivedResponse) -> Result<CommandOutcome, ClientError> {
    if let Some((code, message)) = response.error() {
        let code = ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == code.as_str_name())
            .unwrap_or(ErrorCode::Internal);
        return Err(ClientError::Command {
            code,
            message: message.to_owned(),
        });
    }
    match &response.response.result {
        Some(command_response::Result::Database(d)) => Ok(CommandOutcome::Database(Database {
            name: d.name.clone(),
            created_at: rfc3339(d.created_at.as_ref()),
            basis: d.basis,
            revision: d.revision,
            revision_timestamp: rfc3339(d.revision_timestamp.as_ref()),
        })),
        Some(command_response::Result::BatchSummary(b)) => {
            Ok(CommandOutcome::Batch(BatchSummary {
                id: b.id.clone(),
                database: b.database.clone(),
                basis: b.basis,
                revision: b.revision,
                event_count: b.event_count,
                recorded_time: rfc3339(b.recorded_time.as_ref()),
            }))
        }
        _ => Err(ClientError::Decode(format!(
            "response {}: neither a result nor an error",
            response.id
        ))),
    }
}

/// A timestamp as the HTTP API writes it (RFC 3339, milliseconds, `Z`),
/// so an outcome compares equal to the same answer over HTTP.
fn rfc3339(ts: Option<&Timestamp>) -> Option<String> {
    let ts = ts?;
    let t = chrono::DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)?;
    Some(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use evidentsource_cloudevents_kafka::{AttributesReader, decode};
    use evidentsource_commands::TRANSACT;
    use serde_json::json;

    use super::*;
    use crate::Selector;

    fn transact(events: Vec<Event>) -> AsyncCommand {
        AsyncCommand::Transact {
            database: "flights".into(),
            events,
            conditions: vec![Condition::max(Selector::SubjectEquals("f-1".into()), 4)],
            transaction_id: Some("tx-1".into()),
        }
    }

    #[test]
    fn a_transact_becomes_the_contracts_message() {
        let event = Event::new("https://example.com/seats", "seat-reserved", "e-1")
            .subject("f-1")
            .data(json!({ "seat": 3 }));
        let message = transact(vec![event]).message("corr-1", "urn:test").unwrap();
        let received = decode(
            message
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_slice()))),
            Some(&message.value),
        )
        .unwrap();
        assert_eq!(received.ty(), TRANSACT);
        assert_eq!(
            evidentsource_cloudevents_kafka::ext::correlation_id(&received),
            Some("corr-1")
        );
        let request =
            CommandRequest::decode(TRANSACT, received.datacontenttype(), &message.value).unwrap();
        let CommandRequest::Transact(t) = request else {
            panic!("{request:?}")
        };
        assert_eq!(
            (t.database_name.as_str(), t.transaction_id.as_str()),
            ("flights", "tx-1")
        );
        assert_eq!(t.events.len(), 1);
        assert_eq!(
            serde_json::to_value(&t.conditions[0]).unwrap(),
            json!({ "selector": { "subjectEquals": "f-1" }, "max": "4" })
        );
    }

    #[test]
    fn without_a_transaction_id_one_is_generated_once() {
        let mut command = transact(vec![]);
        if let AsyncCommand::Transact { transaction_id, .. } = &mut command {
            *transaction_id = None;
        }
        let id = |c: &AsyncCommand| match c.request().unwrap() {
            CommandRequest::Transact(t) => t.transaction_id,
            other => panic!("{other:?}"),
        };
        let (a, b) = (id(&command), id(&command));
        assert!(!a.is_empty());
        assert_ne!(a, b, "each build is its own transaction");
    }

    #[test]
    fn times_are_written_as_the_http_api_writes_them() {
        for (seconds, nanos, expected) in [
            (1_705_314_600, 123_000_000, Some("2024-01-15T10:30:00.123Z")),
            (0, 0, Some("1970-01-01T00:00:00.000Z")),
            (0, -1, None),
        ] {
            let ts = Timestamp { seconds, nanos };
            assert_eq!(rfc3339(Some(&ts)).as_deref(), expected);
        }
        assert_eq!(rfc3339(None), None);
    }

    #[test]
    fn an_invalid_event_is_refused_naming_its_field() {
        let mut event = Event::new("/s", "t", "e");
        event.time = Some("noon".into());
        let error = transact(vec![Event::new("/s", "t", "ok"), event])
            .request()
            .unwrap_err();
        assert!(
            matches!(&error, ClientError::Request(m) if m.starts_with("events[1].time:")),
            "{error:?}"
        );
    }
}
