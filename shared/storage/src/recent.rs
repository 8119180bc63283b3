//! The head's recent facts (`rf`, docs/storage.md "Recent facts"): for
//! the last revisions `(floor, revision]` of a database, the hashes of
//! every distinct (stream, subject, type) committed there with the highest
//! revision it reached. Each commit writes them in its head update, from
//! the head it is conditioned on, so they are exact for the head they are
//! read with.
//!
//! They answer one question without reading chunks: "can anything in
//! `[from, revision]` match this selector?" A "no" is certain (every event
//! there has an entry; hashes of equal values are equal); a "maybe" (a
//! match, a hash collision or a prefix selector) sends the evaluation to
//! the chunks as before. So a conditional commit whose conditions are
//! about nothing recent (a new subject, a subject last written below the
//! bound) needs no chunk read past the index's watermark, which is what a
//! cold process would otherwise read after its head.
//!
//! They live in the head's unused bytes: a commit keeps only as many
//! entries (the newest) as fit in [`MAX_BYTES`] and the head in 1 KB, so
//! they cost no write unit, and `floor` rises past what was dropped.

use std::collections::HashMap;

use evidentsource_domain::{OwnedFacts, Selector};
use evidentsource_table_schema::Bytes;

use crate::head::HeadItem;

/// 2: 24/12/12-bit hashes (1, written briefly, had 32/16/16: never read
/// as this).
const VERSION: u8 = 2;
/// What an item may take of DynamoDB's first write unit.
pub(crate) const HEAD_BUDGET: usize = 1024;
/// At most this many bytes of recent facts (some 33 entries): every
/// stream record of the head carries them to the stream publisher and
/// the indexer, which have no use for them.
pub const MAX_BYTES: usize = 256;
/// An entry's hashes: a 24-bit subject, 12-bit stream and type.
const HASH_BYTES: usize = 6;
/// Header: version, incarnation hash, revision and span (varints).
const HEADER_MAX: usize = 1 + 4 + 10 + 10;

/// One distinct (stream, subject, type), hashed, at its highest revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    revision: u64,
    hashes: Hashes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Hashes {
    /// 24 bits; 0: no subject.
    subject: u32,
    /// 12 bits each.
    stream: u16,
    event_type: u16,
}

impl Hashes {
    fn of(facts: &OwnedFacts) -> Self {
        Hashes {
            subject: facts.subject.as_deref().map_or(0, subject_hash),
            stream: short_hash(b's', &facts.stream),
            event_type: short_hash(b't', &facts.event_type),
        }
    }
}

