// Part 1: clanbot's added latency over a bare matrix-js-sdk echo bot, one command at a time, on the
// test homeserver slowed to a real Synapse's pace (SYNAPSE_ON_TWO_CORES: 5-15 ms a request, 40-80 ms
// to store an event, a room's events one after the other); then how many commands a second one room
// sustains with answers at most 2 s behind.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startHomeserver, SYNAPSE_ON_TWO_CORES, type Latency } from "../test/support/homeserver.ts";
import { startClanbot } from "./clanbot.ts";
import { isReaction, isReply, tapHomeserver, type EventTap } from "./event-tap.ts";
import { Human } from "./human.ts";
import { probe } from "./probe.ts";
import { cpuMsOf, rssOf, startEchoBot, stopChild, type Stopped } from "./proc.ts";
import { percentile, summarize, type Summary } from "./stats.ts";

export interface LatencyOptions {
  commands: number;
  warmup: number;
  /** How long to wait for one answer before counting the command as missing. */
  timeoutMs: number;
  /** Pause after each command, so that the next one finds the bot idle (tail work such as its own echoes done). */
  gapMs: number;
  progress: (line: string) => void;
  /** NODE_OPTIONS for the clanbot process (not the echo bot, not this process). */
  botNodeOptions?: string;
  /** The homeserver's pace (default: a real Synapse on this kind of machine). */
  latency?: Latency;
  /** Command rates tried for the throughput, per second. */
  rates: readonly number[];
  /** How long each rate is held. */
  rateSeconds: number;
}

export interface BotLatency {
  bot: string;
  /** Command stored -> the bot's first event about it stored (a 👀 or the answer; server-side, sub-ms clock). */
  firstSign: Summary;
  /** Command stored -> bot's reply stored. */
  reply: Summary;
  /** The same two from origin_server_ts (whole ms), as a cross-check. */
  firstSignTs: Summary;
  replyTs: Summary;
  missing: number;
  /** The bot process's CPU time per measured command (user + system). */
  cpuMsPerCommand: number;
  /** Reply p50 over the first and the last fifth of the measured commands (does the bot slow down as the room fills?). */
  replyP50First: number;
  replyP50Last: number;
  /** The bot's resident memory after the run. */
  rss: number;
}

export interface Throughput {
  bot: string;
  /** Per rate tried: answers' lag behind their command (max), and whether all came. */
  steps: Array<{ perSecond: number; lagMaxMs: number; lagP50Ms: number; answered: number; sent: number }>;
  /** The highest rate whose answers all came at most 2 s behind. */
  sustained: number;
}

export interface LatencyResult {
  /** The homeserver's pace in the run. */
  latency: Latency;
  echo: BotLatency;
  clanbot: BotLatency;
  echoThroughput: Throughput;
  clanbotThroughput: Throughput;
  /** How clanbot took its SIGTERM at the end (1 room). */
  clanbotStop: Stopped;
}

/** One bot under test: its room, the reaction that says it is done with a command, its samples. */
class Subject {
  readonly bot: string;
  readonly roomId: string;
  readonly pid: number;
  private readonly firstSign: number[] = [];
  private readonly reply: number[] = [];
  private readonly firstSignTs: number[] = [];
  private readonly replyTs: number[] = [];
  private missing = 0;
  private cpuStart = Number.NaN;

  constructor(bot: string, roomId: string, pid: number) {
    this.bot = bot;
    this.roomId = roomId;
    this.pid = pid;
  }

  startMeasuring(): void {
    this.cpuStart = cpuMsOf(this.pid);
  }

  /**
   * Sends one command and waits for the bot's answer (and a moment more, so that anything it sends
   * after the answer is done before the next command). The figures come from the homeserver's
   * clock, so how the waiting is done does not enter them.
   */
  async command(tap: EventTap, human: Human, timeoutMs: number, measured: boolean): Promise<void> {
    const id = await human.say(this.roomId, "!whoami");
    const cmd = tap.get(id);
    const answer = await tap.waitRelated(id, isReply, timeoutMs);
    await sleep(20);
    if (!measured) return;
    if (!cmd || !answer) {
      this.missing++;
      return;
    }
    const first = tap.relatedTo(id).reduce((a, e) => (e.at < a.at ? e : a), answer);
    this.firstSign.push(first.at - cmd.at);
    this.reply.push(answer.at - cmd.at);
    this.firstSignTs.push(first.ts - cmd.ts);
    this.replyTs.push(answer.ts - cmd.ts);
  }

  result(commands: number): BotLatency {
    const fifth = Math.max(1, Math.floor(this.reply.length / 5));
    return {
      bot: this.bot,
      firstSign: summarize(this.firstSign),
      reply: summarize(this.reply),
      firstSignTs: summarize(this.firstSignTs),
      replyTs: summarize(this.replyTs),
      missing: this.missing,
      cpuMsPerCommand: (cpuMsOf(this.pid) - this.cpuStart) / commands,
      replyP50First: percentile(this.reply.slice(0, fifth), 50),
      replyP50Last: percentile(this.reply.slice(-fifth), 50),
      rss: rssOf(this.pid),
    };
  }
}

/**
 * Both bots run side by side, each in a room of its own, and take turns (echo, clanbot, clanbot,
 * echo, ...): one command at a time, so neither ever competes with the other, and whatever else
 * the machine is doing meanwhile (it may be shared) falls on both alike.
 */
