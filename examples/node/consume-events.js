#!/usr/bin/env node
'use strict';
// Reads the Database Events and Async Responses topics from the beginning,
// prints one line per message and checks each against the wire contract
// (headers, body, per-database order, duplicates). See README.md.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const lib = require('./lib');

const { kafka } = lib;

const USAGE = `usage: node consume-events.js [--until-deleted N [--timeout SECONDS]] [--summary FILE]
  --until-deleted N  stop once N database deletions have been read and both topics are read to
                     their current end (without it: print events until Ctrl-C)
  --timeout SECONDS  with --until-deleted: give up (exit 1) after this long (default 90)
  --summary FILE     write what was read as JSON`;

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

const pb = lib.orFail(() => kafka.loadProtos());
const { databaseEvents, asyncResponses } = kafka.topics();

// What has been read. `events` and `responses` become the --summary file.
const events = {};            // database -> [entry, ...] in the order read
const responses = {};         // correlation id -> entry
let duplicates = 0;           // byte-identical redeliveries (events and responses)
let deletions = 0;            // distinct deleted events
const violations = [];
// The checkers (clients/node, lib/database-events.js): de-duplication and
// the contract's per-database order. Created once the partition count is known.
let eventsReader = null;
const responsesReader = new kafka.AsyncResponses(pb);

function onDatabaseEvent(partition, message) {
  const { kind, database, entry, violations: found } = eventsReader.read(partition, message);
  const where = `${databaseEvents}[${partition}]@${message.offset} (database ${database || '?'})`;
  found.forEach((v) => violations.push(`${where}: ${v}`));
  if (kind === 'duplicate') {
    duplicates += 1;
    console.log(`duplicate   ${database}  ce_id ${lib.kafka.readHeaders(message.headers).headers.ce_id} (p${partition}, ignored)`);
  }
  if (kind !== 'event') return;
  if (entry.type === 'deleted') deletions += 1;
  (events[database] = events[database] || []).push(entry);
  const span = entry.type === 'deleted' ? '' : `${entry.basis} → ${entry.revision}`;
  const batch = entry.batch_id ? `  batch ${entry.batch_id} (${entry.event_count} events)` : '';
  console.log(`${entry.type.padEnd(11)} ${database}  ${span}${batch}  (p${partition})`);
}

function onResponse(partition, message) {
  const { kind, correlationId, entry, violations: found } = responsesReader.read(message);
  const where = `${asyncResponses}[${partition}]@${message.offset} (correlation id ${correlationId || '?'})`;
  found.forEach((v) => violations.push(`${where}: ${v}`));
  if (kind === 'duplicate') {
    duplicates += 1;
    console.log(`duplicate   response ${correlationId} (p${partition}, ignored)`);
  }
  if (kind !== 'response') return;
  const { message: _text, ...summary } = entry;
  responses[correlationId] = summary;
  const outcome = entry.result === 'error' ? entry.code : `${entry.result} ${entry.basis} → ${entry.revision}`;
  console.log(`response    ${correlationId}  ${(entry.type || '').split('.').slice(-2, -1)[0]}  ${entry.subject}  ${outcome}  (p${partition})`);
}

async function main() {
  const connection = lib.orFail(() => kafka.createKafka('evidentsource-node-consume-events'));
  const admin = connection.admin();
  // A fresh group per run, so every run starts from the beginning. tansu
  // completes a join after about half the session timeout: keep it short.
  const consumer = connection.consumer({
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
  const partitions = (await admin.fetchTopicOffsets(databaseEvents)).length;
  eventsReader = new kafka.DatabaseEvents(pb, { topic: databaseEvents, partitions });
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
