'use strict';
// Reading the Database Events topic (CONTRACT.md §2) and the Async
// Responses topic (§5) as a consumer must: de-duplicate at-least-once
// redeliveries (same ce_id / correlation id, same bytes), and hold each
// database's sequence to the contract (Created, then Transacted with every
// ce_basis equal to the previous ce_revision, then Deleted). Each `read`
// returns what the message is and what about it breaks the contract; the
// caller decides what to print or stop on.

const { readHeaders, fingerprint, toPlain, partitionFor } = require('./kafka');
const { decodeResponse, SUCCEEDED, FAILED } = require('./async-commands');
const { ErrorCode } = require('./errors');

const EVENT_TYPES = Object.freeze({
  'com.evidentsource.database.created.v1': 'created',
  'com.evidentsource.batch.transacted.v1': 'transacted',
  'com.evidentsource.database.deleted.v1': 'deleted',
});
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TIME_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UINT64 = /^(0|[1-9][0-9]{0,19})$/;

class DatabaseEvents {
  // `pb`: loadProtos()'s result. `partitions`: the topic's partition count,
  // to check each database is where murmur2 of its name puts it (0: skip).
  constructor(pb, { topic = 'evidentsource-database-events', partitions = 0 } = {}) {
    Object.assign(this, { pb, topic, partitions });
    this.ids = new Map(); // ce_id -> fingerprint of the first delivery
    this.databases = new Map(); // database -> { live, revision }
  }

  // One message as delivered -> { kind, database, entry, violations }.
  // kind: 'event' (new), 'duplicate' (a byte-identical redelivery: skip it)
  // or 'invalid' (unusable: no key, unknown type, an id reused by another
  // message). entry: { type, id, basis, revision, batch_id, event_count, partition }.
  read(partition, message) {
    const database = message.key ? message.key.toString('utf8') : '';
    const violations = [];
    const bad = (text) => violations.push(text);
    const out = (kind, entry = null) => ({ kind, database, entry, violations });
    const { headers: h, repeated } = readHeaders(message.headers);
    repeated.forEach((name) => bad(`header ${name} occurs more than once`));
    if (!database) { bad('no key (the key is the database name)'); return out('invalid'); }
    if (this.partitions > 0) {
      const expected = partitionFor(this.topic, this.partitions, database);
      if (partition !== expected) bad(`on partition ${partition}, murmur2 of the key says ${expected}`);
    }

    // At-least-once delivery: the same ce_id again must be the same bytes.
    const id = h.ce_id;
    if (!id || !UUID.test(id)) bad(`ce_id ${JSON.stringify(id)} is not a UUID`);
    if (id) {
      const print = fingerprint(message);
      if (this.ids.has(id)) {
        if (this.ids.get(id) !== print) { bad(`ce_id ${id} was already used by a different message`); return out('invalid'); }
        return out('duplicate');
      }
      this.ids.set(id, print);
    }

    if (h.ce_specversion !== '1.0') bad(`ce_specversion ${JSON.stringify(h.ce_specversion)}, not 1.0`);
    const type = EVENT_TYPES[h.ce_type];
    if (!type) { bad(`unknown ce_type ${JSON.stringify(h.ce_type)}`); return out('invalid'); }
    if (!(h.ce_source || '').endsWith(`/db/${database}`)) bad(`ce_source ${JSON.stringify(h.ce_source)} does not end in /db/${database}`);
    if (!TIME_MS_UTC.test(h.ce_time || '') || Number.isNaN(Date.parse(h.ce_time))) {
      bad(`ce_time ${JSON.stringify(h.ce_time)} is not RFC 3339 UTC with milliseconds`);
    }
    const contentType = type === 'deleted' ? 'application/octet-stream' : 'application/protobuf';
    for (const name of ['ce_datacontenttype', 'content-type']) {
      if (h[name] !== contentType) bad(`${name} ${JSON.stringify(h[name])}, expected ${contentType}`);
    }

    const entry = { type, id: id || null, basis: null, revision: null, batch_id: null, event_count: null, partition };
    this.checkBody(type, database, h, message, entry, bad);
    this.checkSequence(type, database, entry, bad);
    return out('event', entry);
  }

