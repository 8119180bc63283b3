"""The read -> decide -> append loop of dynamic consistency boundaries
(docs/api.md "Read -> decide -> append") as one call."""

import random
import time

from .errors import ApiError, ContentionError
from .model import Decided, at_most

#: Decisions decide_and_append makes before giving up with ContentionError.
DEFAULT_DCB_ATTEMPTS = 20


def decide_and_append(client, name, selector, decide, max_attempts=DEFAULT_DCB_ATTEMPTS):
    """Reads every event matching `selector`, lets `decide(events)` choose the
    events to append (None: append nothing), and appends them on the
    condition that nothing matching `selector` was appended since the read
    (at_most(selector, as_of)). When another writer got in between (409
    FAILED_PRECONDITION) it reads and decides again, up to `max_attempts`
    decisions, then raises ContentionError. Each decision gets its own
    transaction id, which that decision's retries (503, transport) reuse.
    """
    for attempt in range(1, max_attempts + 1):
        read = client.query_all(name, selector)
        events = decide(read.events)
        if events is None:
            return Decided(appended=None, as_of=read.as_of)
        try:
            summary = client.transact(name, events, [at_most(selector, read.as_of)])
            return Decided(appended=summary, as_of=read.as_of)
        except ApiError as e:
            if not e.is_conflict:
                raise
        # Writers that lost together would otherwise read and collide
        # together again.
        time.sleep(random.uniform(0, 0.01 * min(attempt, 10)))
    raise ContentionError(max_attempts)
