import { after } from "node:test";
import { join } from "node:path";
import { KnownMembership, Preset, type MatrixClient } from "matrix-js-sdk";
import { startBot, writeConfig, type BotProcess } from "./bot-process.ts";
import { fakeClanPath, makeFlake, type FakeClanFixture } from "../../demo/fake-clan-fixture.ts";
import { bootstrapCrossSigning, eventually } from "./e2ee-client.ts";
import { humanClient, startHomeserver, stopClient, type TestHomeserver } from "./homeserver.ts";
import { waitForEvent } from "./matrix-wait.ts";
import { tempDir } from "./temp-dir.ts";

export const FAMILY: FakeClanFixture = {
  machines: {
    laptop: { description: "Dad's laptop", tags: ["family"], deploy: { targetHost: "root@laptop.lan" } },
    nas: { description: "Storage in the basement", tags: ["servers", "storage"], deploy: { targetHost: "root@nas.lan:2222" } },
    media: { tags: ["servers"] },
  },
};

export interface World {
  hs: TestHomeserver;
  dir: string;
  botUserId: string;
  /** The access token (and its device) the homeserver made for the bot's account; the config logs in with the password. */
  botLogin: { accessToken: string; deviceId: string };
  /** Room creator, power level 100. */
  alice: MatrixClient;
  roomId: string;
  flake: string;
  /** JSON lines, one per `clan` invocation. */
  clanLog: string;
  configPath: string;
  config: Record<string, unknown>;
  bot: BotProcess;
  /** Starts another bot process, on the same config or a changed one. */
  startBot(config?: Record<string, unknown>): Promise<BotProcess>;
  /** A second person in the room, at power level 0. */
  person(localpart: string): Promise<MatrixClient>;
}

/**
 * One homeserver, one clan room created by alice (power level 100) with the bot invited,
 * and the real bot process with a config binding that room to a fake clan flake.
 * Everything is torn down when the test file ends.
 */
export async function world(
  opts: {
    fixture?: FakeClanFixture;
    config?: (base: Record<string, unknown>) => Record<string, unknown>;
    /** More environment for the bot (and so the fake clan): FAKE_CLAN_RELEASE=25.11 gives it `clan vms`. */
    env?: Record<string, string>;
    /**
     * An encrypted room (megolm), and people whose clients run Rust crypto, cross-signed, excluding
     * insecure devices as modern Element does.
     */
    encrypted?: boolean;
    /** People's clients run Rust crypto (cross-signed) but the room starts unencrypted. */
    cryptoClients?: boolean;
  } = {},
): Promise<World> {
  const hs = await startHomeserver();
  const processes: BotProcess[] = [];
  const humans: MatrixClient[] = [];
  // Registered first, so that a set-up that fails half-way still stops what it started.
  after(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await Promise.all(humans.map(stopClient));
    await hs.close();
  });
  const dir = await tempDir();
  const bot = await hs.createUser("clanbot", "pw-bot");
  const human = async (localpart: string): Promise<MatrixClient> => {
    const crypto = opts.encrypted || opts.cryptoClients;
    const c = await humanClient(hs, localpart, crypto ? { rustCrypto: true, onlySignedDevices: true } : {});
    humans.push(c);
    if (crypto) await bootstrapCrossSigning(c, `pw-${localpart}`);
    return c;
  };
  const alice = await human("alice");
  const { room_id: roomId } = await alice.createRoom({
    name: "Family",
    preset: Preset.PrivateChat,
    invite: [bot.userId],
    ...(opts.encrypted ? { initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] } : {}),
  });
  const flake = await makeFlake(join(dir, "family"), opts.fixture ?? FAMILY);
  const clanLog = join(dir, "clan-invocations.jsonl");
  const base = {
    matrix: { homeserver: hs.url, userId: bot.userId, password: "pw-bot", maxCommandAge: "15m" },
    storage: { path: join(dir, "state", "clanbot.sqlite3") },
    // clan's ssh reads the user's known_hosts: here a file of the test's (the fake reads it from FAKE_CLAN_SSH_KNOWN_HOSTS).
    clan: { command: fakeClanPath, sshKnownHosts: join(dir, "clan-ssh", "known_hosts") },
    clans: [{ name: "family", room: roomId, flake }],
    log: { level: "debug" },
  };
  const config = opts.config ? opts.config(base) : base;
  const configPath = await writeConfig(dir, config);
  const launch = (path: string): BotProcess => {
    const p = startBot(path, { env: { FAKE_CLAN_SSH_KNOWN_HOSTS: join(dir, "clan-ssh", "known_hosts"), ...opts.env, FAKE_CLAN_LOG: clanLog } });
    processes.push(p);
    return p;
  };
  const w: World = {
    hs,
    dir,
    botUserId: bot.userId,
    botLogin: { accessToken: bot.accessToken, deviceId: bot.deviceId },
    alice,
    roomId,
    flake,
    clanLog,
    configPath,
    config,
    bot: launch(configPath),
    async startBot(c) {
      return launch(c ? await writeConfig(dir, c, `config-${processes.length}.yaml`) : configPath);
    },
    async person(localpart) {
      const c = await human(localpart);
      await alice.invite(roomId, c.getSafeUserId());
      await c.joinRoom(roomId);
      // In an encrypted room, a client can send only once its crypto knows the room's settings.
      if (opts.encrypted) await eventually("the room's encryption to reach the new client", async () => (await c.getCrypto()?.isEncryptionEnabledInRoom(roomId)) === true);
      return c;
    },
  };
  await waitForEvent(
    alice,
    roomId,
    (e) => e.getType() === "m.room.member" && e.getStateKey() === bot.userId && e.getContent().membership === KnownMembership.Join,
    20_000,
    "the bot to join",
  );
  return w;
}
