//! Errors a caller can act on: the API's problem+json answers typed by the
//! contract's codes, and the client's own transport and decode faults.

use serde::Deserialize;

/// The contract's fixed set of error codes (CONTRACT.md; the server's
/// `evidentsource_domain::ErrorCode`, which a test holds this to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed; sending it unchanged fails again.
    InvalidArgument,
    /// The database does not exist.
    NotFound,
    /// The database already exists.
    AlreadyExists,
    /// An append condition does not hold: read again and decide again.
    FailedPrecondition,
    /// A fault on the server's side.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 5] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Internal,
    ];

    /// The code as written on the wire (`INVALID_ARGUMENT`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error (RFC 9457 problem+json).
    #[error("{status} {}{}: {detail}", code.as_str(), field.as_deref().map(|f| format!(" ({f})")).unwrap_or_default())]
    Api {
        status: u16,
        code: ErrorCode,
        /// The request field at fault, for `INVALID_ARGUMENT` and
        /// `FAILED_PRECONDITION` (`conditions[0]`).
        field: Option<String>,
        detail: String,
        /// On a 500: what the function's log files the cause under.
        request_id: Option<String>,
    },
    /// No answer: connection, TLS or timeout. Retried before it surfaces.
    #[error("transport: {0}")]
    Transport(String),
    /// An answer the client cannot read.
    #[error("decode: {0}")]
    Decode(String),
    /// The request could not be built or signed (bad endpoint,
    /// no credentials).
    #[error("request: {0}")]
    Request(String),
    /// An async command's response is an error (feature `kafka`).
    #[error("command failed: {} {message}", code.as_str())]
    Command { code: ErrorCode, message: String },
    /// Kafka refused or could not reach (feature `kafka`).
    #[error("kafka: {0}")]
    Kafka(String),
    /// No response within the wait; it may still come (feature `kafka`).
    #[error("no response to {correlation_id} within {waited:?}{}", last_error.as_deref().map(|e| format!(" (last error reading responses: {e})")).unwrap_or_default())]
    ResponseTimeout {
        correlation_id: String,
        waited: std::time::Duration,
        last_error: Option<String>,
    },
    /// `decide_and_append` met a conflict on every one of its attempts.
    #[error("still conflicting after {attempts} attempts")]
    Contention { attempts: u32 },
}

impl ClientError {
    /// The contract's code, for an API error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } | ClientError::Command { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A 409 `FAILED_PRECONDITION`: an append condition does not hold.
    pub fn is_conflict(&self) -> bool {
        self.code() == Some(ErrorCode::FailedPrecondition)
    }
}

#[derive(Deserialize)]
struct Problem {
    code: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// The error an answer with status `status` and `body` stands for. A body
/// that is not a problem (a proxy's page) still yields a typed error: the
/// code the status implies.
pub(crate) fn from_response(status: u16, body: &[u8]) -> ClientError {
    let problem = serde_json::from_slice::<Problem>(body).ok();
    let code = problem
        .as_ref()
        .and_then(|p| ErrorCode::ALL.into_iter().find(|c| c.as_str() == p.code))
        .unwrap_or(match status {
            404 => ErrorCode::NotFound,
            400..=499 => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        });
    match problem {
        Some(p) => ClientError::Api {
            status,
            code,
            field: p.field,
            detail: p.detail.unwrap_or_default(),
            request_id: p.request_id,
        },
        None => ClientError::Api {
            status,
            code,
            field: None,
            // Not ours to quote at length: it may be anything.
            detail: String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned(),
            request_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_contracts() {
        let ours: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let contract: Vec<&str> = evidentsource_domain::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(ours, contract);
    }

    #[test]
    fn problems_are_typed_by_their_code() {
        for (status, body, code, field) in [
            (
                400,
                r#"{"status":400,"code":"INVALID_ARGUMENT","field":"events[0].source","detail":"x"}"#,
                ErrorCode::InvalidArgument,
                Some("events[0].source"),
            ),
            (
                404,
                r#"{"code":"NOT_FOUND","detail":"no"}"#,
                ErrorCode::NotFound,
                None,
            ),
            (
                409,
                r#"{"code":"ALREADY_EXISTS"}"#,
                ErrorCode::AlreadyExists,
                None,
            ),
            (
                409,
                r#"{"code":"FAILED_PRECONDITION","field":"conditions[0]"}"#,
                ErrorCode::FailedPrecondition,
                Some("conditions[0]"),
            ),
            (503, r#"{"code":"INTERNAL"}"#, ErrorCode::Internal, None),
            // Not a problem body: the status decides.
            (502, "Bad Gateway", ErrorCode::Internal, None),
            (404, "<html>", ErrorCode::NotFound, None),
            (413, "", ErrorCode::InvalidArgument, None),
        ] {
            let error = from_response(status, body.as_bytes());
            let ClientError::Api {
                status: s,
                code: c,
                field: f,
                ..
            } = &error
            else {
                panic!("{error:?}")
            };
            assert_eq!((*s, *c, f.as_deref()), (status, code, field), "{body}");
        }
        assert!(from_response(409, br#"{"code":"FAILED_PRECONDITION"}"#).is_conflict());
        assert!(!from_response(409, br#"{"code":"ALREADY_EXISTS"}"#).is_conflict());
    }
}
