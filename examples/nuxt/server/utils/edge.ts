// The serving API, read with the read token that only this server holds.
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export const validId = (id: unknown): id is string => typeof id === 'string' && ID.test(id);

export async function readFeatures(edgeUrl: string, readToken: string, entity: string, id: string) {
  const res = await fetch(`${edgeUrl}/v1/features/${entity}/${encodeURIComponent(id)}`, {
    headers: { authorization: `Bearer ${readToken}` },
  });
  if (!res.ok) throw createError({ statusCode: 502, statusMessage: `serving API answered ${res.status}` });
  return (await res.json()) as { entity: string; id: string; features: Record<string, unknown> };
}
