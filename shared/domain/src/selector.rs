use std::fmt;

use evidentsource_proto as proto;
use proto::event_selector::Selector as P;

use crate::{name::validate_name_prefix, quote};

use crate::Error;

/// What a selector looks at in an event. A selector is a predicate over these
/// three values only, so "the highest revision of the events matching a
/// selector" is the maximum over the distinct (stream, subject, type) triples
/// that match, each with the highest revision it reached. Storage may keep
/// just that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventFacts<'a> {
    pub stream: &'a str,
    pub subject: Option<&'a str>,
    pub event_type: &'a str,
}

/// Chooses events by stream, subject or type.
///
/// An event without a subject matches no subject selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    StreamEquals(String),
    StreamStartsWith(String),
    SubjectEquals(String),
    SubjectStartsWith(String),
    EventTypeEquals(String),
    EventTypeStartsWith(String),
    /// Every selector matches.
    And(Vec<Selector>),
    /// At least one selector matches.
    Or(Vec<Selector>),
}

/// Bounds on a selector's shape, so that a hostile request cannot make
/// evaluation (or the recursion that does it) arbitrarily expensive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorLimits {
    pub max_depth: usize,
    pub max_nodes: usize,
    /// Longest subject or type a selector may name: as long as an event
    /// may be ([`crate::Limits::max_event_bytes`]), since no longer value
    /// can be stored to match.
    pub max_value_bytes: usize,
}

impl Default for SelectorLimits {
    fn default() -> Self {
        SelectorLimits {
            max_depth: 8,
            max_nodes: 64,
            max_value_bytes: 256 * 1024,
        }
    }
}

impl Selector {
    pub fn matches(&self, event: &EventFacts<'_>) -> bool {
        match self {
            Selector::StreamEquals(s) => event.stream == s,
            Selector::StreamStartsWith(p) => event.stream.starts_with(p.as_str()),
            Selector::SubjectEquals(s) => event.subject == Some(s.as_str()),
            Selector::SubjectStartsWith(p) => {
                event.subject.is_some_and(|s| s.starts_with(p.as_str()))
            }
            Selector::EventTypeEquals(t) => event.event_type == t,
            Selector::EventTypeStartsWith(p) => event.event_type.starts_with(p.as_str()),
            Selector::And(all) => all.iter().all(|s| s.matches(event)),
            Selector::Or(any) => any.iter().any(|s| s.matches(event)),
        }
    }

    /// Converts and validates the wire form; errors name the field below `field`.
    pub fn from_proto(
        field: &str,
        selector: &proto::EventSelector,
        limits: SelectorLimits,
    ) -> Result<Selector, Error> {
        let mut nodes = 0;
        Self::from_proto_at(field, selector, limits, 1, &mut nodes)
    }

    fn from_proto_at(
        field: &str,
        selector: &proto::EventSelector,
        limits: SelectorLimits,
        depth: usize,
        nodes: &mut usize,
    ) -> Result<Selector, Error> {
        *nodes += 1;
        if *nodes > limits.max_nodes {
            return Err(Error::invalid_argument(
                field,
                format!(
                    "a condition's selector may have at most {} parts",
                    limits.max_nodes
                ),
            ));
        }
        if depth > limits.max_depth {
            return Err(Error::invalid_argument(
                field,
                format!(
                    "selectors may nest at most {} levels deep",
                    limits.max_depth
                ),
            ));
        }
        let value = |name: &str, v: &str| -> Result<String, Error> {
            if v.is_empty() {
                Err(Error::invalid_argument(
                    format!("{field}.{name}"),
                    "must not be empty",
                ))
            } else if v.len() > limits.max_value_bytes {
                Err(Error::invalid_argument(
                    format!("{field}.{name}"),
                    format!(
                        "is {} bytes; no event can hold a value over {} bytes",
                        v.len(),
                        limits.max_value_bytes
                    ),
                ))
            } else {
                Ok(v.to_owned())
            }
        };
        let list = |name: &str, l: &proto::EventSelectorList, nodes: &mut usize| {
            if l.selectors.is_empty() {
                return Err(Error::invalid_argument(
                    format!("{field}.{name}"),
                    "needs at least one selector",
                ));
            }
            l.selectors
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let child = format!("{field}.{name}[{i}]");
                    Self::from_proto_at(&child, s, limits, depth + 1, nodes)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match &selector.selector {
            None => {
                return Err(Error::invalid_argument(
                    field,
                    "must be one of stream_equals, stream_starts_with, subject_equals, \
                     subject_starts_with, event_type_equals, event_type_starts_with, and, or",
                ));
            }
            // A stream is a name: a selector with characters no name has,
            // or longer than any name, is a mistake, not a condition that
            // always holds.
            Some(P::StreamEquals(v)) => {
                let field = format!("{field}.stream_equals");
                validate_name_prefix(&field, v)?;
                Selector::StreamEquals(v.clone())
            }
            Some(P::StreamStartsWith(v)) => {
                let field = format!("{field}.stream_starts_with");
                validate_name_prefix(&field, v)?;
                Selector::StreamStartsWith(v.clone())
            }
            Some(P::SubjectEquals(v)) => Selector::SubjectEquals(value("subject_equals", v)?),
            Some(P::SubjectStartsWith(v)) => {
                Selector::SubjectStartsWith(value("subject_starts_with", v)?)
            }
            Some(P::EventTypeEquals(v)) => {
                Selector::EventTypeEquals(value("event_type_equals", v)?)
            }
            Some(P::EventTypeStartsWith(v)) => {
                Selector::EventTypeStartsWith(value("event_type_starts_with", v)?)
            }
            Some(P::And(l)) => Selector::And(list("and", l, nodes)?),
            Some(P::Or(l)) => Selector::Or(list("or", l, nodes)?),
        })
    }

