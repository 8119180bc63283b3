//! The command-ingestion function: the HTTP API over the storage layer.
//!
//! [`App::handle`] is a plain async function from an HTTP request to an HTTP
//! response (API Gateway HTTP API, payload format 2.0, through `lambda_http`),
//! so tests and the local runner call it directly. `main.rs` only builds the
//! clients once per cold start. Routes and JSON shapes: `docs/api.md`.

pub mod json;
pub mod metrics;
mod page;
mod problem;
mod query;
mod routes;
pub mod submit;

use std::time::Duration;

use evidentsource_domain::{DatabaseName, Error, ErrorCode, Transaction, quote};
use evidentsource_proto::{Message, TransactRequest};
use evidentsource_storage::{Deadline, Store, StoreError};
use lambda_http::{
    Body, Request, RequestExt, Response,
    http::{HeaderValue, Method},
};
use metrics::{CommitMeasure, RequestMetrics};
use serde::Serialize;
use serde_json::json;
use tracing::{Instrument, field};

pub use problem::PROBLEM_JSON;
pub use query::{QueryInput, parse_query};
pub use routes::ROUTES;
use routes::template_of;

/// Largest request body accepted (413 beyond): 1 MiB of event data as base64
/// in JSON, plus the events' attributes, fits with room to spare.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The function's `Timeout` in `template.yaml`: the deadline of a request
/// that comes without a Lambda context (the local runner, tests).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The function's state, built once per cold start.
pub struct App {
    store: Store,
    submit: Option<submit::AsyncSubmit>,
    timeout: Duration,
}

/// A refused request: the status and the error for the problem body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: Error,
    /// With a 405: the methods the path takes, for the `Allow` header.
    pub allow: Option<String>,
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal {
            status: error.code.http_status(),
            error,
            allow: None,
        }
    }
}

impl Refusal {
    fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            error: Error::new(code, None, message),
            allow: None,
        }
    }

    fn with_allow(mut self, allow: String) -> Self {
        self.allow = Some(allow);
        self
    }

    fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Error::invalid_argument(field, message).into()
    }
}

/// Storage errors: rejections at their code's status; transient trouble as
/// 503 (retry; with a transaction id it is safe); faults as 500.
impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Rejected(e) => e.clone().into(),
            StoreError::Unavailable(_) => {
                // The details (DynamoDB's own words) go to the log only.
                tracing::warn!(
                    error = %error,
                    "storage unavailable: answered 503, clients retry (if this persists, check \
                     DynamoDB throttling and the table's capacity)"
                );
                Refusal::new(
                    503,
                    ErrorCode::Internal,
                    "storage is unavailable or the database too busy to answer in time; retry \
                     after the retry-after delay (with the same transaction_id a retry never \
                     commits twice)",
                )
            }
            StoreError::Fault(_) | StoreError::Misconfigured(_) => {
                // DynamoDB's words can name the account, the role and the
                // table (an access denial quotes all three): the log gets
                // them, under the request id; the caller gets the id.
                tracing::error!(
                    error = %error,
                    "storage fault: answered 500 (check the function's table permissions and \
                     TABLE_NAME; the error names DynamoDB's code)"
                );
                Refusal::new(
                    500,
                    ErrorCode::Internal,
                    "the request failed inside the service; the cause is logged under this \
                     request's request_id",
                )
            }
        }
    }
}

type Answer = Result<Response<Body>, Refusal>;

