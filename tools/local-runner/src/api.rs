//! The HTTP API as API Gateway (HTTP API, payload format 2.0) serves it: a
//! request on a route of the template (`ANY /databases`,
//! `ANY /databases/{proxy+}`) becomes the API Gateway event the function
//! receives in AWS ([`event`]), parsed by `lambda_http` itself, so that the
//! router sees exactly what it sees behind API Gateway; its response goes
//! back as API Gateway returns it.
//!
//! What API Gateway answers itself, without the function's say:
//!
//! | request or invocation | answer |
//! |---|---|
//! | no, several or a malformed `Host`; a body that cannot be read | 400 `Bad Request` |
//! | a path outside the routes | 404 `Not Found` |
//! | a body over the 10 MB payload limit | 413 `Request Entity Too Large` |
//! | the function fails, or Lambda stops it at its `Timeout` | 500 `Internal Server Error` |
//! | no answer within the integration's `TimeoutInMillis` (at most 30 s) | 503 `Service Unavailable` |
//!
//! A function timeout is an invocation error like any other (Lambda reports
//! "Task timed out"), hence 500; 503 is the gateway giving up waiting, and
//! the function runs on until its own timeout, as in AWS. Requests that
//! HTTP/1.1 itself cannot parse get hyper's bare 400.

mod event;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

