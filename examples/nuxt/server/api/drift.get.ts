// GET /api/drift[?since=24h]: the edge's drift report (GET /v1/drift), read
// with the read token, which stays on this server. The page /drift shows it.
const SINCE = /^[1-9][0-9]{0,2}[hd]$/;

export default defineEventHandler(async (event) => {
  const { edgeUrl, readToken } = useRuntimeConfig(event).shop;
  const asked = getQuery(event).since;
  const since = typeof asked === 'string' && SINCE.test(asked) ? asked : '24h';
  setResponseHeader(event, 'cache-control', 'no-store');
  try {
    const res = await fetch(`${edgeUrl}/v1/drift?since=${since}`, {
      headers: { authorization: `Bearer ${readToken}` },
    });
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { message?: string };
      return { since, error: body.message ?? `the edge answered ${res.status}` };
    }
    return { since, ...((await res.json()) as Record<string, unknown>) };
  } catch {
    return { since, error: 'The serving API is not reachable right now.' };
  }
});
