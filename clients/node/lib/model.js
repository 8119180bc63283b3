'use strict';
// Builders for the API's JSON (docs/api.md): CloudEvents, selectors and
// append conditions. Plain objects in, plain objects out: anything the API
// accepts may also be written by hand.

const { randomUUID } = require('node:crypto');

// A CloudEvent in the JSON format. The event's stream is the last path
// segment of `source`; `id` is generated when not given.
function event({ source, type, id = randomUUID(), subject, data, datacontenttype, ...extensions }) {
  const e = { specversion: '1.0', id, source, type, ...extensions };
  if (subject !== undefined) e.subject = subject;
  if (data !== undefined) {
    e.datacontenttype = datacontenttype || 'application/json';
    e.data = data;
  } else if (datacontenttype !== undefined) {
    e.datacontenttype = datacontenttype;
  }
  return e;
}

// Selectors: which events a query reads or a condition looks at.
const selector = {
  streamEquals: (s) => ({ stream_equals: s }),
  streamStartsWith: (s) => ({ stream_starts_with: s }),
  subjectEquals: (s) => ({ subject_equals: s }),
  subjectStartsWith: (s) => ({ subject_starts_with: s }),
  eventTypeEquals: (t) => ({ event_type_equals: t }),
  eventTypeStartsWith: (t) => ({ event_type_starts_with: t }),
  and: (...selectors) => ({ and: { selectors } }),
  or: (...selectors) => ({ or: { selectors } }),
};

// Append conditions on the highest revision h of the events `sel` matches
// (0 if none): max(sel, 0) = none may exist; max(sel, asOf) = nothing new
// since a read as of asOf (the DCB condition).
const condition = {
  max: (sel, revision) => ({ selector: sel, max: revision }),
  min: (sel, revision) => ({ selector: sel, min: revision }),
  range: (sel, min, max) => ({ selector: sel, range: { min, max } }),
};

module.exports = { event, selector, condition };
