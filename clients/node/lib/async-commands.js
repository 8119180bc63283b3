'use strict';
// Async commands (CONTRACT.md §5): send a command to the Async Commands
// topic and await its one response on the Async Responses topic, matched by
// the `ce_correlationid` header; and read a response into plain fields.

const { randomUUID } = require('node:crypto');
const { kafkajs, topics, readHeaders, toPlain } = require('./kafka');
const { TransportError } = require('./errors');

const CMD = 'com.evidentsource.command';
const COMMAND_TYPES = Object.freeze({
  createDatabase: `${CMD}.create-database.v1`,
  transact: `${CMD}.transact.v1`,
  deleteDatabase: `${CMD}.delete-database.v1`,
});
const SUCCEEDED = `${CMD}.succeeded.v1`;
const FAILED = `${CMD}.failed.v1`;

// A response message as plain fields: { key, correlationId, type, subject,
// result: 'database' | 'batch_summary' | 'error' | null, code, message,
// basis, revision, body }, and `problems` with what does not decode.
// `pb` is loadProtos()'s result.
function decodeResponse(pb, message) {
  const { headers: h, repeated } = readHeaders(message.headers);
  const decoded = {
    key: message.key ? message.key.toString('utf8') : '',
    correlationId: h.ce_correlationid || null,
    type: h.ce_type || null,
    subject: h.ce_subject ?? null,
    result: null, code: null, message: null, basis: null, revision: null, body: null,
    headers: h, repeated, problems: [],
  };
  try {
    decoded.body = toPlain(pb.CommandResponse, pb.CommandResponse.decode(message.value || Buffer.alloc(0)));
  } catch (err) {
    decoded.problems.push(`value is not a CommandResponse: ${err.message}`);
    return decoded;
  }
  const { body } = decoded;
  if (body.result === 'error') {
    Object.assign(decoded, { result: 'error', code: body.error.code, message: body.error.message });
  } else if (body.result === 'database' || body.result === 'batchSummary') {
    const result = body[body.result];
    Object.assign(decoded, { result: body.result === 'database' ? 'database' : 'batch_summary', basis: result.basis, revision: result.revision });
  } else {
    decoded.problems.push('CommandResponse with no result');
  }
  return decoded;
}

// Submits commands and awaits their responses. start() before the first
// submit: it notes where the responses topic ends, so every response to a
// command sent after it is seen, and nothing older is read.
class AsyncCommands {
  // `kafka`: a kafkajs Kafka (createKafka). `source`: the commands' ce_source.
  constructor(kafka, { source = 'urn:evidentsource:node-client', commandsTopic, responsesTopic, groupId } = {}) {
    const names = topics();
    this.commandsTopic = commandsTopic || names.asyncCommands;
    this.responsesTopic = responsesTopic || names.asyncResponses;
    this.source = source;
    this.admin = kafka.admin();
    // Java-compatible murmur2 key hashing, as the contract asks of producers.
    this.producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    this.consumer = kafka.consumer({
      // A throwaway group of its own: responses are matched here, not shared.
      groupId: groupId || `evidentsource-node-client-${randomUUID()}`,
      sessionTimeout: 6000, // tansu completes a join after about half of it
      heartbeatInterval: 1000,
      allowAutoTopicCreation: false,
    });
    this.waiting = new Map(); // correlation id -> deliver(message)
    this.crashed = null;
  }

  async start() {
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      this.crashed = new TransportError(`the responses consumer stopped: ${payload.error.message}`, { cause: payload.error });
      for (const deliver of this.waiting.values()) deliver(null);
    });
    await Promise.all([this.admin.connect(), this.producer.connect(), this.consumer.connect()]);
    const ends = await this.admin.fetchTopicOffsets(this.responsesTopic);
    await this.consumer.subscribe({ topics: [this.responsesTopic] });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const id = message.headers && message.headers.ce_correlationid;
        const deliver = id && this.waiting.get([].concat(id)[0].toString('utf8'));
        if (deliver) deliver(message);
      },
    });
    // run() returns once the group is joined; the seek applies at the next fetch.
    for (const { partition, high } of ends) this.consumer.seek({ topic: this.responsesTopic, partition, offset: high });
  }

  // Sends one command: `type` (COMMAND_TYPES), `value` (protobuf or
  // ProtoJSON bytes) and its `contentType`. Resolves to { correlationId,
  // response }: `response` a promise of the raw response message, rejected
  // with a TransportError after `timeoutMs`. Waiting starts before the send,
  // so even an instant response is not missed.
  async submit({ type, value, contentType = 'application/protobuf', correlationId = randomUUID(), timeoutMs = 60000 }) {
    if (this.crashed) throw this.crashed;
    const response = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(correlationId);
        reject(new TransportError(`no response for correlation id ${correlationId} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiting.set(correlationId, (message) => {
        clearTimeout(timer);
        this.waiting.delete(correlationId);
        if (message) resolve(message);
        else reject(this.crashed);
      });
    });
    // A caller that never awaits `response` must not crash the process.
    response.catch(() => {});
    await this.producer.send({
      topic: this.commandsTopic,
      messages: [{
        key: correlationId,
        value,
        headers: {
          ce_specversion: '1.0',
          ce_id: randomUUID(),
          ce_source: this.source,
          ce_type: type,
          ce_correlationid: correlationId,
          ce_datacontenttype: contentType,
          'content-type': contentType,
        },
      }],
    });
    return { correlationId, response };
  }

  async stop() {
    await Promise.all([this.producer.disconnect(), this.consumer.disconnect(), this.admin.disconnect()]);
  }
}

module.exports = { AsyncCommands, decodeResponse, COMMAND_TYPES, SUCCEEDED, FAILED };
