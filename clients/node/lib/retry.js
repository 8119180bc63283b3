'use strict';
// When to send a request again, and after how long. Only what cannot have
// been refused for its content is retried: a 503 (storage throttled, or the
// database too busy before the deadline) and a transport fault. Every 4xx is
// an answer about the request itself, and sending it again gets the same
// answer; a 500 is a fault to look at, not to hammer. A transaction is
// retried with the same bytes, hence the same transaction id, so a commit the
// first attempt made is answered, never repeated.

// Bounds on retrying one request (the Rust client's defaults).
const DEFAULT_RETRY = Object.freeze({
  maxAttempts: 6, // in all, the first included (1 = never retry)
  baseDelayMs: 100, // the first backoff; each retry doubles it...
  maxDelayMs: 5000, // ...up to this
  maxElapsedMs: 30000, // no retry starts after this long since the first attempt
});

// `outcome`: { status } for an HTTP answer, { transport: true } for none.
function isRetryable(outcome) {
  return outcome.transport === true || outcome.status === 503;
}

// The wait in ms before the next attempt, after `attempt` (>= 1) failed ones,
// or null when the bounds say stop. Full jitter (`jitter` in [0, 1]): a
// random wait up to the exponential ceiling, so clients that failed together
// do not come back together. A Retry-After is a floor (capped at maxDelayMs).
function delay(policy, attempt, elapsedMs, retryAfterMs, jitter) {
  if (attempt >= policy.maxAttempts) return null;
  const ceiling = Math.min(policy.baseDelayMs * 2 ** Math.min(attempt - 1, 16), policy.maxDelayMs);
  const floor = Math.min(retryAfterMs || 0, policy.maxDelayMs);
  const wait = Math.max(ceiling * Math.min(Math.max(jitter, 0), 1), floor);
  return elapsedMs + wait <= policy.maxElapsedMs ? wait : null;
}

// Retry-After in seconds (the API's form); an HTTP date is honoured too.
function parseRetryAfter(value, now = Date.now()) {
  if (value === undefined || value === null || value === '') return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

module.exports = { DEFAULT_RETRY, isRetryable, delay, parseRetryAfter };
