//! Trace context: W3C `traceparent` / `tracestate`, carried on a command or
//! response as the CloudEvents distributed-tracing extension
//! (`ce_traceparent`, `ce_tracestate`).
//!
//! The suite records no spans of its own (no exporter), so it follows the
//! W3C rules for a participant that forwards: the HTTP API passes the
//! caller's context on to the command unchanged; the async processor, whose
//! execution of the command is a step of its own that its logs name,
//! continues it with a fresh parent id (same trace id and flags) and puts
//! that on the response. A malformed `traceparent` is ignored, as the W3C
//! recommendation says, never a reason to refuse a request.
//!
//! An X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;
//! Parent=53995c3f42cd8ad8;Sampled=1`) names the same three things, so a
//! request that carries only that (API Gateway and Lambda add it) is
//! continued under the same trace id.

use std::fmt;

use cloudevents::{Event, event::ExtensionValue};

/// The extension that carries `traceparent` (header `ce_traceparent`).
pub const TRACEPARENT: &str = "traceparent";
/// The extension that carries `tracestate` (header `ce_tracestate`).
pub const TRACESTATE: &str = "tracestate";

/// W3C limits `tracestate` to 32 members of at most 256 bytes each; we
/// forward at most this much and drop a longer one rather than truncate a
/// vendor's member in the middle.
pub const MAX_TRACESTATE: usize = 512;

/// A W3C trace context, version 00.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
    /// Vendor state, forwarded as received (already checked to be printable
    /// ASCII of at most [`MAX_TRACESTATE`] bytes).
    pub state: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` (and an optional `tracestate`); `None` when the
    /// `traceparent` is not valid. Versions above 00 are read as 00 (their
    /// first four fields), as the recommendation asks of a version-00 parser.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let value = traceparent.trim();
        let mut parts = value.split('-');
        let version = hex_exact::<1>(parts.next()?)?[0];
        let trace_id = hex_exact::<16>(parts.next()?)?;
        let parent_id = hex_exact::<8>(parts.next()?)?;
        let flags = hex_exact::<1>(parts.next()?)?[0];
        let rest = parts.next();
        let valid_length = match version {
            0xff => false,
            0 => rest.is_none(),
            _ => value.len() == 55 || value.as_bytes().get(55) == Some(&b'-'),
        };
        if !valid_length || trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id,
            flags,
            state: tracestate.and_then(usable_state),
        })
    }

    /// Reads an X-Ray trace header; `None` without a valid `Root` and
    /// `Parent` (a root-only header names no span to continue from).
    pub fn from_xray(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, 0u8);
        for field in header.split(';') {
            match field.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v),
                Some(("Parent", v)) => parent = Some(v),
                Some(("Sampled", "1")) => sampled = 1,
                _ => {}
            }
        }
        // Root=1-{8 hex digits of time}-{24 hex digits}
        let mut root_parts = root?.split('-');
        if root_parts.next()? != "1" {
            return None;
        }
        let (time, random) = (root_parts.next()?, root_parts.next()?);
        if root_parts.next().is_some() || time.len() != 8 || random.len() != 24 {
            return None;
        }
        let trace_id = hex_exact::<16>(&format!("{time}{random}"))?;
        let parent_id = hex_exact::<8>(parent?)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            parent_id,
            flags: sampled,
            state: None,
        })
    }

    /// The same trace continued by a new step: a new parent id, everything
    /// else as it was.
    pub fn child(&self) -> Self {
        let mut parent_id = [0u8; 8];
        while parent_id == [0; 8] {
            parent_id.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        }
        TraceContext {
            parent_id,
            ..self.clone()
        }
    }

    /// The context an event carries; `None` when it carries none or a
    /// malformed `traceparent`.
    pub fn of_event(event: &Event) -> Option<Self> {
        let text = |name| match event.extension(name) {
            Some(ExtensionValue::String(s)) => Some(s.as_str()),
            _ => None,
        };
        Self::parse(text(TRACEPARENT)?, text(TRACESTATE))
    }

    /// Puts this context on an event (`ce_traceparent`, and `ce_tracestate`
    /// when there is state).
    pub fn set_on(&self, event: &mut Event) {
        event.set_extension(TRACEPARENT, ExtensionValue::String(self.to_string()));
        if let Some(state) = &self.state {
            event.set_extension(TRACESTATE, ExtensionValue::String(state.clone()));
        }
    }

    /// The trace id as 32 lowercase hex digits (what a log line names).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

/// The `traceparent` value.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }
}

fn usable_state(state: &str) -> Option<String> {
    let state = state.trim();
    (!state.is_empty()
        && state.len() <= MAX_TRACESTATE
        && state.bytes().all(|b| (0x20..0x7f).contains(&b)))
    .then(|| state.to_owned())
}

/// Exactly `N` bytes as `2N` lowercase hex digits (W3C forbids uppercase).
fn hex_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_values() {
        // (value, accepted)
        let cases = [
            (VALID, true),
            (
                " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ",
                true,
            ),
            // A later version: its first four fields, more may follow.
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                true,
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next",
                true,
            ),
            // Version 00 has exactly four fields.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                false,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                false,
            ),
            ("", false),
        ];
        for (value, accepted) in cases {
            assert_eq!(
                TraceContext::parse(value, None).is_some(),
                accepted,
                "{value:?}"
            );
        }
        let parsed = TraceContext::parse(VALID, None).unwrap();
        assert_eq!(parsed.to_string(), VALID);
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.flags, 1);
    }

    #[test]
    fn tracestate_is_forwarded_only_when_usable() {
        // (tracestate, forwarded)
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE);
        let cases = [
            (Some("congo=t61rcWkgMzE"), Some("congo=t61rcWkgMzE")),
            (Some("  "), None),
            (Some("a=\u{7f}"), None),
            (Some("a=é"), None),
            (Some(long.as_str()), None),
            (None, None),
        ];
        for (state, forwarded) in cases {
            let parsed = TraceContext::parse(VALID, state).unwrap();
            assert_eq!(parsed.state.as_deref(), forwarded, "{state:?}");
        }
    }

    #[test]
    fn xray_headers() {
        // (header, traceparent)
        let cases = [
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"),
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a:1",
                Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"),
            ),
            (
                "Parent=53995c3f42cd8ad8; Root=1-5759e988-bd862e3fe1be46a994272793",
                Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"),
            ),
            ("Root=1-5759e988-bd862e3fe1be46a994272793", None),
            (
                "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
                None,
            ),
            (
                "Root=1-5759e98-8bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
                None,
            ),
            ("garbage", None),
        ];
        for (header, expected) in cases {
            assert_eq!(
                TraceContext::from_xray(header)
                    .map(|t| t.to_string())
                    .as_deref(),
                expected,
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_child_keeps_trace_flags_and_state() {
        let parent = TraceContext::parse(VALID, Some("k=v")).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!((child.flags, child.state.as_deref()), (1, Some("k=v")));
        assert_ne!(child.parent_id, parent.parent_id);
        assert_ne!(child.parent_id, [0; 8]);
        assert_ne!(child.parent_id, parent.child().parent_id);
    }
}
