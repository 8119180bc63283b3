//! One HTTP exchange: hyper 1 over plain TCP or rustls (the TLS stack the
//! AWS SDK already builds), signed when the client signs.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::{ClientError, sign::Signer};

/// What came back, as far as the client reads it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub retry_after: Option<Duration>,
    pub link_next: Option<String>,
}

pub(crate) enum SendError {
    /// No answer; worth another attempt.
    Transport(String),
    /// The request cannot be made at all (bad URL, no credentials).
    Fatal(ClientError),
}

#[derive(Clone)]
pub(crate) struct Transport {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    signer: Option<Signer>,
    pub attempt_timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("signed", &self.signer.is_some())
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl Transport {
    pub fn new(signer: Option<Signer>) -> Result<Self, ClientError> {
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // A machine without a system trust store can still reach a plain
        // HTTP endpoint (the local stack); HTTPS then fails per request.
        let builder = match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(b) => b,
            Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| ClientError::Request(format!("TLS: {e}")))?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ),
        };
        let connector = builder.https_or_http().enable_http1().build();
        Ok(Transport {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
            signer,
            attempt_timeout: Duration::from_secs(30),
        })
    }

    pub async fn send(&self, method: &str, url: &str, body: Bytes) -> Result<Answer, SendError> {
        let fatal = |e: String| SendError::Fatal(ClientError::Request(e));
        let uri: http::Uri = url.parse().map_err(|e| fatal(format!("{url}: {e}")))?;
        let host = uri
            .authority()
            .ok_or_else(|| fatal(format!("{url}: no host")))?
            .to_string();
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, host)
            .header(http::header::ACCEPT, "application/json");
        if !body.is_empty() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let mut request = builder.body(body).map_err(|e| fatal(e.to_string()))?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut request).await.map_err(SendError::Fatal)?;
        }
        let request = request.map(Full::new);
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| SendError::Transport(describe(&e)))?;
            let status = response.status().as_u16();
            let header = |name: http::header::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header(http::header::RETRY_AFTER)
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs);
            let link_next = header(http::header::LINK).filter(|l| l.contains("rel=\"next\""));
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| SendError::Transport(describe(&e)))?
                .to_bytes();
            Ok(Answer {
                status,
                body,
                retry_after,
                link_next,
            })
        };
        tokio::time::timeout(self.attempt_timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transport(format!(
                    "no answer within {:?}",
                    self.attempt_timeout
                )))
            })
    }
}

/// The error with its causes: hyper's own message alone ("client error
/// (Connect)") does not say what failed.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
