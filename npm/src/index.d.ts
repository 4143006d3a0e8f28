/** Options of `createTracker`. Unknown keys are refused with a TypeError. */
export interface TrackerOptions {
  /** Where batches go: the edge's `/v1/ingest`, or a first-party route such as `/api/ingest`. */
  endpoint: string;
  /** The site's public write key. */
  writeKey: string;
  /** Events per batch, 1 to 500. Default 20. */
  batchSize?: number;
  /** Bytes per batch, 1024 to 64000 (a beacon must fit). Default 60000. */
  maxBatchBytes?: number;
  /** An open batch is sent after this long. Default 5000. */
  flushIntervalMs?: number;
  /** Idle minutes after which a new session starts. Default 30. */
  sessionTimeoutMin?: number;
  /** Keep unsent events in localStorage across page loads. Default true. */
  persist?: boolean;
  /** Events kept waiting at most; the oldest are dropped (and counted) beyond. Default 1000. */
  maxQueue?: number;
  /** Share of clients tracked, 0 to 1, decided per client id. Default 1. */
  sampleRate?: number;
  /** gzip bodies with CompressionStream where the browser has it. Default true. */
  gzip?: boolean;
  /**
   * Send the first event after a quiet spell (no batch for `flushIntervalMs`)
   * at once, in a batch of its own; the events after it batch by the
   * interval as ever, so sustained activity sends no more requests.
   * false: every event waits for the interval. Default true.
   */
  leadingEdge?: boolean;
  /**
   * Called when the edge refuses the identity token given to `identify`
   * (`code`: `identity_expired`, `identity_bad_signature` or
   * `identity_malformed`). The tracker has already forgotten the token and
   * resent the batch without it, so its events count under the clientId;
   * call `identify` with a fresh token to go back to the user. The same
   * reason is dispatched on `window` as a `freshet:identityrejected` event.
   */
  onIdentityRejected?: (code: IdentityRejectedCode) => void;
}

/** Why the edge refused an identity token (its 401's `error` code). */
export type IdentityRejectedCode = 'identity_expired' | 'identity_bad_signature' | 'identity_malformed' | (string & {});

declare global {
  interface WindowEventMap {
    /** The edge refused the identity token; see `TrackerOptions.onIdentityRejected`. */
    'freshet:identityrejected': CustomEvent<{ code: IdentityRejectedCode }>;
  }
}

export type Payload = Record<string, unknown>;

export interface TrackerStats {
  queued: number;
  evicted: number;
  dropped: number;
}

export interface Tracker {
  readonly clientId: string;
  readonly sessionId: string;
  readonly stats: TrackerStats;
  /** Queues an event; `type` must match `^[a-z][a-z0-9_]{0,63}$`. Throws a TypeError otherwise. */
  track(type: string, payload?: Payload): void;
  /** A `page_view` with url, path, title and referrer, and `props` over them. */
  page(props?: Payload): void;
  /** Events from now on carry `userId`; `identityToken` comes from your server (`freshet/server`). */
  identify(userId: string, identityToken: string): void;
  /** Forgets the user; starts a new anonymous client id and session. */
  reset(): void;
  /** Sends what is queued; resolves when delivered or a retry is scheduled. */
  flush(): Promise<void>;
  /** Stops tracking in this browser (remembered) and drops the queue. */
  optOut(): void;
  optIn(): void;
}

/** Loads the wasm once; `wasm` is its URL, default beside the module. */
export declare function load(wasm?: string | URL | BufferSource | WebAssembly.Module): Promise<unknown>;
/** Starts a tracker once `load()` has resolved. Throws a TypeError for bad options. */
export declare function startTracker(options: TrackerOptions): Tracker;
/** Loads the wasm, then starts a tracker. Rejects with a TypeError for bad options. */
export declare function createTracker(options: TrackerOptions, wasm?: string | URL | BufferSource | WebAssembly.Module): Promise<Tracker>;
