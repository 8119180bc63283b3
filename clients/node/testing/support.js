'use strict';
// Test helpers (no tests here): a scripted local HTTP server, and SigV4
// computed independently of the AWS SDK, with node:crypto alone, the way a
// verifier (API Gateway) recomputes a signature from what arrived.

const http = require('node:http');
const crypto = require('node:crypto');

// Serves `script` in order, one entry per request: { status, headers, body }
// answers; 'hangup' destroys the connection without an answer. The last
// entry repeats. Records every request as { method, url, headers, body }.
async function scriptedServer(script) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const step = script[Math.min(requests.length, script.length) - 1];
      if (step === 'hangup') return req.socket.destroy();
      res.writeHead(step.status, { 'content-type': 'application/json', ...(step.headers || {}) });
      return res.end(typeof step.body === 'string' ? step.body : JSON.stringify(step.body ?? {}));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();
// RFC 3986 unreserved characters stay, everything else is %XX (upper case).
const encode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

// The Authorization value for a request, per the SigV4 specification:
// `headers` lower-cased names -> values, `signedHeaders` the names to sign,
// `amzDate` like 20150830T123600Z. Paths are encoded once more (every
// service but S3 does so).
function sigv4({ method, path, query = '', headers, signedHeaders, body = '', accessKeyId, secretAccessKey, region, service, amzDate }) {
  const canonicalUri = path.split('/').map(encode).join('/') || '/';
  const canonicalQuery = [...new URLSearchParams(query)]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = [...signedHeaders].sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [method, canonicalUri, canonicalQuery, canonicalHeaders, names.join(';'), sha256(body)].join('\n');
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
}

// What a verifier computes for a request as it arrived (scriptedServer's
// record): the signed headers named by its own Authorization header.
function expectedAuthorization(request, { accessKeyId, secretAccessKey, region, service }) {
  const signed = /SignedHeaders=([^,]+)/.exec(request.headers.authorization || '');
  if (!signed) return null;
  const [path, query = ''] = request.url.split('?');
  return sigv4({
    method: request.method, path, query, headers: request.headers, signedHeaders: signed[1].split(';'),
    body: request.body, accessKeyId, secretAccessKey, region, service, amzDate: request.headers['x-amz-date'],
  });
}

module.exports = { scriptedServer, sigv4, expectedAuthorization };
