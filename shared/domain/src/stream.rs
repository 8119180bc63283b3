use crate::{Error, StreamName, quote};

/// The stream an event belongs to: the last path segment of its `source`
/// (a URI-reference), e.g. `https://example.com/shop/orders?x=1` → `orders`,
/// `/shop/orders` → `orders`, `orders` → `orders`.
///
/// The segment must be a valid name; a source without a usable last segment
/// (`https://example.com`, a trailing `/`, `urn:x:y`) is rejected rather than
/// guessed at, because the stream decides which conditions an event meets.
pub fn stream_of_source(source: &str) -> Result<StreamName, Error> {
    if source.is_empty() {
        return Err(Error::invalid_argument("source", "must not be empty"));
    }
    // The path ends at the query or fragment.
    let end = source.find(['?', '#']).unwrap_or(source.len());
    let without_query = &source[..end];
    // Skip scheme and authority: the authority is not a path segment.
    let path = match without_query.find("://") {
        Some(i) => {
            let after = &without_query[i + 3..];
            match after.find('/') {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => without_query,
    };
    let segment = path.rsplit('/').next().unwrap_or("");
    if segment.is_empty() {
        return Err(Error::invalid_argument(
            "source",
            format!(
                "{} has no last path segment to name the event's stream",
                quote(source)
            ),
        ));
    }
    StreamName::parse(segment).map_err(|e| {
        Error::invalid_argument(
            "source",
            format!(
                "the last path segment of {} names the stream, and {}",
                quote(source),
                e.message.trim_start_matches("stream: ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_segment() {
        for (source, stream) in [
            ("https://example.com/shop/orders", "orders"),
            ("https://example.com/shop/orders?x=1#f", "orders"),
            ("https://example.com/orders", "orders"),
            ("/shop/orders", "orders"),
            ("shop/orders", "orders"),
            ("orders", "orders"),
            ("urn/v1.orders-x", "v1.orders-x"),
        ] {
            assert_eq!(
                stream_of_source(source).unwrap().as_str(),
                stream,
                "{source}"
            );
        }
    }

    #[test]
    fn no_usable_segment() {
        for source in [
            "",
            "https://example.com",
            "https://example.com/",
            "/shop/",
            "urn:x:y",
            "/a/9x",
        ] {
            let err = stream_of_source(source).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("source"), "{source}");
        }
    }
}
