use std::fmt;

use evidentsource_proto as proto;
use proto::append_condition::Bound as P;

use crate::{Error, EventFacts, Selector, SelectorLimits};

/// A bound on the highest revision of the events matching a selector, as of a
/// transaction's basis. When no event matches, the highest revision is 0
/// (revision 0 is the database's creation, which no selector matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bound {
    /// highest ≥ r
    Min(u64),
    /// highest ≤ r; `Max(0)` means no event may match (uniqueness)
    Max(u64),
    /// min ≤ highest ≤ max
    Range { min: u64, max: u64 },
}

impl Bound {
    pub fn holds(self, highest: u64) -> bool {
        match self {
            Bound::Min(r) => highest >= r,
            Bound::Max(r) => highest <= r,
            Bound::Range { min, max } => (min..=max).contains(&highest),
        }
    }
}

/// The DCB append condition, generalised to `Min`, `Max` and `Range`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppendCondition {
    pub selector: Selector,
    pub bound: Bound,
}

impl AppendCondition {
    pub fn max(selector: Selector, revision: u64) -> Self {
        AppendCondition {
            selector,
            bound: Bound::Max(revision),
        }
    }

    pub fn min(selector: Selector, revision: u64) -> Self {
        AppendCondition {
            selector,
            bound: Bound::Min(revision),
        }
    }

    pub fn range(selector: Selector, min: u64, max: u64) -> Self {
        AppendCondition {
            selector,
            bound: Bound::Range { min, max },
        }
    }

    /// Converts and validates the wire form; `field` is e.g. `conditions[3]`.
    pub fn from_proto(
        field: &str,
        condition: &proto::AppendCondition,
        limits: SelectorLimits,
    ) -> Result<Self, Error> {
        let Some(selector) = &condition.selector else {
            return Err(Error::invalid_argument(
                format!("{field}.selector"),
                "is required",
            ));
        };
        let selector = Selector::from_proto(&format!("{field}.selector"), selector, limits)?;
        let bound = match condition.bound {
            None => {
                return Err(Error::invalid_argument(
                    field,
                    "needs one of min, max or range",
                ));
            }
            Some(P::Min(r)) => Bound::Min(r),
            Some(P::Max(r)) => Bound::Max(r),
            Some(P::Range(proto::RevisionRange { min, max })) => {
                if min > max {
                    return Err(Error::invalid_argument(
                        format!("{field}.range"),
                        format!("min ({min}) is greater than max ({max})"),
                    ));
                }
                Bound::Range { min, max }
            }
        };
        Ok(AppendCondition { selector, bound })
    }

    pub fn to_proto(&self) -> proto::AppendCondition {
        let bound = match self.bound {
            Bound::Min(r) => P::Min(r),
            Bound::Max(r) => P::Max(r),
            Bound::Range { min, max } => P::Range(proto::RevisionRange { min, max }),
        };
        proto::AppendCondition {
            selector: Some(self.selector.to_proto()),
            bound: Some(bound),
        }
    }

    /// `Ok` if the condition holds for `highest`, else `FAILED_PRECONDITION`
    /// naming the condition (by its index in the request) and what was found.
    pub fn check(&self, index: usize, highest: u64) -> Result<(), Error> {
        if self.bound.holds(highest) {
            return Ok(());
        }
        let found = if highest == 0 {
            "no event matches".to_string()
        } else {
            format!("the highest matching revision is {highest}")
        };
        Err(Error::new(
            crate::ErrorCode::FailedPrecondition,
            Some(format!("conditions[{index}]")),
            format!("conditions[{index}] {self} does not hold: {found}"),
        ))
    }
}

impl fmt::Display for AppendCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bound {
            Bound::Min(r) => write!(f, "Min({}, {r})", self.selector),
            Bound::Max(r) => write!(f, "Max({}, {r})", self.selector),
            Bound::Range { min, max } => write!(f, "Range({}, {min}, {max})", self.selector),
        }
    }
}

/// The outcome of evaluating a set of conditions over some events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionCheck {
    /// Per condition, the highest revision among the matching events (0 if none).
    pub highest: Vec<u64>,
}

impl ConditionCheck {
    /// The first condition that does not hold, as `FAILED_PRECONDITION`.
    pub fn result(&self, conditions: &[AppendCondition]) -> Result<(), Error> {
        conditions
            .iter()
            .zip(&self.highest)
            .enumerate()
            .try_for_each(|(i, (c, &h))| c.check(i, h))
    }
}

