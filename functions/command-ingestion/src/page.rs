//! Pages of events that fit a Lambda response.
//!
//! Lambda refuses a response over 6 MB (API Gateway then answers 502), and
//! what counts is the invocation's response document, in which the body is
//! a JSON string: every quote and backslash of the events' JSON is escaped
//! once more. A page is cut before its escaped size passes
//! [`MAX_BODY_BYTES`], below the limit with room for the envelope; the
//! caller reads on from the next revision (the `Link: rel="next"` header).

use serde_json::Value;

/// The largest body a page may have, measured as it travels (escaped).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The largest binary (protobuf) body: it travels base64-encoded (4/3 of
/// its size, so under 5.3 MiB), with room left for the per-event framing
/// that the events' own sizes do not count.
pub const MAX_BINARY_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;

/// A page: the JSON array, whether events were left out, and the revision
/// of its last event.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub body: String,
    pub cut: bool,
    pub last_revision: Option<u64>,
}

/// The events, in order, as long as the page stays within `max_bytes`
/// (escaped). The first event is always included: one event is at most
/// 256 KiB of data, far below the limit.
pub fn cut(events: impl Iterator<Item = Value>, max_bytes: usize) -> Page {
    let mut body = String::from("[");
    // "[" and "]", escaped as they travel: 2 bytes; a comma: 1.
    let mut escaped = 2;
    let mut last_revision = None;
    for event in events {
        let text = event.to_string();
        let cost = escaped_len(&text) + usize::from(last_revision.is_some());
        if last_revision.is_some() && escaped + cost > max_bytes {
            body.push(']');
            return Page {
                body,
                cut: true,
                last_revision,
            };
        }
        if last_revision.is_some() {
            body.push(',');
        }
        body.push_str(&text);
        escaped += cost;
        last_revision = event["revision"].as_u64().or(last_revision);
    }
    body.push(']');
    Page {
        body,
        cut: false,
        last_revision,
    }
}

/// The length of `text` inside a JSON string, without the quotes.
fn escaped_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(revision: u64, data: &str) -> Value {
        json!({"id": revision.to_string(), "revision": revision, "data": data})
    }

    #[test]
    fn escaped_length_is_what_json_makes_of_it() {
        for text in [
            "",
            "abc",
            "a\"b",
            "\\",
            "\n\t\r",
            "\u{1}\u{1f}",
            "é€😀",
            "{\"a\":[1,\"x\"]}",
        ] {
            let quoted = serde_json::to_string(text).unwrap();
            assert_eq!(escaped_len(text), quoted.len() - 2, "{text:?}");
        }
    }

    #[test]
    fn pages_stop_before_the_limit_and_say_so() {
        for (sizes, max, kept, was_cut) in [
            (vec![10, 10, 10], 1_000, 3, false),
            (vec![10, 10, 10], 200, 2, true),
            (vec![10, 10, 10], 130, 1, true),
            (vec![500], 100, 1, false), // the first event always goes
            (vec![], 100, 0, false),
        ] {
            let events: Vec<Value> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| event(i as u64 + 1, &"\"".repeat(*n)))
                .collect();
            let page = cut(events.clone().into_iter(), max);
            let read: Vec<Value> = serde_json::from_str(&page.body).unwrap();
            assert_eq!(read, events[..kept], "{sizes:?} {max}");
            assert_eq!(page.cut, was_cut, "{sizes:?} {max}");
            assert_eq!(page.last_revision, (kept > 0).then_some(kept as u64));
            if kept > 1 {
                let travelled = serde_json::to_string(&page.body).unwrap().len() - 2;
                assert!(travelled <= max, "{travelled} > {max}");
            }
        }
    }
}
