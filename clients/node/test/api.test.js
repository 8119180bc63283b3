'use strict';
// The client against the real API (API_URL: tools/local-runner/tests/
// node_client.rs serves the command-ingestion function in-process over
// moto): typed answers on every route, idempotent retries, paging, and the
// DCB loop under contention.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { Client, ApiError, event, selector, condition } = require('..');

const API_URL = process.env.API_URL;
const skip = API_URL ? false : 'API_URL is not set (tools/local-runner/tests/node_client.rs sets it)';
const unique = (tag) => `node-${tag}-${randomUUID().slice(0, 8)}`;

const opened = (account, id) => event({
  source: 'https://example.com/bank/accounts', type: 'account-opened', id, subject: account, data: { owner: 'Ada' },
});

// [status, code, field] of the error `promise` rejects with.
async function apiError(promise) {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof ApiError, `not an API error: ${error}`);
  return [error.status, error.code, error.field];
}

test('every route answers typed', { skip }, async () => {
  const client = new Client(API_URL);
  const db = unique('routes');

  const created = await client.createDatabase(db);
  assert.deepEqual([created.name, created.revision], [db, 0]);
  assert.deepEqual(await apiError(client.createDatabase(db)), [409, 'ALREADY_EXISTS', null]);

  const account = selector.subjectEquals('account-42');
  const summary = await client.transact(db, [opened('account-42', 'e-1'), opened('account-7', 'e-2')], [condition.max(account, 0)]);
  assert.deepEqual([summary.basis, summary.revision, summary.event_count], [0, 2, 2]);
  assert.equal((await client.getDatabase(db)).revision, 2);

  // The same condition again: account-42 exists now.
  assert.deepEqual(await apiError(client.transact(db, [opened('account-42', 'e-3')], [condition.max(account, 0)])),
    [409, 'FAILED_PRECONDITION', 'conditions[0]']);

  const page = await client.events(db);
  assert.deepEqual(page.events.map((e) => [e.id, e.revision]), [['e-1', 1], ['e-2', 2]]);
  assert.equal(page.next_from, null);
  const query = await client.query(db, account);
  assert.deepEqual([query.as_of, query.events.length, query.events[0].subject, query.next_from], [2, 1, 'account-42', null]);

  // 400 naming the field.
  const badSource = event({ source: 'https://x/', type: 't', subject: 's' });
  assert.deepEqual(await apiError(client.transact(db, [badSource])), [400, 'INVALID_ARGUMENT', 'events[0].source']);
  assert.deepEqual(await apiError(client.query(db, account, { from: 0 })), [400, 'INVALID_ARGUMENT', 'from']);

  // 404 on a missing database, on every route that names one.
  const missing = unique('missing');
  for (const call of [
    () => client.getDatabase(missing),
    () => client.deleteDatabase(missing),
    () => client.transact(missing, [opened('a', 'e-1')]),
    () => client.events(missing),
    () => client.query(missing, account),
  ]) {
    assert.deepEqual((await apiError(call())).slice(0, 2), [404, 'NOT_FOUND'], String(call));
  }

  const deleted = await client.deleteDatabase(db);
  assert.deepEqual([deleted.name, deleted.revision], [db, 2]);
  assert.deepEqual((await apiError(client.getDatabase(db))).slice(0, 2), [404, 'NOT_FOUND']);
});

// In front of the API: forwards every request, but hangs up on the first
// one after the API has answered it, as a lost answer looks to a client.
async function losingProxy(t) {
  const seen = [];
  const upstream = new URL(API_URL);
  const proxy = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push(body.toString('utf8'));
      const forwarded = http.request(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          const parts = [];
          answer.on('data', (c) => parts.push(c));
          answer.on('end', () => {
            if (seen.length === 1) return req.socket.destroy(); // committed, but the answer is lost
            res.writeHead(answer.statusCode, answer.headers);
            return res.end(Buffer.concat(parts));
          });
        },
      );
      forwarded.end(body);
    });
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { proxy.closeAllConnections(); proxy.close(resolve); }));
  return { url: `http://127.0.0.1:${proxy.address().port}`, seen };
}

