//! Query by selector, the DCB read (docs/storage.md, "Reading by selector"): the
//! events matching a selector in revision order, a page at a time, each
//! page consistent with the head revision it was read at (`as_of`), so a
//! client that decides on them appends with `Max(selector, as_of)`.
//!
//! Up to the watermark the index answers (cursors over the selector's
//! cover, merged by revision, duplicates dropped, every entry checked
//! against the whole selector); past it, up to `as_of`, the chunks do (the
//! indexer's lag). Why that is exact is `eval`'s argument: the watermark is
//! read with the head, so the index is complete up to it. A cover that
//! names too many values is answered by a filtered scan of the chunks,
//! bounded per page. Every read is bounded by the page (its count, its
//! bytes, a scan budget), never by the history.

use evidentsource_domain::{Error, OwnedFacts, Selector};
use evidentsource_proto::{Message, cloudevents::CloudEvent};

use super::{posting::IndexedEvent, read::IndexedHead};
use crate::{
    Store, StoreError, attr::s, attribute, batch::Item, head::HeadItem, keys, read::StoredEvent,
    read::decode_chunk,
};

/// Most events a page may hold.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// Events a page holds when the caller does not say.
pub const DEFAULT_QUERY_LIMIT: usize = 100;
/// Chunk data a filtered scan decodes per page before it ends the page
/// (with `next_from` where it stopped).
pub const SCAN_BYTES: usize = 8 * 1024 * 1024;
/// Chunks read per query of a scan: bounds what is held at once.
const SCAN_CHUNKS_PER_READ: i32 = 4;
/// Chunks fetched per `BatchGetItem` for the bodies of index hits (a chunk
/// is at most 400 KB: well below the call's 16 MB).
const BODY_CHUNKS_PER_READ: usize = 16;

/// What a page may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryBounds {
    /// Events, 1..=[`MAX_QUERY_LIMIT`].
    pub limit: usize,
    /// The events' encoded (protobuf) size; the first event always goes.
    pub max_bytes: usize,
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// The head revision the page was read at: it holds every matching
    /// event in `from..=min(as_of, next_from - 1)`.
    pub as_of: u64,
    pub events: Vec<StoredEvent>,
    /// Where the next page starts; `None` when every matching event at or
    /// below `as_of` has been returned.
    pub next_from: Option<u64>,
}

/// The events gathered so far and what they may still take.
struct Gather {
    bounds: QueryBounds,
    events: Vec<StoredEvent>,
    bytes: usize,
}

impl Gather {
    fn full(&self) -> bool {
        self.events.len() >= self.bounds.limit
    }

    /// Adds the event if the page has room for it (count and bytes).
    fn offer(&mut self, revision: u64, event: CloudEvent) -> bool {
        let size = event.encoded_len();
        if self.full() || (!self.events.is_empty() && self.bytes + size > self.bounds.max_bytes) {
            return false;
        }
        self.bytes += size;
        self.events.push(StoredEvent { revision, event });
        true
    }
}

/// Where the next page starts, for a page complete up to `through`.
fn next_from(through: u64, as_of: u64) -> Option<u64> {
    (through < as_of).then(|| through + 1)
}

impl Store {
    /// The events matching `selector` from revision `from`, at most
    /// `bounds` of them, as of the database's head. A missing (or deleted)
    /// database is `NOT_FOUND`; `from = 0` or a limit outside
    /// 1..=[`MAX_QUERY_LIMIT`] is `INVALID_ARGUMENT` naming the field.
    pub async fn query(
        &self,
        name: &str,
        selector: &Selector,
        from: u64,
        bounds: QueryBounds,
    ) -> Result<QueryPage, StoreError> {
        if from == 0 {
            return Err(Error::invalid_argument("from", "event revisions start at 1").into());
        }
        if !(1..=MAX_QUERY_LIMIT).contains(&bounds.limit) {
            return Err(Error::invalid_argument(
                "limit",
                format!("{} is outside 1..={MAX_QUERY_LIMIT}", bounds.limit),
            )
            .into());
        }
        let at = match self.head_and_watermark(name).await? {
            Some(at) if at.head.is_active() => at,
            _ => return Err(Error::not_found(name).into()),
        };
        let as_of = at.head.revision;
        let mut page = Gather {
            bounds,
            events: Vec::new(),
            bytes: 0,
        };
        if from > as_of {
            return Ok(QueryPage {
                as_of,
                events: Vec::new(),
                next_from: None,
            });
        }
        let top = at.watermark.min(as_of);
        // The page holds every match in from..=through.
        let mut through = from - 1;
        if from <= top {
            let Some((hits, complete)) = self
                .index_hits(&at, selector, from, top, bounds.limit)
                .await?
            else {
                // Too many values to merge: scan the chunks instead.
                let through = self
                    .scan(&at.head, selector, from, as_of, &mut page)
                    .await?;
                return Ok(QueryPage {
                    as_of,
                    events: page.events,
                    next_from: next_from(through, as_of),
                });
            };
            through = match self.bodies(&at.head, &hits, &mut page).await? {
                Some(last) => last,
                None => complete,
            };
        }
        if through >= top && !page.full() {
            through = self
                .scan(&at.head, selector, through + 1, as_of, &mut page)
                .await?;
        }
        Ok(QueryPage {
            as_of,
            events: page.events,
            next_from: next_from(through, as_of),
        })
    }