impl App {
    pub fn new(store: Store) -> Self {
        App {
            store,
            submit: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The function's timeout, for requests without a Lambda context.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Enables `?mode=async` on the transactions route.
    pub fn with_async_submit(mut self, submit: submit::AsyncSubmit) -> Self {
        self.submit = Some(submit);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Routes a request. Never fails: every error is a problem response.
    /// Works against the invocation's deadline (Lambda's, less
    /// [`Deadline::MARGIN`]; without a Lambda context, the function's
    /// timeout from now): past it, storage answers 503.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let deadline = self.deadline_of(&request);
        self.handle_until(request, deadline).await
    }

    /// The request's deadline: Lambda's, less [`Deadline::MARGIN`], or
    /// without a Lambda context the function's timeout from now.
    pub fn deadline_of(&self, request: &Request) -> Deadline {
        match request.lambda_context_ref() {
            Some(context) => Deadline::from_lambda(context.deadline()),
            None => Deadline::for_timeout(self.timeout),
        }
    }

    /// [`App::handle`] against an explicit deadline.
    pub async fn handle_until(&self, request: Request, deadline: Deadline) -> Response<Body> {
        self.handle_measured(request, deadline).await.0
    }

    /// [`App::handle_until`], also returning the request's metrics (one
    /// EMF record per invocation: the caller emits it).
    pub async fn handle_measured(
        &self,
        request: Request,
        deadline: Deadline,
    ) -> (Response<Body>, RequestMetrics) {
        let started = tokio::time::Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        // Lambda's request id: what an operator searches the logs for.
        let request_id = request
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty());
        let call = Call {
            store: self.store.with_deadline(deadline),
            deadline,
            metrics: RequestMetrics::default(),
        };
        // Every line of the request carries its database (and, once the
        // body is read, its transaction id); Lambda's span adds the
        // request id.
        let span = tracing::info_span!(
            "request",
            database = field::Empty,
            transaction_id = field::Empty
        );
        if let ["databases", name, ..] = path.trim_matches('/').split('/').collect::<Vec<_>>()[..]
            && DatabaseName::parse(name).is_ok()
        {
            span.record("database", name);
        }
        let routed = self
            .route(&call, &method, &path, request)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        let mut metrics = call.metrics;
        let response = match routed {
            Ok(response) => response,
            Err(Refusal {
                status,
                error,
                allow,
            }) => {
                metrics.error_code = Some(error.code);
                let id = request_id.as_deref().filter(|_| status >= 500);
                let mut response = problem::problem(status, &error, id);
                if let Some(allow) = allow
                    && let Ok(allow) = HeaderValue::from_str(&allow)
                {
                    response.headers_mut().insert("allow", allow);
                }
                response
            }
        };
        if response.status().is_server_error() {
            tracing::error!(
                %method,
                path,
                status = response.status().as_u16(),
                request_id = request_id.as_deref().unwrap_or("-"),
                "request failed: the cause is logged above under the same request id"
            );
        }
        metrics.status = response.status().as_u16();
        metrics.latency = started.elapsed();
        (response, metrics)
    }

    async fn route(&self, call: &Call, method: &Method, path: &str, request: Request) -> Answer {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let Some(template) = template_of(&segments) else {
            return Err(Refusal::new(
                404,
                ErrorCode::NotFound,
                format!("no route {method} {path}"),
            ));
        };
        // Every template but `/databases` names the database second.
        let name = || path_name(segments.get(1).copied().unwrap_or_default());
        match (method.as_str(), template) {
            ("POST", "/databases") => self.create(call, &request).await,
            ("GET", "/databases/{name}") => self.get(call, &name()?).await,
            ("DELETE", "/databases/{name}") => self.delete(call, &name()?).await,
            ("POST", "/databases/{name}/transactions") => {
                self.transact(call, &name()?, &request).await
            }
            ("POST", "/databases/{name}/query") => query::query(call, &name()?, &request).await,
            ("GET", "/databases/{name}/events") => self.events(call, &name()?, &request).await,
            _ => {
                let allow: Vec<&str> = ROUTES
                    .iter()
                    .filter(|(_, t)| *t == template)
                    .map(|(m, _)| *m)
                    .collect();
                let allow = allow.join(", ");
                Err(
                    Refusal::new(405, ErrorCode::InvalidArgument, format!("allowed: {allow}"))
                        .with_allow(allow),
                )
            }
        }
    }

    async fn create(&self, call: &Call, request: &Request) -> Answer {
        match content_type(request).as_deref() {
            None | Some("application/json") => {}
            Some(other) => {
                return Err(Refusal::new(
                    415,
                    ErrorCode::InvalidArgument,
                    format!("content-type {}: send application/json", quote(other)),
                ));
            }
        }
        let name = json::create_request(body_bytes(request)?)?;
        let name = DatabaseName::parse_field("name", name)?;
        let db = call.store.create_database(&name).await?;
        Ok(json_response(201, &json::DatabaseJson::from(&db)))
    }

    async fn get(&self, call: &Call, name: &DatabaseName) -> Answer {
        let db = call.store.get_database(name).await?;
        Ok(json_response(200, &json::DatabaseJson::from(&db)))
    }

    async fn delete(&self, call: &Call, name: &DatabaseName) -> Answer {
        let db = call.store.delete_database(name).await?;
        Ok(json_response(200, &json::DatabaseJson::from(&db)))
    }

    async fn transact(&self, call: &Call, name: &DatabaseName, request: &Request) -> Answer {
        let asynchronous = match query_param(request, "mode").as_deref() {
            None | Some("sync") => false,
            Some("async") => true,
            Some(other) => {
                return Err(Refusal::invalid(
                    "mode",
                    format!("{other:?} is not a mode (sync, async)"),
                ));
            }
        };
        let transaction = parse_transaction(name, request, &self.store.config().limits)?;
        if let Some(id) = &transaction.transaction_id {
            tracing::Span::current().record("transaction_id", id.as_str());
        }
        if asynchronous {
            let submit = self.submit.as_ref().ok_or_else(|| {
                Refusal::new(
                    503,
                    ErrorCode::Internal,
                    "async submit is not configured on this deployment (KAFKA_BROKERS)",
                )
            })?;
            let xray = request
                .lambda_context_ref()
                .and_then(|c| c.xray_trace_id.as_deref());
            let trace = submit::trace_context(request.headers(), xray);
            let confirmed = tokio::time::timeout_at(
                call.deadline.instant(),
                submit.submit(&transaction, trace.as_ref()),
            );
            let correlation_id = confirmed.await.map_err(|_| {
                Refusal::new(
                    503,
                    ErrorCode::Internal,
                    "the broker did not confirm the command before the request's deadline; it \
                     may still be queued: retry with a transaction_id to be safe",
                )
            })??;
            return Ok(json_response(
                202,
                &json!({ "correlation_id": correlation_id }),
            ));
        }
        let started = tokio::time::Instant::now();
        let result = call.store.transact_measured(&transaction).await;
        call.metrics.set_commit(CommitMeasure::of(
            &result.as_ref().map(|(_, cost)| cost.clone()),
            started.elapsed(),
        ));
        let (summary, _) = result?;
        Ok(json_response(200, &json::BatchSummaryJson::from(&summary)))
    }

    async fn events(&self, call: &Call, name: &DatabaseName, request: &Request) -> Answer {
        let number = |field: &str, default: u64| -> Result<u64, Refusal> {
            match query_param(request, field) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| {
                    Refusal::invalid(
                        field,
                        format!("{v:?} is not a revision (an unsigned integer)"),
                    )
                }),
            }
        };
        let (from, to) = (number("from", 1)?, number("to", u64::MAX)?);
        let events = call.store.read_events(name, from, to).await?;
        let max_events = call.store.config().max_read_events as usize;
        let page = page::cut(
            events.iter().map(json::cloudevent_to_json),
            page::MAX_BODY_BYTES,
        );
        // More to read: the page was cut by size, or it is full by count and
        // `to` lies beyond it.
        let next = match page.last_revision {
            Some(last) if page.cut || (events.len() == max_events && last < to) => Some(last + 1),
            _ => None,
        };
        let mut response = Response::builder()
            .status(200)
            .header("content-type", "application/cloudevents-batch+json");
        if let Some(next) = next {
            let mut link = format!("</databases/{name}/events?from={next}");
            if to != u64::MAX {
                link.push_str(&format!("&to={to}"));
            }
            link.push_str(">; rel=\"next\"");
            response = response.header("link", link);
        }
        Ok(response
            .body(Body::Text(page.body))
            .unwrap_or_else(|_| Response::new(Body::Empty)))
    }
}

