//! Responses awaited by correlation id. One background task reads the
//! Async Responses topic and hands each response to whoever waits for its
//! correlation id; a response that arrives before anyone waits (the
//! function can be quicker than the caller) is kept until it is awaited.
//! Only ids this handle submitted or was asked to await are kept: the
//! topic carries every producer's responses. Ids nobody waits for are
//! kept up to [`KEPT`] (a caller that submits and never awaits nor
//! forgets would otherwise grow the map for the life of the process); past
//! it the oldest go, and a later wait for one of them times out.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

/// Expected or arrived responses nobody waits for that are kept at most;
/// a caller waiting right now is never dropped.
pub(crate) const KEPT: usize = 10_000;

/// A response as read: parsed, or why it could not be.
pub(crate) type Arrival<R> = Result<R, String>;

enum Slot<R> {
    /// Expected; `Some` while a caller waits.
    Pending(Option<oneshot::Sender<Arrival<R>>>),
    /// Arrived before it was awaited.
    Arrived(Arrival<R>),
}

/// What a caller waiting for an id gets now.
pub(crate) enum Wait<R> {
    Ready(Arrival<R>),
    Later(oneshot::Receiver<Arrival<R>>),
}

impl<R> Slot<R> {
    fn waited_on(&self) -> bool {
        matches!(self, Slot::Pending(Some(_)))
    }
}

struct Slots<R> {
    /// Each id's slot and when it was last set (a sequence number).
    by_id: HashMap<String, (Slot<R>, u64)>,
    next: u64,
    kept: usize,
}

impl<R> Slots<R> {
    fn remove(&mut self, id: &str) -> Option<Slot<R>> {
        self.by_id.remove(id).map(|(slot, _)| slot)
    }

    fn get(&self, id: &str) -> Option<&Slot<R>> {
        self.by_id.get(id).map(|(slot, _)| slot)
    }

    /// Sets `id`'s slot, then makes room: past `kept` entries, the oldest
    /// nobody waits for go, down to three quarters of it (so that the
    /// sweep runs once per many inserts).
    fn insert(&mut self, id: &str, slot: Slot<R>) {
        self.next += 1;
        self.by_id.insert(id.to_owned(), (slot, self.next));
        if self.by_id.len() <= self.kept {
            return;
        }
        let mut idle: Vec<(u64, String)> = self
            .by_id
            .iter()
            .filter(|(_, (slot, _))| !slot.waited_on())
            .map(|(id, (_, at))| (*at, id.clone()))
            .collect();
        idle.sort_unstable();
        let target = self.kept - self.kept / 4;
        for (_, id) in idle {
            if self.by_id.len() <= target {
                break;
            }
            self.by_id.remove(&id);
        }
    }
}

pub(crate) struct Waiters<R> {
    slots: Mutex<Slots<R>>,
}

impl<R> Default for Waiters<R> {
    fn default() -> Self {
        Self::keeping(KEPT)
    }
}