    pub fn to_proto(&self) -> proto::EventSelector {
        let list = |l: &[Selector]| proto::EventSelectorList {
            selectors: l.iter().map(Selector::to_proto).collect(),
        };
        let selector = match self {
            Selector::StreamEquals(v) => P::StreamEquals(v.clone()),
            Selector::StreamStartsWith(v) => P::StreamStartsWith(v.clone()),
            Selector::SubjectEquals(v) => P::SubjectEquals(v.clone()),
            Selector::SubjectStartsWith(v) => P::SubjectStartsWith(v.clone()),
            Selector::EventTypeEquals(v) => P::EventTypeEquals(v.clone()),
            Selector::EventTypeStartsWith(v) => P::EventTypeStartsWith(v.clone()),
            Selector::And(l) => P::And(list(l)),
            Selector::Or(l) => P::Or(list(l)),
        };
        proto::EventSelector {
            selector: Some(selector),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, op: &str, l: &[Selector]| {
            write!(f, "{op}(")?;
            for (i, s) in l.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{s}")?;
            }
            f.write_str(")")
        };
        match self {
            Selector::StreamEquals(v) => write!(f, "stream = {}", quote(v)),
            Selector::StreamStartsWith(v) => write!(f, "stream starts with {}", quote(v)),
            Selector::SubjectEquals(v) => write!(f, "subject = {}", quote(v)),
            Selector::SubjectStartsWith(v) => write!(f, "subject starts with {}", quote(v)),
            Selector::EventTypeEquals(v) => write!(f, "type = {}", quote(v)),
            Selector::EventTypeStartsWith(v) => write!(f, "type starts with {}", quote(v)),
            Selector::And(l) => join(f, "and", l),
            Selector::Or(l) => join(f, "or", l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(stream: &'a str, subject: Option<&'a str>, event_type: &'a str) -> EventFacts<'a> {
        EventFacts {
            stream,
            subject,
            event_type,
        }
    }

    #[test]
    fn leaf_selectors() {
        let e = ev("orders", Some("order-1"), "com.shop.placed");
        let cases = [
            (Selector::StreamEquals("orders".into()), true),
            (Selector::StreamEquals("order".into()), false),
            (Selector::StreamStartsWith("ord".into()), true),
            (Selector::StreamStartsWith("x".into()), false),
            (Selector::SubjectEquals("order-1".into()), true),
            (Selector::SubjectEquals("order-2".into()), false),
            (Selector::SubjectStartsWith("order-".into()), true),
            (Selector::SubjectStartsWith("cust".into()), false),
            (Selector::EventTypeEquals("com.shop.placed".into()), true),
            (Selector::EventTypeEquals("com.shop".into()), false),
            (Selector::EventTypeStartsWith("com.shop.".into()), true),
            (Selector::EventTypeStartsWith("org.".into()), false),
        ];
        for (selector, expected) in cases {
            assert_eq!(selector.matches(&e), expected, "{selector}");
        }
    }

    #[test]
    fn no_subject_matches_no_subject_selector() {
        let e = ev("orders", None, "t");
        assert!(!Selector::SubjectEquals("x".into()).matches(&e));
        assert!(!Selector::SubjectStartsWith("x".into()).matches(&e));
    }

    #[test]
    fn and_or() {
        let e = ev("orders", Some("o-1"), "placed");
        let and = Selector::And(vec![
            Selector::StreamEquals("orders".into()),
            Selector::SubjectStartsWith("o-".into()),
        ]);
        assert!(and.matches(&e));
        let and_fails = Selector::And(vec![
            Selector::StreamEquals("orders".into()),
            Selector::EventTypeEquals("shipped".into()),
        ]);
        assert!(!and_fails.matches(&e));
        let or = Selector::Or(vec![
            and_fails.clone(),
            Selector::EventTypeEquals("placed".into()),
        ]);
        assert!(or.matches(&e));
        assert!(!Selector::Or(vec![and_fails]).matches(&e));
    }

    #[test]
    fn from_proto_round_trip_and_errors() {
        let s = Selector::Or(vec![
            Selector::And(vec![
                Selector::StreamEquals("a".into()),
                Selector::SubjectEquals("b".into()),
            ]),
            Selector::EventTypeStartsWith("c".into()),
            Selector::StreamStartsWith("d".into()),
            Selector::SubjectStartsWith("e".into()),
            Selector::EventTypeEquals("f".into()),
        ]);
        let back = Selector::from_proto("selector", &s.to_proto(), SelectorLimits::default());
        assert_eq!(back.unwrap(), s);

        let missing = proto::EventSelector { selector: None };
        let err =
            Selector::from_proto("selector", &missing, SelectorLimits::default()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("selector"));

        let empty_and = proto::EventSelector {
            selector: Some(P::And(proto::EventSelectorList { selectors: vec![] })),
        };
        let err =
            Selector::from_proto("selector", &empty_and, SelectorLimits::default()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("selector.and"));

        let empty_value = proto::EventSelector {
            selector: Some(P::Or(proto::EventSelectorList {
                selectors: vec![proto::EventSelector {
                    selector: Some(P::SubjectEquals(String::new())),
                }],
            })),
        };
        let err =
            Selector::from_proto("selector", &empty_value, SelectorLimits::default()).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("selector.or[0].subject_equals"));
    }

    #[test]
    fn stream_selectors_name_possible_streams() {
        let long = "s".repeat(129);
        for (selector, accepted) in [
            (P::StreamEquals("orders".into()), true),
            (P::StreamEquals("a".into()), true),
            (P::StreamEquals("é".into()), false),
            (P::StreamEquals("1orders".into()), false),
            (P::StreamEquals("or ders".into()), false),
            (P::StreamEquals(long.clone()), false),
            (P::StreamStartsWith("o".into()), true),
            (P::StreamStartsWith("ord-".into()), true),
            (P::StreamStartsWith("é".into()), false),
            (P::StreamStartsWith(long.clone()), false),
            // Subjects and types are not names: anything non-empty.
            (P::SubjectEquals("é 1".into()), true),
            (P::EventTypeStartsWith("é".into()), true),
            (P::SubjectEquals("x".repeat(256 * 1024)), true),
            (P::SubjectEquals("x".repeat(256 * 1024 + 1)), false),
            (P::EventTypeEquals("x".repeat(300 * 1024)), false),
        ] {
            let proto = proto::EventSelector {
                selector: Some(selector.clone()),
            };
            let got = Selector::from_proto("selector", &proto, SelectorLimits::default());
            assert_eq!(got.is_ok(), accepted, "{selector:?}: {got:?}");
            if let Err(e) = got {
                assert!(e.field.unwrap().starts_with("selector."), "{selector:?}");
                assert!(e.message.len() < 300, "{}", e.message);
            }
        }
    }

    #[test]
    fn limits_bound_depth_and_size() {
        let mut deep = Selector::StreamEquals("a".into());
        for _ in 0..8 {
            deep = Selector::And(vec![deep]);
        }
        let err = Selector::from_proto("selector", &deep.to_proto(), SelectorLimits::default())
            .unwrap_err();
        assert!(err.message.contains("nest"), "{}", err.message);

        let wide = Selector::Or(
            (0..64)
                .map(|i| Selector::StreamEquals(format!("s{i}")))
                .collect(),
        );
        let err = Selector::from_proto("selector", &wide.to_proto(), SelectorLimits::default())
            .unwrap_err();
        assert!(err.message.contains("at most 64"), "{}", err.message);
    }
}
