'use strict';
// The read -> decide -> append loop of dynamic consistency boundaries
// (docs/api.md "Read → decide → append") as one call.

const { ContentionError } = require('./errors');
const { condition } = require('./model');

// Decisions decideAndAppend makes before giving up with a ContentionError.
const DEFAULT_DCB_ATTEMPTS = 20;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Reads every event matching `selector`, lets `decide(events)` (it may be
// async) choose what to append given them, and appends it on the condition
// that nothing matching `selector` was appended since the read
// (max(selector, as_of)). When another writer got in between (409
// FAILED_PRECONDITION), reads and decides again, up to `maxAttempts` times.
// `decide` returning null/undefined ends the loop without writing.
// Each decision gets its own transaction id, which that decision's retries
// (503, transport) reuse.
// -> { appended: true, summary } or { appended: false, as_of }.
async function decideAndAppend(client, name, selector, decide, { maxAttempts = DEFAULT_DCB_ATTEMPTS } = {}) {
  for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
    const read = await client.queryAll(name, selector);
    const events = await decide(read.events);
    if (events === null || events === undefined) return { appended: false, as_of: read.as_of };
    try {
      const summary = await client.transact(name, events, [condition.max(selector, read.as_of)]);
      return { appended: true, summary };
    } catch (err) {
      if (!err.isConflict) throw err;
      // Writers that lost together would otherwise read and collide together again.
      await sleep(Math.random() * 10 * Math.min(attempt, 10));
    }
  }
  throw new ContentionError(maxAttempts);
}

module.exports = { decideAndAppend, DEFAULT_DCB_ATTEMPTS };
