use evidentsource_domain::{bound, quote};

/// Why a Kafka message could not be read as a CloudEvent. Each variant names
/// the header (or record field) at fault so that the error response or log
/// line says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing required header {header}")]
    MissingHeader { header: &'static str },
    #[error("header {} has a null value", bound(.header))]
    NullHeader { header: String },
    #[error("header {} is not valid UTF-8", bound(.header))]
    NotUtf8 { header: String },
    #[error("header {} appears more than once", bound(.header))]
    DuplicateHeader { header: String },
    #[error(
        "header {} is not a valid attribute name (lowercase a-z and 0-9 only)",
        bound(.header)
    )]
    InvalidAttributeName { header: String },
    #[error(
        "header {}: {} is not a decimal unsigned 64-bit integer",
        bound(.header),
        quote(.value)
    )]
    BadInteger { header: String, value: String },
    #[error("header {}: {} is not an RFC 3339 timestamp", bound(.header), quote(.value))]
    BadTime { header: String, value: String },
    #[error("header {}: {} is not an absolute URI", bound(.header), quote(.value))]
    BadUri { header: String, value: String },
    #[error("header {header}: {} must not be empty", quote(.value))]
    EmptyValue { header: &'static str, value: String },
    #[error("header ce_specversion: {} is not supported (only 1.0)", quote(.value))]
    UnsupportedSpecVersion { value: String },
    #[error(
        "headers content-type ({}) and ce_datacontenttype ({}) disagree",
        quote(.content_type),
        quote(.datacontenttype)
    )]
    ConflictingContentType {
        content_type: String,
        datacontenttype: String,
    },
    #[error("record {field} is not valid base64")]
    BadBase64 { field: &'static str },
}

impl DecodeError {
    /// The header (or record field) the error is about.
    pub fn header(&self) -> &str {
        match self {
            DecodeError::MissingHeader { header } | DecodeError::EmptyValue { header, .. } => {
                header
            }
            DecodeError::NullHeader { header }
            | DecodeError::NotUtf8 { header }
            | DecodeError::DuplicateHeader { header }
            | DecodeError::InvalidAttributeName { header }
            | DecodeError::BadInteger { header, .. }
            | DecodeError::BadTime { header, .. }
            | DecodeError::BadUri { header, .. } => header,
            DecodeError::UnsupportedSpecVersion { .. } => "ce_specversion",
            DecodeError::ConflictingContentType { .. } => "content-type",
            DecodeError::BadBase64 { field } => field,
        }
    }
}
