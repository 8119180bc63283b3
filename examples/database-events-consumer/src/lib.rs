//! What a consumer of the Database Events topic does, on the Rust client's
//! [`DatabaseEvents`]: read each event (CloudEvent headers, protobuf body),
//! skip the byte-identical copies at-least-once delivery brings, and stop
//! at anything that breaks a database's chain (Created first, each
//! Transacted's `ce_basis` the previous `ce_revision`, Deleted last).

use std::{fmt::Write as _, io::Write, time::Duration};

pub use evidentsource_client::kafka::{DatabaseEvents, Next, StartAt};
use evidentsource_database_events::describe;
use rdkafka::consumer::ConsumerContext;

/// How long `--exit-when-idle` waits for the first message (a consumer
/// group's join included).
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(30);

/// Writes each message read from `events`, with what is wrong with it on
/// lines of their own, to `out`. Stops after `idle` without a message (if
/// given) or after `max` messages. Returns the number of violations of
/// the contract found (a byte-identical copy is shown, not counted: the
/// contract allows it).
pub async fn consume<C: ConsumerContext + 'static>(
    mut events: DatabaseEvents<C>,
    out: &mut impl Write,
    idle: Option<Duration>,
    max: Option<usize>,
) -> Result<usize, String> {
    let mut violations = 0;
    let mut count = 0;
    loop {
        if max.is_some_and(|m| count >= m) {
            return Ok(violations);
        }
        let next = match idle {
            // Joining a consumer group takes a while: the idle clock
            // starts with the first message.
            Some(idle) => {
                let wait = if count == 0 {
                    idle.max(FIRST_MESSAGE_WAIT)
                } else {
                    idle
                };
                match events.next_within(wait).await {
                    Ok(Some(next)) => next,
                    Ok(None) => return Ok(violations),
                    Err(e) => return Err(e.to_string()),
                }
            }
            None => events.next().await.map_err(|e| e.to_string())?,
        };
        count += 1;
        let text = match next {
            Next::Event(d) => {
                let mut text = describe(&d.message, Some(&d.event));
                for p in &d.problems {
                    let _ = writeln!(text, "  !! {p}");
                }
                violations += d.problems.len();
                text
            }
            Next::Duplicate { id, message } => {
                let mut text = describe(&message, None);
                let _ = writeln!(text, "  !! DUPLICATE of {id} (byte-identical, skipped)");
                text
            }
            Next::Invalid { reason, message } => {
                violations += 1;
                let mut text = describe(&message, None);
                let _ = writeln!(text, "  !! INVALID: {reason}");
                text
            }
        };
        out.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
}
