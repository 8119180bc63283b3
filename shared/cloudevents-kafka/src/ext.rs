//! The suite's extension attributes, with typed access.
//!
//! `revision` and `basis` are unsigned 64-bit integers. CloudEvents' own
//! integer type is a signed 32-bit value, so they are carried as decimal
//! strings (exactly what the Kafka binding puts in the header) and parsed
//! here; decoding checks them, so a decoded event always has valid values.

use cloudevents::{Event, event::ExtensionValue};

use crate::DecodeError;

/// Database revision after the event.
pub const REVISION: &str = "revision";
/// Database revision before the event.
pub const BASIS: &str = "basis";
/// Links an async response to its command.
pub const CORRELATION_ID: &str = "correlationid";

/// Extensions whose values must parse as u64 (checked on decode).
pub(crate) const U64_EXTENSIONS: [&str; 2] = [REVISION, BASIS];

/// Extensions written first, in this order; any others follow sorted by name.
pub(crate) const ORDERED: [&str; 3] = [REVISION, BASIS, CORRELATION_ID];

pub fn set_u64(event: &mut Event, name: &str, value: u64) {
    event.set_extension(name, ExtensionValue::String(value.to_string()));
}

/// Reads a u64 extension; `Ok(None)` when absent.
pub fn get_u64(event: &Event, name: &str) -> Result<Option<u64>, DecodeError> {
    let header = || format!("ce_{name}");
    match event.extension(name) {
        None => Ok(None),
        Some(ExtensionValue::String(s)) => parse_u64(&header(), s).map(Some),
        Some(ExtensionValue::Integer(i)) => {
            u64::try_from(*i)
                .map(Some)
                .map_err(|_| DecodeError::BadInteger {
                    header: header(),
                    value: i.to_string(),
                })
        }
        Some(ExtensionValue::Boolean(b)) => Err(DecodeError::BadInteger {
            header: header(),
            value: b.to_string(),
        }),
    }
}

/// Strict decimal: digits only (no sign, no spaces), fits in u64.
pub(crate) fn parse_u64(header: &str, value: &str) -> Result<u64, DecodeError> {
    let bad = || DecodeError::BadInteger {
        header: header.to_owned(),
        value: value.to_owned(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

pub fn set_revision(event: &mut Event, revision: u64) {
    set_u64(event, REVISION, revision);
}

pub fn revision(event: &Event) -> Result<Option<u64>, DecodeError> {
    get_u64(event, REVISION)
}

pub fn set_basis(event: &mut Event, basis: u64) {
    set_u64(event, BASIS, basis);
}

pub fn basis(event: &Event) -> Result<Option<u64>, DecodeError> {
    get_u64(event, BASIS)
}

pub fn set_correlation_id(event: &mut Event, id: impl Into<String>) {
    event.set_extension(CORRELATION_ID, ExtensionValue::String(id.into()));
}

/// The correlation id, if present as a string.
pub fn correlation_id(event: &Event) -> Option<&str> {
    match event.extension(CORRELATION_ID) {
        Some(ExtensionValue::String(s)) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_round_trip_and_bounds() {
        let mut e = Event::default();
        set_revision(&mut e, u64::MAX);
        set_basis(&mut e, 0);
        assert_eq!(revision(&e), Ok(Some(u64::MAX)));
        assert_eq!(basis(&e), Ok(Some(0)));
        e.remove_extension(REVISION);
        assert_eq!(revision(&e), Ok(None));
    }

    #[test]
    fn strict_decimal() {
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "0x10",
            "18446744073709551616",
            "1.0",
        ] {
            let err = parse_u64("ce_revision", bad).unwrap_err();
            assert_eq!(err.header(), "ce_revision", "{bad:?}");
        }
        assert_eq!(parse_u64("h", "007"), Ok(7));
    }

    #[test]
    fn correlation() {
        let mut e = Event::default();
        assert_eq!(correlation_id(&e), None);
        set_correlation_id(&mut e, "c-1");
        assert_eq!(correlation_id(&e), Some("c-1"));
    }
}