export async function runLatency(o: LatencyOptions): Promise<LatencyResult> {
  const tap = tapHomeserver();
  const latency = o.latency ?? SYNAPSE_ON_TWO_CORES;
  const hs = await startHomeserver({ latency });
  const dir = await mkdtemp(join(tmpdir(), "clanbot-bench-"));
  try {
    const human = new Human(hs.url, await hs.createUser("alice", "pw-alice"));
    const echoAccount = await hs.createUser("echo", "pw-echo");
    const botAccount = await hs.createUser("clanbot", "pw-clanbot");

    const echoRoom = await human.createRoom("Echo", [echoAccount.userId]);
    await new Human(hs.url, echoAccount).join(echoRoom);
    const clanRoom = await human.createRoom("Bench clan", [botAccount.userId]);

    o.progress("latency: starting the echo bot and clanbot");
    const echo = await startEchoBot(hs.url, echoAccount);
    const joined = tap.waitFor(
      (e) => e.roomId === clanRoom && e.type === "m.room.member" && e.stateKey === botAccount.userId && e.content["membership"] === "join",
      30_000,
    );
    const bot = await startClanbot(dir, hs.url, botAccount, [{ name: "bench", room: clanRoom }], o.botNodeOptions);
    const exited = new Promise((resolve) => bot.proc.once("exit", resolve));
    let subjects: [Subject, Subject];
    try {
      if (!(await joined)) throw new Error(`clanbot did not join its room in 30 s; log:\n${bot.log.slice(-20).join("\n")}`);
      if ((await probe(tap, human, clanRoom, "!whoami")) === undefined) {
        throw new Error(`clanbot does not answer; log:\n${bot.log.slice(-20).join("\n")}`);
      }
      subjects = [new Subject("echo bot", echoRoom, echo.proc.pid ?? 0), new Subject("clanbot", clanRoom, bot.proc.pid ?? 0)];
      for (let i = 0; i < o.warmup + o.commands; i++) {
        const measured = i >= o.warmup;
        if (i === o.warmup) for (const s of subjects) s.startMeasuring();
        const order = i % 2 === 0 ? subjects : [subjects[1], subjects[0]];
        for (const s of order) {
          await s.command(tap, human, o.timeoutMs, measured);
          if (o.gapMs > 0) await sleep(o.gapMs);
        }
        if (measured && (i - o.warmup + 1) % 250 === 0) o.progress(`  ${i - o.warmup + 1}/${o.commands} each`);
      }
    } catch (err) {
      await Promise.all([echo.stop(), stopChild(bot.proc, exited)]);
      throw err;
    }
    const [echoResult, clanResult] = subjects.map((s) => s.result(o.commands)) as [BotLatency, BotLatency];
    o.progress("latency: throughput of one room");
    let echoThroughput: Throughput;
    let clanbotThroughput: Throughput;
    try {
      echoThroughput = await throughput(tap, human, "echo bot", echoRoom, o);
      clanbotThroughput = await throughput(tap, human, "clanbot", clanRoom, o);
    } catch (err) {
      await Promise.all([echo.stop(), stopChild(bot.proc, exited)]);
      throw err;
    }
    await echo.stop();
    const clanbotStop = await stopChild(bot.proc, exited);
    return { latency, echo: echoResult, clanbot: clanResult, echoThroughput, clanbotThroughput, clanbotStop };
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The lag an answer may have behind its command for a rate to count as sustained. */
export const SUSTAINED_LAG_MS = 2000;

/**
 * Commands at a steady rate into one room (sent without waiting for each other, as many people would),
 * rate after rate, each held for `rateSeconds`; a rate is sustained when every answer came at most 2 s
 * after its command. The room's events (commands and answers alike) are stored one after the other.
 */
async function throughput(tap: EventTap, human: Human, bot: string, roomId: string, o: LatencyOptions): Promise<Throughput> {
  const steps: Throughput["steps"] = [];
  let sustained = 0;
  for (const perSecond of o.rates) {
    const n = Math.round(perSecond * o.rateSeconds);
    const start = performance.now();
    const sends: Array<Promise<string | undefined>> = [];
    for (let i = 0; i < n; i++) {
      const wait = start + (i * 1000) / perSecond - performance.now();
      if (wait > 0) await sleep(wait);
      sends.push(human.say(roomId, "!whoami").catch(() => undefined));
    }
    const ids = (await Promise.all(sends)).filter((id): id is string => id !== undefined);
    const lags: number[] = [];
    for (const id of ids) {
      const cmd = tap.get(id);
      const answer = await tap.waitRelated(id, isReply, 15_000);
      if (cmd && answer) lags.push(answer.at - cmd.at);
    }
    const lagMaxMs = lags.length ? Math.max(...lags) : Number.POSITIVE_INFINITY;
    steps.push({ perSecond, lagMaxMs, lagP50Ms: percentile(lags, 50), answered: lags.length, sent: n });
    o.progress(`  ${bot}: ${perSecond}/s: ${lags.length}/${n} answered, lag max ${lagMaxMs.toFixed(0)} ms`);
    if (lags.length === n && lagMaxMs <= SUSTAINED_LAG_MS) sustained = perSecond;
    else break;
    // Let the room's queue empty before the next rate.
    await sleep(3000);
  }
  return { bot, steps, sustained };
}
