// The tests' human users: matrix-js-sdk clients of the test homeserver (optionally with Rust crypto), with the
// workarounds that let a test process exit after stopClient().
import { ClientEvent, createClient, SyncState, type ICreateClientOpts, type MatrixClient } from "matrix-js-sdk";
import { OnlySignedDevicesIsolationMode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import type { TestHomeserver } from "./homeserver.ts";

type SdkLogger = NonNullable<ICreateClientOpts["logger"]>;
const noop = (): void => {};
const silentLogger: SdkLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, getChild: () => silentLogger };

/**
 * Parts of matrix-js-sdk log through its global loglevel logger whatever logger the client is given,
 * and child loggers copy the parent's method factory when created; so a no-op factory on the root
 * silences the root and every child made afterwards.
 */
function silenceSdkGlobalLogger(): void {
  const root: object = sdkGlobalLogger;
  if ("rebuild" in root && typeof root.rebuild === "function") {
    Object.assign(root, { methodFactory: () => noop });
    root.rebuild();
  }
}

/**
 * matrix-js-sdk arms a ref'd timer for every request's local timeout (pollTimeout + 80 s for /sync) and never
 * clears it, so a process using it stays alive long after stopClient(). Giving it an unref'd signal instead
 * (AbortSignal.timeout) keeps the same timeout and lets test processes exit.
 */
function unrefRequestTimeouts(client: MatrixClient): void {
  const http = client.http;
  const original = http.requestOtherUrl.bind(http);
  http.requestOtherUrl = <T>(...[method, url, body, opts]: Parameters<typeof original>): Promise<T> => {
    const ms = opts?.localTimeoutMs;
    if (opts === undefined || ms === undefined) return original<T>(method, url, body, opts);
    const signals = opts.abortSignal ? [AbortSignal.timeout(ms), opts.abortSignal] : [AbortSignal.timeout(ms)];
    return original<T>(method, url, body, { ...opts, localTimeoutMs: undefined, abortSignal: AbortSignal.any(signals) });
  };
}

export interface HumanClientOptions {
  /** Start matrix-js-sdk's Rust crypto (WASM, in memory) before the first sync. */
  rustCrypto?: boolean;
  /** With rustCrypto: exclude devices their owner has not cross-signed (MSC4153; modern Element's default). */
  onlySignedDevices?: boolean;
  /** Sync with lazy-loaded members (members then come from GET /rooms/:roomId/members, as in Element). */
  lazyLoadMembers?: boolean;
  /** Log in as a new device of an existing user (password "pw-<localpart>") instead of creating the user. */
  newDevice?: boolean;
}

async function loginNewDevice(hs: TestHomeserver, localpart: string): Promise<{ userId: string; accessToken: string; deviceId: string }> {
  const res = await fetch(`${hs.url}/_matrix/client/v3/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: localpart }, password: `pw-${localpart}` }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`login ${localpart}: ${res.status} ${JSON.stringify(body)}`);
  return { userId: String(body["user_id"]), accessToken: String(body["access_token"]), deviceId: String(body["device_id"]) };
}

/**
 * matrix-js-sdk's Rust crypto arms a ref'd 5-minute timer for every live encrypted event (to stop listening for a
 * late decryption) and clears it only when the event decrypts; one undecryptable event keeps a test process alive
 * for 5 minutes after stopClient(). The timer is set synchronously in the handler, so it is unref'd right there.
 */
function unrefUndecryptedEventTimers(client: MatrixClient): void {
  const backend = (client as unknown as { cryptoBackend?: { onLiveEventFromSync?: (event: unknown) => Promise<void> } }).cryptoBackend;
  const original = backend?.onLiveEventFromSync?.bind(backend);
  if (!backend || !original) return;
  backend.onLiveEventFromSync = (event) => {
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = ((...args: Parameters<typeof realSetTimeout>) => realSetTimeout(...args).unref()) as typeof realSetTimeout;
    try {
      return original(event);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
  };
}

/**
 * A started matrix-js-sdk client for a new user "@<localpart>:<server>" (password "pw-<localpart>"), or for a new
 * device of that user; resolved once synced.
 */
export async function humanClient(hs: TestHomeserver, localpart: string, opts: HumanClientOptions = {}): Promise<MatrixClient> {
  const { userId, accessToken, deviceId } = opts.newDevice ? await loginNewDevice(hs, localpart) : await hs.createUser(localpart, `pw-${localpart}`);
  silenceSdkGlobalLogger();
  const client = createClient({ baseUrl: hs.url, accessToken, userId, deviceId, logger: silentLogger });
  unrefRequestTimeouts(client);
  try {
    if (opts.rustCrypto) {
      await client.initRustCrypto({ useIndexedDB: false });
      unrefUndecryptedEventTimers(client);
      if (opts.onlySignedDevices) client.getCrypto()?.setDeviceIsolationMode(new OnlySignedDevicesIsolationMode());
    }
    await startSynced(client, 10_000, { lazyLoadMembers: opts.lazyLoadMembers ?? false });
  } catch (e) {
    client.stopClient();
    throw e;
  }
  return client;
}

/** Starts (or restarts) a client and resolves at its first PREPARED sync. */
export async function startSynced(client: MatrixClient, ms = 10_000, opts: { lazyLoadMembers?: boolean } = {}): Promise<void> {
  const prepared = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(ClientEvent.Sync, onSync);
      reject(new Error(`${client.getUserId() ?? "?"}: no PREPARED sync within ${ms} ms`));
    }, ms);
    function onSync(state: SyncState): void {
      if (state !== SyncState.Prepared) return;
      clearTimeout(timer);
      client.off(ClientEvent.Sync, onSync);
      resolve();
    }
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20, lazyLoadMembers: opts.lazyLoadMembers ?? false });
  try {
    await prepared;
  } catch (e) {
    client.stopClient();
    throw e;
  }
}

export async function stopClient(client: MatrixClient): Promise<void> {
  client.stopClient();
}