/// FNV-1a, 64 bits, over a domain byte and the value: fixed across
/// processes and versions (std's hasher is seeded per process).
fn fnv(domain: u8, value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(domain).chain(value.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn subject_hash(subject: &str) -> u32 {
    let h = fnv(b'j', subject);
    (((h ^ (h >> 32)) as u32) & 0xff_ffff).max(1)
}

fn short_hash(domain: u8, value: &str) -> u16 {
    let h = fnv(domain, value);
    ((h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16) & 0xfff
}

fn incarnation_hash(incarnation: &str) -> u32 {
    let h = fnv(b'i', incarnation);
    (h ^ (h >> 32)) as u32
}

/// A head's recent facts, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recent {
    /// The head revision they describe.
    revision: u64,
    /// Every revision in `(floor, revision]` has an entry.
    floor: u64,
    /// Newest first; one per distinct hashes.
    entries: Vec<Entry>,
}

impl Recent {
    /// The recent facts of `head`, if it has some that describe it (same
    /// incarnation and revision; anything else is ignored, never trusted).
    pub fn of(head: &HeadItem) -> Option<Recent> {
        let bytes = &head.recent.as_ref()?.0;
        let recent = decode(bytes, incarnation_hash(&head.incarnation))?;
        (recent.revision == head.revision).then_some(recent)
    }

    /// The recent facts of the head a commit of `facts` on `head` leaves
    /// (at `head.revision + facts.len()`), in at most `budget` bytes (and
    /// never more than [`MAX_BYTES`]).
    pub fn after(head: &HeadItem, facts: &[OwnedFacts], budget: usize) -> Bytes {
        let basis = head.revision;
        let revision = basis + facts.len() as u64;
        let (floor, old) = match Recent::of(head) {
            Some(r) => (r.floor, r.entries),
            None => (basis, Vec::new()),
        };
        let mut highest: HashMap<Hashes, u64> = HashMap::with_capacity(old.len() + facts.len());
        for e in old {
            highest.entry(e.hashes).or_insert(e.revision);
        }
        for (i, f) in facts.iter().enumerate() {
            highest.insert(Hashes::of(f), basis + 1 + i as u64);
        }
        let mut entries: Vec<Entry> = highest
            .into_iter()
            .map(|(hashes, revision)| Entry { revision, hashes })
            .collect();
        entries.sort_unstable_by_key(|e| std::cmp::Reverse(e.revision));
        // Keep the newest that fit; the floor rises past what is dropped.
        let room = budget.min(MAX_BYTES).saturating_sub(HEADER_MAX);
        let (mut used, mut kept, mut previous) = (0, 0, revision);
        for e in &entries {
            let size = varint_len(previous - e.revision) + HASH_BYTES;
            if used + size > room {
                break;
            }
            used += size;
            kept += 1;
            previous = e.revision;
        }
        let floor = entries.get(kept).map_or(floor, |e| floor.max(e.revision));
        entries.truncate(kept);
        Bytes(encode(
            &Recent {
                revision,
                floor,
                entries,
            },
            incarnation_hash(&head.incarnation),
        ))
    }

    /// Whether they hold every revision from `from` to the head's.
    pub fn covers(&self, from: u64) -> bool {
        self.floor < from
    }

    /// Whether an event in `[from, revision]` may match `selector`: `false`
    /// is certain when [`Recent::covers`] `from`.
    pub fn may_match(&self, selector: &Selector, from: u64) -> bool {
        let probe = Probe::of(selector);
        self.entries
            .iter()
            .take_while(|e| e.revision >= from)
            .any(|e| probe.may_match(&e.hashes))
    }
}

/// A selector with its values hashed as the entries are.
enum Probe {
    Stream(u16),
    Subject(u32),
    EventType(u16),
    /// Any subject (a subject prefix: an event without one never matches).
    SomeSubject,
    Anything,
    And(Vec<Probe>),
    Or(Vec<Probe>),
}

impl Probe {
    fn of(selector: &Selector) -> Probe {
        match selector {
            Selector::StreamEquals(s) => Probe::Stream(short_hash(b's', s)),
            Selector::SubjectEquals(s) => Probe::Subject(subject_hash(s)),
            Selector::EventTypeEquals(t) => Probe::EventType(short_hash(b't', t)),
            Selector::SubjectStartsWith(_) => Probe::SomeSubject,
            Selector::StreamStartsWith(_) | Selector::EventTypeStartsWith(_) => Probe::Anything,
            Selector::And(all) => Probe::And(all.iter().map(Probe::of).collect()),
            Selector::Or(any) => Probe::Or(any.iter().map(Probe::of).collect()),
        }
    }

    fn may_match(&self, h: &Hashes) -> bool {
        match self {
            Probe::Stream(s) => h.stream == *s,
            Probe::Subject(s) => h.subject == *s,
            Probe::EventType(t) => h.event_type == *t,
            Probe::SomeSubject => h.subject != 0,
            Probe::Anything => true,
            Probe::And(all) => all.iter().all(|p| p.may_match(h)),
            Probe::Or(any) => any.iter().any(|p| p.may_match(h)),
        }
    }
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        if shift == 63 && b > 1 {
            // Past 64 bits: not a varint this module wrote.
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    *bytes = rest;
    Some(*head)
}

fn encode(r: &Recent, incarnation: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_MAX + (HASH_BYTES + 1) * r.entries.len());
    out.push(VERSION);
    out.extend_from_slice(&incarnation.to_le_bytes());
    put_varint(&mut out, r.revision);
    put_varint(&mut out, r.revision - r.floor);
    let mut previous = r.revision;
    for e in &r.entries {
        put_varint(&mut out, previous - e.revision);
        let h = e.hashes;
        let packed =
            u64::from(h.subject) | u64::from(h.stream) << 24 | u64::from(h.event_type) << 36;
        out.extend_from_slice(&packed.to_le_bytes()[..HASH_BYTES]);
        previous = e.revision;
    }
    out
}

/// `None` for anything that is not well-formed recent facts of this
/// incarnation: entries strictly descending, all above the floor.
fn decode(mut bytes: &[u8], incarnation: u32) -> Option<Recent> {
    let b = &mut bytes;
    if take::<1>(b)?[0] != VERSION || u32::from_le_bytes(take(b)?) != incarnation {
        return None;
    }
    let revision = get_varint(b)?;
    let floor = revision.checked_sub(get_varint(b)?)?;
    let mut entries = Vec::new();
    let mut previous = revision;
    while !b.is_empty() {
        let delta = get_varint(b)?;
        let revision = previous.checked_sub(delta)?;
        if revision <= floor || (delta == 0 && !entries.is_empty()) {
            return None;
        }
        let mut packed = [0; 8];
        packed[..HASH_BYTES].copy_from_slice(&take::<HASH_BYTES>(b)?);
        let packed = u64::from_le_bytes(packed);
        entries.push(Entry {
            revision,
            hashes: Hashes {
                subject: (packed & 0xff_ffff) as u32,
                stream: (packed >> 24 & 0xfff) as u16,
                event_type: (packed >> 36 & 0xfff) as u16,
            },
        });
        previous = revision;
    }
    Some(Recent {
        revision,
        floor,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn facts(stream: &str, subject: Option<&str>, event_type: &str) -> OwnedFacts {
        OwnedFacts {
            stream: stream.into(),
            subject: subject.map(Into::into),
            event_type: event_type.into(),
        }
    }

    fn head(revision: u64) -> HeadItem {
        let mut h = HeadItem::new("accounts", "00ff".into(), 0);
        h.revision = revision;
        h
    }

    /// Commits each batch on the head the one before left.
    fn commit_all(mut h: HeadItem, batches: &[Vec<OwnedFacts>], budget: usize) -> HeadItem {
        for facts in batches {
            h.recent = Some(Recent::after(&h, facts, budget));
            h.revision += facts.len() as u64;
        }
        h
    }

    #[test]
    fn what_a_head_without_them_or_with_others_reads_as() {
        let h = head(5);
        assert_eq!(Recent::of(&h), None, "absent");
        let after = commit_all(h.clone(), &[vec![facts("s", Some("a"), "T")]], HEAD_BUDGET);
        let r = Recent::of(&after).unwrap();
        assert_eq!(
            (r.revision, r.floor),
            (6, 5),
            "a head without them starts at its revision"
        );
        assert!(r.covers(6) && !r.covers(5));

        let mut other = after.clone();
        other.revision = 7;
        assert_eq!(Recent::of(&other), None, "another revision's");
        let mut other = after.clone();
        other.incarnation = "ff00".into();
        assert_eq!(Recent::of(&other), None, "another incarnation's");
        // Version 1 (32/16/16-bit hashes, written briefly) reads as none.
        let mut version_1 = after.recent.clone().unwrap().0;
        version_1[0] = 1;
        for bad in [
            vec![],
            vec![VERSION],
            vec![VERSION, 0, 0],
            after.recent.clone().unwrap().0[..8].to_vec(),
            version_1,
        ] {
            let mut h = after.clone();
            h.recent = Some(Bytes(bad.clone()));
            assert_eq!(Recent::of(&h), None, "{bad:?}");
        }
    }

    #[test]
    fn selectors_against_entries() {
        let h = commit_all(
            head(0),
            &[vec![
                facts("orders", Some("order-1"), "Placed"),
                facts("users", Some("user-9"), "Joined"),
                facts("orders", None, "Tick"),
            ]],
            HEAD_BUDGET,
        );
        let r = Recent::of(&h).unwrap();
        let eq = |s: &str| Selector::SubjectEquals(s.into());
        for (selector, from, expected) in [
            (eq("order-1"), 1, true),
            (eq("order-1"), 2, false),
            (eq("order-2"), 1, false),
            (Selector::StreamEquals("users".into()), 2, true),
            (Selector::StreamEquals("users".into()), 3, false),
            (Selector::EventTypeEquals("Tick".into()), 3, true),
            (Selector::EventTypeEquals("Tock".into()), 1, false),
            // A subject prefix: any event with a subject, not one without.
            (Selector::SubjectStartsWith("zzz".into()), 3, false),
            (Selector::SubjectStartsWith("zzz".into()), 2, true),
            (Selector::StreamStartsWith("zzz".into()), 3, true),
            (
                Selector::And(vec![
                    eq("order-1"),
                    Selector::EventTypeEquals("Tick".into()),
                ]),
                1,
                false,
            ),
            (
                Selector::Or(vec![
                    eq("nobody"),
                    Selector::EventTypeEquals("Joined".into()),
                ]),
                1,
                true,
            ),
            (Selector::Or(vec![eq("nobody"), eq("none")]), 1, false),
        ] {
            assert_eq!(
                r.may_match(&selector, from),
                expected,
                "{selector:?} from {from}"
            );
        }
    }

    #[test]
    fn a_full_budget_drops_the_oldest_and_raises_the_floor() {
        let batches: Vec<Vec<OwnedFacts>> = (0..200)
            .map(|i| vec![facts("s", Some(&format!("subject-{i}")), "T")])
            .collect();
        // A budget above the cap is held to it.
        let h = commit_all(head(0), &batches, 4 * MAX_BYTES);
        let r = Recent::of(&h).unwrap();
        assert!(h.recent.as_ref().unwrap().0.len() <= MAX_BYTES);
        assert!(r.floor > 100 && r.floor < 200, "{}", r.floor);
        assert_eq!(r.entries.len() as u64, 200 - r.floor);
        assert!(r.may_match(&Selector::SubjectEquals("subject-199".into()), r.floor + 1));
        // A budget without room for an entry still says where it starts.
        let h = commit_all(head(0), &batches[..3], HEADER_MAX);
        let r = Recent::of(&h).unwrap();
        assert_eq!((r.floor, r.entries.len()), (3, 0));
    }

    fn owned() -> impl Strategy<Value = OwnedFacts> {
        (
            prop::sample::select(vec!["a", "b"]),
            prop::option::of(prop::sample::select(vec!["x", "y", "xy", "z"])),
            prop::sample::select(vec!["T", "U"]),
        )
            .prop_map(|(st, sub, t)| facts(st, sub, t))
    }

    fn selector() -> impl Strategy<Value = Selector> {
        let leaf = prop_oneof![
            prop::sample::select(vec!["a", "b", "c"])
                .prop_map(|s| Selector::StreamEquals(s.into())),
            prop::sample::select(vec!["x", "y", "w"])
                .prop_map(|s| Selector::SubjectEquals(s.into())),
            prop::sample::select(vec!["x", "q"])
                .prop_map(|s| Selector::SubjectStartsWith(s.into())),
            prop::sample::select(vec!["T", "V"]).prop_map(|s| Selector::EventTypeEquals(s.into())),
            Just(Selector::EventTypeStartsWith("U".into())),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 1..3).prop_map(Selector::And),
                prop::collection::vec(inner, 1..3).prop_map(Selector::Or),
            ]
        })
    }

    proptest! {
        /// Whatever the commits and the budget: every event above the
        /// floor that matches a selector makes it "maybe" from any revision
        /// at or below the event's; the encoding reads back.
        #[test]
        fn never_a_wrong_no(
            batches in prop::collection::vec(prop::collection::vec(owned(), 1..6), 1..30),
            budget in 40usize..300,
            s in selector(),
        ) {
            let h = commit_all(head(0), &batches, budget);
            let r = Recent::of(&h).unwrap();
            prop_assert!(h.recent.as_ref().unwrap().0.len() <= budget.max(HEADER_MAX));
            let all: Vec<&OwnedFacts> = batches.iter().flatten().collect();
            prop_assert_eq!(r.revision, all.len() as u64);
            for (i, f) in all.iter().enumerate() {
                let revision = i as u64 + 1;
                if revision > r.floor && s.matches(&f.as_facts()) {
                    for from in r.floor + 1..=revision {
                        prop_assert!(r.may_match(&s, from), "{:?} at {} from {}", s, revision, from);
                    }
                }
            }
        }
    }
}
