'use strict';
// The DCB loop's own decisions, against a scripted server: the condition it
// appends with, a fresh transaction id per decision, giving up with a
// ContentionError, and stopping when decide refuses or on other errors.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, ContentionError, ApiError, event, selector } = require('..');
const { scriptedServer } = require('../testing/support');

const SEATS = selector.subjectEquals('flight-42');
const read = (asOf) => ({ status: 200, body: { as_of: asOf, events: [], next_from: null } });
const conflict = { status: 409, body: { code: 'FAILED_PRECONDITION', field: 'conditions[0]' } };
const seat = () => [event({ source: 'https://example.com/seats', type: 'seat-reserved', subject: 'flight-42' })];

async function serve(t, script) {
  const server = await scriptedServer(script);
  t.after(server.close);
  return { server, client: new Client(server.url) };
}

test('a conflict on every decision ends in a ContentionError; each decision its own transaction id', async (t) => {
  const { server, client } = await serve(t, [read(3), conflict, read(4), conflict, read(5), conflict]);
  const error = await client.decideAndAppend('shop', SEATS, seat, { maxAttempts: 3 }).then(() => null, (e) => e);
  assert.ok(error instanceof ContentionError, String(error));
  assert.equal(error.attempts, 3);
  const transactions = server.requests.filter((r) => r.url.endsWith('/transactions')).map((r) => JSON.parse(r.body));
  assert.equal(transactions.length, 3);
  assert.equal(new Set(transactions.map((b) => b.transaction_id)).size, 3, 'a fresh id per decision');
  // Each append is conditioned on its own read: max(selector, as_of).
  assert.deepEqual(transactions.map((b) => b.conditions), [3, 4, 5].map((max) => [{ selector: SEATS, max }]));
});

test('a conflict then success: read again, decide again, appended', async (t) => {
  const summary = { id: 'b', database: 'shop', basis: 4, revision: 5, event_count: 1 };
  const { server, client } = await serve(t, [read(3), conflict, read(4), { status: 200, body: summary }]);
  let seen = 0;
  const outcome = await client.decideAndAppend('shop', SEATS, async () => { seen += 1; return seat(); });
  assert.deepEqual(outcome, { appended: true, summary });
  assert.equal(seen, 2);
  assert.equal(server.requests.length, 4);
});

test('decide refusing ends the loop without writing', async (t) => {
  const { server, client } = await serve(t, [read(7)]);
  assert.deepEqual(await client.decideAndAppend('shop', SEATS, () => null), { appended: false, as_of: 7 });
  assert.deepEqual(server.requests.map((r) => r.url), ['/databases/shop/query']);
});

test('any other error than a conflict ends the loop', async (t) => {
  const { server, client } = await serve(t, [read(1), { status: 400, body: { code: 'INVALID_ARGUMENT', field: 'events' } }]);
  await assert.rejects(client.decideAndAppend('shop', SEATS, seat), (e) => e instanceof ApiError && e.code === 'INVALID_ARGUMENT');
  assert.equal(server.requests.length, 2);
});

test('queryAll follows next_from; as_of is the last page\'s', async (t) => {
  const { server, client } = await serve(t, [
    { status: 200, body: { as_of: 10, events: [{ id: 'a' }], next_from: 6 } },
    { status: 200, body: { as_of: 12, events: [], next_from: 11 } },
    { status: 200, body: { as_of: 12, events: [{ id: 'b' }], next_from: null } },
  ]);
  const result = await client.queryAll('shop', SEATS);
  assert.deepEqual(result, { as_of: 12, events: [{ id: 'a' }, { id: 'b' }] });
  assert.deepEqual(server.requests.map((r) => JSON.parse(r.body).from), [1, 6, 11]);
  assert.deepEqual(server.requests.map((r) => JSON.parse(r.body).limit), [1000, 1000, 1000]);
});
