// POST /api/ingest on the Nuxt server: forwards the tracker's batch to the
// edge as it came (gzip or not) and answers with the edge's status, body and
// Retry-After, so the tracker's retry rules hold through the proxy.
import { defineEventHandler, getRequestHeader, getRequestIP, readRawBody, setResponseHeader, setResponseStatus } from 'h3';
import { useRuntimeConfig } from '#imports';

// The edge refuses more than 512 KiB after decompression; a batch is at most 64 KB.
const MAX_BODY_BYTES = 1 << 20;
const FORWARDED = ['content-type', 'origin', 'user-agent', 'x-freshet-key'];

function fail(event, status, error, message) {
  setResponseStatus(event, status);
  setResponseHeader(event, 'content-type', 'application/json');
  return JSON.stringify({ error, message });
}

export default defineEventHandler(async (event) => {
  const edge = useRuntimeConfig(event).freshet?.edgeEndpoint;
  if (!edge) return fail(event, 503, 'not_configured', 'freshet.endpoint is not set on the server');
  const declared = Number(getRequestHeader(event, 'content-length') || 0);
  if (declared > MAX_BODY_BYTES) return fail(event, 413, 'too_large', 'body too large');
  const body = await readRawBody(event, false);
  if (!body || body.length === 0) return fail(event, 400, 'empty_body', 'no batch in the body');
  if (body.length > MAX_BODY_BYTES) return fail(event, 413, 'too_large', 'body too large');
  const headers = {};
  for (const name of FORWARDED) {
    const value = getRequestHeader(event, name);
    if (value) headers[name] = value;
  }
  const ip = getRequestIP(event, { xForwardedFor: true });
  if (ip) headers['x-forwarded-for'] = ip;
  let res;
  try {
    res = await fetch(edge, { method: 'POST', body, headers });
  } catch {
    setResponseHeader(event, 'retry-after', '5');
    return fail(event, 503, 'edge_unreachable', 'the ingest endpoint could not be reached');
  }
  setResponseStatus(event, res.status);
  const retryAfter = res.headers.get('retry-after');
  if (retryAfter) setResponseHeader(event, 'retry-after', retryAfter);
  setResponseHeader(event, 'content-type', res.headers.get('content-type') || 'application/json');
  return await res.text();
});
