use crate::quote::{quote, truncate_message};
use std::fmt;

/// The fixed set of error codes. Every interface reports one of these: HTTP as
/// a status plus the code in the problem body, Kafka as the response's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed; retrying it unchanged fails again.
    InvalidArgument,
    /// The database does not exist.
    NotFound,
    /// The database already exists.
    AlreadyExists,
    /// An append condition does not hold at the current revision.
    FailedPrecondition,
    /// A fault on our side; the caller may retry.
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

    /// The HTTP status the API answers with.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidArgument => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::FailedPrecondition => 409,
            ErrorCode::Internal => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<ErrorCode> for evidentsource_proto::ErrorCode {
    fn from(code: ErrorCode) -> Self {
        use evidentsource_proto::ErrorCode as P;
        match code {
            ErrorCode::InvalidArgument => P::InvalidArgument,
            ErrorCode::NotFound => P::NotFound,
            ErrorCode::AlreadyExists => P::AlreadyExists,
            ErrorCode::FailedPrecondition => P::FailedPrecondition,
            ErrorCode::Internal => P::Internal,
        }
    }
}

/// An error a caller can act on: a code from the fixed set, the field it is
/// about (if any, in the request's own spelling) and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub field: Option<String>,
    pub message: String,
}

impl Error {
    /// At most this many bytes of message: an error travels in HTTP bodies,
    /// async responses and their records in the table, which must stay
    /// small whatever the input (see [`crate::quote`]).
    pub const MAX_MESSAGE_BYTES: usize = 1024;
    /// At most this many bytes of field path.
    pub const MAX_FIELD_BYTES: usize = 256;

    pub fn new(code: ErrorCode, field: Option<String>, message: impl Into<String>) -> Self {
        let mut message = message.into();
        truncate_message(&mut message, Self::MAX_MESSAGE_BYTES);
        let field = field.map(|mut f| {
            truncate_message(&mut f, Self::MAX_FIELD_BYTES);
            f
        });
        Error {
            code,
            field,
            message,
        }
    }

    /// Malformed input; the message starts with the field so that it reads on
    /// its own in a log line or a Kafka response.
    pub fn invalid_argument(field: impl Into<String>, problem: impl fmt::Display) -> Self {
        let field = field.into();
        let message = format!("{field}: {problem}");
        Error::new(ErrorCode::InvalidArgument, Some(field), message)
    }

    pub fn not_found(database: &str) -> Self {
        Error::new(
            ErrorCode::NotFound,
            None,
            format!("database {} does not exist", quote(database)),
        )
    }

    pub fn already_exists(database: &str) -> Self {
        Error::new(
            ErrorCode::AlreadyExists,
            None,
            format!("database {} already exists", quote(database)),
        )
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::FailedPrecondition, None, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, None, message)
    }

    /// Prefixes the field with its parent, e.g. `selector` → `conditions[2].selector`.
    pub fn within(mut self, parent: &str) -> Self {
        if let Some(field) = self.field.take() {
            let full = if field.is_empty() {
                parent.to_owned()
            } else {
                format!("{parent}.{field}")
            };
            if let Some(rest) = self.message.strip_prefix(&format!("{field}:")) {
                self.message = format!("{full}:{rest}");
            }
            self.field = Some(full);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_http_and_wire() {
        let expected = [
            (ErrorCode::InvalidArgument, 400, "INVALID_ARGUMENT", 1),
            (ErrorCode::NotFound, 404, "NOT_FOUND", 2),
            (ErrorCode::AlreadyExists, 409, "ALREADY_EXISTS", 3),
            (ErrorCode::FailedPrecondition, 409, "FAILED_PRECONDITION", 4),
            (ErrorCode::Internal, 500, "INTERNAL", 5),
        ];
        for (code, status, name, proto) in expected {
            assert_eq!(code.http_status(), status);
            assert_eq!(code.as_str(), name);
            assert_eq!(evidentsource_proto::ErrorCode::from(code) as i32, proto);
            assert_eq!(
                evidentsource_proto::ErrorCode::from(code).as_str_name(),
                name,
                "the proto enum spells the code the same way"
            );
        }
    }

    #[test]
    fn invalid_argument_names_the_field_and_nests() {
        let e = Error::invalid_argument("max", "must be at least min").within("conditions[2]");
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert_eq!(e.field.as_deref(), Some("conditions[2].max"));
        assert_eq!(e.message, "conditions[2].max: must be at least min");
        assert_eq!(
            e.to_string(),
            "INVALID_ARGUMENT: conditions[2].max: must be at least min"
        );
    }
}
