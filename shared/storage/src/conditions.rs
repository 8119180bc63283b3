//! Append conditions, decided exactly at the basis without reading the
//! history (docs/storage.md, "Evaluating conditions"): the index below
//! the watermark read with the head, the chunks above it, and this
//! process's window of recent facts (`crate::facts`) to save reading
//! those chunks again; the chunks past the window are read beside the
//! head when there is one ([`ReadAhead`]).

use evidentsource_domain::{AppendCondition, Bound, ConditionCheck};
use evidentsource_proto::cloudevents::CloudEvent;
use futures::future::{join_all, try_join_all};

use crate::{
    Store, StoreError,
    facts::{BYTES_PER_DATABASE, CATCH_UP_EVENTS},
    head::HeadItem,
    index::{eval::stored_facts, read::IndexedHead},
    keys,
    plan::CommitPlanSummary,
    read::{Start, decode_chunk},
    recent::Recent,
};

/// Chunk items read ahead at most: one query. They are read ahead only
/// when the window has fallen behind what recent facts hold (below), so
/// this is room for catching up on some dozens of commits at once.
const READ_AHEAD_CHUNKS: i32 = 32;

/// What a conditional commit reads beside its head read, from what this
/// process already knows of the database (its remembered head's
/// incarnation, its window of recent facts), so that the evaluation need
/// not read it after the head (docs/storage.md, "Round trips"):
/// - the chunks past the window, unless the remembered head's recent
///   facts (`crate::recent`) rule them out (then the head read now almost
///   always does too, and they are not read at all): read before the head
///   may have been, they can lack commits the head has (those are read
///   after) or hold later ones (not counted: the evaluation is bounded by
///   the basis); what was committed at a revision never changes, so what
///   they hold is the history;
/// - the index's answer for each condition the window does not decide, up
///   to the window's start, when that start is at or below the highest
///   watermark this process read (in an earlier request, so the index was
///   complete up to it before this read began; nothing at or below it
///   changes). A window emptied because it was full starts at the basis of
///   its last evaluation, which may lie above every watermark read: then
///   the index is read after the head, as without a read-ahead.
///
/// Each part is used only if the window is still where it was.
#[derive(Debug)]
pub(crate) struct ReadAhead {
    incarnation: String,
    /// The first revision asked for: the window's end + 1.
    from: u64,
    chunks: Vec<(u64, Vec<CloudEvent>)>,
    /// The window's start the index was read up to.
    covered: u64,
    /// Per condition, the index's highest match in `floor..=covered`
    /// (`None`: not read).
    indexed: Vec<Option<Option<u64>>>,
}

/// The lowest revision a match of `bound` matters from: a `Max(r)` passes
/// whatever lies at or below r.
fn floor(bound: &Bound) -> u64 {
    match bound {
        Bound::Max(r) => r.saturating_add(1),
        Bound::Min(_) | Bound::Range { .. } => 1,
    }
}

/// Whether `recent` holds every revision from `from` on and none of them
/// can matter to a condition: nothing that may match at or above its
/// floor (a "no" is certain, `crate::recent`).
fn rules_out(recent: &Recent, conditions: &[AppendCondition], from: u64) -> bool {
    recent.covers(from)
        && conditions
            .iter()
            .all(|c| !recent.may_match(&c.selector, floor(&c.bound).max(from)))
}

pub(crate) enum Evaluation {
    Checked(ConditionCheck),
    /// This process has already seen a newer revision than the head read:
    /// the head is stale.
    Stale,
}

