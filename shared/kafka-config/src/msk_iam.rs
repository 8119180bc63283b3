//! AWS MSK IAM authentication: SASL OAUTHBEARER with a token that is a
//! SigV4-presigned `kafka-cluster:Connect` URL, signed with the function's
//! role (crate aws-msk-iam-sasl-signer).
//!
//! librdkafka asks for a token through a synchronous callback, while the
//! signer is async. The callback must neither block a tokio worker on a
//! future of that same runtime (deadlock on a current-thread runtime) nor
//! call `block_on` inside it (panic). So tokens are cached: a token is
//! made ahead of time at cold start, and when the callback finds none
//! fresh enough it signs a new one on a short-lived helper thread with its
//! own small runtime, which needs nothing from the caller's runtime.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::region::Region;
use rdkafka::client::OAuthToken;

/// A cached token is reused while it has at least this long to live.
const MIN_REMAINING_MS: i64 = 120_000;

#[derive(Clone)]
struct CachedToken {
    token: String,
    expires_ms: i64,
}

/// Signs and caches MSK IAM tokens.
pub struct MskIamTokenSource {
    region: Region,
    credentials: SharedCredentialsProvider,
    cache: Mutex<Option<CachedToken>>,
    signed: AtomicUsize,
    requests: AtomicUsize,
}

impl std::fmt::Debug for MskIamTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MskIamTokenSource")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl MskIamTokenSource {
    pub fn new(region: &str, credentials: SharedCredentialsProvider) -> Self {
        MskIamTokenSource {
            region: Region::new(region.to_owned()),
            credentials,
            cache: Mutex::new(None),
            signed: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    /// Signs a new token: (base64url token, expiry in ms since the epoch).
    pub async fn sign(&self) -> Result<(String, i64), String> {
        let (token, expires_ms) =
            aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(
                self.region.clone(),
                self.credentials.clone(),
            )
            .await
            .map_err(|e| format!("signing the MSK IAM token failed: {e}"))?;
        self.signed.fetch_add(1, Ordering::Relaxed);
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some(CachedToken {
            token: token.clone(),
            expires_ms,
        });
        Ok((token, expires_ms))
    }

    /// Fills the cache ahead of time (at cold start, on the caller's runtime).
    pub async fn prefetch(&self) -> Result<(), String> {
        self.sign().await.map(|_| ())
    }

    /// A token for librdkafka, from any thread, without touching the
    /// caller's runtime.
    pub fn token(&self) -> Result<OAuthToken, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let cached = self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (token, expires_ms) = match cached {
            Some(c) if c.expires_ms - now_ms() > MIN_REMAINING_MS => (c.token, c.expires_ms),
            _ => self.sign_on_helper_thread()?,
        };
        Ok(OAuthToken {
            token,
            principal_name: "evidentsource".into(),
            lifetime_ms: expires_ms,
        })
    }

    fn sign_on_helper_thread(&self) -> Result<(String, i64), String> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("token signer runtime: {e}"))?;
                    runtime.block_on(self.sign())
                })
                .join()
                .map_err(|_| "the token signer thread panicked".to_string())?
        })
    }

    /// Tokens signed so far (for tests and metrics).
    pub fn signed(&self) -> usize {
        self.signed.load(Ordering::Relaxed)
    }

    /// Token requests from librdkafka so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
