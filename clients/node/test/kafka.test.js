'use strict';
// The Kafka helpers' decisions, on messages built here the way kafkajs
// delivers them (Buffers): de-duplication on ce_id, each database's
// basis/revision continuity, response decoding, the connection settings.
// The same code against real topics: tools/local-runner/tests/interop.rs.

const test = require('node:test');
const assert = require('node:assert/strict');
const { randomUUID } = require('node:crypto');
const { kafka, ConfigError } = require('..');

const pb = kafka.loadProtos();
const TIME = '2024-01-15T10:30:00.123Z';
const CE = 'com.evidentsource';

// A Database Events message as the stream publisher sends it.
function dbEvent(database, type, { basis, revision, id = randomUUID(), batch = randomUUID() } = {}) {
  const headers = {
    ce_specversion: '1.0', ce_id: id, ce_source: `https://api.example.com/db/${database}`, ce_time: TIME,
  };
  let value = Buffer.alloc(0);
  if (type === 'deleted') {
    Object.assign(headers, { ce_type: `${CE}.database.deleted.v1`, ce_datacontenttype: 'application/octet-stream', 'content-type': 'application/octet-stream' });
  } else if (type === 'created') {
    Object.assign(headers, { ce_type: `${CE}.database.created.v1`, ce_datacontenttype: 'application/protobuf', 'content-type': 'application/protobuf', ce_basis: '0', ce_revision: '0' });
    value = kafka.encodeProtobuf(pb.Database, { name: database, basis: 0, revision: 0 });
  } else {
    Object.assign(headers, {
      ce_type: `${CE}.batch.transacted.v1`, ce_datacontenttype: 'application/protobuf', 'content-type': 'application/protobuf',
      ce_subject: batch, ce_basis: String(basis), ce_revision: String(revision),
    });
    value = kafka.encodeProtobuf(pb.BatchSummary, { id: batch, database, basis, revision, eventCount: revision - basis });
  }
  const bytes = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)]));
  return { key: Buffer.from(database), headers: bytes, value, offset: '0' };
}

test('database events: duplicates skipped, each database held to its sequence', () => {
  const reader = new kafka.DatabaseEvents(pb);
  const created = dbEvent('a', 'created');
  const first = dbEvent('a', 'transacted', { basis: 0, revision: 2 });
  for (const [message, kind, violation] of [
    [created, 'event', null],
    [first, 'event', null],
    [first, 'duplicate', null], // a byte-identical redelivery
    [dbEvent('a', 'transacted', { basis: 2, revision: 3 }), 'event', null],
    [dbEvent('a', 'transacted', { basis: 4, revision: 5 }), 'event', 'ce_basis 4 != previous ce_revision 3'], // a gap
    [{ ...first, value: Buffer.from([1]) }, 'invalid', 'already used by a different message'],
    [dbEvent('b', 'transacted', { basis: 0, revision: 1 }), 'event', 'transacted before any created'],
    [dbEvent('a', 'deleted'), 'event', null],
    [dbEvent('a', 'transacted', { basis: 5, revision: 6 }), 'event', 'after deleted'],
    [dbEvent('a', 'created'), 'event', null], // a new sequence
    [{ ...dbEvent('c', 'created'), key: null }, 'invalid', 'no key'],
  ]) {
    const read = reader.read(0, message);
    assert.equal(read.kind, kind, JSON.stringify(read));
    if (violation) assert.match(read.violations.join('; '), new RegExp(violation), JSON.stringify(read));
    else assert.deepEqual(read.violations, [], JSON.stringify(read));
  }
  const entry = reader.read(0, dbEvent('a', 'transacted', { basis: 0, revision: 4, batch: 'b-1', id: '00000000-0000-4000-8000-000000000001' })).entry;
  assert.deepEqual(entry, { type: 'transacted', id: '00000000-0000-4000-8000-000000000001', basis: 0, revision: 4, batch_id: 'b-1', event_count: 4, partition: 0 });
});

test('database events: a database on the wrong partition is a violation', () => {
  const reader = new kafka.DatabaseEvents(pb, { topic: 't', partitions: 3 });
  const right = kafka.partitionFor('t', 3, 'orders');
  assert.deepEqual(reader.read(right, dbEvent('orders', 'created')).violations, []);
  assert.match(reader.read((right + 1) % 3, dbEvent('orders', 'deleted')).violations.join(), /murmur2/);
});

function response(correlationId, type, fields, subject = 'shop') {
  const headers = { ce_correlationid: Buffer.from(correlationId), ce_type: Buffer.from(`${CE}.command.${type}.v1`), ce_subject: Buffer.from(subject) };
  return { key: Buffer.from(correlationId), headers, value: kafka.encodeProtobuf(pb.CommandResponse, fields) };
}

test('responses: decoded, de-duplicated on the correlation id', () => {
  const ok = response('c-1', 'succeeded', { batchSummary: { id: 'b', database: 'shop', basis: 2, revision: 3, eventCount: 1 } });
  // Enum values as numbers here: 4 is FAILED_PRECONDITION, 2 NOT_FOUND.
  const refused = response('c-2', 'failed', { error: { code: 4, message: 'conditions[0]' } });
  assert.deepEqual(
    (({ result, code, basis, revision, subject }) => ({ result, code, basis, revision, subject }))(kafka.decodeResponse(pb, ok)),
    { result: 'batch_summary', code: null, basis: 2, revision: 3, subject: 'shop' },
  );
  const reader = new kafka.AsyncResponses(pb);
  for (const [message, kind, violation] of [
    [ok, 'response', null],
    [ok, 'duplicate', null],
    [refused, 'response', null],
    [{ ...refused, value: Buffer.from([]) }, 'invalid', 'a second, different response'],
    [response('c-3', 'succeeded', { error: { code: 2 } }), 'response', 'not ce_type failed'],
    [response('c-4', 'succeeded', { database: { name: 'other' } }), 'response', "!= the result's database"],
    [{ ...response('c-5', 'failed', {}), key: Buffer.from('x') }, 'response', 'key "x" != ce_correlationid'],
  ]) {
    const read = reader.read(message);
    assert.equal(read.kind, kind, JSON.stringify(read));
    if (violation) assert.match(read.violations.join('; '), new RegExp(violation), JSON.stringify(read));
    else assert.deepEqual(read.violations, [], JSON.stringify(read));
  }
});

test('the connection comes from the KAFKA_* variables; what cannot work is a ConfigError', () => {
  assert.deepEqual(kafka.kafkaConfig({ KAFKA_BROKERS: 'a:9092, b:9092' }), { brokers: ['a:9092', 'b:9092'] });
  assert.deepEqual(
    kafka.kafkaConfig({ KAFKA_BROKERS: 'a:9092', KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }),
    { brokers: ['a:9092'], ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } },
  );
  for (const env of [
    {},
    { KAFKA_BROKERS: 'a:9092', KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT' },
    { KAFKA_BROKERS: 'a:9092', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'AWS_MSK_IAM' },
  ]) {
    assert.throws(() => kafka.kafkaConfig(env), ConfigError, JSON.stringify(env));
  }
  assert.throws(() => kafka.loadProtos('/nonexistent'), ConfigError);
  assert.deepEqual(kafka.topics({ ASYNC_COMMANDS_KAFKA_TOPIC: 'cmds' }), {
    databaseEvents: 'evidentsource-database-events', asyncCommands: 'cmds', asyncResponses: 'evidentsource-async-responses',
  });
});
