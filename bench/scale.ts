// Part 2: one clanbot process in many clan rooms, under a steady open-loop load of commands.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startHomeserver } from "../test/support/homeserver.ts";
import { startClanbot, type BenchClan } from "./clanbot.ts";
import { isReply, tapHomeserver, type TappedEvent } from "./event-tap.ts";
import { Human } from "./human.ts";
import { probe } from "./probe.ts";
import { cpuMsOf, peakRssOf, RssSampler, stopChild, type Stopped } from "./proc.ts";
import { seededRandom, summarize, type Summary } from "./stats.ts";

export interface ScaleOptions {
  rooms: number;
  /** Commands per second, sent on a fixed schedule whatever the bot does. */
  rate: number;
  durationMs: number;
  /** How long after the last command the bot may still answer before a command counts as missing. */
  drainMs: number;
  progress: (line: string) => void;
  /** NODE_OPTIONS for the clanbot process (not the echo bot, not this process). */
  botNodeOptions?: string;
}

export interface ScaleResult {
  rooms: number;
  sent: number;
  /** Bot start -> its join in the last of the rooms. */
  allJoinedMs: number;
  /** Bot start -> the greetings it posts on joining, in all rooms (NaN if it did not greet in all). */
  allGreetedMs: number;
  /** Bot start -> its answer to a probe sent once it was in every room. */
  firstAnswerMs: number;
  reply: Summary;
  reaction: Summary;
  /** The slowest replies: when their command was sent (s into the load) and how long the reply took. */
  slowest: Array<{ sentAtS: number; ms: number }>;
  missing: number;
  /** When the last command was sent vs. when it was meant to be (the sender keeping up). */
  sendLagMaxMs: number;
  rssAtReady: number;
  rssPeakStartup: number;
  rssPeakLoad: number;
  rssAfterLoad: number;
  /** The kernel's high-water mark (VmHWM) for the whole run. */
  rssHwm: number;
  cpuMsPerCommand: number;
  /** How the bot took its SIGTERM at the end. */
  stop: Stopped;
  /** This process (test homeserver + sender) during the load: CPU share of one core, event-loop delay. */
  hsCpuShare: number;
  hsLoopDelayP99Ms: number;
  hsLoopDelayMaxMs: number;
}

