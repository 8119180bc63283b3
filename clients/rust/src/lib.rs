//! A client for the EvidentSource serverless HTTP API (docs/api.md).
//!
//! ```no_run
//! # async fn run() -> Result<(), evidentsource_client::ClientError> {
//! use evidentsource_client::{Client, Event, Selector};
//!
//! let client = Client::new("http://127.0.0.1:3000")?;
//! client.create_database("flights").await?;
//! let seats = Selector::SubjectEquals("flight-42".into());
//! client
//!     .decide_and_append("flights", &seats, |events| {
//!         let seat = events.len() + 1;
//!         Some(vec![
//!             Event::new("https://example.com/seats", "seat-reserved", format!("seat-{seat}"))
//!                 .subject("flight-42"),
//!         ])
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

mod dcb;
mod error;
#[cfg(feature = "kafka")]
pub mod kafka;
mod model;
mod retry;
mod sign;
mod transport;

pub use dcb::{DEFAULT_DCB_ATTEMPTS, Decided};
pub use error::{ClientError, ErrorCode};
pub use model::{
    BatchSummary, Bound, Condition, Database, Event, EventsPage, QueryPage, QueryResult, Selector,
};
pub use retry::RetryPolicy;

use std::time::Duration;

use model::{QueryBody, TransactBody};
use serde::de::DeserializeOwned;
use serde_json::json;
use transport::{Answer, Transport};

/// The most events a query page may hold (and the default the client asks
/// for when paging through everything).
pub const MAX_QUERY_LIMIT: u32 = 1000;

/// A handle on one API endpoint. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport,
    /// The endpoint without a trailing `/` (it may hold a stage path).
    base: String,
    retry: RetryPolicy,
}

impl Client {
    /// A client for an endpoint that takes unsigned requests (the local
    /// stack, or an API without `AWS_IAM` authorization).
    pub fn new(endpoint: &str) -> Result<Self, ClientError> {
        Ok(Client {
            transport: Transport::new(None)?,
            base: endpoint.trim_end_matches('/').to_owned(),
            retry: RetryPolicy::default(),
        })
    }

    /// A client that signs every request with SigV4 for `execute-api` in
    /// `region`, with credentials from the standard AWS chain.
    pub async fn with_sigv4(endpoint: &str, region: &str) -> Result<Self, ClientError> {
        let signer = sign::Signer::from_default_chain(region).await?;
        Ok(Client {
            transport: Transport::new(Some(signer))?,
            base: endpoint.trim_end_matches('/').to_owned(),
            retry: RetryPolicy::default(),
        })
    }

