// GET /api/recommendations: the "Recommended for you" row, every product of
// the catalog ordered by the shop's ranker (the KServe model server of
// examples/kserve, `freshet-ranker`), which reads the visitor's live
// features from Freshet. The model server's address stays on this server
// (NUXT_SHOP_MODEL_URL). When it does not answer in time, or nothing is
// known of the visitor yet, the row falls back to popularity (each product's
// popularity_7d from the serving API, else the catalog's order) and says why.
import { products } from '../../app/utils/catalog';

const MODEL = 'freshet-ranker';
const MODEL_TIMEOUT_MS = 1000;

interface Ranked { id: string; score: number | null }
export interface Recommendations {
  source: 'model' | 'popularity';
  visitor: string | null;
  items: Ranked[];
  coldStart?: boolean;
  reason?: string;
  tookMs: number;
}

async function byModel(modelUrl: string, visitor: string): Promise<{ items: Ranked[]; coldStart: boolean }> {
  const candidates = products.map((p) => p.id);
  const res = await fetch(`${modelUrl.replace(/\/$/, '')}/v1/models/${MODEL}:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ userId: visitor, candidates }] }),
    signal: AbortSignal.timeout(MODEL_TIMEOUT_MS),
  });
  if (!res.ok) throw new Error(`the model server answered ${res.status}`);
  const body = (await res.json()) as { predictions: { ranked: string[]; scores: number[]; coldStart: boolean }[] };
  const p = body.predictions?.[0];
  if (!p || !Array.isArray(p.ranked) || p.ranked.length !== candidates.length) throw new Error('the model server answered without a ranking');
  const score = new Map(candidates.map((id, i) => [id, p.scores[i]]));
  return { items: p.ranked.map((id) => ({ id, score: score.get(id) ?? null })), coldStart: !!p.coldStart };
}

/** Products by popularity_7d, read in one batch request to the serving API; the catalog's order when it cannot be read. */
async function byPopularity(edgeUrl: string, readToken: string): Promise<Ranked[]> {
  let popularity: number[] = products.map(() => 0);
  try {
    const res = await fetch(`${edgeUrl}/v1/features/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${readToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ itemIds: products.map((p) => p.id), itemFeatures: ['popularity_7d'] }),
      signal: AbortSignal.timeout(MODEL_TIMEOUT_MS),
    });
    if (res.ok) {
      const body = (await res.json()) as { items: { features: Record<string, { value?: unknown }> }[] };
      popularity = body.items.map((item) => (typeof item.features.popularity_7d?.value === 'number' ? (item.features.popularity_7d.value as number) : 0));
    }
  } catch {
    // The catalog's order.
  }
  return products
    .map((p, i) => ({ id: p.id, score: popularity[i] ?? 0, at: i }))
    .sort((a, b) => b.score - a.score || a.at - b.at)
    .map(({ id, score }) => ({ id, score }));
}

export default defineEventHandler(async (event): Promise<Recommendations> => {
  const { edgeUrl, readToken, identitySecret, modelUrl } = useRuntimeConfig(event).shop;
  setResponseHeader(event, 'cache-control', 'no-store');
  const started = performance.now();
  const { id } = visitorId(event, identitySecret);
  let reason: string;
  if (!modelUrl) reason = 'No model server is configured (NUXT_SHOP_MODEL_URL).';
  else if (!id) reason = 'The tracker has not named this visitor yet.';
  else {
    try {
      const ranked = await byModel(modelUrl, id);
      return { source: 'model', visitor: id, ...ranked, tookMs: Math.round(performance.now() - started) };
    } catch (e) {
      reason = `The model server is not reachable right now (${e instanceof Error ? e.message : String(e)}).`;
    }
  }
  const items = await byPopularity(edgeUrl, readToken);
  return { source: 'popularity', visitor: id, items, reason, tookMs: Math.round(performance.now() - started) };
});