impl Store {
    /// The chunks past this process's window of `name` and the index
    /// below it, when it has a window that a commit could bring up to
    /// date (`None` at once otherwise; a part whose read fails is left
    /// out: it only saves a round trip).
    pub(crate) async fn read_ahead(
        &self,
        name: &str,
        conditions: &[AppendCondition],
    ) -> Option<ReadAhead> {
        let known = self.heads.peek(name)?;
        let (scanned_to, covered, indexed_to, in_window) = {
            let entry = self.facts.existing(name, &known.incarnation)?;
            // An evaluation holding it is about to move it: nothing to read.
            let window = entry.try_lock().ok()?;
            (
                window.scanned_to,
                window.base,
                window.watermark,
                window.check(conditions).highest,
            )
        };
        if scanned_to == 0 || known.revision.saturating_sub(scanned_to) > CATCH_UP_EVENTS {
            return None;
        }
        let from = scanned_to + 1;
        let pk = keys::events_pk(name, &known.incarnation);
        // What the remembered head's recent facts say of the window's
        // tail: if they rule it out, the head read now almost always will.
        let behind = !Recent::of(&known).is_some_and(|r| rules_out(&r, conditions, from));
        let chunks = async {
            if !behind {
                return None;
            }
            let page = self
                .chunk_page(
                    &pk,
                    &keys::chunk_sk(from),
                    u64::MAX,
                    None,
                    Some(READ_AHEAD_CHUNKS),
                )
                .await
                .ok()?;
            page.items()
                .iter()
                .map(|item| decode_chunk(item, &pk))
                .collect::<Result<Vec<_>, _>>()
                .ok()
        };
        let at = IndexedHead {
            head: known.clone(),
            watermark: covered,
        };
        let lookups = conditions.iter().zip(&in_window).map(|(c, in_window)| {
            let at = &at;
            async move {
                if *in_window > 0 || covered == 0 || covered > indexed_to {
                    return None;
                }
                self.highest_indexed(at, &c.selector, floor(&c.bound), covered)
                    .await
                    .ok()
            }
        });
        let (chunks, indexed) = tokio::join!(chunks, join_all(lookups));
        Some(ReadAhead {
            incarnation: known.incarnation,
            from,
            chunks: chunks.unwrap_or_default(),
            covered,
            indexed,
        })
    }

