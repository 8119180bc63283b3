//! The emulated API Gateway against malformed requests, sent over a raw
//! TCP connection (a well-behaved client cannot send them): each gets a
//! well-formed HTTP response, and the gateway keeps serving afterwards.
//! No server is needed: no request here reaches the table (the function's
//! DynamoDB endpoint is a port that accepts and never answers).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use evidentsource_command_ingestion::App;
use evidentsource_local_runner::api::{self, Gateway};
use evidentsource_local_servers::dynamodb_client;
use evidentsource_storage::{Store, StoreConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// Generous: the machine is shared and loaded.
const EXCHANGE_LIMIT: Duration = Duration::from_secs(30);

/// A listener that accepts connections and never answers: a DynamoDB that
/// hangs. Kept open for as long as it is held.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (endpoint, task)
}

/// The gateway in front of the real function, on a free port.
async fn gateway(settings: Gateway) -> (SocketAddr, watch::Sender<bool>) {
    let (endpoint, _) = black_hole().await;
    let app = Arc::new(App::new(Store::new(
        dynamodb_client(&endpoint),
        StoreConfig::new("gateway-test"),
    )));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(api::serve(listener, app, settings, stopped));
    (address, stop)
}

fn settings() -> Gateway {
    Gateway {
        function_timeout: Duration::from_secs(15),
        integration_timeout: Duration::from_secs(20),
    }
}

/// A response as read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `request` as is (closing our side after it when `half_close`),
/// and reads one HTTP/1.1 response: status line, headers, and a body of
/// exactly its `content-length`. Anything else is an error.
async fn exchange(address: SocketAddr, request: &[u8], half_close: bool) -> Result<Raw, String> {
    let run = async {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        if half_close {
            stream.shutdown().await.map_err(|e| e.to_string())?;
        }
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "connection closed without a response (read {:?})",
                    String::from_utf8_lossy(&buffer)
                ));
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buffer[..head_end])
            .map_err(|_| "the response head is not UTF-8".to_owned())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                line.split_once(':')
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .ok_or_else(|| format!("not a header line: {line:?}"))
            })
            .collect::<Result<_, _>>()?;
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().map_err(|_| format!("content-length {v:?}")))
            .transpose()?
            .ok_or("no content-length")?;
        let mut body = buffer[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("body cut at {} of {length} bytes", body.len()));
            }
            body.extend_from_slice(&chunk[..n]);
        }
        if body.len() != length {
            return Err(format!(
                "{} body bytes for content-length {length}",
                body.len()
            ));
        }
        Ok(Raw {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(EXCHANGE_LIMIT, run)
        .await
        .map_err(|_| format!("no response within {EXCHANGE_LIMIT:?}"))?
}

/// The gateway still answers a good request (its own 404, off the routes).
async fn still_serving(address: SocketAddr, after: &str) {
    let response = exchange(
        address,
        b"GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("after {after}: {e}"));
    assert_eq!(response.status, 404, "after {after}: {response:?}");
    assert_eq!(response.json()["message"], "Not Found", "after {after}");
}

/// A malformed request and what the gateway answers.
struct Case {
    what: &'static str,
    request: &'static [u8],
    /// Close our side after sending (a client that gave up).
    half_close: bool,
    status: u16,
    /// The gateway's own message, when the answer is API Gateway's
    /// (hyper answers what HTTP/1.1 cannot parse, with no body).
    message: Option<&'static str>,
}

#[tokio::test]
async fn malformed_requests_get_well_formed_answers_and_the_gateway_keeps_serving() {
    let (address, _stop) = gateway(settings()).await;
    let cases = [
        Case {
            what: "a Host with a space",
            request: b"GET /databases/x HTTP/1.1\r\nHost: bad host\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "a Host that is not UTF-8",
            request: b"GET /databases/x HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "a Host with a path",
            request: b"GET /databases/x HTTP/1.1\r\nHost: a/b\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "a Host with a port out of range",
            request: b"GET /databases/x HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "two Hosts",
            request: b"GET /databases/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "no Host in HTTP/1.1",
            request: b"GET /databases/x HTTP/1.1\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "an empty Host",
            request: b"GET /databases/x HTTP/1.1\r\nHost: \r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "a header value that is not UTF-8 (reaches the function)",
            request: b"PATCH /databases HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Note: caf\xe9\r\n\r\n",
            half_close: false,
            status: 405,
            message: None,
        },
        Case {
            what: "a content-length beyond u64",
            request: b"POST /databases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
            half_close: false,
            status: 400,
            message: None,
        },
        Case {
            what: "a content-length over the 10 MB payload limit",
            request: b"POST /databases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20000000\r\n\r\n{}",
            half_close: false,
            status: 413,
            message: Some("Request Entity Too Large"),
        },
        Case {
            what: "a body shorter than its content-length",
            request: b"POST /databases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"name\"",
            half_close: true,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "a chunked body with a bad chunk size",
            request: b"POST /databases HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            half_close: false,
            status: 400,
            message: Some("Bad Request"),
        },
        Case {
            what: "not a request line",
            request: b"GARBAGE\r\n\r\n",
            half_close: false,
            status: 400,
            message: None,
        },
    ];
    for Case {
        what,
        request,
        half_close,
        status,
        message,
    } in cases
    {
        let response = exchange(address, request, half_close)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(response.status, status, "{what}: {response:?}");
        if let Some(message) = message {
            assert_eq!(response.json()["message"], message, "{what}: {response:?}");
            assert!(
                response
                    .headers
                    .contains(&("content-type".into(), "application/json".into())),
                "{what}: {response:?}"
            );
        }
        still_serving(address, what).await;
    }
}

/// A request the function spends its time on: reading a database from a
/// DynamoDB that never answers.
const HANGS: &[u8] = b"GET /databases/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn a_function_that_times_out_is_a_500_as_any_invocation_error() {
    // The function's timeout comes first: Lambda stops it and reports the
    // invocation failed ("Task timed out"), which an HTTP API answers 500.
    let (address, _stop) = gateway(Gateway {
        function_timeout: Duration::from_secs(1),
        integration_timeout: Duration::from_secs(30),
    })
    .await;
    let response = exchange(address, HANGS, false).await.unwrap();
    assert_eq!(response.status, 500, "{response:?}");
    assert_eq!(response.json()["message"], "Internal Server Error");
    still_serving(address, "a function timeout").await;
}

#[tokio::test]
async fn the_integration_timeout_is_a_503_service_unavailable() {
    // The integration's timeout comes first: API Gateway stops waiting and
    // answers 503 while the function runs on.
    let (address, _stop) = gateway(Gateway {
        function_timeout: Duration::from_secs(60),
        integration_timeout: Duration::from_secs(1),
    })
    .await;
    let response = exchange(address, HANGS, false).await.unwrap();
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.json()["message"], "Service Unavailable");
    assert!(
        response
            .headers
            .contains(&("content-type".into(), "application/json".into())),
        "{response:?}"
    );
    still_serving(address, "an integration timeout").await;
}
