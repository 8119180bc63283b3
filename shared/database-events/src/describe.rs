//! A readable rendering of one Database Events message: position, key,
//! headers and decoded body, for tools and examples that print what they
//! read.

use std::fmt::Write as _;

use rdkafka::message::{Headers, Message};

use crate::{ReceivedBody, ReceivedDatabaseEvent, format_time, to_datetime};

/// A readable rendering of one message: position, key, headers, body.
pub fn describe(message: &impl Message, event: Option<&ReceivedDatabaseEvent>) -> String {
    let mut out = String::new();
    let key = String::from_utf8_lossy(message.key().unwrap_or_default());
    let _ = writeln!(
        out,
        "[partition {} offset {}] key={key}",
        message.partition(),
        message.offset()
    );
    if let Some(headers) = message.headers() {
        for h in headers.iter() {
            let _ = writeln!(
                out,
                "  {}: {}",
                h.key,
                String::from_utf8_lossy(h.value.unwrap_or_default())
            );
        }
    }
    let ts = |t: &Option<evidentsource_proto::Timestamp>| {
        t.as_ref()
            .and_then(to_datetime)
            .map(|t| format_time(&t))
            .unwrap_or_default()
    };
    match event.map(|e| &e.body) {
        Some(ReceivedBody::Created(d)) => {
            let _ = writeln!(
                out,
                "  body: Database {{ name: {}, created_at: {}, basis: {}, revision: {} }}",
                d.name,
                ts(&d.created_at),
                d.basis,
                d.revision
            );
        }
        Some(ReceivedBody::Transacted(b)) => {
            let _ = writeln!(
                out,
                "  body: BatchSummary {{ id: {}, database: {}, basis: {}, revision: {}, event_count: {}, recorded_time: {} }}",
                b.id,
                b.database,
                b.basis,
                b.revision,
                b.event_count,
                ts(&b.recorded_time)
            );
        }
        Some(ReceivedBody::Deleted) => {
            let _ = writeln!(out, "  body: (empty)");
        }
        None => {}
    }
    out
}
