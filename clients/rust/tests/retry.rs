//! Retries against a scripted server: which answers are sent again, that a
//! transaction is resent byte for byte (its generated transaction id
//! included), and that the attempts are bounded. No local stack needed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use evidentsource_client::{Client, ClientError, ErrorCode, Event, RetryPolicy};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// One scripted answer: a status and body, or closing the connection
/// without a word (a transport fault).
#[derive(Clone, Copy)]
enum Step {
    Answer(u16, &'static str),
    Hangup,
}

const SUMMARY: &str =
    r#"{"id":"b-1","database":"db","basis":0,"revision":1,"event_count":1,"recorded_time":null}"#;
const UNAVAILABLE: &str = r#"{"code":"INTERNAL","status":503,"detail":"busy"}"#;

/// A server that answers the n-th request with `script[n]` (the last step
/// repeats) and records each request's body.
async fn scripted(script: Vec<Step>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = seen.lock().unwrap().len();
            let step = script[n.min(script.len() - 1)];
            // A client that gave up mid-request is no request.
            let _ = read_request(stream, step, &seen).await;
        }
    });
    (url, bodies)
}

async fn read_request(mut stream: TcpStream, step: Step, seen: &Mutex<Vec<String>>) -> Option<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        buffer.extend_from_slice(&chunk[..n]);
    }
    seen.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&buffer[head_end..]).into_owned());
    heads().lock().unwrap().push(head);
    if let Step::Answer(status, body) = step {
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await.ok()?;
    }
    Some(())
}

/// Every request head the scripted servers saw (lower-cased), per test
/// binary: only the signing test reads it, and only its own server's.
fn heads() -> &'static Mutex<Vec<String>> {
    static HEADS: std::sync::OnceLock<Mutex<Vec<String>>> = std::sync::OnceLock::new();
    HEADS.get_or_init(Default::default)
}

fn client(url: &str, max_attempts: u32) -> Client {
    Client::new(url).unwrap().with_retry_policy(RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_elapsed: Duration::from_secs(10),
    })
}

fn event() -> Event {
    Event::new("https://example.com/x/s", "t", "e-1")
}

#[tokio::test]
async fn a_transaction_is_resent_unchanged_after_503s_and_hangups() {
    let (url, bodies) = scripted(vec![
        Step::Answer(503, UNAVAILABLE),
        Step::Hangup,
        Step::Answer(200, SUMMARY),
    ])
    .await;
    let summary = client(&url, 5)
        .transact("db", &[event()], &[], None)
        .await
        .unwrap();
    assert_eq!(summary.revision, 1);
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 3);
    let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let id = first["transaction_id"].as_str().unwrap();
    assert!(!id.is_empty());
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
}

#[tokio::test]
async fn only_503_and_transport_faults_are_retried() {
    for (status, body, code) in [
        (
            400,
            r#"{"code":"INVALID_ARGUMENT","field":"events"}"#,
            ErrorCode::InvalidArgument,
        ),
        (404, r#"{"code":"NOT_FOUND"}"#, ErrorCode::NotFound),
        (
            409,
            r#"{"code":"FAILED_PRECONDITION"}"#,
            ErrorCode::FailedPrecondition,
        ),
        (
            500,
            r#"{"code":"INTERNAL","request_id":"r-1"}"#,
            ErrorCode::Internal,
        ),
    ] {
        let (url, bodies) =
            scripted(vec![Step::Answer(status, body), Step::Answer(200, SUMMARY)]).await;
        let error = client(&url, 5)
            .transact("db", &[event()], &[], None)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some(code), "{status}");
        assert_eq!(bodies.lock().unwrap().len(), 1, "{status} was retried");
    }
}

#[tokio::test]
async fn retries_are_bounded() {
    let (url, bodies) = scripted(vec![Step::Answer(503, UNAVAILABLE)]).await;
    let error = client(&url, 3)
        .transact("db", &[event()], &[], Some("t-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Api {
                status: 503,
                code: ErrorCode::Internal,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(bodies.lock().unwrap().len(), 3);

    let (url, bodies) = scripted(vec![Step::Hangup]).await;
    let error = client(&url, 2).get_database("db").await.unwrap_err();
    assert!(matches!(error, ClientError::Transport(_)), "{error:?}");
    assert_eq!(bodies.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_signing_client_signs_every_attempt() {
    let (url, bodies) = scripted(vec![
        Step::Answer(503, UNAVAILABLE),
        Step::Answer(200, SUMMARY),
    ])
    .await;
    let credentials =
        aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let client = Client::with_credentials(&url, "eu-west-1", credentials)
        .unwrap()
        .with_retry_policy(RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        });
    client.transact("db", &[event()], &[], None).await.unwrap();
    assert_eq!(bodies.lock().unwrap().len(), 2);
    let port = url.rsplit(':').next().unwrap();
    let heads: Vec<String> = heads()
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.contains(&format!("host: 127.0.0.1:{port}")))
        .cloned()
        .collect();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in heads {
        assert!(
            head.contains("authorization: aws4-hmac-sha256 credential=akidexample/")
                && head.contains("/eu-west-1/execute-api/aws4_request"),
            "{head}"
        );
        assert!(head.contains("x-amz-date: "), "{head}");
    }
}
