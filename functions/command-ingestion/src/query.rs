//! `POST /databases/{name}/query`, the DCB read: the request (JSON, or a
//! protobuf `QueryRequest`), the store's page, and the response in the
//! request's format. The page is cut by count in the store and by size
//! here, where its encoding is known (`page.rs` for JSON).

use evidentsource_domain::{DatabaseName, Error, ErrorCode, Selector, SelectorLimits, quote};
use evidentsource_proto::{EventSelector, Message, QueryRequest, QueryResponse, RevisionedEvent};
use evidentsource_storage::{DEFAULT_QUERY_LIMIT, QueryBounds, QueryPage};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::{Answer, Call, Refusal, body_bytes, content_type, json, page};

/// A query as the route reads it, before the store checks its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryInput {
    pub selector: Selector,
    /// `None`: from revision 1.
    pub from: Option<u64>,
    /// `None`: [`DEFAULT_QUERY_LIMIT`].
    pub limit: Option<u64>,
    /// Sent as protobuf: answered in protobuf.
    pub protobuf: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Protobuf,
}

/// Reads and validates a query request body (JSON or protobuf).
pub fn parse_query(request: &Request, limits: SelectorLimits) -> Result<QueryInput, Refusal> {
    let body = body_bytes(request)?;
    match content_type(request).as_deref() {
        Some("application/protobuf" | "application/x-protobuf") => {
            let r = QueryRequest::decode(body).map_err(|e| {
                Error::invalid_argument("body", format!("is not a QueryRequest: {e}"))
            })?;
            Ok(from_proto(&r, limits)?)
        }
        None | Some("application/json") => Ok(json::query_request(body, limits)?),
        Some(other) => Err(Refusal::new(
            415,
            ErrorCode::InvalidArgument,
            format!(
                "content-type {}: send application/json or application/protobuf",
                quote(other)
            ),
        )),
    }
}

pub(crate) async fn query(call: &Call, name: &DatabaseName, request: &Request) -> Answer {
    let input = parse_query(request, call.store.config().limits.selectors)?;
    let format = if input.protobuf {
        Format::Protobuf
    } else {
        Format::Json
    };
    let limit = match input.limit {
        None => DEFAULT_QUERY_LIMIT,
        // Beyond usize: the store refuses it like any limit over its maximum.
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let max_bytes = match format {
        Format::Json => page::MAX_BODY_BYTES,
        Format::Protobuf => page::MAX_BINARY_BYTES,
    };
    let found = call
        .store
        .query(
            name.as_str(),
            &input.selector,
            input.from.unwrap_or(1),
            QueryBounds { limit, max_bytes },
        )
        .await?;
    Ok(match format {
        Format::Json => json_page(found),
        Format::Protobuf => protobuf_page(found),
    })
}

/// The protobuf request: 0 stands for "not given" (proto3 defaults).
fn from_proto(r: &QueryRequest, limits: SelectorLimits) -> Result<QueryInput, Error> {
    let selector = r
        .selector
        .as_ref()
        .ok_or_else(|| Error::invalid_argument("selector", "is required"))?;
    Ok(QueryInput {
        selector: Selector::from_proto("selector", selector, limits)?,
        from: (r.from != 0).then_some(r.from),
        limit: (r.limit != 0).then_some(u64::from(r.limit)),
        protobuf: true,
    })
}

/// Parses the selector's JSON (the protobuf JSON mapping, as in
/// conditions) and validates it, errors naming the field under `selector`.
pub(crate) fn selector_from_json(value: Value, limits: SelectorLimits) -> Result<Selector, Error> {
    let proto: EventSelector = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "selector".to_owned()
        } else {
            format!("selector.{path}")
        };
        Error::invalid_argument(field, e.into_inner())
    })?;
    Selector::from_proto("selector", &proto, limits)
}

/// `{"as_of", "events", "next_from"}`, the events cut to fit a response
/// (`page.rs`): a cut page goes on after its last event.
fn json_page(found: QueryPage) -> Response<Body> {
    let cut = page::cut(
        found.events.iter().map(json::cloudevent_to_json),
        page::MAX_BODY_BYTES,
    );
    let next_from = match cut.last_revision {
        Some(last) if cut.cut => Some(last + 1),
        _ => found.next_from,
    };
    let next = next_from.map_or("null".to_owned(), |n| n.to_string());
    // The envelope adds under 100 bytes to the page's at most 5 MiB.
    let body = format!(
        "{{\"as_of\":{},\"events\":{},\"next_from\":{next}}}",
        found.as_of, cut.body
    );
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::Text(body))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

/// A `QueryResponse`; the store already cut it to [`page::MAX_BINARY_BYTES`].
fn protobuf_page(found: QueryPage) -> Response<Body> {
    let response = QueryResponse {
        as_of: found.as_of,
        next_from: found.next_from.unwrap_or(0),
        events: found
            .events
            .into_iter()
            .map(|e| RevisionedEvent {
                revision: e.revision,
                event: Some(e.event),
            })
            .collect(),
    };
    Response::builder()
        .status(200)
        .header("content-type", "application/protobuf")
        .body(Body::Binary(response.encode_to_vec()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