impl<R> Waiters<R> {
    /// Keeping at most `kept` ids nobody waits for.
    pub(crate) fn keeping(kept: usize) -> Self {
        Waiters {
            slots: Mutex::new(Slots {
                by_id: HashMap::new(),
                next: 0,
                kept: kept.max(1),
            }),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots<R>> {
        // A panic while holding the lock leaves a consistent map: every
        // operation is one insert or remove.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep the response for `id` when it arrives.
    pub(crate) fn expect(&self, id: &str) {
        let mut slots = self.slots();
        if slots.get(id).is_none() {
            slots.insert(id, Slot::Pending(None));
        }
    }

    /// A response for `id` was read. The first one counts: a re-sent
    /// response is the same response.
    pub(crate) fn deliver(&self, id: &str, arrival: Arrival<R>) {
        let mut slots = self.slots();
        match slots.remove(id) {
            Some(Slot::Pending(Some(waiter))) => {
                if let Err(arrival) = waiter.send(arrival) {
                    // The caller stopped waiting (timed out) just now.
                    slots.insert(id, Slot::Arrived(arrival));
                }
            }
            Some(Slot::Pending(None)) => {
                slots.insert(id, Slot::Arrived(arrival));
            }
            Some(arrived @ Slot::Arrived(_)) => {
                slots.insert(id, arrived);
            }
            // Not ours (or already handed out).
            None => {}
        }
    }

    /// Waits for `id`'s response (expecting it if not yet expected).
    pub(crate) fn wait(&self, id: &str) -> Wait<R> {
        let mut slots = self.slots();
        match slots.remove(id) {
            Some(Slot::Arrived(arrival)) => Wait::Ready(arrival),
            _ => {
                let (tx, rx) = oneshot::channel();
                slots.insert(id, Slot::Pending(Some(tx)));
                Wait::Later(rx)
            }
        }
    }

    /// The caller gave up waiting: keep expecting, so a later wait still
    /// gets the response.
    pub(crate) fn gave_up(&self, id: &str) {
        let mut slots = self.slots();
        if let Some(Slot::Pending(Some(_))) = slots.get(id) {
            slots.insert(id, Slot::Pending(None));
        }
    }

    /// Stop expecting `id` (and drop its response if it came).
    pub(crate) fn forget(&self, id: &str) {
        self.slots().remove(id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots().by_id.len()
    }
}

pub(crate) type SharedWaiters<R> = Arc<Waiters<R>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(w: Wait<u32>) -> Option<Arrival<u32>> {
        match w {
            Wait::Ready(a) => Some(a),
            Wait::Later(mut rx) => rx.try_recv().ok(),
        }
    }

    #[test]
    fn a_response_reaches_its_waiter_whenever_it_arrives() {
        // Arrives before the wait.
        let w = Waiters::default();
        w.expect("a");
        w.deliver("a", Ok(1));
        assert_eq!(ready(w.wait("a")), Some(Ok(1)));
        assert_eq!(w.len(), 0);

        // Arrives during the wait; a re-sent copy afterwards is dropped.
        let w = Waiters::default();
        w.expect("a");
        let Wait::Later(mut rx) = w.wait("a") else {
            panic!("nothing arrived yet")
        };
        w.deliver("a", Ok(2));
        w.deliver("a", Ok(3));
        assert_eq!(rx.try_recv().ok(), Some(Ok(2)));
        assert_eq!(w.len(), 0);

        // Another producer's response is not kept.
        let w = Waiters::default();
        w.deliver("theirs", Ok(4));
        assert_eq!(w.len(), 0);

        // The first copy counts when two arrive before the wait.
        let w = Waiters::default();
        w.expect("a");
        w.deliver("a", Err("bad".into()));
        w.deliver("a", Ok(5));
        assert_eq!(ready(w.wait("a")), Some(Err("bad".into())));
    }

    /// Ids nobody waits for are kept up to the limit, the oldest going
    /// first; one waited for right now is never dropped.
    #[test]
    fn what_nobody_awaits_is_kept_up_to_a_limit() {
        let kept = |w: &Waiters<u32>| {
            let mut ids: Vec<String> = w.slots().by_id.keys().cloned().collect();
            ids.sort();
            ids
        };
        let w = Waiters::keeping(4);
        // The oldest entry, but waited for.
        let Wait::Later(mut waiting) = w.wait("waited") else {
            panic!("nothing arrived yet")
        };
        for id in ["a", "b", "c", "d", "e"] {
            w.expect(id);
            w.deliver(id, Ok(1));
        }
        // The fifth entry made room down to 3: "a" and "b" went.
        assert_eq!(kept(&w), ["c", "d", "e", "waited"]);
        w.deliver("waited", Ok(9));
        assert_eq!(waiting.try_recv().ok(), Some(Ok(9)));

        // A response delivered again after it arrived is kept as it was,
        // but counts as set now: "d" outlives "c" and "e".
        w.deliver("d", Ok(2));
        w.expect("f");
        w.expect("g");
        assert_eq!(kept(&w), ["d", "f", "g"]);
        assert_eq!(ready(w.wait("d")), Some(Ok(1)));
    }

    #[test]
    fn a_wait_given_up_still_gets_the_response_later() {
        let w = Waiters::default();
        let Wait::Later(rx) = w.wait("a") else {
            panic!()
        };
        drop(rx);
        w.gave_up("a");
        w.deliver("a", Ok(6));
        assert_eq!(ready(w.wait("a")), Some(Ok(6)));

        // Even when the response lands between the timeout and gave_up.
        let w = Waiters::default();
        let Wait::Later(rx) = w.wait("b") else {
            panic!()
        };
        drop(rx);
        w.deliver("b", Ok(7));
        w.gave_up("b");
        assert_eq!(ready(w.wait("b")), Some(Ok(7)));

        w.expect("c");
        w.forget("c");
        w.deliver("c", Ok(8));
        assert_eq!(w.len(), 0);
    }
}