  // The headers' revisions and the protobuf value, against each other.
  checkBody(type, database, h, message, entry, bad) {
    const revisionHeader = (name) => {
      if (!UINT64.test(h[name] || '')) { bad(`${name} ${JSON.stringify(h[name])} is not a decimal uint64`); return null; }
      return Number(h[name]);
    };
    const decode = (T) => {
      try { return toPlain(T, T.decode(message.value || Buffer.alloc(0))); } catch (err) {
        bad(`value is not a ${T.name}: ${err.message}`);
        return null;
      }
    };
    if (type === 'deleted') {
      for (const name of ['ce_subject', 'ce_revision', 'ce_basis']) if (name in h) bad(`${name} on a deleted event`);
      if (message.value && message.value.length > 0) bad(`deleted event with a ${message.value.length}-byte value`);
      return;
    }
    entry.basis = revisionHeader('ce_basis');
    entry.revision = revisionHeader('ce_revision');
    if (type === 'created') {
      if ('ce_subject' in h) bad('ce_subject on a created event');
      if (entry.basis !== 0 || entry.revision !== 0) bad(`created with ce_basis ${entry.basis}, ce_revision ${entry.revision}`);
      const db = decode(this.pb.Database);
      if (db && db.name !== database) bad(`Database.name ${JSON.stringify(db.name)} != key`);
      if (db && (db.basis !== 0 || db.revision !== 0)) bad(`Database basis ${db.basis}, revision ${db.revision}: expected 0, 0`);
      return;
    }
    entry.batch_id = h.ce_subject || null;
    if (!h.ce_subject) bad('transacted without ce_subject');
    const batch = decode(this.pb.BatchSummary);
    if (!batch) return;
    entry.event_count = batch.eventCount;
    if (batch.id !== h.ce_subject) bad(`BatchSummary.id ${batch.id} != ce_subject`);
    if (batch.database !== database) bad(`BatchSummary.database ${JSON.stringify(batch.database)} != key`);
    if (batch.basis !== entry.basis || batch.revision !== entry.revision) {
      bad(`BatchSummary ${batch.basis} → ${batch.revision} != headers ${entry.basis} → ${entry.revision}`);
    }
    if (batch.revision - batch.basis !== batch.eventCount) bad(`revision - basis != event_count ${batch.eventCount}`);
  }

  // Per database: Created, Transacted with no gap, Deleted; after a Deleted
  // only a new Created may follow.
  checkSequence(type, database, entry, bad) {
    const state = this.databases.get(database) || { live: false, revision: null };
    this.databases.set(database, state);
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
  }
}

class AsyncResponses {
  constructor(pb) {
    this.pb = pb;
    this.ids = new Map(); // correlation id -> fingerprint of the first delivery
  }

  // One response message -> { kind, correlationId, entry, violations };
  // kind as DatabaseEvents.read's. entry: { type, subject, result, code,
  // basis, revision } (and `message`, the error's text, for printing).
  read(message) {
    const decoded = decodeResponse(this.pb, message);
    const { correlationId, headers: h } = decoded;
    const violations = decoded.repeated.map((name) => `header ${name} occurs more than once`);
    const bad = (text) => violations.push(text);
    const out = (kind, entry = null) => ({ kind, correlationId, entry, violations });
    if (!correlationId) { bad('no ce_correlationid header'); return out('invalid'); }
    if (decoded.key !== correlationId) bad(`key ${JSON.stringify(decoded.key)} != ce_correlationid`);

    // Exactly one logical response per command: a repeat must be the same bytes.
    const print = fingerprint(message);
    if (this.ids.has(correlationId)) {
      if (this.ids.get(correlationId) !== print) { bad('a second, different response for this correlation id'); return out('invalid'); }
      return out('duplicate');
    }
    this.ids.set(correlationId, print);

    if (h.ce_type !== SUCCEEDED && h.ce_type !== FAILED) bad(`ce_type ${JSON.stringify(h.ce_type)}`);
    decoded.problems.forEach(bad);
    const { type, subject, result, code, basis, revision, body } = decoded;
    if (result === 'error') {
      if (type !== FAILED) bad('an error in a response that is not ce_type failed');
      if (!Object.values(ErrorCode).includes(code)) bad(`error code ${code} is not in the contract's set`);
    } else if (result) {
      if (type !== SUCCEEDED) bad(`a ${result} in a response that is not ce_type succeeded`);
      const named = result === 'database' ? body.database.name : body.batchSummary.database;
      if (h.ce_subject !== undefined && h.ce_subject !== named) bad(`ce_subject ${h.ce_subject} != the result's database ${named}`);
    }
    return out('response', { type, subject, result, code, basis, revision, message: decoded.message });
  }
}

module.exports = { DatabaseEvents, AsyncResponses, EVENT_TYPES };
