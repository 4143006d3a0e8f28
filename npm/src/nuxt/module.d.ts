import type { TrackerOptions } from '../index.js';

/**
 * The tracker's options as plain data (runtime config cannot hold a function:
 * listen for the `freshet:identityrejected` window event instead of
 * `onIdentityRejected`).
 */
export interface ModuleOptions extends Partial<Omit<TrackerOptions, 'onIdentityRejected'>> {
  /** Forward the tracker's batches through a route on the site's origin. Default true. */
  proxy?: boolean;
  /** That route. Default `/api/ingest`. */
  ingestRoute?: string;
  /** Track a `page_view` on every route change. Default true. */
  trackPageViews?: boolean;
}

declare const module: import('@nuxt/schema').NuxtModule<ModuleOptions>;
export default module;
