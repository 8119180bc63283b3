'use strict';
// The Kafka side's plumbing (CONTRACT.md §1-3, §5): the connection from the
// same KAFKA_* variables the suite's functions read, the topic names, the
// .proto files read at run time (no code generation), and the CloudEvents
// header helpers. lib/async-commands.js and lib/database-events.js build on
// it (index.js's `kafka` is the three together). kafkajs and protobufjs are re-exported so that callers use the very
// copies this module uses (e.g. to register a compression codec).

const path = require('node:path');
const kafkajs = require('kafkajs');
const protobuf = require('protobufjs');
// ProtoJSON (the protobuf JSON mapping: camelCase names, uint64 as strings)
// ships with protobufjs as an extension module.
const protojson = require('protobufjs/ext/protojson.js');
const { ConfigError } = require('./errors');

// The contract's topic names; each can be overridden like in the suite.
function topics(env = process.env) {
  return {
    databaseEvents: env.DATABASE_EVENTS_KAFKA_TOPIC || 'evidentsource-database-events',
    asyncCommands: env.ASYNC_COMMANDS_KAFKA_TOPIC || 'evidentsource-async-commands',
    asyncResponses: env.ASYNC_RESPONSES_KAFKA_TOPIC || 'evidentsource-async-responses',
  };
}

// KAFKA_BROKERS / KAFKA_SECURITY_PROTOCOL / KAFKA_SASL_* as the suite reads
// them, as kafkajs connection options. kafkajs does PLAIN and SCRAM
// natively; MSK IAM needs an extra package, so it is refused here.
function kafkaConfig(env = process.env) {
  const brokers = (env.KAFKA_BROKERS || '').split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0) throw new ConfigError('KAFKA_BROKERS is not set (comma-separated host:port list)');
  const protocol = (env.KAFKA_SECURITY_PROTOCOL || 'PLAINTEXT').toUpperCase();
  const config = { brokers };
  if (protocol === 'SSL' || protocol === 'SASL_SSL') config.ssl = true;
  else if (protocol !== 'PLAINTEXT') throw new ConfigError(`KAFKA_SECURITY_PROTOCOL=${protocol} is not supported here`);
  if (protocol === 'SASL_SSL') {
    const mechanism = (env.KAFKA_SASL_MECHANISM || '').toLowerCase();
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism)) {
      throw new ConfigError(`KAFKA_SASL_MECHANISM=${env.KAFKA_SASL_MECHANISM || ''}: supported are PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`);
    }
    config.sasl = { mechanism, username: env.KAFKA_SASL_USERNAME || '', password: env.KAFKA_SASL_PASSWORD || '' };
  }
  return config;
}

function createKafka(clientId, env = process.env) {
  return new kafkajs.Kafka({
    clientId,
    ...kafkaConfig(env),
    // kafkajs logs every group join at INFO; warnings and errors are enough.
    // KAFKAJS_LOG_LEVEL=info (or debug) shows the protocol traffic.
    logLevel: kafkajs.logLevel[(env.KAFKAJS_LOG_LEVEL || 'warn').toUpperCase()] ?? kafkajs.logLevel.WARN,
  });
}

// The contract's messages, from the repository's proto/ folder unless `dir`
// or EVIDENTSOURCE_PROTO_DIR says otherwise. google/protobuf/*.proto come
// bundled with protobufjs: it maps any path ending in google/protobuf/... to
// its own copy.
function loadProtos(dir = process.env.EVIDENTSOURCE_PROTO_DIR || path.join(__dirname, '..', '..', '..', 'proto')) {
  const root = new protobuf.Root();
  const base = path.resolve(dir);
  // Imports in our files are relative to the proto root, not to the importing file.
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(base, target));
  try {
    root.loadSync(['evidentsource/v1/database.proto', 'evidentsource/v1/commands.proto']);
    root.resolveAll();
  } catch (err) {
    throw new ConfigError(`cannot load the .proto files from ${base} (set EVIDENTSOURCE_PROTO_DIR): ${err.message}`, { cause: err });
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

// A message of type T with `fields`, as protobuf bytes or as ProtoJSON.
const encodeProtobuf = (T, fields) => Buffer.from(T.encode(T.create(fields)).finish());
const encodeJson = (T, fields) => Buffer.from(protojson.toJsonString(T, T.create(fields)));

// Decoded messages carry uint64 fields as Long objects; the revisions are
// far below 2^53, so plain numbers are simpler. Enums become their names
// (e.g. "FAILED_PRECONDITION") and `result` names the oneof member that is set.
function toPlain(type, message) {
  return type.toObject(message, { longs: Number, enums: String, oneofs: true, defaults: true });
}

// kafkajs hands header values over as Buffers, or as an array of Buffers
// when a header occurs more than once. The contract has each header once:
// `repeated` names the ones that were not.
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

// The partition Java-compatible (murmur2) key hashing puts `key` on, as the
// contract asks of producers; kafkajs' DefaultPartitioner is that hash.
function partitionFor(topic, partitions, key) {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  return partitioner({
    topic,
    partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0 })),
    message: { key },
  });
}

module.exports = {
  kafkajs, protobuf, topics, kafkaConfig, createKafka, loadProtos, encodeProtobuf, encodeJson, toPlain, readHeaders, fingerprint, partitionFor,
};