    /// A client that signs every request with SigV4 for `execute-api` in
    /// `region`, with credentials from `credentials` (static ones, a role
    /// assumed by hand, a provider of your own).
    pub fn with_credentials(
        endpoint: &str,
        region: &str,
        credentials: impl aws_credential_types::provider::ProvideCredentials + 'static,
    ) -> Result<Self, ClientError> {
        let signer = sign::Signer {
            credentials: aws_credential_types::provider::SharedCredentialsProvider::new(
                credentials,
            ),
            region: region.to_owned(),
        };
        Ok(Client {
            transport: Transport::new(Some(signer))?,
            base: endpoint.trim_end_matches('/').to_owned(),
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long one attempt may wait for its answer (default 30 s; the
    /// API answers within its function's timeout).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.transport.attempt_timeout = timeout;
        self
    }

    /// `POST /databases`. Retried like every call; a retry after a lost
    /// answer to a create that succeeded gets 409 `ALREADY_EXISTS`.
    pub async fn create_database(&self, name: &str) -> Result<Database, ClientError> {
        let body = json!({ "name": name }).to_string();
        self.call("POST", "/databases".into(), Some(body), &[201])
            .await
            .and_then(|a| decode(&a))
    }

    /// `GET /databases/{name}`: the latest state.
    pub async fn get_database(&self, name: &str) -> Result<Database, ClientError> {
        self.call("GET", format!("/databases/{name}"), None, &[200])
            .await
            .and_then(|a| decode(&a))
    }

    /// `DELETE /databases/{name}`: the database's final state.
    pub async fn delete_database(&self, name: &str) -> Result<Database, ClientError> {
        self.call("DELETE", format!("/databases/{name}"), None, &[200])
            .await
            .and_then(|a| decode(&a))
    }

    /// `POST /databases/{name}/transactions`: appends `events` if every
    /// condition holds. Without a `transaction_id` one is generated; the
    /// retries of this call reuse it, so the batch commits at most once.
    pub async fn transact(
        &self,
        name: &str,
        events: &[Event],
        conditions: &[Condition],
        transaction_id: Option<&str>,
    ) -> Result<BatchSummary, ClientError> {
        let generated;
        let transaction_id = match transaction_id {
            Some(id) => id,
            None => {
                generated = uuid::Uuid::new_v4().to_string();
                &generated
            }
        };
        let body = serde_json::to_string(&TransactBody {
            transaction_id,
            events,
            conditions,
        })
        .map_err(|e| ClientError::Request(e.to_string()))?;
        self.call(
            "POST",
            format!("/databases/{name}/transactions"),
            Some(body),
            &[200],
        )
        .await
        .and_then(|a| decode(&a))
    }

    /// `GET /databases/{name}/events`: one page of the events with
    /// revisions `from` (default 1) to `to` (default the latest).
    pub async fn events(
        &self,
        name: &str,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Result<EventsPage, ClientError> {
        let mut query = Vec::new();
        if let Some(from) = from {
            query.push(format!("from={from}"));
        }
        if let Some(to) = to {
            query.push(format!("to={to}"));
        }
        let mut path = format!("/databases/{name}/events");
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        let answer = self.call("GET", path, None, &[200]).await?;
        Ok(EventsPage {
            events: decode(&answer)?,
            next_from: answer.link_next.as_deref().and_then(next_from_link),
        })
    }

    /// Every event with revisions `from` to `to`: follows the pages.
    pub async fn all_events(
        &self,
        name: &str,
        from: Option<u64>,
        to: Option<u64>,
    ) -> Result<Vec<Event>, ClientError> {
        let mut page = self.events(name, from, to).await?;
        let mut events = std::mem::take(&mut page.events);
        while let Some(next) = page.next_from {
            page = self.events(name, Some(next), to).await?;
            events.append(&mut page.events);
        }
        Ok(events)
    }

    /// `POST /databases/{name}/query`: one page of the events matching
    /// `selector` from revision `from` (default 1), at most `limit`
    /// (1–1000, default 100).
    pub async fn query(
        &self,
        name: &str,
        selector: &Selector,
        from: Option<u64>,
        limit: Option<u32>,
    ) -> Result<QueryPage, ClientError> {
        let body = serde_json::to_string(&QueryBody {
            selector,
            from: from.unwrap_or(1),
            limit: limit.unwrap_or(100),
        })
        .map_err(|e| ClientError::Request(e.to_string()))?;
        self.call(
            "POST",
            format!("/databases/{name}/query"),
            Some(body),
            &[200],
        )
        .await
        .and_then(|a| decode(&a))
    }

    /// Every event matching `selector`, consistent with one revision: the
    /// pages of [`Client::query`] followed until `next_from` is `None`.
    /// Each page is read as of its own revision; the result's `as_of` is
    /// the last (highest) one: every match up to it has been read, so
    /// `Max(selector, as_of)` is exactly "nothing new since this read".
    pub async fn query_all(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<QueryResult, ClientError> {
        let mut result = QueryResult {
            as_of: 0,
            events: Vec::new(),
        };
        let mut from = None;
        loop {
            let page = self
                .query(name, selector, from, Some(MAX_QUERY_LIMIT))
                .await?;
            match result.extend(page) {
                Some(next) => from = Some(next),
                None => return Ok(result),
            }
        }
    }

    /// One request with the retry policy: 503s and transport faults are
    /// sent again (the same bytes, so the same transaction id) after a
    /// backoff; any other answer outside `ok` is the typed error.
    async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Option<String>,
        ok: &[u16],
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        let body = bytes::Bytes::from(body.unwrap_or_default());
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (outcome, error, retry_after) =
                match self.transport.send(method, &url, body.clone()).await {
                    Ok(answer) if ok.contains(&answer.status) => return Ok(answer),
                    Ok(answer) => (
                        retry::Outcome::Status(answer.status),
                        error::from_response(answer.status, &answer.body),
                        answer.retry_after,
                    ),
                    Err(transport::SendError::Transport(e)) => {
                        (retry::Outcome::Transport, ClientError::Transport(e), None)
                    }
                    Err(transport::SendError::Fatal(e)) => return Err(e),
                };
            if !retry::is_retryable(outcome) {
                return Err(error);
            }
            match self
                .retry
                .delay(attempt, started.elapsed(), retry_after, fastrand::f64())
            {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(error),
            }
        }
    }
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, ClientError> {
    serde_json::from_slice(&answer.body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// The `from` of a `Link: </databases/x/events?from=N&to=M>; rel="next"`.
fn next_from_link(link: &str) -> Option<u64> {
    let target = link.split(';').next()?.trim();
    let query = target
        .strip_prefix('<')?
        .strip_suffix('>')?
        .split_once('?')?
        .1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("from="))
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_is_read_off_the_link_header() {
        for (link, expected) in [
            (r#"</databases/a/events?from=1001>; rel="next""#, Some(1001)),
            (r#"</databases/a/events?from=7&to=9>; rel="next""#, Some(7)),
            (r#"</databases/a/events?to=9&from=8>; rel="next""#, Some(8)),
            (r#"</databases/a/events>; rel="next""#, None),
            ("garbage", None),
        ] {
            assert_eq!(next_from_link(link), expected, "{link}");
        }
    }
}
