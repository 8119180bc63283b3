//! Cold start: from exec of a release Lambda binary to its first request to
//! the Runtime API (ready) and to its first response (first event handled),
//! against a minimal Lambda Runtime API emulator on 127.0.0.1.

use std::{
    collections::HashMap,
    convert::Infallible,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::oneshot};

/// One function start.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub ready: Duration,
    pub handled: Duration,
    /// The function's answer (the response or error body).
    pub answer: String,
    pub error: bool,
}

struct Emulator {
    event: String,
    started: Instant,
    ready: Option<Duration>,
    served: bool,
    done: Option<oneshot::Sender<(Duration, String, bool)>>,
}

/// Starts `binary` with `env` against an emulator that hands it `event`;
/// returns when it answered (or after `timeout`). The process is killed.
pub async fn measure(
    binary: &Path,
    env: &HashMap<String, String>,
    event: &str,
    timeout: Duration,
) -> Result<ColdStart, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (done_tx, done_rx) = oneshot::channel();
    let state = Arc::new(Mutex::new(Emulator {
        event: event.to_owned(),
        started: Instant::now(),
        ready: None,
        served: false,
        done: Some(done_tx),
    }));
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let state = server_state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(answer(&state, request).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    state.lock().unwrap().started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let result = tokio::time::timeout(timeout, done_rx).await;
    let _ = child.kill().await;
    server.abort();
    let (handled, answer, error) = result
        .map_err(|_| format!("{}: no answer within {timeout:?}", binary.display()))?
        .map_err(|_| "emulator stopped".to_owned())?;
    let ready = state.lock().unwrap().ready.unwrap_or(handled);
    Ok(ColdStart {
        ready,
        handled,
        answer,
        error,
    })
}

async fn answer(
    state: &Arc<Mutex<Emulator>>,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let event = {
            let mut s = state.lock().unwrap();
            let elapsed = s.started.elapsed();
            s.ready.get_or_insert(elapsed);
            if s.served {
                None
            } else {
                s.served = true;
                Some(s.event.clone())
            }
        };
        let Some(event) = event else {
            // One event per start: the next poll waits until the kill.
            std::future::pending::<()>().await;
            unreachable!()
        };
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + Duration::from_secs(60);
        return Response::builder()
            .header("lambda-runtime-aws-request-id", "bench-request-1")
            .header(
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            )
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(Bytes::from(event)))
            .unwrap_or_default();
    }
    let error = path.ends_with("/error");
    if path.ends_with("/response") || error {
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut s = state.lock().unwrap();
        let elapsed = s.started.elapsed();
        if let Some(done) = s.done.take() {
            let _ = done.send((elapsed, String::from_utf8_lossy(&body).into_owned(), error));
        }
        return Response::builder()
            .status(202)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    Response::builder()
        .status(404)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// Sizes of the release binaries (symbols stripped by the release profile).
pub fn size(binary: &Path) -> u64 {
    std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0)
}
