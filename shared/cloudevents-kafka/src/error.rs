/// Why a Kafka message could not be read as a CloudEvent. Each variant names
/// the header (or record field) at fault so that the error response or log
/// line says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing required header {header}")]
    MissingHeader { header: &'static str },
    #[error("header {header} has a null value")]
    NullHeader { header: String },
    #[error("header {header} is not valid UTF-8")]
    NotUtf8 { header: String },
    #[error("header {header} appears more than once")]
    DuplicateHeader { header: String },
    #[error("header {header} is not a valid attribute name (lowercase a-z and 0-9 only)")]
    InvalidAttributeName { header: String },
    #[error("header {header}: {value:?} is not a decimal unsigned 64-bit integer")]
    BadInteger { header: String, value: String },
    #[error("header {header}: {value:?} is not an RFC 3339 timestamp")]
    BadTime { header: String, value: String },
    #[error("header {header}: {value:?} is not an absolute URI")]
    BadUri { header: String, value: String },
    #[error("header {header}: {value:?} must not be empty")]
    EmptyValue { header: &'static str, value: String },
    #[error("header ce_specversion: {value:?} is not supported (only 1.0)")]
    UnsupportedSpecVersion { value: String },
    #[error(
        "headers content-type ({content_type:?}) and ce_datacontenttype ({datacontenttype:?}) disagree"
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
