// The peer of the benchmark, built the way the seed document builds its
// gateway: Fastify with JSON-schema validation, and the seed's
// `processEventsForUpdate` ported from MongoDB operators to Redis commands
// ($inc -> HINCRBY, $set -> HSET, $addToSet -> SADD, $max -> a max kept in
// JS then HSET), sent as one MULTI over a pooled ioredis connection. Like the
// seed it keys by the first event's clientId and has no idempotency.
// Usage: node peer.mjs <port> <redis port>
import Fastify from 'fastify';
import Redis from 'ioredis';

const [port, redisPort] = process.argv.slice(2).map(Number);
const redis = new Redis({ host: '127.0.0.1', port: redisPort, lazyConnect: false });

export function processEventsForUpdate(userId, events) {
  if (!userId || !events || events.length === 0) return null;
  const update = { $set: { lastSeen: new Date().toISOString() }, $inc: {}, $max: {}, $addToSet: {} };
  for (const event of events) {
    switch (event.type) {
      case 'page_view':
        update.$inc['session.pageviews'] = (update.$inc['session.pageviews'] || 0) + 1;
        break;
      case 'product_click':
        update.$inc['counters.clicks_product_card'] = (update.$inc['counters.clicks_product_card'] || 0) + 1;
        if (event.payload && event.payload.productId) {
          update.$set['session.lastInteractedProductId'] = event.payload.productId;
        }
        break;
      case 'viewed_category':
        if (event.payload && event.payload.category) {
          (update.$addToSet['sets.viewedCategories'] ??= { $each: [] }).$each.push(event.payload.category);
        }
        break;
      default:
    }
    if (event.timestamp) {
      const t = new Date(event.timestamp).getTime();
      if (!update.$max['recency.last_event_ts'] || t > update.$max['recency.last_event_ts']) {
        update.$max['recency.last_event_ts'] = t;
      }
    }
  }
  return { key: `userFeatures:${userId}`, update };
}

function toRedis(multi, { key, update }) {
  for (const [field, n] of Object.entries(update.$inc)) multi.hincrby(key, field, n);
  multi.hset(key, update.$set);
  for (const [field, { $each }] of Object.entries(update.$addToSet)) multi.sadd(`${key}:${field}`, ...$each);
  for (const [field, t] of Object.entries(update.$max)) multi.hset(key, field, t);
  return multi;
}

const schema = {
  type: 'object', required: ['events'],
  properties: { events: { type: 'array', minItems: 1, items: { type: 'object', required: ['type', 'timestamp', 'clientId'],
    properties: { type: { type: 'string' }, timestamp: { type: 'string', format: 'date-time' },
      clientId: { type: 'string' }, payload: { type: 'object' } } } } },
};

const app = Fastify({ logger: false });
app.post('/v1/ingest', { schema: { body: schema } }, async (request, reply) => {
  const { events } = request.body;
  const op = processEventsForUpdate(events[0].clientId, events);
  if (!op) return reply.code(400).send({ error: 'Invalid events payload' });
  try {
    await toRedis(redis.multi(), op).exec();
    return reply.code(202).send({ status: 'queued' });
  } catch {
    return reply.code(503).send({ error: 'Service Unavailable' });
  }
});
app.get('/v1/features/user/:id', async (request) => redis.hgetall(`userFeatures:${request.params.id}`));
app.get('/health', async () => ({ status: 'ok' }));
await app.listen({ port, host: '127.0.0.1' });