    /// Evaluates conditions as of the head's revision. `watermark` is the
    /// index's, read with or before this head (never after: the index is
    /// read after it, see `index::eval`).
    pub(crate) async fn evaluate(
        &self,
        head: &HeadItem,
        watermark: u64,
        conditions: &[AppendCondition],
        ahead: Option<ReadAhead>,
        cost: &mut CommitPlanSummary,
    ) -> Result<Evaluation, StoreError> {
        let basis = head.revision;
        let entry = self.facts.entry(&head.name, &head.incarnation);
        // Another evaluation of this database in this process may hold it.
        let mut window = self
            .in_time("waiting for the conditions' window", entry.lock())
            .await?;
        if window.scanned_to > basis {
            return Ok(Evaluation::Stale);
        }
        // Any watermark this process read for the incarnation holds: the
        // index only grows.
        let indexed = watermark.max(window.watermark).min(basis);
        window.watermark = window.watermark.max(indexed);
        let useful = if window.is_complete() {
            // Never a history read: a new window starts at the watermark.
            (window.scanned_to > 0 || indexed == 0) && basis - window.scanned_to <= CATCH_UP_EVENTS
        } else {
            window.base <= indexed && indexed <= window.scanned_to
        };
        if !useful {
            // Whatever it held, the index has it now: start past it.
            window.reset(indexed);
        }

        // The window and the chunks read next hold every event in
        // `(covered, basis]`; the index answers for what lies at or below,
        // for the conditions the window did not decide.
        let covered = window.base;
        let in_window = window.check(conditions).highest;
        let at = IndexedHead {
            head: head.clone(),
            watermark: indexed,
        };
        // What was read beside the head, if the window is where it was.
        let mut ahead = ahead.filter(|a| a.incarnation == head.incarnation);
        let read_before = ahead
            .as_mut()
            .filter(|a| a.covered == covered)
            .map(|a| std::mem::take(&mut a.indexed))
            .unwrap_or_default();
        // (condition, the index's highest match) read beside the head.
        let mut answered = Vec::new();
        let (mut lookups, mut looked_up) = (Vec::new(), Vec::new());
        for (i, c) in conditions.iter().enumerate() {
            if in_window[i] > 0 || covered == 0 {
                continue;
            }
            if let Some(Some(found)) = read_before.get(i) {
                answered.push((i, *found));
                continue;
            }
            lookups.push(self.highest_indexed(&at, &c.selector, floor(&c.bound), covered));
            looked_up.push(i);
        }
        let index_round_trips = u32::from(!lookups.is_empty());
        // The head's recent facts tell, for the revisions they cover,
        // whether anything there can matter to a condition: from `next`
        // on, nothing that matches at or above its floor
        // (`crate::recent`; a "no" is certain).
        let recent = Recent::of(head);
        let ruled_out = move |next: u64| {
            recent
                .as_ref()
                .is_some_and(|r| rules_out(r, conditions, next))
        };
        // The chunks past the window and the index, side by side: a match
        // in the chunks makes its condition's index answer moot.
        let past_window = async move {
            let mut past = vec![0; conditions.len()];
            let mut round_trips = 0;
            if window.scanned_to < basis {
                let from = window.scanned_to + 1;
                let mut kept = true;
                let mut fold = |first: u64, events: Vec<CloudEvent>| {
                    for (i, event) in events.iter().enumerate() {
                        let revision = first + i as u64;
                        if !(from..=basis).contains(&revision) {
                            continue;
                        }
                        let facts = stored_facts(revision, event)?;
                        for (h, c) in past.iter_mut().zip(conditions) {
                            if c.selector.matches(&facts.as_facts()) {
                                *h = revision;
                            }
                        }
                        kept = kept && window.add(facts, revision);
                    }
                    Ok(())
                };
                // The chunks read ahead, as far as they run on from the
                // window's end without a gap; the rest is read now.
                let mut next = from;
                let mut folded = Ok(());
                let ahead = ahead.filter(|a| a.from == from);
                for (first, events) in ahead.map(|a| a.chunks).unwrap_or_default() {
                    if first != next || next > basis {
                        break;
                    }
                    next = first + events.len() as u64;
                    folded = fold(first, events);
                    if folded.is_err() {
                        break;
                    }
                }
                // How far the window holds every revision once done.
                let mut upto = basis;
                let scanned = match folded {
                    Ok(()) if next <= basis && ruled_out(next) => {
                        // Nothing there can decide a condition: not read,
                        // and not in the window either.
                        upto = next - 1;
                        Ok(0)
                    }
                    Ok(()) if next <= basis => {
                        self.scan_chunks(head, next, basis, Start::Chunk, fold)
                            .await
                    }
                    Ok(()) => Ok(0),
                    Err(e) => Err(e),
                };
                round_trips = match scanned {
                    Ok(round_trips) => round_trips,
                    Err(e) => {
                        // Part of the chunks may be folded in: the window
                        // holds exactly `(base, scanned_to]` or nothing.
                        window.reset(indexed);
                        return Err(e);
                    }
                };
                if kept {
                    window.scanned_to = upto;
                } else {
                    window.reset(basis);
                }
            }
            if !window.is_complete() || window.bytes() > BYTES_PER_DATABASE / 2 {
                window.start_at(indexed);
            }
            Ok::<_, StoreError>((past, round_trips))
        };
        let (past_window, indexed_answers) = tokio::join!(past_window, try_join_all(lookups));
        let (past, round_trips) = past_window?;
        // Side by side: the longer of the two.
        cost.read_round_trips += round_trips.max(index_round_trips);
        let mut highest: Vec<u64> = in_window
            .iter()
            .zip(&past)
            .map(|(w, p)| *w.max(p))
            .collect();
        let answers = looked_up.into_iter().zip(indexed_answers?).chain(answered);
        for (i, found) in answers {
            if highest[i] == 0 {
                highest[i] = found.unwrap_or(0);
            }
        }
        Ok(Evaluation::Checked(ConditionCheck { highest }))
    }

    /// Keeps the window warm with our own commit, if nothing else got in
    /// between.
    pub(crate) async fn fold_in_own_events(
        &self,
        head: &HeadItem,
        tx: &evidentsource_domain::Transaction,
        basis: u64,
    ) {
        let entry = self.facts.entry(&head.name, &head.incarnation);
        // Only an accelerator: not worth waiting past the deadline for.
        let Ok(mut window) = self
            .in_time("waiting for the conditions' window", entry.lock())
            .await
        else {
            return;
        };
        if window.scanned_to != basis {
            return;
        }
        let revision = basis + tx.events.len() as u64;
        let mut kept = true;
        for (i, f) in tx.facts.iter().enumerate() {
            kept = kept && window.add(f.clone(), basis + 1 + i as u64);
        }
        if kept {
            window.scanned_to = revision;
        } else {
            window.reset(revision);
        }
    }
}
