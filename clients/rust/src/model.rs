//! The API's JSON, typed: what requests carry and responses answer
//! (docs/api.md; protobuf field names in snake_case).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A database's state (`POST /databases`, `GET`/`DELETE /databases/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Database {
    pub name: String,
    pub created_at: Option<String>,
    pub basis: u64,
    pub revision: u64,
    pub revision_timestamp: Option<String>,
}

/// What a committed transaction answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchSummary {
    pub id: String,
    pub database: String,
    pub basis: u64,
    pub revision: u64,
    pub event_count: u32,
    pub recorded_time: Option<String>,
}

/// A CloudEvent in the CloudEvents JSON format. Events read back carry
/// their `revision` as an extension attribute ([`Event::revision`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub specversion: String,
    pub id: String,
    /// The event's stream is the last path segment of its source.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// Extension attributes (strings, booleans, 32-bit integers).
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Event {
    /// A CloudEvents 1.0 event with the required attributes.
    pub fn new(
        source: impl Into<String>,
        event_type: impl Into<String>,
        id: impl Into<String>,
    ) -> Self {
        Event {
            specversion: "1.0".into(),
            id: id.into(),
            source: source.into(),
            event_type: event_type.into(),
            subject: None,
            time: None,
            datacontenttype: None,
            dataschema: None,
            data: None,
            data_base64: None,
            extensions: Map::new(),
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// JSON data (`datacontenttype: application/json`).
    pub fn data(mut self, data: Value) -> Self {
        self.datacontenttype = Some("application/json".into());
        self.data = Some(data);
        self
    }

    /// The database revision of an event read back; `None` on one to send.
    pub fn revision(&self) -> Option<u64> {
        match self.extensions.get("revision")? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Which events a query reads or a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    StreamEquals(String),
    StreamStartsWith(String),
    /// An event without a subject matches neither subject selector.
    SubjectEquals(String),
    SubjectStartsWith(String),
    EventTypeEquals(String),
    EventTypeStartsWith(String),
    And {
        selectors: Vec<Selector>,
    },
    Or {
        selectors: Vec<Selector>,
    },
}

impl Selector {
    pub fn and(selectors: impl IntoIterator<Item = Selector>) -> Self {
        Selector::And {
            selectors: selectors.into_iter().collect(),
        }
    }

    pub fn or(selectors: impl IntoIterator<Item = Selector>) -> Self {
        Selector::Or {
            selectors: selectors.into_iter().collect(),
        }
    }
}

/// An append condition: the highest revision `h` of the events matching
/// `selector` (0 if none) must lie within `bound`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    pub selector: Selector,
    #[serde(flatten)]
    pub bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `h <= r`: 0 means no event may match; the `as_of` of a read is
    /// optimistic concurrency.
    Max(u64),
    /// `h >= r`.
    Min(u64),
    /// `min <= h <= max`.
    Range { min: u64, max: u64 },
}

impl Condition {
    /// Nothing matching `selector` was appended after revision `revision`.
    pub fn max(selector: Selector, revision: u64) -> Self {
        Condition {
            selector,
            bound: Bound::Max(revision),
        }
    }

    pub fn min(selector: Selector, revision: u64) -> Self {
        Condition {
            selector,
            bound: Bound::Min(revision),
        }
    }

    pub fn range(selector: Selector, min: u64, max: u64) -> Self {
        Condition {
            selector,
            bound: Bound::Range { min, max },
        }
    }
}

/// One page of `POST /databases/{name}/query`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryPage {
    /// The database revision the page is consistent with.
    pub as_of: u64,
    pub events: Vec<Event>,
    /// Where the next page starts; `None` once every match up to `as_of`
    /// has been read.
    pub next_from: Option<u64>,
}

/// Every event matching a selector up to `as_of`: all pages of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub as_of: u64,
    pub events: Vec<Event>,
}

impl QueryResult {
    /// Adds the next page; the page after it starts at the returned
    /// revision. A later page is read as of a later revision, and with it
    /// every match up to that one has been read: `as_of` moves up to it.
    pub(crate) fn extend(&mut self, mut page: QueryPage) -> Option<u64> {
        self.as_of = self.as_of.max(page.as_of);
        self.events.append(&mut page.events);
        page.next_from
    }
}

/// One page of `GET /databases/{name}/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// The `from` of the next page (the response's `Link: rel="next"`).
    pub next_from: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct TransactBody<'a> {
    pub transaction_id: &'a str,
    pub events: &'a [Event],
    #[serde(skip_serializing_if = "<[Condition]>::is_empty")]
    pub conditions: &'a [Condition],
}

#[derive(Serialize)]
pub(crate) struct QueryBody<'a> {
    pub selector: &'a Selector,
    pub from: u64,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_and_conditions_take_the_documented_json() {
        for (condition, expected) in [
            (
                Condition::max(Selector::SubjectEquals("a-42".into()), 0),
                json!({"selector": {"subject_equals": "a-42"}, "max": 0}),
            ),
            (
                Condition::min(Selector::StreamStartsWith("acc".into()), 3),
                json!({"selector": {"stream_starts_with": "acc"}, "min": 3}),
            ),
            (
                Condition::range(
                    Selector::and([
                        Selector::EventTypeEquals("t".into()),
                        Selector::or([Selector::StreamEquals("s".into())]),
                    ]),
                    1,
                    9,
                ),
                json!({"selector": {"and": {"selectors": [
                    {"event_type_equals": "t"},
                    {"or": {"selectors": [{"stream_equals": "s"}]}}
                ]}}, "range": {"min": 1, "max": 9}}),
            ),
        ] {
            assert_eq!(serde_json::to_value(&condition).unwrap(), expected);
        }
    }

    #[test]
    fn pages_add_up_to_the_last_pages_revision() {
        let event = |revision: u64| {
            let mut e = Event::new("https://x/s", "t", format!("e-{revision}"));
            e.extensions.insert("revision".into(), json!(revision));
            e
        };
        let mut result = QueryResult {
            as_of: 0,
            events: Vec::new(),
        };
        let next = result.extend(QueryPage {
            as_of: 10,
            events: vec![event(2), event(5)],
            next_from: Some(6),
        });
        assert_eq!(next, Some(6));
        // Something matching was appended between the pages (revision 12).
        let next = result.extend(QueryPage {
            as_of: 12,
            events: vec![event(12)],
            next_from: None,
        });
        assert_eq!(next, None);
        assert_eq!(result.as_of, 12);
        let revisions: Vec<_> = result.events.iter().filter_map(Event::revision).collect();
        assert_eq!(revisions, [2, 5, 12]);
    }

    #[test]
    fn an_event_round_trips_with_its_revision_as_an_extension() {
        let wire = json!({"specversion": "1.0", "id": "e-1", "source": "https://x/accounts",
            "type": "opened", "subject": "a-42", "datacontenttype": "application/json",
            "revision": 7, "data": {"owner": "Ada"}});
        let event: Event = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(event.revision(), Some(7));
        assert_eq!(event.subject.as_deref(), Some("a-42"));
        assert_eq!(serde_json::to_value(&event).unwrap(), wire);
        let new = Event::new("https://x/accounts", "opened", "e-2");
        assert_eq!(new.revision(), None);
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!({"specversion": "1.0", "id": "e-2", "source": "https://x/accounts", "type": "opened"})
        );
    }
}
