'use strict';
// SigV4 for API Gateway (`execute-api`) with the AWS SDK for JavaScript's
// signer. Credentials come from the SDK's default chain (environment,
// shared config and SSO, web identity, container, instance metadata), which
// caches and refreshes them, or are given explicitly.

const { SignatureV4 } = require('@smithy/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');
const { RequestError } = require('./errors');

const SERVICE = 'execute-api';

// `credentials`: undefined (the default chain), an object
// { accessKeyId, secretAccessKey, sessionToken? }, or an async function
// returning one (any AWS SDK credential provider).
function credentialProvider(credentials) {
  if (credentials === undefined || credentials === null) {
    // Loaded only when signing is asked for: unsigned clients never pay for it.
    const { defaultProvider } = require('@aws-sdk/credential-provider-node');
    return defaultProvider();
  }
  if (typeof credentials === 'function') return credentials;
  if (!credentials.accessKeyId || !credentials.secretAccessKey) {
    throw new RequestError('credentials need accessKeyId and secretAccessKey');
  }
  return async () => credentials;
}

// A function that signs one request and returns its headers with
// `authorization`, `x-amz-date` (and `x-amz-security-token` for temporary
// credentials) added. `now` fixes the signing time (tests); `service` is
// execute-api unless a test reproduces another service's published vectors.
function createSigner({ region, credentials, service = SERVICE, now = () => new Date() }) {
  if (!region) throw new RequestError('signing needs a region');
  const signer = new SignatureV4({
    service,
    region,
    credentials: credentialProvider(credentials),
    sha256: Sha256,
    // API Gateway does not want x-amz-content-sha256; the body is signed anyway.
    applyChecksum: false,
  });
  return async function sign({ method, url, headers, body }) {
    const target = new URL(url);
    const query = {};
    for (const [k, v] of target.searchParams) query[k] = v;
    const request = {
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port ? Number(target.port) : undefined,
      path: target.pathname,
      query,
      headers: { ...headers, host: target.host },
      body: body && body.length > 0 ? body : undefined,
    };
    try {
      const signed = await signer.sign(request, { signingDate: now() });
      return signed.headers;
    } catch (err) {
      throw new RequestError(`signing: ${err.message}`, { cause: err });
    }
  };
}

module.exports = { SERVICE, createSigner };
