//! Caller input quoted in error messages, bounded.
//!
//! An error message names what was wrong and usually quotes it. Unbounded,
//! a 900 KB header value quoted into an error would make the async
//! response (and its record in the table, which DynamoDB caps at 400 KB)
//! too large to write, and the command would block its partition. Every
//! quote of input goes through [`quote`] (as Rust's `{:?}` would write it)
//! or [`bound`] (as written, for names such as a header's), and
//! [`crate::Error`] bounds whole messages as a last guard.

use std::fmt;

/// The characters of input an error message shows.
pub const QUOTE_CHARS: usize = 64;

/// `value` in double quotes with Rust's escapes, cut after
/// [`QUOTE_CHARS`] characters: `"abc…" (900000 bytes)`.
pub fn quote(value: &str) -> Quoted<'_> {
    Quoted {
        value,
        escaped: true,
    }
}

/// `value` as it is, cut after [`QUOTE_CHARS`] characters: `abc… (900000 bytes)`.
pub fn bound(value: &str) -> Quoted<'_> {
    Quoted {
        value,
        escaped: false,
    }
}

/// See [`quote`] and [`bound`].
#[derive(Clone, Copy)]
pub struct Quoted<'a> {
    value: &'a str,
    escaped: bool,
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self.value.char_indices().nth(QUOTE_CHARS).map(|(at, _)| at);
        let shown = &self.value[..cut.unwrap_or(self.value.len())];
        match (self.escaped, cut.is_some()) {
            (true, false) => write!(f, "{shown:?}"),
            (false, false) => f.write_str(shown),
            // The escaped form without its closing quote, then the mark.
            (true, true) => {
                let escaped = format!("{shown:?}");
                write!(
                    f,
                    "{}…\" ({} bytes)",
                    &escaped[..escaped.len() - 1],
                    self.value.len()
                )
            }
            (false, true) => write!(f, "{shown}… ({} bytes)", self.value.len()),
        }
    }
}

impl fmt::Debug for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Cuts `text` to at most `max` bytes at a character boundary, marking the
/// cut; for whole messages built elsewhere.
pub fn truncate_message(text: &mut String, max: usize) {
    const MARK: &str = "… (truncated)";
    if text.len() <= max {
        return;
    }
    let mut at = max.saturating_sub(MARK.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text.truncate(at);
    text.push_str(MARK);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_shown_whole() {
        for (value, quoted, bounded) in [
            ("", r#""""#, ""),
            ("shop", r#""shop""#, "shop"),
            ("a\nb", r#""a\nb""#, "a\nb"),
            ("café", r#""café""#, "café"),
        ] {
            assert_eq!(quote(value).to_string(), quoted, "{value:?}");
            assert_eq!(bound(value).to_string(), bounded, "{value:?}");
        }
        let exactly = "x".repeat(QUOTE_CHARS);
        assert_eq!(quote(&exactly).to_string(), format!("\"{exactly}\""));
    }

    #[test]
    fn long_values_are_cut_and_their_size_given() {
        let long = "é".repeat(450_000);
        let shown = "é".repeat(QUOTE_CHARS);
        assert_eq!(
            quote(&long).to_string(),
            format!("\"{shown}…\" (900000 bytes)")
        );
        assert_eq!(bound(&long).to_string(), format!("{shown}… (900000 bytes)"));
        // Escapes stay whole and the quote stays small, whatever the input.
        let controls = "\u{1}".repeat(100_000);
        let quoted = quote(&controls).to_string();
        assert!(quoted.len() < 16 * QUOTE_CHARS, "{}", quoted.len());
        assert!(quoted.starts_with("\"\\u{1}") && quoted.ends_with("…\" (100000 bytes)"));
    }

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        for (text, max, expected) in [
            ("short", 100, "short".to_owned()),
            ("exactly", 7, "exactly".to_owned()),
        ] {
            let mut t = text.to_owned();
            truncate_message(&mut t, max);
            assert_eq!(t, expected);
        }
        let mut t = "ü".repeat(1000);
        truncate_message(&mut t, 100);
        assert!(t.len() <= 100, "{}", t.len());
        assert!(t.ends_with("… (truncated)"), "{t}");
    }
}
