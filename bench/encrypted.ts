// Encrypted rooms against plain ones, in the same run on the same homeserver: two clanbot processes,
// one in a plain room and one in an encrypted (megolm) room, asked in turns by one person whose client
// runs matrix-js-sdk's Rust crypto (as modern Element: cross-signed, excluding insecure devices).
// 1. Reply time, at a real Synapse's pace (SYNAPSE_ON_TWO_CORES), one command at a time.
// 2. A soak at the in-repo homeserver's own pace: thousands of round trips each, the bots' CPU per
//    command and RSS sampled as they go (does the encrypted bot's memory grow per message?).
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventType, MsgType, type MatrixClient } from "matrix-js-sdk";
import { setTimeout as sleep } from "node:timers/promises";
import { startHomeserver, SYNAPSE_ON_TWO_CORES, humanClient, stopClient } from "../test/support/homeserver.ts";
import { bootstrapCrossSigning, eventually } from "../test/support/e2ee-client.ts";
import { startClanbot } from "./clanbot.ts";
import { isReply, tapHomeserver, type EventTap } from "./event-tap.ts";
import { cpuMsOf, rssOf, stopChild } from "./proc.ts";
import { summarize, type Summary } from "./stats.ts";

export interface EncryptedBenchOptions {
  /** Commands each bot answers one at a time at a real server's pace. */
  latencyCommands: number;
  /** Round trips each bot makes in the soak. */
  soakCommands: number;
  progress: (line: string) => void;
}

export interface SideResult {
  reply: Summary;
  missing: number;
  /** CPU of the bot process per command during the soak. */
  cpuMsPerCommand: number;
  /** RSS every tenth of the soak (after 10%, 20%, ... of the commands). */
  rss: number[];
}

export interface EncryptedBenchResult {
  plain: SideResult;
  encrypted: SideResult;
  soakCommands: number;
}

interface Side {
  room: string;
  pid: number;
  replies: number[];
  missing: number;
}

async function ask(tap: EventTap, human: MatrixClient, side: Side, measured: boolean): Promise<void> {
  const { event_id: id } = await human.sendEvent(side.room, EventType.RoomMessage, { msgtype: MsgType.Text, body: "!whoami" });
  const cmd = tap.get(id);
  const answer = await tap.waitRelated(id, isReply, 15_000);
  if (!measured) return;
  if (!cmd || !answer) side.missing++;
  else side.replies.push(answer.at - cmd.at);
}

export async function runEncryptedBench(o: EncryptedBenchOptions): Promise<EncryptedBenchResult> {
  const tap = tapHomeserver();
  const hs = await startHomeserver();
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-e2ee-"));
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const human = await humanClient(hs, "alice", { rustCrypto: true, onlySignedDevices: true });
    stops.push(() => stopClient(human));
    await bootstrapCrossSigning(human, "pw-alice");
    const plainBot = await hs.createUser("plainbot", "pw-plainbot");
    const cryptoBot = await hs.createUser("cryptobot", "pw-cryptobot");
    const { room_id: plainRoom } = await human.createRoom({ name: "Plain", invite: [plainBot.userId] });
    const { room_id: cryptoRoom } = await human.createRoom({
      name: "Encrypted",
      invite: [cryptoBot.userId],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
    });
    await eventually("the room's encryption to reach the person's client", async () => (await human.getCrypto()?.isEncryptionEnabledInRoom(cryptoRoom)) === true);
    o.progress("encrypted: starting a clanbot for the plain room and one for the encrypted room");
    const start = async (name: string, account: typeof plainBot, room: string): Promise<Side> => {
      const joined = tap.waitFor((e) => e.roomId === room && e.type === "m.room.member" && e.stateKey === account.userId && e.content["membership"] === "join", 60_000);
      await mkdir(join(dir, name));
      const bot = await startClanbot(join(dir, name), hs.url, account, [{ name, room }]);
      const exited = new Promise((resolve) => bot.proc.once("exit", resolve));
      stops.push(() => stopChild(bot.proc, exited));
      if (!(await joined)) throw new Error(`${name} did not join; log:\n${bot.log.slice(-20).join("\n")}`);
      return { room, pid: bot.proc.pid ?? 0, replies: [], missing: 0 };
    };
    const plain = await start("plain", plainBot, plainRoom);
    const encrypted = await start("encrypted", cryptoBot, cryptoRoom);
    // The person's client learns the bot's device (and that it is cross-signed) before the first command.
    await eventually("the encrypted bot to answer", async () => {
      const { event_id } = await human.sendEvent(cryptoRoom, EventType.RoomMessage, { msgtype: MsgType.Text, body: "!whoami" });
      return (await tap.waitRelated(event_id, isReply, 3000)) !== undefined;
    }, 60_000);

    o.progress(`encrypted: ${o.latencyCommands} commands each at a real server's pace, in turns`);
    hs.setLatency(SYNAPSE_ON_TWO_CORES);
    for (let i = 0; i < 20 + o.latencyCommands; i++) {
      for (const side of i % 2 === 0 ? [plain, encrypted] : [encrypted, plain]) await ask(tap, human, side, i >= 20);
    }
    const latency = { plain: summarize(plain.replies), encrypted: summarize(encrypted.replies) };
    const missing = { plain: plain.missing, encrypted: encrypted.missing };

    o.progress(`encrypted: soak, ${o.soakCommands} round trips each at the in-repo homeserver's pace`);
    hs.setLatency({});
    const rss = { plain: [] as number[], encrypted: [] as number[] };
    const cpuStart = { plain: cpuMsOf(plain.pid), encrypted: cpuMsOf(encrypted.pid) };
    for (const side of [plain, encrypted]) side.replies.length = 0;
    const tenth = Math.max(1, Math.floor(o.soakCommands / 10));
    for (let i = 1; i <= o.soakCommands; i++) {
      for (const side of i % 2 === 0 ? [plain, encrypted] : [encrypted, plain]) await ask(tap, human, side, true);
      if (i % tenth === 0) {
        await sleep(200);
        rss.plain.push(rssOf(plain.pid));
        rss.encrypted.push(rssOf(encrypted.pid));
        o.progress(`  ${i}/${o.soakCommands}: RSS plain ${(rss.plain.at(-1) ?? 0) / 2 ** 20 | 0} MB, encrypted ${(rss.encrypted.at(-1) ?? 0) / 2 ** 20 | 0} MB`);
      }
    }
    // The CPU of the soak includes the other bot's turn only as waiting: each bot's own process is measured.
    const cpu = { plain: (cpuMsOf(plain.pid) - cpuStart.plain) / o.soakCommands, encrypted: (cpuMsOf(encrypted.pid) - cpuStart.encrypted) / o.soakCommands };
    return {
      soakCommands: o.soakCommands,
      plain: { reply: latency.plain, missing: missing.plain + plain.missing, cpuMsPerCommand: cpu.plain, rss: rss.plain },
      encrypted: { reply: latency.encrypted, missing: missing.encrypted + encrypted.missing, cpuMsPerCommand: cpu.encrypted, rss: rss.encrypted },
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
}
