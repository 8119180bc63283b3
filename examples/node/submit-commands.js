#!/usr/bin/env node
'use strict';
// Sends six async commands for one database to the Async Commands topic and
// checks the response to each on the Async Responses topic. See README.md.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const lib = require('./lib');

const { kafka } = lib;
const USAGE = `usage: node submit-commands.js --database NAME [--summary FILE] [--timeout SECONDS]
  --database NAME    the database to create, transact on and delete
  --summary FILE     write the responses as JSON
  --timeout SECONDS  how long to wait for each response (default 60)`;

const { COMMAND_TYPES, SUCCEEDED, FAILED } = kafka;
const PROTOBUF = 'application/protobuf';
const JSON_TYPE = 'application/json';
const SHOP = 'https://shop.example.com/orders'; // the events' source: stream "orders"

let opts;
try {
  opts = parseArgs({
    options: {
      database: { type: 'string' },
      summary: { type: 'string' },
      timeout: { type: 'string', default: '60' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  lib.fail(`${err.message}\n${USAGE}`);
}
if (opts.help) { console.log(USAGE); process.exit(0); }
if (!opts.database) lib.fail(`--database is required\n${USAGE}`);
if (!/^[a-zA-Z][a-zA-Z0-9\-_.]{1,127}$/.test(opts.database)) lib.fail(`invalid database name ${JSON.stringify(opts.database)}`);
const database = opts.database;
const timeoutSeconds = lib.positiveNumber('--timeout', opts.timeout);

const pb = lib.orFail(() => kafka.loadProtos());
const asProtobuf = kafka.encodeProtobuf;
const asJson = kafka.encodeJson;

// An order event (a CloudEvent inside the transaction); JSON data as text,
// or as bytes when `binary` is set.
function orderEvent(subject, type, data, binary = false) {
  const payload = JSON.stringify(data);
  return {
    id: randomUUID(),
    source: SHOP,
    specVersion: '1.0',
    type,
    attributes: { subject: { ceString: subject }, datacontenttype: { ceString: 'application/json' } },
    ...(binary ? { binaryData: Buffer.from(payload) } : { textData: payload }),
  };
}
// "At most revision r among the events with this subject"; r = 0: none may exist.
const maxForSubject = (subject, max) => ({ selector: { subjectEquals: subject }, max });

// The scenario, in order: what to send and what must come back.
const steps = [
  {
    name: 'create-database', ceType: COMMAND_TYPES.createDatabase, contentType: PROTOBUF,
    value: asProtobuf(pb.CreateDatabaseRequest, { databaseName: database }),
    expect: { type: SUCCEEDED, result: 'database', basis: 0, revision: 0 },
  },
  {
    name: 'transact-json', ceType: COMMAND_TYPES.transact, contentType: JSON_TYPE,
    value: asJson(pb.TransactRequest, {
      databaseName: database,
      events: [
        orderEvent('order-1', 'com.shop.order.placed', { order: 'order-1', total: 42 }),
        orderEvent('order-2', 'com.shop.order.placed', { order: 'order-2', total: 7 }),
      ],
      conditions: [maxForSubject('order-1', 0)], // order-1 must be new
      transactionId: `place-${randomUUID()}`,
    }),
    expect: { type: SUCCEEDED, result: 'batch_summary', basis: 0, revision: 2 },
  },
  {
    name: 'transact-protobuf', ceType: COMMAND_TYPES.transact, contentType: PROTOBUF,
    value: asProtobuf(pb.TransactRequest, {
      databaseName: database,
      events: [orderEvent('order-1', 'com.shop.order.paid', { order: 'order-1', amount: 42 }, true)],
      // order-1 was written at revision 1: it holds as long as nobody else touched order-1 since.
      conditions: [maxForSubject('order-1', 2)],
      transactionId: `pay-${randomUUID()}`,
    }),
    expect: { type: SUCCEEDED, result: 'batch_summary', basis: 2, revision: 3 },
  },
  {
    name: 'transact-conflict', ceType: COMMAND_TYPES.transact, contentType: PROTOBUF,
    value: asProtobuf(pb.TransactRequest, {
      databaseName: database,
      events: [orderEvent('order-1', 'com.shop.order.placed', { order: 'order-1', total: 1 })],
      conditions: [maxForSubject('order-1', 0)], // order-1 exists now: refused, nothing written
      transactionId: `place-again-${randomUUID()}`,
    }),
    expect: { type: FAILED, result: 'error', code: 'FAILED_PRECONDITION' },
  },
  {
    // Not a TransactRequest at all: still gets exactly one response.
    name: 'malformed-transact', ceType: COMMAND_TYPES.transact, contentType: PROTOBUF,
    value: Buffer.from([0xff, 0xff, 0xff]), noSubject: true,
    expect: { type: FAILED, result: 'error', code: 'INVALID_ARGUMENT' },
  },
  {
    name: 'delete-database', ceType: COMMAND_TYPES.deleteDatabase, contentType: JSON_TYPE,
    value: asJson(pb.DeleteDatabaseRequest, { databaseName: database }),
    expect: { type: SUCCEEDED, result: 'database' },
  },
];

// Checks one response against the step's expectations; returns its summary entry.
function checkResponse(step, correlationId, message) {
  const problems = [];
  const r = kafka.decodeResponse(pb, message);
  if (r.key !== correlationId) problems.push(`key ${JSON.stringify(r.key)} is not our correlation id`);
  if (r.type !== step.expect.type) problems.push(`ce_type ${r.type}, expected ${step.expect.type}`);
  if (!step.noSubject && r.subject !== database) problems.push(`ce_subject ${JSON.stringify(r.subject)}, expected ${database}`);
  problems.push(...r.problems);
  const entry = { step: step.name, type: r.type, result: r.result, code: r.code, basis: r.basis, revision: r.revision };
  for (const field of ['result', 'code', 'basis', 'revision']) {
    if (field in step.expect && entry[field] !== step.expect[field]) {
      problems.push(`${field} ${JSON.stringify(entry[field])}, expected ${JSON.stringify(step.expect[field])}`);
    }
  }
  return { entry, problems, message: r.message };
}

async function main() {
  const client = new kafka.AsyncCommands(lib.orFail(() => kafka.createKafka('evidentsource-node-submit-commands')), {
    source: 'urn:example:evidentsource-node-submit-commands',
  });
  await client.start();

  const responses = {};
  let failure = null;
  for (const [i, step] of steps.entries()) {
    // One command at a time: commands land on partitions by correlation id
    // and partitions are executed concurrently, so order needs waiting.
    const { correlationId, response } = await client.submit({
      type: step.ceType, value: step.value, contentType: step.contentType, timeoutMs: timeoutSeconds * 1000,
    });
    let message;
    try { message = await response; } catch (err) { failure = `step ${step.name}: ${err.message}`; break; }
    const { entry, problems, message: text } = checkResponse(step, correlationId, message);
    const outcome = entry.result === 'error' ? `${entry.code}: ${text}` : `${entry.result} ${entry.basis} → ${entry.revision}`;
    console.log(`${i + 1}/${steps.length} ${step.name.padEnd(18)} ${(entry.type || '?').split('.').slice(-2, -1)[0]}  ${outcome}  (${correlationId})`);
    responses[correlationId] = entry;
    if (problems.length > 0) { failure = `step ${step.name}: ${problems.join('; ')}`; break; }
  }

  if (opts.summary) fs.writeFileSync(opts.summary, `${JSON.stringify({ database, responses }, null, 2)}\n`);
  await client.stop();
  if (failure) lib.fail(failure);
  console.error(`all ${steps.length} commands answered as expected for database ${database}`);
}

main().catch((err) => lib.fail(lib.describeError(err)));
