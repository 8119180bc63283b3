'use strict';
// The HTTP API's routes (docs/api.md) as methods. Every call goes through
// `call`: signed when the client signs, retried per lib/retry.js, and every
// answer outside the route's success status turned into a typed ApiError.
// Results are the API's JSON as it is (snake_case: as_of, next_from, ...).

const { randomUUID } = require('node:crypto');
const errors = require('./errors');
const retry = require('./retry');
const { send } = require('./transport');
const { createSigner } = require('./signing');
const { decideAndAppend } = require('./dcb');

// The most events a query page may hold; query_all asks for full pages.
const MAX_QUERY_LIMIT = 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class Client {
  // `endpoint`: the API's base URL (it may hold a stage path).
  // Options:
  //   region       sign every request with SigV4 for execute-api in it;
  //                without it requests go unsigned (the local stack)
  //   credentials  { accessKeyId, secretAccessKey, sessionToken? } or an
  //                async provider; default: the AWS SDK's default chain
  //   retry        overrides of DEFAULT_RETRY's bounds
  //   attemptTimeoutMs  how long one attempt may wait for its answer (30 s)
  //   now          the signing clock (tests)
  constructor(endpoint, options = {}) {
    const { region, credentials, retry: bounds, attemptTimeoutMs = 30000, now } = options;
    this.base = String(endpoint).replace(/\/+$/, '');
    this.retry = { ...retry.DEFAULT_RETRY, ...bounds };
    this.attemptTimeoutMs = attemptTimeoutMs;
    this.sign = region ? createSigner({ region, credentials, now }) : null;
    // The jitter source; a test may pin it.
    this.random = Math.random;
  }

  // POST /databases -> the Database (201). A retry after a lost answer to a
  // create that succeeded gets 409 ALREADY_EXISTS.
  createDatabase(name) {
    return this.call('POST', '/databases', { name }, 201);
  }

  // GET /databases/{name} -> the latest Database.
  getDatabase(name) {
    return this.call('GET', `/databases/${encodeURIComponent(name)}`, undefined, 200);
  }

  // DELETE /databases/{name} -> the database's final state.
  deleteDatabase(name) {
    return this.call('DELETE', `/databases/${encodeURIComponent(name)}`, undefined, 200);
  }

  // POST /databases/{name}/transactions -> the BatchSummary. Appends
  // `events` if every condition holds. Without a transactionId one is
  // generated; this call's retries reuse it, so the batch commits at most once.
  transact(name, events, conditions = [], transactionId = null) {
    const body = { transaction_id: transactionId ?? randomUUID(), events };
    if (conditions && conditions.length > 0) body.conditions = conditions;
    return this.call('POST', `/databases/${encodeURIComponent(name)}/transactions`, body, 200);
  }

  // GET /databases/{name}/events: one page of the events with revisions
  // `from` (default 1) to `to` (default the latest) -> { events, next_from },
  // next_from read off the `Link: <...?from=N>; rel="next"` header.
  async events(name, { from, to } = {}) {
    const query = new URLSearchParams();
    if (from !== undefined && from !== null) query.set('from', String(from));
    if (to !== undefined && to !== null) query.set('to', String(to));
    const qs = query.toString();
    const answer = await this.exchange('GET', `/databases/${encodeURIComponent(name)}/events${qs ? `?${qs}` : ''}`, undefined, 200);
    return { events: decode(answer), next_from: nextFromLink(answer.headers.link) };
  }

  // Every event with revisions `from` to `to`: follows the pages.
  async allEvents(name, { from, to } = {}) {
    let page = await this.events(name, { from, to });
    const events = page.events;
    while (page.next_from !== null) {
      page = await this.events(name, { from: page.next_from, to });
      events.push(...page.events);
    }
    return events;
  }

  // POST /databases/{name}/query: one page of the events matching
  // `selector` from revision `from` (default 1), at most `limit` (1-1000,
  // default 100) -> { as_of, events, next_from }.
  query(name, selector, { from = 1, limit = 100 } = {}) {
    return this.call('POST', `/databases/${encodeURIComponent(name)}/query`, { selector, from, limit }, 200);
  }

  // Every event matching `selector` -> { as_of, events }: the pages followed
  // until next_from is null. Each page is read as of its own revision; as_of
  // is the last (highest): every match up to it has been read, so
  // max(selector, as_of) is exactly "nothing new since this read".
  async queryAll(name, selector) {
    const result = { as_of: 0, events: [] };
    let from = 1;
    for (;;) {
      const page = await this.query(name, selector, { from, limit: MAX_QUERY_LIMIT });
      result.as_of = Math.max(result.as_of, page.as_of);
      result.events.push(...page.events);
      if (page.next_from === null || page.next_from === undefined) return result;
      from = page.next_from;
    }
  }

  // The DCB loop (lib/dcb.js): read, decide(events) -> events or null,
  // append with max(selector, as_of); on a conflict, again (up to 20 times).
  decideAndAppend(name, selector, decide, options) {
    return decideAndAppend(this, name, selector, decide, options);
  }

  async call(method, path, json, ok) {
    return decode(await this.exchange(method, path, json, ok));
  }

  // One request with the retry policy: 503s and transport faults are sent
  // again (the same bytes, so the same transaction id; signed anew, since a
  // signature is only good for minutes) after a backoff; any other answer
  // than `ok` is the typed error.
  async exchange(method, path, json, ok) {
    const url = `${this.base}${path}`;
    const body = json === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(json));
    const started = Date.now();
    for (let attempt = 1; ; attempt += 1) {
      let headers = { accept: 'application/json' };
      if (body.length > 0) headers['content-type'] = 'application/json';
      if (this.sign) headers = await this.sign({ method, url, headers, body });
      let outcome;
      let error;
      let retryAfterMs = null;
      try {
        const answer = await send({ method, url, headers, body, timeoutMs: this.attemptTimeoutMs });
        if (answer.status === ok) return answer;
        outcome = { status: answer.status };
        error = errors.fromResponse(answer.status, answer.body);
        retryAfterMs = retry.parseRetryAfter(answer.headers['retry-after']);
      } catch (err) {
        if (!(err instanceof errors.TransportError)) throw err;
        outcome = { transport: true };
        error = err;
      }
      if (!retry.isRetryable(outcome)) throw error;
      const wait = retry.delay(this.retry, attempt, Date.now() - started, retryAfterMs, this.random());
      if (wait === null) throw error;
      await sleep(wait);
    }
  }
}

function decode(answer) {
  try {
    return JSON.parse(answer.body.toString('utf8'));
  } catch (err) {
    throw new errors.DecodeError(`a ${answer.status} answer that is not JSON: ${err.message}`, { cause: err });
  }
}

// The `from` of a `Link: </databases/x/events?from=N&to=M>; rel="next"`, or null.
function nextFromLink(link) {
  if (!link || !/rel="?next"?/.test(link)) return null;
  const target = /^\s*<([^>]*)>/.exec(link);
  if (!target) return null;
  const query = target[1].split('?')[1];
  if (!query) return null;
  const from = new URLSearchParams(query).get('from');
  return from !== null && /^\d+$/.test(from) ? Number(from) : null;
}

module.exports = { Client, MAX_QUERY_LIMIT, nextFromLink };
