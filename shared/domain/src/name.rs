use std::fmt;

use crate::{Error, quote};

/// Longest valid name: one letter plus 127 more characters.
const MAX_LEN: usize = 128;

/// Checks a database or stream name against `^[a-zA-Z][a-zA-Z0-9\-_.]{1,127}$`.
///
/// Written out by hand rather than with a regex: it runs for every event of
/// every transaction, and the property test below keeps it equal to the
/// pattern.
pub fn validate_name(field: &str, name: &str) -> Result<(), Error> {
    check(field, name, 2)
}

/// Checks the start of a name (a selector's `stream_starts_with`): what
/// [`validate_name`] asks, but one character is enough.
pub fn validate_name_prefix(field: &str, prefix: &str) -> Result<(), Error> {
    check(field, prefix, 1)
}

fn check(field: &str, name: &str, min_len: usize) -> Result<(), Error> {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(Error::invalid_argument(field, "must not be empty"));
    };
    if !first.is_ascii_alphabetic() {
        return Err(Error::invalid_argument(
            field,
            format!("{} must start with a letter (a-z, A-Z)", quote(name)),
        ));
    }
    if bytes.len() < min_len {
        return Err(Error::invalid_argument(
            field,
            format!(
                "{} is too short (at least {min_len} characters)",
                quote(name)
            ),
        ));
    }
    if bytes.len() > MAX_LEN {
        return Err(Error::invalid_argument(
            field,
            format!("is too long ({} bytes, at most {MAX_LEN})", bytes.len()),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Error::invalid_argument(
            field,
            format!(
                "{} contains {bad:?}; allowed are letters, digits, '-', '_' and '.'",
                quote(name)
            ),
        ));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// Validates `name`; the error names `field`.
            pub fn parse_field(field: &str, name: impl Into<String>) -> Result<Self, Error> {
                let name = name.into();
                validate_name(field, &name)?;
                Ok($ty(name))
            }

            /// Validates `name`; the error names the default field.
            pub fn parse(name: impl Into<String>) -> Result<Self, Error> {
                Self::parse_field($field, name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A validated database name.
    DatabaseName,
    "database"
);
name_type!(
    /// A validated stream name (the last path segment of an event's source).
    StreamName,
    "stream"
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in [
            "ab",
            "accounts",
            "A-1",
            "x.y_z-0",
            &format!("a{}", "b".repeat(127)),
        ] {
            assert!(validate_name("database", ok).is_ok(), "{ok}");
        }
        let cases = [
            ("", "must not be empty"),
            ("a", "too short"),
            ("1abc", "must start with a letter"),
            ("-abc", "must start with a letter"),
            ("ab c", "contains ' '"),
            ("ab/c", "contains '/'"),
            ("abé", "contains 'é'"),
        ];
        for (bad, why) in cases {
            let err = validate_name("database", bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("database"));
            assert!(err.message.contains(why), "{bad:?}: {}", err.message);
        }
        let long = format!("a{}", "b".repeat(128));
        assert!(
            validate_name("name", &long)
                .unwrap_err()
                .message
                .contains("too long")
        );
    }

    #[test]
    fn typed_names_report_their_field() {
        assert_eq!(
            DatabaseName::parse("accounts").unwrap().as_str(),
            "accounts"
        );
        let err = StreamName::parse("9").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("stream"));
        let err = DatabaseName::parse_field("database_name", "").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("database_name"));
    }

    proptest! {
        #[test]
        fn equals_the_contract_pattern(name in "[a-zA-Z0-9._/ é-]{0,130}") {
            let pattern = regex::Regex::new(r"^[a-zA-Z][a-zA-Z0-9\-_.]{1,127}$").unwrap();
            prop_assert_eq!(validate_name("n", &name).is_ok(), pattern.is_match(&name));
        }

        #[test]
        fn valid_names_pass(name in "[a-zA-Z][a-zA-Z0-9._-]{1,127}") {
            prop_assert!(validate_name("n", &name).is_ok());
        }
    }
}
