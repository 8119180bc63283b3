'use strict';
// Table tests of the pure decisions: what is retried, how long to wait,
// how an error answer is typed, where the next page starts.

const test = require('node:test');
const assert = require('node:assert/strict');
const { isRetryable, delay, parseRetryAfter } = require('../lib/retry');
const { fromResponse, ApiError, ErrorCode } = require('../lib/errors');
const { nextFromLink } = require('../lib/client');

test('only 503 and transport faults are retried', () => {
  for (const [outcome, expected] of [
    [{ status: 503 }, true],
    [{ transport: true }, true],
    [{ status: 500 }, false],
    [{ status: 502 }, false],
    [{ status: 400 }, false],
    [{ status: 404 }, false],
    [{ status: 409 }, false],
    [{ status: 413 }, false],
    [{ status: 429 }, false],
    [{ status: 200 }, false],
  ]) {
    assert.equal(isRetryable(outcome), expected, JSON.stringify(outcome));
  }
});

test('backoff doubles up to its bounds, with Retry-After as a floor', () => {
  const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 350, maxElapsedMs: 2000 };
  for (const [attempt, elapsed, retryAfter, jitter, expected] of [
    [1, 0, null, 1, 100],
    [2, 0, null, 1, 200],
    [3, 0, null, 1, 350], // capped at maxDelayMs
    [4, 0, null, 1, 350],
    [5, 0, null, 1, null], // maxAttempts reached
    [2, 0, null, 0.5, 100],
    [2, 0, null, 0, 0],
    [1, 0, 300, 0, 300], // retry-after a floor
    [1, 0, 60000, 0, 350], // ... capped too
    [2, 1900, null, 0.5, 100],
    [2, 1950, null, 1, null], // past maxElapsedMs
  ]) {
    assert.equal(delay(policy, attempt, elapsed, retryAfter, jitter), expected,
      `attempt ${attempt} after ${elapsed} ms, retry-after ${retryAfter}, jitter ${jitter}`);
  }
});

test('Retry-After is read as seconds or as a date', () => {
  const now = Date.parse('2024-01-15T10:30:00Z');
  for (const [value, expected] of [
    ['2', 2000],
    [' 0 ', 0],
    [undefined, null],
    ['', null],
    ['soon', null],
    ['Mon, 15 Jan 2024 10:30:03 GMT', 3000],
    ['Mon, 15 Jan 2024 10:29:00 GMT', 0],
  ]) {
    assert.equal(parseRetryAfter(value, now), expected, String(value));
  }
});

test('error answers are typed by their code, else by their status', () => {
  for (const [status, body, code, field] of [
    [400, '{"status":400,"code":"INVALID_ARGUMENT","field":"events[0].source","detail":"x"}', 'INVALID_ARGUMENT', 'events[0].source'],
    [404, '{"code":"NOT_FOUND","detail":"no"}', 'NOT_FOUND', null],
    [409, '{"code":"ALREADY_EXISTS"}', 'ALREADY_EXISTS', null],
    [409, '{"code":"FAILED_PRECONDITION","field":"conditions[0]"}', 'FAILED_PRECONDITION', 'conditions[0]'],
    [503, '{"code":"INTERNAL"}', 'INTERNAL', null],
    [400, '{"code":"SOMETHING_NEW"}', 'INVALID_ARGUMENT', null], // unknown code: the status decides
    // Not a problem body: the status decides.
    [502, 'Bad Gateway', 'INTERNAL', null],
    [404, '<html>', 'NOT_FOUND', null],
    [413, '', 'INVALID_ARGUMENT', null],
  ]) {
    const error = fromResponse(status, Buffer.from(body));
    assert.ok(error instanceof ApiError, body);
    assert.deepEqual([error.status, error.code, error.field], [status, code, field], body);
  }
  assert.equal(fromResponse(500, Buffer.from('{"code":"INTERNAL","request_id":"r-1"}')).requestId, 'r-1');
  assert.ok(fromResponse(409, Buffer.from('{"code":"FAILED_PRECONDITION"}')).isConflict);
  assert.ok(!fromResponse(409, Buffer.from('{"code":"ALREADY_EXISTS"}')).isConflict);
  // A long non-problem body is cut, not quoted whole.
  assert.equal(fromResponse(502, Buffer.alloc(10000, 'x')).detail.length, 256);
  assert.deepEqual(Object.keys(ErrorCode), ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'INTERNAL']);
});

test('the next page is read off the Link header', () => {
  for (const [link, expected] of [
    ['</databases/a/events?from=1001>; rel="next"', 1001],
    ['</databases/a/events?from=7&to=9>; rel="next"', 7],
    ['</databases/a/events?to=9&from=8>; rel="next"', 8],
    ['</databases/a/events>; rel="next"', null],
    ['</databases/a/events?from=3>; rel="prev"', null],
    ['garbage', null],
    [undefined, null],
  ]) {
    assert.equal(nextFromLink(link), expected, String(link));
  }
});
