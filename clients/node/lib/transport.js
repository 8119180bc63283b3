'use strict';
// One HTTP exchange over node:http(s). It tells the two ways an attempt can
// end apart, because only one of them is retried blindly: an HTTP answer
// (any status: resolved) and no answer at all (refused, reset, hung up,
// timed out: a TransportError).

const http = require('node:http');
const https = require('node:https');
const { TransportError, RequestError } = require('./errors');

// Kept-alive connections, as the Rust client's pool: one handshake per host.
const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

// Resolves { status, headers, body: Buffer }; rejects with a TransportError
// when no complete answer came within `timeoutMs`.
function send({ method, url, headers, body, timeoutMs }) {
  let target;
  try {
    target = new URL(url);
  } catch (err) {
    return Promise.reject(new RequestError(`${url}: ${err.message}`));
  }
  const lib = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : null;
  if (!lib) return Promise.reject(new RequestError(`${url}: not an http(s) URL`));
  return new Promise((resolve, reject) => {
    const request = lib.request(target, { method, headers, agent: agents[target.protocol] });
    let settled = false;
    const fail = (message, cause) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request.destroy();
      reject(new TransportError(message, { cause }));
    };
    // The whole exchange, answer body included, within the attempt's time.
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    request.on('error', (err) => fail(`${method} ${target.origin}: ${err.code || err.message}`, err));
    request.on('response', (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('error', (err) => fail(`reading the answer: ${err.code || err.message}`, err));
      response.on('aborted', () => fail('the answer was cut off'));
      response.on('end', () => {
        if (settled) return;
        if (!response.complete) return fail('the answer was cut off');
        settled = true;
        clearTimeout(timer);
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    request.end(body && body.length > 0 ? body : undefined);
  });
}

module.exports = { send };
