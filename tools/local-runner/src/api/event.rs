//! The request as API Gateway hands it to the function (payload format
//! 2.0), and the function's response as API Gateway returns it.

use std::net::SocketAddr;

use base64::{Engine, engine::general_purpose::STANDARD};
use http_body_util::Full;
use hyper::{Response, body::Bytes};
use lambda_http::Body;
use serde_json::{Map, Value, json};

/// The API Gateway v2 event for a request (what the function gets in AWS).
pub fn gateway_event(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    route_key: &str,
    proxy: Option<&str>,
    peer: SocketAddr,
) -> Value {
    // Repeated headers and query parameters are joined with commas, cookies
    // travel apart: API Gateway's payload format 2.0.
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(|c| Value::String(c.to_owned())));
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    headers
        .entry("x-forwarded-for")
        .or_insert_with(|| Value::String(peer.ip().to_string()));
    headers.insert("x-forwarded-proto".into(), "http".into());
    let raw_query = parts.uri.query().unwrap_or_default();
    let mut query = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let now = chrono::Utc::now();
    let user_agent = parts
        .headers
        .get("user-agent")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let host = parts
        .headers
        .get("host")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if let Some(proxy) = proxy {
        event["pathParameters"] = json!({ "proxy": proxy });
    }
    if !body.is_empty() {
        // Text travels as text, anything else base64-encoded, as API
        // Gateway passes bodies to the function.
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match std::str::from_utf8(body) {
            Ok(text) if is_text(content_type) => event["body"] = Value::String(text.to_owned()),
            _ => {
                event["body"] = Value::String(STANDARD.encode(body));
                event["isBase64Encoded"] = Value::Bool(true);
            }
        }
    }
    event
}

/// Content types API Gateway passes as text.
fn is_text(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text/")
        || media == "application/json"
        || media.ends_with("+json")
        || media == "application/xml"
        || media.ends_with("+xml")
        || media == "application/x-www-form-urlencoded"
}

/// The function's response as API Gateway returns it.
pub fn to_http(response: lambda_http::Response<Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    let mut out = Response::new(Full::new(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = parts.headers;
    out
}

#[cfg(test)]
mod tests {
    use hyper::Request;
    use lambda_http::RequestExt;

    use super::{super::route_of, *};

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> hyper::http::request::Parts {
        let mut builder = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    #[test]
    fn only_the_templates_routes_reach_the_function() {
        assert_eq!(route_of("/databases"), Some(("ANY /databases", None)));
        assert_eq!(
            route_of("/databases/a/transactions"),
            Some(("ANY /databases/{proxy+}", Some("a/transactions")))
        );
        assert_eq!(route_of("/databases/"), None);
        assert_eq!(route_of("/"), None);
        assert_eq!(route_of("/databasesx"), None);
    }

    #[test]
    fn lambda_http_reads_the_event_as_it_would_in_aws() {
        let parts = parts(
            "POST",
            "/databases/accounts/transactions?mode=async&x=1&x=2&q=a%20b",
            &[
                ("host", "127.0.0.1:8080"),
                ("content-type", "application/protobuf"),
                ("accept", "a"),
                ("accept", "b"),
                ("cookie", "c1=v1; c2=v2"),
            ],
        );
        let body = [0u8, 159, 146, 150, b'{'];
        let (route, proxy) = route_of(parts.uri.path()).unwrap();
        let event = gateway_event(&parts, &body, route, proxy, peer());
        assert_eq!(event["headers"]["accept"], "a,b");
        assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(event["pathParameters"]["proxy"], "accounts/transactions");
        assert_eq!(event["isBase64Encoded"], true);
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(request.uri().path(), "/databases/accounts/transactions");
        let query = request.query_string_parameters();
        assert_eq!(query.first("mode"), Some("async"));
        assert_eq!(query.first("q"), Some("a b"));
        // Joined with a comma by the gateway, split again by lambda_http.
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(query.all("x"), Some(vec!["1", "2"]));
        assert_eq!(
            request.headers().get("content-type").unwrap(),
            "application/protobuf"
        );
        match request.body() {
            Body::Binary(b) => assert_eq!(b.as_slice(), &body),
            other => panic!("body {other:?}"),
        }
    }

    #[test]
    fn json_travels_as_text_and_the_router_reads_the_same_bytes() {
        let parts = parts(
            "POST",
            "/databases",
            &[
                ("host", "h"),
                ("content-type", "application/json; charset=utf-8"),
            ],
        );
        let body = r#"{"name": "caf\u00e9 ü"}"#.as_bytes();
        let event = gateway_event(&parts, body, "ANY /databases", None, peer());
        assert_eq!(event["isBase64Encoded"], false);
        assert_eq!(event["body"], String::from_utf8(body.to_vec()).unwrap());
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.body().as_ref(), body);
        assert!(is_text("text/plain"));
        assert!(is_text("application/cloudevents+json"));
        assert!(!is_text("application/protobuf"));
        assert!(!is_text(""));
    }

    #[test]
    fn an_empty_body_is_empty() {
        let parts = parts("GET", "/databases/accounts", &[("host", "h")]);
        let event = gateway_event(
            &parts,
            &[],
            "ANY /databases/{proxy+}",
            Some("accounts"),
            peer(),
        );
        assert!(event.get("body").is_none());
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert!(matches!(request.body(), Body::Empty));
        assert!(request.query_string_parameters().is_empty());
    }

    #[test]
    fn responses_keep_status_headers_and_bytes() {
        let response = lambda_http::Response::builder()
            .status(409)
            .header("content-type", "application/problem+json")
            .header("allow", "POST")
            .body(Body::Text("{\"x\":1}".into()))
            .unwrap();
        let out = to_http(response);
        assert_eq!(out.status(), 409);
        assert_eq!(out.headers()["allow"], "POST");
        let binary = to_http(
            lambda_http::Response::builder()
                .body(Body::Binary(vec![0, 255]))
                .unwrap(),
        );
        assert_eq!(binary.status(), 200);
    }
}