/// Evaluates `conditions` over `events` (revision, facts) — every event of
/// the database up to the basis, or one entry per distinct facts triple with
/// its highest revision: the result is the same.
pub fn evaluate<'a>(
    conditions: &[AppendCondition],
    events: impl IntoIterator<Item = (u64, EventFacts<'a>)>,
) -> ConditionCheck {
    let mut highest = vec![0; conditions.len()];
    for (revision, facts) in events {
        for (h, c) in highest.iter_mut().zip(conditions) {
            if revision > *h && c.selector.matches(&facts) {
                *h = revision;
            }
        }
    }
    ConditionCheck { highest }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ErrorCode;

    fn facts(stream: &str) -> EventFacts<'_> {
        EventFacts {
            stream,
            subject: None,
            event_type: "t",
        }
    }

    #[test]
    fn bounds() {
        assert!(Bound::Max(0).holds(0));
        assert!(!Bound::Max(0).holds(1));
        assert!(Bound::Max(5).holds(5));
        assert!(!Bound::Max(5).holds(6));
        assert!(Bound::Min(3).holds(3));
        assert!(!Bound::Min(3).holds(2));
        assert!(Bound::Min(0).holds(0));
        assert!(Bound::Range { min: 2, max: 4 }.holds(2));
        assert!(Bound::Range { min: 2, max: 4 }.holds(4));
        assert!(!Bound::Range { min: 2, max: 4 }.holds(1));
        assert!(!Bound::Range { min: 2, max: 4 }.holds(5));
    }

    #[test]
    fn evaluate_takes_the_highest_matching_revision() {
        let conditions = [
            AppendCondition::max(Selector::StreamEquals("a".into()), 0),
            AppendCondition::max(Selector::StreamEquals("b".into()), 2),
            AppendCondition::min(Selector::StreamStartsWith("c".into()), 1),
        ];
        let events = [
            (1, facts("a")),
            (2, facts("b")),
            (3, facts("b")),
            (4, facts("x")),
        ];
        let check = evaluate(&conditions, events);
        assert_eq!(check.highest, vec![1, 3, 0]);
        let err = check.result(&conditions).unwrap_err();
        assert_eq!(err.code, ErrorCode::FailedPrecondition);
        assert_eq!(err.field.as_deref(), Some("conditions[0]"));
        assert_eq!(
            err.message,
            "conditions[0] Max(stream = \"a\", 0) does not hold: the highest matching revision is 1"
        );

        let check = evaluate(&conditions[2..], [(7, facts("c1"))]);
        assert!(check.result(&conditions[2..]).is_ok());
        let err = evaluate(&conditions[2..], [])
            .result(&conditions[2..])
            .unwrap_err();
        assert!(err.message.ends_with("no event matches"), "{}", err.message);
    }

    #[test]
    fn from_proto_validates() {
        let ok = AppendCondition::range(Selector::StreamEquals("s".into()), 1, 5);
        let back = AppendCondition::from_proto("conditions[0]", &ok.to_proto(), Default::default());
        assert_eq!(back.unwrap(), ok);

        let mut inverted = ok.to_proto();
        inverted.bound = Some(P::Range(proto::RevisionRange { min: 5, max: 1 }));
        let err = AppendCondition::from_proto("conditions[0]", &inverted, Default::default())
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("conditions[0].range"));

        let mut no_bound = ok.to_proto();
        no_bound.bound = None;
        let err = AppendCondition::from_proto("conditions[1]", &no_bound, Default::default())
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("conditions[1]"));

        let mut no_selector = ok.to_proto();
        no_selector.selector = None;
        let err = AppendCondition::from_proto("conditions[2]", &no_selector, Default::default())
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("conditions[2].selector"));
    }

    fn selector() -> impl Strategy<Value = Selector> {
        let leaf = prop_oneof![
            "[ab]{1,2}".prop_map(Selector::StreamEquals),
            "[ab]{1}".prop_map(Selector::StreamStartsWith),
            "[xy]{1,2}".prop_map(Selector::SubjectEquals),
            "[xy]{1}".prop_map(Selector::SubjectStartsWith),
            "[tu]".prop_map(Selector::EventTypeEquals),
            "[tu]".prop_map(Selector::EventTypeStartsWith),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(Selector::And),
                prop::collection::vec(inner, 1..3).prop_map(Selector::Or),
            ]
        })
    }

    type Triple = (String, Option<String>, String);

    fn event() -> impl Strategy<Value = Triple> {
        ("[ab]{1,2}", prop::option::of("[xy]{1,2}"), "[tu]")
    }

    proptest! {
        /// Evaluating over every event equals evaluating over one entry per
        /// distinct (stream, subject, type) with its highest revision: the
        /// property the storage layer's condition index relies on.
        #[test]
        fn triple_index_is_sufficient(
            selectors in prop::collection::vec(selector(), 1..4),
            events in prop::collection::vec(event(), 0..40),
        ) {
            let conditions: Vec<_> =
                selectors.into_iter().map(|s| AppendCondition::max(s, 0)).collect();
            let all = events.iter().enumerate().map(|(i, (s, sub, t))| {
                (i as u64 + 1, EventFacts { stream: s, subject: sub.as_deref(), event_type: t })
            });
            let full = evaluate(&conditions, all);

            let mut index: std::collections::HashMap<&Triple, u64> = Default::default();
            for (i, e) in events.iter().enumerate() {
                index.insert(e, i as u64 + 1);
            }
            let by_triple = index.iter().map(|((s, sub, t), &r)| {
                (r, EventFacts { stream: s, subject: sub.as_deref(), event_type: t })
            });
            prop_assert_eq!(full, evaluate(&conditions, by_triple));
        }

        /// A brute-force model: highest = max revision of matching events.
        #[test]
        fn matches_brute_force(
            s in selector(),
            events in prop::collection::vec(event(), 0..30),
            r in 0u64..32,
        ) {
            let mut expected = 0;
            for (i, (st, sub, t)) in events.iter().enumerate() {
                let f = EventFacts { stream: st, subject: sub.as_deref(), event_type: t };
                if s.matches(&f) { expected = i as u64 + 1; }
            }
            let all = events.iter().enumerate().map(|(i, (st, sub, t))| {
                (i as u64 + 1, EventFacts { stream: st, subject: sub.as_deref(), event_type: t })
            });
            let conditions = [AppendCondition::max(s.clone(), r), AppendCondition::min(s, r)];
            let check = evaluate(&conditions, all);
            prop_assert_eq!(check.highest.clone(), vec![expected, expected]);
            prop_assert_eq!(conditions[0].check(0, expected).is_ok(), expected <= r);
            prop_assert_eq!(conditions[1].check(1, expected).is_ok(), expected >= r);
        }
    }
}
