#!/usr/bin/env node
'use strict';
// Sends six async commands for one database to the Async Commands topic and
// checks the response to each on the Async Responses topic. See README.md.

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { randomUUID } = require('node:crypto');
const { Partitioners } = require('kafkajs');
// ProtoJSON (the protobuf JSON mapping: camelCase names, uint64 as strings)
// ships with protobufjs as an extension module.
const protojson = require('protobufjs/ext/protojson.js');
const lib = require('./lib');

const USAGE = `usage: node submit-commands.js --database NAME [--summary FILE] [--timeout SECONDS]
  --database NAME    the database to create, transact on and delete
  --summary FILE     write the responses as JSON
  --timeout SECONDS  how long to wait for each response (default 60)`;

const CMD = 'com.evidentsource.command';
const SUCCEEDED = `${CMD}.succeeded.v1`;
const FAILED = `${CMD}.failed.v1`;
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

const pb = lib.loadProtos();
const { asyncCommands, asyncResponses } = lib.topics;

const asProtobuf = (T, fields) => Buffer.from(T.encode(T.create(fields)).finish());
const asJson = (T, fields) => Buffer.from(protojson.toJsonString(T, T.create(fields)));

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
    name: 'create-database', ceType: `${CMD}.create-database.v1`, contentType: PROTOBUF,
    value: asProtobuf(pb.CreateDatabaseRequest, { databaseName: database }),
    expect: { type: SUCCEEDED, result: 'database', basis: 0, revision: 0 },
  },
  {
    name: 'transact-json', ceType: `${CMD}.transact.v1`, contentType: JSON_TYPE,
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
    name: 'transact-protobuf', ceType: `${CMD}.transact.v1`, contentType: PROTOBUF,
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
    name: 'transact-conflict', ceType: `${CMD}.transact.v1`, contentType: PROTOBUF,
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
    name: 'malformed-transact', ceType: `${CMD}.transact.v1`, contentType: PROTOBUF,
    value: Buffer.from([0xff, 0xff, 0xff]), noSubject: true,
    expect: { type: FAILED, result: 'error', code: 'INVALID_ARGUMENT' },
  },
  {
    name: 'delete-database', ceType: `${CMD}.delete-database.v1`, contentType: JSON_TYPE,
    value: asJson(pb.DeleteDatabaseRequest, { databaseName: database }),
    expect: { type: SUCCEEDED, result: 'database' },
  },
];

// Responses we wait for, by correlation id; everything else on the topic is ignored.
const waiting = new Map();

function waitForResponse(correlationId, step) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(correlationId);
      reject(new Error(`step ${step.name}: no response for correlation id ${correlationId} within ${timeoutSeconds} s`));
    }, timeoutSeconds * 1000);
    waiting.set(correlationId, (message) => { clearTimeout(timer); waiting.delete(correlationId); resolve(message); });
  });
}

// Checks one response against the step's expectations; returns its summary entry.
function checkResponse(step, correlationId, message) {
  const problems = [];
  const { headers: h } = lib.readHeaders(message.headers);
  const key = message.key ? message.key.toString('utf8') : '';
  if (key !== correlationId) problems.push(`key ${JSON.stringify(key)} is not our correlation id`);
  if (h.ce_type !== step.expect.type) problems.push(`ce_type ${h.ce_type}, expected ${step.expect.type}`);
  if (!step.noSubject && h.ce_subject !== database) problems.push(`ce_subject ${JSON.stringify(h.ce_subject)}, expected ${database}`);
  const entry = { step: step.name, type: h.ce_type || null, result: null, code: null, basis: null, revision: null };
  let body = null;
  try { body = lib.toPlain(pb.CommandResponse, pb.CommandResponse.decode(message.value || Buffer.alloc(0))); } catch (err) {
    problems.push(`value is not a CommandResponse: ${err.message}`);
  }
  if (body && body.result === 'error') {
    Object.assign(entry, { result: 'error', code: body.error.code });
    entry.message = body.error.message; // printed, not part of the summary
  } else if (body && body.result) {
    const result = body[body.result];
    Object.assign(entry, { result: body.result === 'batchSummary' ? 'batch_summary' : 'database', basis: result.basis, revision: result.revision });
  }
  for (const field of ['result', 'code', 'basis', 'revision']) {
    if (field in step.expect && entry[field] !== step.expect[field]) {
      problems.push(`${field} ${JSON.stringify(entry[field])}, expected ${JSON.stringify(step.expect[field])}`);
    }
  }
  return { entry, problems };
}

async function main() {
  const kafka = lib.createKafka('evidentsource-node-submit-commands');
  const admin = kafka.admin();
  // Java-compatible murmur2 key hashing, as the contract asks of producers;
  // naming it also silences kafkajs' warning about the v2 default change.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  const consumer = kafka.consumer({
    groupId: `evidentsource-node-submit-commands-${randomUUID()}`,
    sessionTimeout: 6000, // tansu completes a join after about half of it
    heartbeatInterval: 1000,
    allowAutoTopicCreation: false,
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) lib.fail(`the responses consumer stopped: ${payload.error.message}`);
  });

  await Promise.all([admin.connect(), producer.connect(), consumer.connect()]);
  // Where the responses topic ends before we send anything: every response
  // to our commands comes after this, so the consumer starts exactly there.
  const start = await admin.fetchTopicOffsets(asyncResponses);
  await consumer.subscribe({ topics: [asyncResponses] });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      const id = message.headers && message.headers.ce_correlationid;
      const deliver = id && waiting.get([].concat(id)[0].toString('utf8'));
      if (deliver) deliver(message);
    },
  });
  // run() returns once the group is joined; the seek applies at the next fetch.
  for (const { partition, high } of start) consumer.seek({ topic: asyncResponses, partition, offset: high });

  const responses = {};
  const writeSummary = () => {
    if (opts.summary) fs.writeFileSync(opts.summary, `${JSON.stringify({ database, responses }, null, 2)}\n`);
  };
  let failure = null;
  for (const [i, step] of steps.entries()) {
    const correlationId = randomUUID();
    const response = waitForResponse(correlationId, step);
    // One command at a time: commands land on partitions by correlation id
    // and partitions are executed concurrently, so order needs waiting.
    await producer.send({
      topic: asyncCommands,
      messages: [{
        key: correlationId,
        value: step.value,
        headers: {
          ce_specversion: '1.0',
          ce_id: randomUUID(),
          ce_source: 'urn:example:evidentsource-node-submit-commands',
          ce_type: step.ceType,
          ce_correlationid: correlationId,
          ce_datacontenttype: step.contentType,
          'content-type': step.contentType,
        },
      }],
    });
    let message;
    try { message = await response; } catch (err) { failure = err.message; break; }
    const { entry, problems } = checkResponse(step, correlationId, message);
    const outcome = entry.result === 'error' ? `${entry.code}: ${entry.message}` : `${entry.result} ${entry.basis} → ${entry.revision}`;
    console.log(`${i + 1}/${steps.length} ${step.name.padEnd(18)} ${(entry.type || '?').split('.').slice(-2, -1)[0]}  ${outcome}  (${correlationId})`);
    delete entry.message;
    responses[correlationId] = entry;
    if (problems.length > 0) { failure = `step ${step.name}: ${problems.join('; ')}`; break; }
  }

  writeSummary();
  await Promise.all([producer.disconnect(), consumer.disconnect(), admin.disconnect()]);
  if (failure) lib.fail(failure);
  console.error(`all ${steps.length} commands answered as expected for database ${database}`);
}

main().catch((err) => lib.fail(lib.describeError(err)));
