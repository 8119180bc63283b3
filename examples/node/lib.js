'use strict';
// What both scripts share beyond the client module: loading it, and the
// command-line chores (failing with a message, deadlines, numeric flags).
// The Kafka work itself (connection, topics, .proto files, submitting and
// awaiting commands, checking what is read) is in the Node client,
// clients/node (`require('evidentsource-client').kafka`).

// The client module from this repository; its own node_modules holds
// kafkajs and protobufjs (`make examples-deps`, or `npm ci` in clients/node).
const { kafka } = require('../../clients/node');

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

// The module throws a ConfigError for a setting that cannot work: say it and stop.
function orFail(make) {
  try {
    return make();
  } catch (err) {
    return fail(err.message);
  }
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

module.exports = { kafka, fail, describeError, orFail, deadline, positiveNumber };