    /// The first `limit` index entries in `from..=top` that match, and the
    /// revision up to which they are every match; `None` when the cover
    /// names too many values to merge.
    async fn index_hits(
        &self,
        at: &IndexedHead,
        selector: &Selector,
        from: u64,
        top: u64,
        limit: usize,
    ) -> Result<Option<(Vec<IndexedEvent>, u64)>, StoreError> {
        let Some(mut open) = self.open_cursors(at, selector, from, top, limit).await? else {
            return Ok(None);
        };
        let bound = open.complete_through;
        let mut hits: Vec<IndexedEvent> = Vec::new();
        loop {
            let mut next: Option<u64> = None;
            for cursor in &mut open.cursors {
                if let Some(r) = cursor.peek(self, from, top).await? {
                    next = Some(next.map_or(r, |n| n.min(r)));
                }
            }
            let Some(revision) = next.filter(|r| *r <= bound) else {
                return Ok(Some((hits, bound)));
            };
            if hits.len() >= limit {
                return Ok(Some((hits, revision - 1)));
            }
            // The same event can be in several ranges: take it once.
            let mut event = None;
            for cursor in &mut open.cursors {
                if cursor.peek(self, from, top).await? == Some(revision) {
                    event = cursor.pop();
                }
            }
            if let Some(event) = event
                && self.is_match(at, selector, &event).await?
            {
                hits.push(event);
            }
        }
    }

    /// Adds the bodies of `hits` (from their chunks) while the page has
    /// room; `Some(last added)` when it ran out of room first.
    async fn bodies(
        &self,
        head: &HeadItem,
        hits: &[IndexedEvent],
        page: &mut Gather,
    ) -> Result<Option<u64>, StoreError> {
        let pk = keys::events_pk(&head.name, &head.incarnation);
        let mut rest = hits;
        while !rest.is_empty() {
            // The next hits, up to BODY_CHUNKS_PER_READ distinct chunks.
            let mut firsts: Vec<u64> = Vec::new();
            let mut n = 0;
            for hit in rest {
                if firsts.last() != Some(&hit.chunk_first) {
                    if firsts.len() == BODY_CHUNKS_PER_READ {
                        break;
                    }
                    firsts.push(hit.chunk_first);
                }
                n += 1;
            }
            let (group, later) = rest.split_at(n);
            rest = later;
            let chunk_keys: Vec<Item> = firsts
                .iter()
                .map(|f| {
                    Item::from([
                        (attribute::PK.to_owned(), s(&pk)),
                        (attribute::SK.to_owned(), s(&keys::chunk_sk(*f))),
                    ])
                })
                .collect();
            let mut chunks = std::collections::BTreeMap::new();
            for item in self.read_batch("BatchGetItem (chunks)", chunk_keys).await? {
                let (first, events) = decode_chunk(&item, &pk)?;
                chunks.insert(first, events);
            }
            for hit in group {
                let event = chunks
                    .get_mut(&hit.chunk_first)
                    .and_then(|events| events.get_mut((hit.revision - hit.chunk_first) as usize))
                    .map(std::mem::take)
                    .ok_or_else(|| {
                        StoreError::Fault(format!("event {} not in its chunk", hit.revision))
                    })?;
                if !page.offer(hit.revision, event) {
                    return Ok(page.events.last().map(|e| e.revision));
                }
            }
        }
        Ok(None)
    }

    /// Adds the events of `from..=to` that match (from the chunks) while
    /// the page has room and the scan its budget; returns the revision up
    /// to which the page holds every match.
    async fn scan(
        &self,
        head: &HeadItem,
        selector: &Selector,
        from: u64,
        to: u64,
        page: &mut Gather,
    ) -> Result<u64, StoreError> {
        if from > to {
            return Ok(to);
        }
        let pk = keys::events_pk(&head.name, &head.incarnation);
        let start = self.chunk_holding(&pk, from).await?;
        let mut exclusive_start = None;
        let mut scanned = 0;
        let mut through = from - 1;
        loop {
            let out = self
                .chunk_page(&pk, &start, to, exclusive_start, Some(SCAN_CHUNKS_PER_READ))
                .await?;
            for item in out.items() {
                let (first, events) = decode_chunk(item, &pk)?;
                for (i, event) in events.into_iter().enumerate() {
                    let revision = first + i as u64;
                    if revision < from || revision > to {
                        continue;
                    }
                    scanned += event.encoded_len();
                    let facts = OwnedFacts::of(&event).ok_or_else(|| {
                        StoreError::Fault(format!("stored event {revision} has no stream"))
                    })?;
                    if selector.matches(&facts.as_facts()) && !page.offer(revision, event) {
                        return Ok(revision - 1);
                    }
                    through = revision;
                }
                // Whole chunks only: the budget ends a page between them.
                if scanned >= SCAN_BYTES && through < to {
                    return Ok(through);
                }
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => exclusive_start = Some(k),
                _ => return Ok(to),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_from_is_null_only_when_the_page_reaches_as_of() {
        // (through, as_of, next_from)
        let table = [
            (0, 0, None),
            (5, 5, None),
            (4, 5, Some(5)),
            (0, 5, Some(1)),
            (9, 5, None),
        ];
        for (through, as_of, expected) in table {
            assert_eq!(next_from(through, as_of), expected, "{through} {as_of}");
        }
    }
}
