//! Which parts of the index a selector can match (pure;
//! docs/storage.md, "Deciding a condition at basis B"): its *cover*, a set of ranges (a value,
//! or a prefix, of one dimension) whose events include every event the
//! selector matches. Reading the cover and checking the whole selector on
//! each entry found ([`super::posting::matches`]) gives exactly the
//! matching events.
//!
//! `or` takes the union of its parts' covers; `and` the cheapest of its
//! parts' covers (the other parts only filter). So a cover has at most as
//! many ranges as the selector has leaves, with no blow-up.

use evidentsource_domain::Selector;

/// One of an event's three facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Subject,
    Type,
    Stream,
}

/// A part of one dimension's postings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Range {
    Equals(Dimension, String),
    StartsWith(Dimension, String),
}

impl Range {
    /// A static estimate of what reading the range costs, for choosing
    /// among the parts of an `and`: a subject names few events, a type or
    /// a stream many, a prefix more than its values.
    fn rank(&self) -> u32 {
        match self {
            Range::Equals(Dimension::Subject, _) => 1,
            Range::Equals(Dimension::Type, _) => 4,
            Range::Equals(Dimension::Stream, _) => 6,
            Range::StartsWith(Dimension::Type | Dimension::Stream, _) => 8,
            Range::StartsWith(Dimension::Subject, _) => 10,
        }
    }

    /// Whether the range holds an event with these facts.
    pub fn holds(&self, stream: &str, subject: Option<&str>, event_type: &str) -> bool {
        let value = |d: &Dimension| match d {
            Dimension::Subject => subject,
            Dimension::Type => Some(event_type),
            Dimension::Stream => Some(stream),
        };
        match self {
            Range::Equals(d, v) => value(d) == Some(v.as_str()),
            Range::StartsWith(d, p) => value(d).is_some_and(|x| x.starts_with(p.as_str())),
        }
    }
}

/// The cover of `selector`, without duplicates, and without a value whose
/// prefix is in it too.
pub fn cover(selector: &Selector) -> Vec<Range> {
    let mut ranges = raw_cover(selector);
    ranges.sort();
    ranges.dedup();
    let prefixes: Vec<(Dimension, String)> = ranges
        .iter()
        .filter_map(|r| match r {
            Range::StartsWith(d, p) => Some((*d, p.clone())),
            Range::Equals(..) => None,
        })
        .collect();
    ranges.retain(|r| match r {
        Range::Equals(d, v) => !prefixes
            .iter()
            .any(|(pd, p)| pd == d && v.starts_with(p.as_str())),
        Range::StartsWith(d, p) => !prefixes
            .iter()
            .any(|(pd, q)| pd == d && q != p && p.starts_with(q.as_str())),
    });
    ranges
}

/// What reading a cover costs, by [`Range::rank`].
pub fn cost(ranges: &[Range]) -> u32 {
    ranges.iter().map(Range::rank).sum()
}

fn raw_cover(selector: &Selector) -> Vec<Range> {
    use Dimension::*;
    match selector {
        Selector::SubjectEquals(v) => vec![Range::Equals(Subject, v.clone())],
        Selector::SubjectStartsWith(p) => vec![Range::StartsWith(Subject, p.clone())],
        Selector::EventTypeEquals(v) => vec![Range::Equals(Type, v.clone())],
        Selector::EventTypeStartsWith(p) => vec![Range::StartsWith(Type, p.clone())],
        Selector::StreamEquals(v) => vec![Range::Equals(Stream, v.clone())],
        Selector::StreamStartsWith(p) => vec![Range::StartsWith(Stream, p.clone())],
        Selector::Or(any) => any.iter().flat_map(raw_cover).collect(),
        // `and` of nothing matches everything: every event has a type.
        Selector::And(all) if all.is_empty() => vec![Range::StartsWith(Type, String::new())],
        Selector::And(all) => all
            .iter()
            .map(cover)
            .min_by_key(|c| cost(c))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use evidentsource_domain::EventFacts;
    use proptest::prelude::*;

    use super::*;

    fn eq_subject(v: &str) -> Selector {
        Selector::SubjectEquals(v.into())
    }

    #[test]
    fn covers_take_the_union_of_or_and_the_cheapest_part_of_and() {
        use Dimension::*;
        let table: Vec<(Selector, Vec<Range>)> = vec![
            (
                eq_subject("o-1"),
                vec![Range::Equals(Subject, "o-1".into())],
            ),
            (
                Selector::And(vec![
                    Selector::StreamEquals("orders".into()),
                    Selector::EventTypeStartsWith("com.".into()),
                    eq_subject("o-1"),
                ]),
                vec![Range::Equals(Subject, "o-1".into())],
            ),
            (
                Selector::Or(vec![
                    eq_subject("o-2"),
                    eq_subject("o-1"),
                    eq_subject("o-2"),
                ]),
                vec![
                    Range::Equals(Subject, "o-1".into()),
                    Range::Equals(Subject, "o-2".into()),
                ],
            ),
            // A value inside a prefix of the same dimension goes.
            (
                Selector::Or(vec![
                    eq_subject("o-1"),
                    Selector::SubjectStartsWith("o-".into()),
                    Selector::SubjectStartsWith("o-1".into()),
                    Selector::EventTypeEquals("o-1".into()),
                ]),
                vec![
                    Range::Equals(Type, "o-1".into()),
                    Range::StartsWith(Subject, "o-".into()),
                ],
            ),
            // `and` of two `or`s: the cheaper union.
            (
                Selector::And(vec![
                    Selector::Or(vec![
                        Selector::StreamEquals("a".into()),
                        Selector::StreamEquals("b".into()),
                    ]),
                    Selector::Or(vec![eq_subject("x"), eq_subject("y")]),
                ]),
                vec![
                    Range::Equals(Subject, "x".into()),
                    Range::Equals(Subject, "y".into()),
                ],
            ),
        ];
        for (selector, expected) in table {
            assert_eq!(cover(&selector), expected, "{selector:?}");
        }
    }

    fn text() -> impl Strategy<Value = String> {
        "[ab]{0,3}"
    }

    fn selector() -> impl Strategy<Value = Selector> {
        crate::index::strategies::selector(text().boxed(), 0..4)
    }

    proptest! {
        /// Every event a selector matches is in its cover, and the cover
        /// has no more ranges than the selector has leaves.
        #[test]
        fn the_cover_holds_every_match(
            s in selector(), stream in text(), subject in prop::option::of(text()), ty in text()
        ) {
            let c = cover(&s);
            let facts = EventFacts { stream: &stream, subject: subject.as_deref(), event_type: &ty };
            if s.matches(&facts) {
                prop_assert!(
                    c.iter().any(|r| r.holds(&stream, subject.as_deref(), &ty)),
                    "{:?} matches {:?} outside its cover {:?}", s, facts, c
                );
            }
            fn leaves(s: &Selector) -> usize {
                match s {
                    // `and` of nothing stands for every event: one range.
                    Selector::And(v) if v.is_empty() => 1,
                    Selector::And(v) | Selector::Or(v) => v.iter().map(leaves).sum(),
                    _ => 1,
                }
            }
            prop_assert!(c.len() <= leaves(&s));
        }
    }
}
