"""When to send a request again, and after how long.

Only what cannot have been refused for its content is retried: a 503 (storage
throttled, or the database too busy before the deadline) and a transport
fault. Every 4xx is an answer about the request itself, and sending it again
gets the same answer; a 500 is a fault the client cannot wait out. A
transaction is retried with the same bytes, hence the same transaction id,
so a commit the first attempt made is answered, never repeated.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request (times in seconds)."""

    #: Attempts in all, the first included (1 = never retry).
    max_attempts: int = 6
    #: The first backoff ceiling; each retry doubles it, up to max_delay.
    base_delay: float = 0.1
    max_delay: float = 5.0
    #: No retry starts after this much time since the first attempt.
    max_elapsed: float = 30.0

    def delay(self, attempt, elapsed, retry_after, jitter):
        """The wait before attempt `attempt + 1` (after `attempt` failed
        ones, attempt >= 1), or None when the bounds say stop.

        Full jitter (`jitter` in [0, 1]): a random wait up to the exponential
        ceiling, so clients that failed together do not come back together.
        A Retry-After is a floor, itself capped at max_delay.
        """
        if attempt >= self.max_attempts:
            return None
        ceiling = min(self.base_delay * (2 ** min(attempt - 1, 16)), self.max_delay)
        wait = ceiling * min(max(jitter, 0.0), 1.0)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        if elapsed + wait > self.max_elapsed:
            return None
        return wait


def is_retryable(status):
    """`status` is the HTTP status, or None for a transport fault."""
    return status is None or status == 503
