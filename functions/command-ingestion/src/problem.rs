//! RFC 9457 problem details: every error answer is `application/problem+json`
//! with the code from the fixed set and, for bad input, the field.

use evidentsource_domain::Error;
use lambda_http::{Body, Response, http::StatusCode};
use serde_json::json;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem response; `request_id` (for server errors) lets a caller
/// quote what the logs are searched by.
pub fn problem(status: u16, error: &Error, request_id: Option<&str>) -> Response<Body> {
    let mut body = json!({
        "type": format!("https://evidentsource.com/problems/{}", error.code.as_str().to_lowercase().replace('_', "-")),
        "title": title(status),
        "status": status,
        "code": error.code.as_str(),
        "detail": error.message,
    });
    if let Some(field) = &error.field {
        body["field"] = json!(field);
    }
    if let Some(id) = request_id {
        body["request_id"] = json!(id);
    }
    let mut response = Response::builder()
        .status(status)
        .header("content-type", PROBLEM_JSON);
    if status == 503 {
        response = response.header("retry-after", "1");
    }
    response
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}
fn title(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}
