import type { Payload, Tracker, TrackerOptions } from './index.js';

export interface EventTracker {
  /** The seed's name for `track`. */
  trackEvent(type: string, payload?: Payload): void;
  track(type: string, payload?: Payload): void;
  page(props?: Payload): void;
  identify(userId: string, identityToken: string): void;
  flush(): Promise<void>;
  reset(): void;
  optOut(): void;
  optIn(): void;
}

/** The page's tracker; a no-op on the server and before `startTracker`. */
export declare function useEventTracker(): EventTracker;
/** Starts the page's tracker once (browser only). */
export declare function startTracker(
  options: TrackerOptions,
  wasm?: string | URL | (() => Promise<string | URL>),
): Promise<Tracker | undefined>;
/** Vue plugin: `app.use(freshet, { endpoint, writeKey })`. */
export declare const freshet: { install(app: unknown, options: TrackerOptions): void };