test('a transact whose answer was lost is retried with its transaction id and commits once', { skip }, async (t) => {
  const client = new Client(API_URL);
  const db = unique('idempotent');
  await client.createDatabase(db);
  const proxy = await losingProxy(t);
  const viaProxy = new Client(proxy.url, { retry: { baseDelayMs: 1 } });

  const summary = await viaProxy.transact(db, [opened('account-1', 'e-1'), opened('account-2', 'e-2')]);
  assert.equal(proxy.seen.length, 2, 'the lost answer was retried');
  assert.equal(proxy.seen[1], proxy.seen[0], 'with the same bytes');
  assert.deepEqual([summary.basis, summary.revision], [0, 2]);
  assert.equal((await client.allEvents(db)).length, 2, 'committed once');

  // Sent again by hand with the same id: the same batch, nothing written.
  const { transaction_id: id, events } = JSON.parse(proxy.seen[0]);
  assert.deepEqual(await client.transact(db, events, [], id), summary);
  assert.equal((await client.getDatabase(db)).revision, 2);
});

test('events and query page through more than 1000 events', { skip }, async () => {
  const client = new Client(API_URL);
  const db = unique('paging');
  await client.createDatabase(db);
  // A transaction holds at most 1000 events: 1005 take two.
  const make = (from, to) => Array.from({ length: to - from }, (_, i) => event({
    source: 'https://example.com/bank/ledger', type: 'entry', id: `e-${from + i}`, subject: 'ledger', data: { n: from + i },
  }));
  await client.transact(db, make(0, 1000));
  await client.transact(db, make(1000, 1005));
  const revisions = (events) => events.map((e) => e.revision);
  const all = Array.from({ length: 1005 }, (_, i) => i + 1);

  const first = await client.events(db);
  assert.equal(first.events.length, 1000);
  assert.equal(first.next_from, 1001);
  assert.deepEqual(revisions(await client.allEvents(db)), all);
  assert.deepEqual(revisions(await client.allEvents(db, { from: 990, to: 1002 })), all.slice(989, 1002));

  const ledger = selector.subjectEquals('ledger');
  const page = await client.query(db, ledger, { limit: 1000 });
  assert.equal(page.events.length, 1000);
  assert.notEqual(page.next_from, null);
  const result = await client.queryAll(db, ledger);
  assert.equal(result.as_of, 1005);
  assert.deepEqual(revisions(result.events), all);
});

test('the DCB loop under contention: exactly the capacity, nothing lost or doubled', { skip }, async () => {
  const CLIENTS = 8;
  const CAPACITY = 12;
  const db = unique('seats');
  await new Client(API_URL).createDatabase(db);
  const seats = selector.subjectEquals('flight-42');
  let decisions = 0;

  // Each client (its own connections, as separate processes would have)
  // reserves the next seat until the flight is full.
  const reserveAll = async (c) => {
    const client = new Client(API_URL, { retry: { maxElapsedMs: 60000 } });
    let reserved = 0;
    for (;;) {
      const outcome = await client.decideAndAppend(db, seats, (events) => {
        decisions += 1;
        if (events.length >= CAPACITY) return null; // full: refuse
        const seat = Math.max(0, ...events.map((e) => e.data.seat)) + 1;
        return [event({ source: 'https://example.com/seats', type: 'seat-reserved', subject: 'flight-42', data: { seat, client: c } })];
      }, { maxAttempts: 200 });
      if (!outcome.appended) return reserved;
      reserved += 1;
    }
  };
  const reserved = await Promise.all(Array.from({ length: CLIENTS }, (_, c) => reserveAll(c)));
  console.log(`${decisions} decisions for ${CAPACITY} seats by ${CLIENTS} clients`);

  assert.equal(reserved.reduce((a, b) => a + b, 0), CAPACITY, 'appends reported');
  const events = await new Client(API_URL).allEvents(db);
  assert.deepEqual(events.map((e) => e.data.seat).sort((a, b) => a - b),
    Array.from({ length: CAPACITY }, (_, i) => i + 1), 'every seat once, none beyond capacity');
});

test("the README's example runs as written", { skip }, async () => {
  const readme = require('node:fs').readFileSync(require('node:path').join(__dirname, '..', 'README.md'), 'utf8');
  const code = /## Example\s+```js\n([\s\S]*?)```/.exec(readme)[1]
    .replace("require('evidentsource-client')", "require('..')")
    .replaceAll("'flights'", `'${unique('readme')}'`); // a database of its own
  const printed = [];
  const run = new Function('require', 'process', 'console', `return (async () => {\n${code}\n})();`);
  await run(require, process, { log: (...args) => printed.push(args.join(' ')) });
  assert.deepEqual(printed, ['1'], 'the first seat, at revision 1');
});
