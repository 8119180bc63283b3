'use strict';
// evidentsource-client: the EvidentSource serverless HTTP API (lib/client.js)
// and its Kafka topics (lib/kafka.js, loaded on first use so HTTP-only users
// need neither kafkajs nor protobufjs at run time). See README.md.

const { Client, MAX_QUERY_LIMIT } = require('./lib/client');
const errors = require('./lib/errors');
const { DEFAULT_RETRY } = require('./lib/retry');
const { decideAndAppend, DEFAULT_DCB_ATTEMPTS } = require('./lib/dcb');
const { event, selector, condition } = require('./lib/model');
const { SERVICE, createSigner } = require('./lib/signing');

module.exports = {
  Client,
  MAX_QUERY_LIMIT,
  DEFAULT_RETRY,
  DEFAULT_DCB_ATTEMPTS,
  SIGNING_SERVICE: SERVICE,
  decideAndAppend,
  createSigner,
  event,
  selector,
  condition,
  ...errors,
};
let kafka = null;
Object.defineProperty(module.exports, 'kafka', {
  enumerable: true,
  get: () => {
    kafka = kafka || { ...require('./lib/kafka'), ...require('./lib/async-commands'), ...require('./lib/database-events') };
    return kafka;
  },
});
