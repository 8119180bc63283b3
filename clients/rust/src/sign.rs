//! SigV4 for API Gateway (`execute-api`), with credentials from the
//! standard AWS chain (environment, profile, SSO, web identity, container,
//! instance metadata), which caches and refreshes them.

use std::time::SystemTime;

use aws_credential_types::{
    Credentials,
    provider::{ProvideCredentials, SharedCredentialsProvider},
};
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;

use crate::ClientError;

pub(crate) const SERVICE: &str = "execute-api";

#[derive(Clone, Debug)]
pub(crate) struct Signer {
    pub credentials: SharedCredentialsProvider,
    pub region: String,
}

impl Signer {
    /// The default credential chain for `region`.
    pub async fn from_default_chain(region: &str) -> Result<Self, ClientError> {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .load()
            .await;
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| ClientError::Request("no AWS credentials provider".into()))?;
        Ok(Signer {
            credentials,
            region: region.to_owned(),
        })
    }

    pub async fn sign(&self, request: &mut http::Request<bytes::Bytes>) -> Result<(), ClientError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| ClientError::Request(format!("AWS credentials: {e}")))?;
        sign_with(request, &credentials, &self.region, SystemTime::now())
    }
}

/// Adds `authorization`, `x-amz-date` (and `x-amz-security-token` for
/// temporary credentials) to `request`, signing its method, URI, headers
/// and body.
pub(crate) fn sign_with(
    request: &mut http::Request<bytes::Bytes>,
    credentials: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), ClientError> {
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| ClientError::Request(format!("signing: {e}")))?
        .into();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| Ok((k.as_str(), v.to_str()?)))
        .collect::<Result<Vec<_>, http::header::ToStrError>>()
        .map_err(|e| ClientError::Request(format!("signing: {e}")))?;
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| ClientError::Request(format!("signing: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| ClientError::Request(format!("signing: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_signed_request_carries_an_execute_api_signature() {
        let mut request = http::Request::builder()
            .method("POST")
            .uri("https://abc123.execute-api.eu-west-1.amazonaws.com/databases/accounts/query")
            .header("host", "abc123.execute-api.eu-west-1.amazonaws.com")
            .header("content-type", "application/json")
            .body(bytes::Bytes::from_static(
                br#"{"selector":{"stream_equals":"a"}}"#,
            ))
            .unwrap();
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        // 2024-01-15T10:30:00Z
        let time = UNIX_EPOCH + Duration::from_secs(1_705_314_600);
        sign_with(&mut request, &credentials, "eu-west-1", time).unwrap();

        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let authorization = header("authorization").expect("authorization");
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/eu-west-1/execute-api/aws4_request, SignedHeaders="
            ),
            "{authorization}"
        );
        assert!(authorization.contains("host"), "{authorization}");
        assert!(authorization.contains("Signature="), "{authorization}");
        assert_eq!(header("x-amz-date").as_deref(), Some("20240115T103000Z"));
        assert_eq!(header("x-amz-security-token"), None);

        // Temporary credentials add their session token.
        let mut second = request.clone();
        second.headers_mut().remove("authorization");
        let session = Credentials::new("ASIA", "secret", Some("token".into()), None, "test");
        sign_with(&mut second, &session, "eu-west-1", time).unwrap();
        assert_eq!(
            second.headers().get("x-amz-security-token").unwrap(),
            "token"
        );
    }
}
