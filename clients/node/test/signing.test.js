'use strict';
// SigV4: the signer reproduces the AWS SigV4 test suite's published vectors,
// and the client's own requests carry execute-api signatures that a
// verifier recomputes from what arrived, on every attempt of a retried call.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Client, createSigner, RequestError } = require('..');
const { scriptedServer, sigv4, expectedAuthorization } = require('../testing/support');

// The AWS SigV4 test suite's example credentials and time.
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SUITE_TIME = new Date('2015-08-30T12:36:00Z');

// The suite's get-vanilla and post-vanilla (host example.amazonaws.com,
// service "service", region us-east-1, empty body): published Authorization values.
const VECTORS = [
  ['GET', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
  ['POST', 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
];

test('the signer reproduces the SigV4 test suite vectors', async () => {
  for (const [method, published] of VECTORS) {
    const sign = createSigner({ region: 'us-east-1', credentials: CREDENTIALS, service: 'service', now: () => SUITE_TIME });
    const headers = await sign({ method, url: 'https://example.amazonaws.com/', headers: {}, body: Buffer.alloc(0) });
    assert.equal(headers.authorization, published, method);
    assert.equal(headers['x-amz-date'], '20150830T123600Z');
    // The independent computation the next tests verify with agrees too.
    assert.equal(sigv4({
      method, path: '/', headers, signedHeaders: ['host', 'x-amz-date'], ...CREDENTIALS,
      region: 'us-east-1', service: 'service', amzDate: '20150830T123600Z',
    }), published, `${method}: the test's own SigV4`);
  }
});

test('every attempt of a retried call is signed for execute-api, and verifies', async (t) => {
  const server = await scriptedServer([
    { status: 503, headers: { 'retry-after': '0' }, body: { code: 'INTERNAL' } },
    { status: 200, body: { as_of: 3, events: [], next_from: null } },
  ]);
  t.after(server.close);
  const time = new Date('2024-01-15T10:30:00Z');
  const client = new Client(`${server.url}/prod`, {
    region: 'eu-west-1', credentials: CREDENTIALS, now: () => time, retry: { baseDelayMs: 1 },
  });
  const page = await client.query('accounts', { subject_equals: 'account-42' });
  assert.equal(page.as_of, 3);
  assert.equal(server.requests.length, 2);
  for (const request of server.requests) {
    assert.equal(request.url, '/prod/databases/accounts/query');
    assert.equal(request.headers['x-amz-date'], '20240115T103000Z');
    assert.match(request.headers.authorization,
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20240115\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/);
    assert.match(request.headers.authorization, /SignedHeaders=[^,]*content-type/, 'the content type is signed');
    assert.equal(request.headers.authorization,
      expectedAuthorization(request, { ...CREDENTIALS, region: 'eu-west-1', service: 'execute-api' }));
    assert.equal(request.headers['x-amz-security-token'], undefined);
  }
});

test('temporary credentials add their session token; a query string is signed', async (t) => {
  const server = await scriptedServer([{ status: 200, body: [] }]);
  t.after(server.close);
  const credentials = async () => ({ ...CREDENTIALS, sessionToken: 'token-1' });
  const client = new Client(server.url, { region: 'us-east-1', credentials });
  await client.events('accounts', { from: 7, to: 9 });
  const [request] = server.requests;
  assert.equal(request.url, '/databases/accounts/events?from=7&to=9');
  assert.equal(request.headers['x-amz-security-token'], 'token-1');
  assert.equal(request.headers.authorization,
    expectedAuthorization(request, { ...CREDENTIALS, region: 'us-east-1', service: 'execute-api' }));
});

test('an unsigned client sends no signature; bad credentials are a RequestError', async (t) => {
  const server = await scriptedServer([{ status: 200, body: {} }]);
  t.after(server.close);
  await new Client(server.url).getDatabase('accounts');
  assert.equal(server.requests[0].headers.authorization, undefined);
  assert.throws(() => new Client(server.url, { region: 'us-east-1', credentials: { accessKeyId: 'A' } }), RequestError);
});
