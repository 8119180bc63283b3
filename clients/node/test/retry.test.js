'use strict';
// Retries against a scripted local server: what is sent again (the same
// bytes, so the same transaction id), what is not (400, 409, 500), and that
// retrying stops within its bounds.

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { Client, ApiError, TransportError, event } = require('..');
const { scriptedServer } = require('../testing/support');

const SUMMARY = { id: 'b-1', database: 'shop', basis: 0, revision: 1, event_count: 1, recorded_time: '2024-01-15T10:30:05.456Z' };
const FAST = { baseDelayMs: 1, maxDelayMs: 5 };
const orderPlaced = () => event({ source: 'https://shop.example.com/orders', type: 'order-placed', subject: 'order-1', data: { total: 42 } });

async function serve(t, script) {
  const server = await scriptedServer(script);
  t.after(server.close);
  return server;
}

test('503, 503, then 200: the same body, the same transaction id, three times', async (t) => {
  const server = await serve(t, [
    { status: 503, headers: { 'retry-after': '0' }, body: { code: 'INTERNAL' } },
    { status: 503, body: { code: 'INTERNAL' } },
    { status: 200, body: SUMMARY },
  ]);
  const client = new Client(server.url, { retry: FAST });
  // No transaction id given: the generated one must survive the retries.
  const summary = await client.transact('shop', [orderPlaced()]);
  assert.deepEqual(summary, SUMMARY);
  assert.equal(server.requests.length, 3);
  const [first, ...rest] = server.requests;
  assert.match(JSON.parse(first.body).transaction_id, /^[0-9a-f-]{36}$/);
  for (const again of rest) assert.equal(again.body, first.body);
});

test('a hang-up is retried with the same bytes', async (t) => {
  const server = await serve(t, ['hangup', { status: 200, body: SUMMARY }]);
  const client = new Client(server.url, { retry: FAST });
  await client.transact('shop', [orderPlaced()], [], 'place-order-1');
  assert.equal(server.requests.length, 2);
  assert.equal(server.requests[1].body, server.requests[0].body);
  assert.equal(JSON.parse(server.requests[0].body).transaction_id, 'place-order-1');
});

test('400, 409 and 500 are answers, not retried', async (t) => {
  for (const [status, code] of [[400, 'INVALID_ARGUMENT'], [409, 'FAILED_PRECONDITION'], [409, 'ALREADY_EXISTS'], [404, 'NOT_FOUND'], [500, 'INTERNAL']]) {
    const server = await serve(t, [{ status, body: { code, field: 'x', detail: 'no' } }, { status: 200, body: SUMMARY }]);
    const client = new Client(server.url, { retry: FAST });
    const error = await client.transact('shop', [orderPlaced()]).then(() => null, (e) => e);
    assert.ok(error instanceof ApiError, `${status} ${code}: ${error}`);
    assert.deepEqual([error.status, error.code, error.field], [status, code, 'x']);
    assert.equal(server.requests.length, 1, `${status} ${code} was sent again`);
  }
});

test('retrying stops at maxAttempts with the last answer', async (t) => {
  const server = await serve(t, [{ status: 503, body: { code: 'INTERNAL', detail: 'busy' } }]);
  const client = new Client(server.url, { retry: { ...FAST, maxAttempts: 4 } });
  const error = await client.getDatabase('shop').then(() => null, (e) => e);
  assert.ok(error instanceof ApiError && error.status === 503, String(error));
  assert.equal(server.requests.length, 4);
});

test('retrying stops at maxElapsedMs; Retry-After is waited for', async (t) => {
  // Retry-After: 1 s is a floor on every wait; 1.5 s of retrying fits one.
  const server = await serve(t, [{ status: 503, headers: { 'retry-after': '1' }, body: { code: 'INTERNAL' } }]);
  const client = new Client(server.url, { retry: { ...FAST, maxDelayMs: 5000, maxAttempts: 10, maxElapsedMs: 1500 } });
  const started = Date.now();
  await assert.rejects(client.getDatabase('shop'), ApiError);
  assert.equal(server.requests.length, 2);
  assert.ok(Date.now() - started >= 1000, 'the Retry-After second was waited');
});

test('no server at all: a TransportError after the bounded attempts', async () => {
  // A port that was free a moment ago: connections are refused.
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
  const client = new Client(`http://127.0.0.1:${port}`, { retry: { ...FAST, maxAttempts: 3 } });
  let failed = 0;
  client.random = () => { failed += 1; return 0; }; // consulted once per failed attempt
  const error = await client.getDatabase('shop').then(() => null, (e) => e);
  assert.ok(error instanceof TransportError, String(error));
  assert.equal(error.code, 'TRANSPORT');
  assert.equal(failed, 3, 'three attempts, then stop');
});

test('an answer that does not come in time is a transport fault, retried', { timeout: 10000 }, async (t) => {
  // Swallow the first request: accept it and never answer.
  const sockets = [];
  const hold = net.createServer((socket) => { sockets.push(socket); socket.on('data', () => {}); });
  await new Promise((resolve) => hold.listen(0, '127.0.0.1', resolve));
  // Hung-up sockets, not a hanging suite, if the client ever waits forever.
  t.after(() => new Promise((resolve) => { sockets.forEach((s) => s.destroy()); hold.close(resolve); }));
  const client = new Client(`http://127.0.0.1:${hold.address().port}`, { retry: { ...FAST, maxAttempts: 2 }, attemptTimeoutMs: 200 });
  const error = await client.getDatabase('shop').then(() => null, (e) => e);
  assert.ok(error instanceof TransportError, String(error));
  assert.match(error.message, /no answer within 200 ms/);
  assert.equal(sockets.length, 2);
});