/// One request's view: the store bound to its deadline.
struct Call {
    store: Store,
    deadline: Deadline,
    metrics: RequestMetrics,
}

/// Reads and validates a transact request body (JSON or protobuf).
pub fn parse_transaction(
    name: &DatabaseName,
    request: &Request,
    limits: &evidentsource_domain::Limits,
) -> Result<Transaction, Refusal> {
    let body = body_bytes(request)?;
    let parsed = match content_type(request).as_deref() {
        Some("application/protobuf" | "application/x-protobuf") => {
            match TransactRequest::decode(body) {
                Ok(mut r) if r.database_name.is_empty() || r.database_name == name.as_str() => {
                    r.database_name = name.to_string();
                    Ok(r)
                }
                Ok(r) => Err(Error::invalid_argument(
                    "database_name",
                    format!(
                        "{:?} differs from the path's {:?}",
                        r.database_name,
                        name.as_str()
                    ),
                )),
                Err(e) => Err(Error::invalid_argument(
                    "body",
                    format!("is not a TransactRequest: {e}"),
                )),
            }
        }
        None | Some("application/json") => json::transact_request(name.as_str(), body),
        Some(other) => {
            return Err(Refusal::new(
                415,
                ErrorCode::InvalidArgument,
                format!(
                    "content-type {}: send application/json or application/protobuf",
                    quote(other)
                ),
            ));
        }
    };
    Ok(parsed.and_then(|r| Transaction::from_request(r, limits))?)
}

fn body_bytes(request: &Request) -> Result<&[u8], Refusal> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Refusal::new(
            413,
            ErrorCode::InvalidArgument,
            format!(
                "the body is {} bytes; the limit is {MAX_BODY_BYTES}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

fn path_name(name: &str) -> Result<DatabaseName, Refusal> {
    Ok(DatabaseName::parse_field("name", name)?)
}

/// The request's media type (`content-type` without parameters), lowercase.
fn content_type(request: &Request) -> Option<String> {
    request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

fn query_param(request: &Request, name: &str) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(serde_json::to_string(body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