pub use event::{gateway_event, to_http};
use evidentsource_command_ingestion::App;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::{
    Request, Response, StatusCode, Version,
    body::{Body as _, Bytes, Incoming},
    header::{HOST, HeaderValue},
    http::uri::Authority,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use lambda_http::Body;
use serde_json::json;
use tokio::{net::TcpListener, sync::watch};

/// API Gateway's payload limit for HTTP APIs.
pub const MAX_PAYLOAD: usize = 10 * 1024 * 1024;

/// An HTTP API integration's timeout when the template sets none (and its
/// largest value).
pub const DEFAULT_INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How the gateway in front of the function behaves.
#[derive(Debug, Clone, Copy)]
pub struct Gateway {
    /// The function's `Timeout`: Lambda stops the handler then.
    pub function_timeout: Duration,
    /// The integration's `TimeoutInMillis`: the gateway stops waiting then.
    pub integration_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    gateway: Gateway,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(gateway.answer(&app, request, peer).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// API Gateway's own error responses (not from the function).
fn gateway_error(status: StatusCode) -> Response<Full<Bytes>> {
    let message = match status {
        // API Gateway's wording, older than the RFC 9110 name.
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        other => other.canonical_reason().unwrap_or("Error"),
    };
    let mut response = Response::new(Full::new(Bytes::from(
        json!({ "message": message }).to_string(),
    )));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// The route of the template a path falls under, if any.
pub fn route_of(path: &str) -> Option<(&'static str, Option<&str>)> {
    if path == "/databases" {
        return Some(("ANY /databases", None));
    }
    path.strip_prefix("/databases/")
        .filter(|rest| !rest.is_empty())
        .map(|rest| ("ANY /databases/{proxy+}", Some(rest)))
}

/// Whether the request names its host as HTTP requires (RFC 9112 §3.2:
/// exactly one `Host`, an authority without user info; HTTP/1.0 may omit
/// it). The function builds its URL from it, so an unusable one never
/// reaches the function.
pub fn host_is_valid(version: Version, hosts: &[&[u8]]) -> bool {
    match hosts {
        [] => version < Version::HTTP_11,
        [host] => {
            let Ok(host) = std::str::from_utf8(host) else {
                return false;
            };
            // As lambda_http parses it (http::uri and WHATWG URL differ:
            // both must accept it).
            !host.is_empty()
                && !host.contains('@')
                && host.parse::<Authority>().is_ok()
                && url::Url::parse(&format!("http://{host}/")).is_ok()
        }
        _ => false,
    }
}

/// Why a request body could not be read: over the payload limit (413) or
/// anything else, a connection cut short or bad chunking (400).
pub fn body_error_status(error: &(dyn std::error::Error + 'static)) -> StatusCode {
    if error.is::<LengthLimitError>() {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// How an invocation ended, as the gateway saw it.
#[derive(Debug)]
pub enum Invocation {
    Returned(lambda_http::Response<Body>),
    /// The function failed (here: its handler panicked).
    Failed,
    /// Lambda stopped the function at its `Timeout`.
    FunctionTimedOut,
    /// The gateway stopped waiting at the integration timeout.
    IntegrationTimedOut,
}

/// What API Gateway answers for an invocation.
pub fn answer_for(invocation: Invocation) -> Response<Full<Bytes>> {
    match invocation {
        Invocation::Returned(response) => to_http(response),
        Invocation::Failed | Invocation::FunctionTimedOut => {
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Invocation::IntegrationTimedOut => gateway_error(StatusCode::SERVICE_UNAVAILABLE),
    }
}

impl Gateway {
    async fn answer(
        &self,
        app: &Arc<App>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let hosts: Vec<&[u8]> = parts
            .headers
            .get_all(HOST)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if !host_is_valid(parts.version, &hosts) {
            return gateway_error(StatusCode::BAD_REQUEST);
        }
        let Some((route_key, proxy)) = route_of(parts.uri.path()) else {
            return gateway_error(StatusCode::NOT_FOUND);
        };
        // A declared length over the limit is refused before reading it.
        if body.size_hint().lower() > MAX_PAYLOAD as u64 {
            return gateway_error(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let body = match Limited::new(body, MAX_PAYLOAD).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                tracing::debug!(error = %e, "reading the request body failed");
                return gateway_error(body_error_status(e.as_ref()));
            }
        };
        let event = gateway_event(&parts, &body, route_key, proxy, peer).to_string();
        // lambda_http panics on what it cannot represent; the checks above
        // keep such requests out, and this keeps the answer if one slips by.
        let parsed = std::panic::catch_unwind(|| lambda_http::request::from_str(&event));
        let request = match parsed {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "lambda_http refused the gateway event");
                return gateway_error(StatusCode::INTERNAL_SERVER_ERROR);
            }
            Err(_) => {
                tracing::error!(event, "lambda_http panicked on the gateway event");
                return gateway_error(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        answer_for(self.invoke(app.clone(), request).await)
    }

    /// Runs the function as Lambda does, stopped at its timeout, and waits
    /// for it as API Gateway does, at most the integration timeout. The
    /// invocation is not stopped when the gateway stops waiting.
    async fn invoke(&self, app: Arc<App>, request: lambda_http::Request) -> Invocation {
        let function_timeout = self.function_timeout;
        let invocation = tokio::spawn(async move {
            tokio::time::timeout(function_timeout, async {
                let deadline = app.deadline_of(&request);
                let (response, metrics) = app.handle_measured(request, deadline).await;
                // One record per invocation, as the function's main emits it.
                metrics.for_invocation().emit();
                response
            })
            .await
        });
        match tokio::time::timeout(self.integration_timeout, invocation).await {
            Ok(Ok(Ok(response))) => Invocation::Returned(response),
            Ok(Ok(Err(_))) => {
                tracing::error!(timeout = ?function_timeout, "the function timed out");
                Invocation::FunctionTimedOut
            }
            Ok(Err(panicked)) => {
                tracing::error!(error = %panicked, "the function failed");
                Invocation::Failed
            }
            Err(_) => {
                tracing::error!(timeout = ?self.integration_timeout, "the integration timed out");
                Invocation::IntegrationTimedOut
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_decides_between_the_function_and_400() {
        let v11 = Version::HTTP_11;
        let table: &[(Version, &[&[u8]], bool)] = &[
            (v11, &[b"127.0.0.1:8080"], true),
            (v11, &[b"api.example.com"], true),
            (v11, &[b"[::1]:3000"], true),
            (v11, &[], false),
            (Version::HTTP_10, &[], true),
            (v11, &[b""], false),
            (v11, &[b"bad host"], false),
            (v11, &[b"\xff\xfe"], false),
            (v11, &[b"a/b"], false),
            (v11, &[b"a?b"], false),
            (v11, &[b"user@host"], false),
            (v11, &[b"127.0.0.1:99999"], false),
            (v11, &[b"a%20b"], false),
            (v11, &[b"[::1"], false),
            (v11, &[b"a", b"b"], false),
        ];
        for (version, hosts, valid) in table {
            assert_eq!(
                host_is_valid(*version, hosts),
                *valid,
                "{version:?} {:?}",
                hosts
                    .iter()
                    .map(|h| String::from_utf8_lossy(h))
                    .collect::<Vec<_>>()
            );
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn only_an_oversized_body_is_413() {
        let over = block_on(Limited::new(Full::new(Bytes::from_static(b"12345")), 4).collect())
            .unwrap_err();
        assert_eq!(
            body_error_status(over.as_ref()),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let cut = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "cut");
        assert_eq!(body_error_status(&cut), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn failures_and_timeouts_are_answered_as_an_http_api_does() {
        let table = [
            (Invocation::Failed, 500, "Internal Server Error"),
            (Invocation::FunctionTimedOut, 500, "Internal Server Error"),
            (Invocation::IntegrationTimedOut, 503, "Service Unavailable"),
        ];
        for (invocation, status, message) in table {
            let what = format!("{invocation:?}");
            let response = answer_for(invocation);
            assert_eq!(response.status(), status, "{what}");
            assert_eq!(response.headers()["content-type"], "application/json");
            let body = block_on(response.into_body().collect()).unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body, json!({ "message": message }), "{what}");
        }
        let returned = answer_for(Invocation::Returned(
            lambda_http::Response::builder()
                .status(409)
                .body(Body::Empty)
                .unwrap(),
        ));
        assert_eq!(returned.status(), 409);
    }
}
