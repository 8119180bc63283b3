'use strict';
// Shared by consume-events.js and submit-commands.js: the Kafka connection
// (the same KAFKA_* variables the suite's functions read), the topic names,
// the .proto files and a few helpers for CloudEvents headers.

const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');
const protobuf = require('protobufjs');

// The contract's topic names; each can be overridden like in the suite.
const topics = {
  databaseEvents: process.env.DATABASE_EVENTS_KAFKA_TOPIC || 'evidentsource-database-events',
  asyncCommands: process.env.ASYNC_COMMANDS_KAFKA_TOPIC || 'evidentsource-async-commands',
  asyncResponses: process.env.ASYNC_RESPONSES_KAFKA_TOPIC || 'evidentsource-async-responses',
};

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

// kafkajs wraps the broker's answer in a retry error: show both, not a stack
// trace (e.g. "... caused by: This server does not host this topic-partition"
// when a topic does not exist).
function describeError(err) {
  let text = `${err.name}: ${err.message}`;
  for (let cause = err.cause; cause; cause = cause.cause) text += `, caused by: ${cause.message}`;
  return text;
}

// The .proto files are read at run time (no code generation step), from the
// repository's proto/ folder unless EVIDENTSOURCE_PROTO_DIR says otherwise.
// google/protobuf/{timestamp,any}.proto come bundled with protobufjs: it maps
// any path ending in google/protobuf/... to its own copy.
function loadProtos() {
  const dir = path.resolve(process.env.EVIDENTSOURCE_PROTO_DIR || path.join(__dirname, '..', '..', 'proto'));
  const root = new protobuf.Root();
  // Imports in our files are relative to the proto root, not to the importing file.
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  try {
    root.loadSync(['evidentsource/v1/database.proto', 'evidentsource/v1/commands.proto']);
    root.resolveAll();
  } catch (err) {
    fail(`cannot load the .proto files from ${dir} (set EVIDENTSOURCE_PROTO_DIR): ${err.message}`);
  }
  const type = (name) => root.lookupType(`evidentsource.v1.${name}`);
  return {
    Database: type('Database'),
    BatchSummary: type('BatchSummary'),
    CreateDatabaseRequest: type('CreateDatabaseRequest'),
    TransactRequest: type('TransactRequest'),
    DeleteDatabaseRequest: type('DeleteDatabaseRequest'),
    CommandResponse: type('CommandResponse'),
    CloudEvent: root.lookupType('io.cloudevents.v1.CloudEvent'),
  };
}

// Decoded messages carry uint64 fields as Long objects; the revisions we
// compare are small, so plain numbers are simpler. Enums become their names
// (e.g. "FAILED_PRECONDITION") and `result` names the oneof member that is set.
function toPlain(type, message) {
  return type.toObject(message, { longs: Number, enums: String, oneofs: true, defaults: true });
}

// kafkajs hands header values over as Buffers, or as an array of Buffers
// when a header occurs more than once. The contract has each header once.
function readHeaders(kafkaHeaders) {
  const headers = {};
  const repeated = [];
  for (const [name, value] of Object.entries(kafkaHeaders || {})) {
    if (Array.isArray(value)) repeated.push(name);
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    headers[name] = last === undefined || last === null ? '' : last.toString('utf8');
  }
  return { headers, repeated };
}

// A message's bytes (key, headers in order, value) as one string, to tell a
// byte-identical redelivery from a different message under the same id.
function fingerprint(message) {
  const hex = (b) => (b === null || b === undefined ? '-' : Buffer.from(b).toString('hex'));
  const headers = Object.entries(message.headers || {}).map(
    ([name, v]) => `${name}=${[].concat(v).map(hex).join(',')}`,
  );
  return [hex(message.key), ...headers, hex(message.value)].join('|');
}

// KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* as the suite reads them. kafkajs does
// PLAIN and SCRAM natively; MSK IAM needs an extra package, so it is not here.
function kafkaConnection() {
  const brokers = (process.env.KAFKA_BROKERS || '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0) fail('KAFKA_BROKERS is not set (comma-separated host:port list)');
  const protocol = (process.env.KAFKA_SECURITY_PROTOCOL || 'PLAINTEXT').toUpperCase();
  const config = { brokers };
  if (protocol === 'SSL' || protocol === 'SASL_SSL') config.ssl = true;
  else if (protocol !== 'PLAINTEXT') fail(`KAFKA_SECURITY_PROTOCOL=${protocol} is not supported here`);
  if (protocol === 'SASL_SSL') {
    const mechanism = (process.env.KAFKA_SASL_MECHANISM || '').toLowerCase();
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism)) {
      fail(`KAFKA_SASL_MECHANISM=${process.env.KAFKA_SASL_MECHANISM || ''}: this example supports PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`);
    }
    config.sasl = {
      mechanism,
      username: process.env.KAFKA_SASL_USERNAME || '',
      password: process.env.KAFKA_SASL_PASSWORD || '',
    };
  }
  return config;
}

function createKafka(clientId) {
  return new Kafka({
    clientId,
    ...kafkaConnection(),
    // kafkajs logs every group join at INFO; warnings and errors are enough
    // here. KAFKAJS_LOG_LEVEL=info (or debug) shows the protocol traffic.
    logLevel: logLevel[(process.env.KAFKAJS_LOG_LEVEL || 'warn').toUpperCase()] ?? logLevel.WARN,
  });
}

// Stop after `seconds`, naming what we were waiting for.
function deadline(seconds, what) {
  const timer = setTimeout(() => fail(`timed out after ${seconds} s ${what()}`), seconds * 1000);
  timer.unref();
  return timer;
}

function positiveNumber(flag, text, { integer = false } = {}) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    fail(`${flag} wants a positive ${integer ? 'integer' : 'number'}, not ${JSON.stringify(text)}`);
  }
  return n;
}

module.exports = {
  topics, fail, describeError, loadProtos, toPlain, readHeaders, fingerprint, createKafka, deadline, positiveNumber,
};
