#!/usr/bin/env node
'use strict';
// Reads the Database Events and Async Responses topics from the beginning,
// prints one line per message and checks each against the wire contract
// (headers, body, per-database order, duplicates). See README.md.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const { Partitioners } = require('kafkajs');
const lib = require('./lib');

const USAGE = `usage: node consume-events.js [--until-deleted N [--timeout SECONDS]] [--summary FILE]
  --until-deleted N  stop once N database deletions have been read and both topics are read to
                     their current end (without it: print events until Ctrl-C)
  --timeout SECONDS  with --until-deleted: give up (exit 1) after this long (default 90)
  --summary FILE     write what was read as JSON`;

const EVENT_TYPES = {
  'com.evidentsource.database.created.v1': 'created',
  'com.evidentsource.batch.transacted.v1': 'transacted',
  'com.evidentsource.database.deleted.v1': 'deleted',
};
const SUCCEEDED = 'com.evidentsource.command.succeeded.v1';
const FAILED = 'com.evidentsource.command.failed.v1';
const ERROR_CODES = ['INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'FAILED_PRECONDITION', 'INTERNAL'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UINT64 = /^(0|[1-9][0-9]{0,19})$/;

let opts;
try {
  opts = parseArgs({
    options: {
      'until-deleted': { type: 'string' },
      timeout: { type: 'string', default: '90' },
      summary: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  lib.fail(`${err.message}\n${USAGE}`);
}
if (opts.help) { console.log(USAGE); process.exit(0); }
const untilDeleted = opts['until-deleted'] === undefined ? null : lib.positiveNumber('--until-deleted', opts['until-deleted'], { integer: true });
const timeoutSeconds = lib.positiveNumber('--timeout', opts.timeout);

const pb = lib.loadProtos();
const { databaseEvents, asyncResponses } = lib.topics;

// What has been read. `events` and `responses` become the --summary file.
const events = {};            // database -> [entry, ...] in the order read
const responses = {};         // correlation id -> entry
let duplicates = 0;           // byte-identical redeliveries (events and responses)
let deletions = 0;            // distinct deleted events
const violations = [];
const eventIds = new Map();   // ce_id -> fingerprint of the first delivery
const responseIds = new Map(); // correlation id -> fingerprint of the first delivery
const databases = new Map();  // database -> { live, revision }: the order check
let eventPartitions = 0;      // partition count of the events topic, read at start

// The contract asks producers for Java-compatible key hashing (murmur2), so
// every client can tell which partition holds a database: kafkajs' default
// partitioner is that hash. A database anywhere else is a violation.
const javaPartitioner = Partitioners.DefaultPartitioner();
const partitionFor = (key) => javaPartitioner({
  topic: databaseEvents,
  partitionMetadata: Array.from({ length: eventPartitions }, (_, partitionId) => ({ partitionId, leader: 0 })),
  message: { key },
});

function onDatabaseEvent(partition, message) {
  const key = message.key ? message.key.toString('utf8') : '';
  const where = `${databaseEvents}[${partition}]@${message.offset} (database ${key || '?'})`;
  const bad = (text) => violations.push(`${where}: ${text}`);
  const { headers: h, repeated } = lib.readHeaders(message.headers);
  repeated.forEach((name) => bad(`header ${name} occurs more than once`));
  if (!key) return bad('no key (the key is the database name)');
  if (partition !== partitionFor(key)) bad(`on partition ${partition}, murmur2 of the key says ${partitionFor(key)}`);

  // At-least-once delivery: the same ce_id again must be the same bytes.
  const id = h.ce_id;
  if (!id || !UUID.test(id)) bad(`ce_id ${JSON.stringify(id)} is not a UUID`);
  if (id) {
    const print = lib.fingerprint(message);
    if (eventIds.has(id)) {
      if (eventIds.get(id) !== print) return bad(`ce_id ${id} was already used by a different message`);
      duplicates += 1;
      console.log(`duplicate   ${key}  ce_id ${id} (p${partition}, ignored)`);
      return undefined;
    }
    eventIds.set(id, print);
  }

  if (h.ce_specversion !== '1.0') bad(`ce_specversion ${JSON.stringify(h.ce_specversion)}, not 1.0`);
  const type = EVENT_TYPES[h.ce_type];
  if (!type) return bad(`unknown ce_type ${JSON.stringify(h.ce_type)}`);
  if (!(h.ce_source || '').endsWith(`/db/${key}`)) bad(`ce_source ${JSON.stringify(h.ce_source)} does not end in /db/${key}`);
  if (!TIME_MS_UTC.test(h.ce_time || '') || Number.isNaN(Date.parse(h.ce_time))) {
    bad(`ce_time ${JSON.stringify(h.ce_time)} is not RFC 3339 UTC with milliseconds`);
  }
  const contentType = type === 'deleted' ? 'application/octet-stream' : 'application/protobuf';
  for (const name of ['ce_datacontenttype', 'content-type']) {
    if (h[name] !== contentType) bad(`${name} ${JSON.stringify(h[name])}, expected ${contentType}`);
  }

  const entry = { type, id: id || null, basis: null, revision: null, batch_id: null, event_count: null, partition };
  const revisionHeader = (name) => {
    if (!UINT64.test(h[name] || '')) { bad(`${name} ${JSON.stringify(h[name])} is not a decimal uint64`); return null; }
    return Number(h[name]);
  };
  const decode = (T) => {
    try { return lib.toPlain(T, T.decode(message.value || Buffer.alloc(0))); } catch (err) {
      bad(`value is not a ${T.name}: ${err.message}`);
      return null;
    }
  };

  if (type === 'deleted') {
    for (const name of ['ce_subject', 'ce_revision', 'ce_basis']) if (name in h) bad(`${name} on a deleted event`);
    if (message.value && message.value.length > 0) bad(`deleted event with a ${message.value.length}-byte value`);
  } else {
    entry.basis = revisionHeader('ce_basis');
    entry.revision = revisionHeader('ce_revision');
    if (type === 'created') {
      if ('ce_subject' in h) bad('ce_subject on a created event');
      if (entry.basis !== 0 || entry.revision !== 0) bad(`created with ce_basis ${entry.basis}, ce_revision ${entry.revision}`);
      const db = decode(pb.Database);
      if (db && db.name !== key) bad(`Database.name ${JSON.stringify(db.name)} != key`);
      if (db && (db.basis !== 0 || db.revision !== 0)) bad(`Database basis ${db.basis}, revision ${db.revision}: expected 0, 0`);
    } else {
      entry.batch_id = h.ce_subject || null;
      if (!h.ce_subject) bad('transacted without ce_subject');
      const batch = decode(pb.BatchSummary);
      if (batch) {
        entry.event_count = batch.eventCount;
        if (batch.id !== h.ce_subject) bad(`BatchSummary.id ${batch.id} != ce_subject`);
        if (batch.database !== key) bad(`BatchSummary.database ${JSON.stringify(batch.database)} != key`);
        if (batch.basis !== entry.basis || batch.revision !== entry.revision) {
          bad(`BatchSummary ${batch.basis} → ${batch.revision} != headers ${entry.basis} → ${entry.revision}`);
        }
        if (batch.revision - batch.basis !== batch.eventCount) bad(`revision - basis != event_count ${batch.eventCount}`);
      }
    }
  }

  // Per database: Created, Transacted with no gap, Deleted; after a Deleted
  // only a new Created may follow.
  const state = databases.get(key) || { live: false, revision: null };
  databases.set(key, state);
  if (type === 'created') {
    if (state.live) bad('created again while it exists (no deleted before)');
    Object.assign(state, { live: true, revision: entry.revision });
  } else if (!state.live) {
    bad(`${type} before any created (or after deleted)`);
  } else if (type === 'transacted') {
    if (entry.basis !== state.revision) bad(`ce_basis ${entry.basis} != previous ce_revision ${state.revision}`);
    state.revision = entry.revision;
  } else {
    Object.assign(state, { live: false, revision: null });
  }
  if (type === 'deleted') deletions += 1;

  (events[key] = events[key] || []).push(entry);
  const span = type === 'deleted' ? '' : `${entry.basis} → ${entry.revision}`;
  const batch = entry.batch_id ? `  batch ${entry.batch_id} (${entry.event_count} events)` : '';
  console.log(`${type.padEnd(11)} ${key}  ${span}${batch}  (p${partition})`);
  return undefined;
}

function onResponse(partition, message) {
  const key = message.key ? message.key.toString('utf8') : '';
  const { headers: h, repeated } = lib.readHeaders(message.headers);
  const correlationId = h.ce_correlationid;
  const where = `${asyncResponses}[${partition}]@${message.offset} (correlation id ${correlationId || '?'})`;
  const bad = (text) => violations.push(`${where}: ${text}`);
  repeated.forEach((name) => bad(`header ${name} occurs more than once`));
  if (!correlationId) return bad('no ce_correlationid header');
  if (key !== correlationId) bad(`key ${JSON.stringify(key)} != ce_correlationid`);

  // Exactly one logical response per command: a repeat must be the same bytes.
  const print = lib.fingerprint(message);
  if (responseIds.has(correlationId)) {
    if (responseIds.get(correlationId) !== print) return bad('a second, different response for this correlation id');
    duplicates += 1;
    console.log(`duplicate   response ${correlationId} (p${partition}, ignored)`);
    return undefined;
  }
  responseIds.set(correlationId, print);

  if (h.ce_type !== SUCCEEDED && h.ce_type !== FAILED) bad(`ce_type ${JSON.stringify(h.ce_type)}`);
  const entry = { type: h.ce_type || null, subject: h.ce_subject ?? null, result: null, code: null, basis: null, revision: null };
  let body = null;
  try { body = lib.toPlain(pb.CommandResponse, pb.CommandResponse.decode(message.value || Buffer.alloc(0))); } catch (err) {
    bad(`value is not a CommandResponse: ${err.message}`);
  }
  if (body && body.result === 'error') {
    entry.result = 'error';
    entry.code = body.error.code;
    if (h.ce_type !== FAILED) bad('an error in a response that is not ce_type failed');
    if (!ERROR_CODES.includes(body.error.code)) bad(`error code ${body.error.code} is not in the contract's set`);
  } else if (body && (body.result === 'database' || body.result === 'batchSummary')) {
    const result = body[body.result];
    Object.assign(entry, { result: body.result === 'database' ? 'database' : 'batch_summary', basis: result.basis, revision: result.revision });
    if (h.ce_type !== SUCCEEDED) bad(`a ${entry.result} in a response that is not ce_type succeeded`);
    const name = body.result === 'database' ? result.name : result.database;
    if (h.ce_subject !== undefined && h.ce_subject !== name) bad(`ce_subject ${h.ce_subject} != the result's database ${name}`);
  } else if (body) {
    bad('CommandResponse with no result');
  }
  responses[correlationId] = entry;
  const outcome = entry.result === 'error' ? entry.code : `${entry.result} ${entry.basis} → ${entry.revision}`;
  console.log(`response    ${correlationId}  ${(h.ce_type || '').split('.').slice(-2, -1)[0]}  ${entry.subject}  ${outcome}  (p${partition})`);
  return undefined;
}

async function main() {
  const kafka = lib.createKafka('evidentsource-node-consume-events');
  const admin = kafka.admin();
  // A fresh group per run, so every run starts from the beginning. tansu
  // completes a join after about half the session timeout: keep it short.
  const consumer = kafka.consumer({
    groupId: `evidentsource-node-consume-events-${randomUUID()}`,
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
    allowAutoTopicCreation: false,
  });

  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) lib.fail(`the consumer stopped: ${payload.error.message}`);
  });

  // --until-deleted: once enough deletions are read, note each partition's
  // end offset (high watermark) and stop when everything before it is read.
  const lastRead = new Map(); // "topic:partition" -> offset read last
  let targets = null;
  const caughtUp = () => targets && targets.every(({ topic, partition, high }) => (lastRead.get(`${topic}:${partition}`) ?? -1) + 1 >= high);

  if (untilDeleted !== null) {
    lib.deadline(timeoutSeconds, () => `(${deletions} of ${untilDeleted} deletions read${targets ? ', reading to the end offsets' : ''})`);
  } else {
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => finish());
  }

  console.error(`reading ${databaseEvents} and ${asyncResponses} from the beginning${untilDeleted ? ` until ${untilDeleted} deletions` : ' (Ctrl-C to stop)'}`);
  await admin.connect();
  eventPartitions = (await admin.fetchTopicOffsets(databaseEvents)).length;
  await consumer.connect();
  await consumer.subscribe({ topics: [databaseEvents, asyncResponses], fromBeginning: true });
  await consumer.run({
    autoCommit: false, // a throwaway group: nothing to resume later
    eachMessage: async ({ topic, partition, message }) => {
      if (topic === databaseEvents) onDatabaseEvent(partition, message);
      else onResponse(partition, message);
      lastRead.set(`${topic}:${partition}`, Number(message.offset));

      if (untilDeleted !== null && deletions >= untilDeleted && !targets) {
        const ends = [];
        for (const t of [databaseEvents, asyncResponses]) {
          for (const { partition: p, high } of await admin.fetchTopicOffsets(t)) ends.push({ topic: t, partition: p, high: Number(high) });
        }
        targets = ends;
      }
      // Stopping from inside eachMessage would wait for this very call: signal main() instead.
      if (caughtUp()) finish();
    },
  });

  await finished;
  await consumer.disconnect();
  await admin.disconnect();

  if (opts.summary) {
    fs.writeFileSync(opts.summary, `${JSON.stringify({ events, duplicates, responses }, null, 2)}\n`);
  }
  const total = Object.values(events).reduce((n, list) => n + list.length, 0);
  console.error(`read ${total} database events (${duplicates} duplicates), ${Object.keys(responses).length} responses`);
  if (violations.length > 0) {
    violations.forEach((v) => console.error(`VIOLATION ${v}`));
    console.error(`${violations.length} contract violation(s)`);
    process.exit(1);
  }
  process.exit(0);
}

main().catch((err) => lib.fail(lib.describeError(err)));
