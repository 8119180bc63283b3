//! Responses awaited by correlation id. One background task reads the
//! Async Responses topic and hands each response to whoever waits for its
//! correlation id; a response that arrives before anyone waits (the
//! function can be quicker than the caller) is kept until it is awaited.
//! Only ids this handle submitted or was asked to await are kept: the
//! topic carries every producer's responses.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::oneshot;

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

pub(crate) struct Waiters<R> {
    slots: Mutex<HashMap<String, Slot<R>>>,
}

impl<R> Default for Waiters<R> {
    fn default() -> Self {
        Waiters {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<R> Waiters<R> {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<R>>> {
        // A panic while holding the lock leaves a consistent map: every
        // operation is one insert or remove.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep the response for `id` when it arrives.
    pub(crate) fn expect(&self, id: &str) {
        self.slots()
            .entry(id.to_owned())
            .or_insert(Slot::Pending(None));
    }

    /// A response for `id` was read. The first one counts: a re-sent
    /// response is the same response.
    pub(crate) fn deliver(&self, id: &str, arrival: Arrival<R>) {
        let mut slots = self.slots();
        match slots.remove(id) {
            Some(Slot::Pending(Some(waiter))) => {
                if let Err(arrival) = waiter.send(arrival) {
                    // The caller stopped waiting (timed out) just now.
                    slots.insert(id.to_owned(), Slot::Arrived(arrival));
                }
            }
            Some(Slot::Pending(None)) => {
                slots.insert(id.to_owned(), Slot::Arrived(arrival));
            }
            Some(arrived @ Slot::Arrived(_)) => {
                slots.insert(id.to_owned(), arrived);
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
                slots.insert(id.to_owned(), Slot::Pending(Some(tx)));
                Wait::Later(rx)
            }
        }
    }

    /// The caller gave up waiting: keep expecting, so a later wait still
    /// gets the response.
    pub(crate) fn gave_up(&self, id: &str) {
        let mut slots = self.slots();
        if let Some(Slot::Pending(Some(_))) = slots.get(id) {
            slots.insert(id.to_owned(), Slot::Pending(None));
        }
    }

    /// Stop expecting `id` (and drop its response if it came).
    pub(crate) fn forget(&self, id: &str) {
        self.slots().remove(id);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots().len()
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