async function inBatches<T, R>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return out;
}

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const tap = tapHomeserver();
  const hs = await startHomeserver();
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-"));
  try {
    const human = new Human(hs.url, await hs.createUser("alice", "pw-alice"));
    const botAccount = await hs.createUser("clanbot", "pw-clanbot");
    const botId = botAccount.userId;

    o.progress(`scale: creating ${o.rooms} rooms with the bot invited`);
    const names = Array.from({ length: o.rooms }, (_, i) => `clan-${String(i).padStart(4, "0")}`);
    const rooms = await inBatches(names, 8, (name) => human.createRoom(name, [botId]));
    const clans: BenchClan[] = names.map((name, i) => ({ name, room: rooms[i] as string }));
    const roomSet = new Set(rooms);

    const joinedRooms = new Set<string>();
    const greetedRooms = new Set<string>();
    let allJoinedAt = Number.NaN;
    let allGreetedAt = Number.NaN;
    const unwatch = tap.watch((e: TappedEvent) => {
      if (e.sender !== botId || !roomSet.has(e.roomId)) return;
      if (e.type === "m.room.member" && e.content["membership"] === "join") {
        joinedRooms.add(e.roomId);
        if (joinedRooms.size === o.rooms && Number.isNaN(allJoinedAt)) allJoinedAt = e.at;
      } else if (e.type === "m.room.message" && String(e.content["body"]).startsWith("Hello!")) {
        greetedRooms.add(e.roomId);
        if (greetedRooms.size === o.rooms && Number.isNaN(allGreetedAt)) allGreetedAt = e.at;
      }
    });

    o.progress(`scale: starting clanbot with ${o.rooms} clans`);
    const startedAt = performance.now();
    const bot = await startClanbot(dir, hs.url, botAccount, clans, o.botNodeOptions);
    const pid = bot.proc.pid ?? 0;
    const exited = new Promise((resolve) => bot.proc.once("exit", resolve));
    const rss = new RssSampler(pid, 250);
    try {
      const joinDeadline = startedAt + 300_000;
      while (joinedRooms.size < o.rooms && performance.now() < joinDeadline && bot.proc.exitCode === null) await sleep(50);
      if (joinedRooms.size < o.rooms) {
        throw new Error(`clanbot joined ${joinedRooms.size} of ${o.rooms} rooms; log:\n${bot.log.slice(-20).join("\n")}`);
      }
      o.progress(`scale: in all rooms after ${((allJoinedAt - startedAt) / 1000).toFixed(1)} s; probing`);
      const probeRoom = rooms[rooms.length - 1] as string;
      const answeredAt = await probe(tap, human, probeRoom, "!whoami", 10_000, 10);
      if (answeredAt === undefined) throw new Error(`clanbot does not answer in ${probeRoom}; log:\n${bot.log.slice(-20).join("\n")}`);
      // Let the start-up work (greetings, joins) finish before the load, up to 60 s.
      const greetDeadline = performance.now() + 60_000;
      while (greetedRooms.size < o.rooms && performance.now() < greetDeadline) await sleep(50);
      await sleep(2000);
      const rssAtReady = rss.sample();
      const readyAt = performance.now();
      unwatch();

      const n = Math.round((o.rate * o.durationMs) / 1000);
      const interval = 1000 / o.rate;
      o.progress(`scale: ${n} commands at ${o.rate}/s into random rooms (${(o.durationMs / 1000).toFixed(0)} s)`);
      const random = seededRandom(42);
      const sends: Array<Promise<string | undefined>> = [];
      const cpuStart = cpuMsOf(pid);
      const hsCpuStart = process.cpuUsage();
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const loadStart = performance.now();
      let sendLagMax = 0;
      for (let i = 0; i < n; i++) {
        const due = loadStart + i * interval;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        sendLagMax = Math.max(sendLagMax, performance.now() - due);
        const room = rooms[Math.floor(random() * rooms.length)] as string;
        sends.push(human.say(room, "!whoami").catch(() => undefined));
      }
      const ids = await Promise.all(sends);
      const lastSent = performance.now();
      o.progress("scale: all sent; waiting for the answers");
      const answers = await Promise.all(
        ids.map(async (id) => {
          if (id === undefined) return undefined;
          const left = Math.max(1, lastSent + o.drainMs - performance.now());
          const reply = await tap.waitRelated(id, isReply, left);
          const eyes = tap.relatedTo(id).find((e) => e.type === "m.reaction" && e.sender === botId);
          const cmd = tap.get(id);
          if (!reply || !cmd) return undefined;
          // The first sign the person sees: a 👀, or the answer itself (a read-only command shows no 👀 when it is quick).
          return { sentAtS: (cmd.at - loadStart) / 1000, reply: reply.at - cmd.at, reaction: Math.min(eyes ? eyes.at - cmd.at : Infinity, reply.at - cmd.at) };
        }),
      );
      const loadEnd = performance.now();
      const cpu = cpuMsOf(pid) - cpuStart;
      loop.disable();
      const hsCpu = process.cpuUsage(hsCpuStart);
      // Let the tail of the work (✅ reactions, audit writes) finish, then look at memory again.
      await sleep(5000);
      const rssAfterLoad = rss.sample();
      const ok = answers.filter((a) => a !== undefined);
      const rssHwm = peakRssOf(pid);
      rss.stop();
      const stop = await stopChild(bot.proc, exited);
      return {
        rooms: o.rooms,
        sent: n,
        allJoinedMs: allJoinedAt - startedAt,
        allGreetedMs: allGreetedAt - startedAt,
        firstAnswerMs: answeredAt - startedAt,
        reply: summarize(ok.map((a) => a.reply)),
        reaction: summarize(ok.map((a) => a.reaction).filter((v) => Number.isFinite(v))),
        slowest: [...ok].sort((a, b) => b.reply - a.reply).slice(0, 5).map((a) => ({ sentAtS: a.sentAtS, ms: a.reply })),
        missing: n - ok.length,
        sendLagMaxMs: sendLagMax,
        rssAtReady,
        rssPeakStartup: rss.peak(startedAt, readyAt),
        rssPeakLoad: rss.peak(loadStart, loadEnd),
        rssAfterLoad,
        rssHwm,
        cpuMsPerCommand: cpu / n,
        stop,
        hsCpuShare: (hsCpu.user + hsCpu.system) / 1000 / (loadEnd - loadStart),
        hsLoopDelayP99Ms: loop.percentile(99) / 1e6,
        hsLoopDelayMaxMs: loop.max / 1e6,
      };
    } finally {
      rss.stop();
      unwatch();
      await stopChild(bot.proc, exited);
    }
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
}
