// Part 1: clanbot's added latency over a bare matrix-js-sdk echo bot, one command at a time.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startHomeserver } from "../test/support/homeserver.ts";
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
}

export interface BotLatency {
  bot: string;
  /** Command stored -> bot's 👀 reaction stored (server-side, sub-ms clock). */
  reaction: Summary;
  /** Command stored -> bot's reply stored. */
  reply: Summary;
  /** The same two from origin_server_ts (whole ms), as a cross-check. */
  reactionTs: Summary;
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

export interface LatencyResult {
  echo: BotLatency;
  clanbot: BotLatency;
  /** How clanbot took its SIGTERM at the end (1 room). */
  clanbotStop: Stopped;
}

/** One bot under test: its room, the reaction that says it is done with a command, its samples. */
class Subject {
  readonly bot: string;
  readonly roomId: string;
  readonly pid: number;
  private readonly doneKey: string | undefined;
  private readonly reaction: number[] = [];
  private readonly reply: number[] = [];
  private readonly reactionTs: number[] = [];
  private readonly replyTs: number[] = [];
  private missing = 0;
  private cpuStart = Number.NaN;

  constructor(bot: string, roomId: string, pid: number, doneKey: string | undefined) {
    this.bot = bot;
    this.roomId = roomId;
    this.pid = pid;
    this.doneKey = doneKey;
  }

  startMeasuring(): void {
    this.cpuStart = cpuMsOf(this.pid);
  }

  /**
   * Sends one command and waits until the bot has finished answering it (the reply, and for
   * clanbot also its closing ✅, so that the next command finds the bot idle). The figures come
   * from the homeserver's clock, so how the waiting is done does not enter them.
   */
  async command(tap: EventTap, human: Human, timeoutMs: number, measured: boolean): Promise<void> {
    const id = await human.say(this.roomId, "!whoami");
    const cmd = tap.get(id);
    const eyes = await tap.waitRelated(id, isReaction("👀"), timeoutMs);
    const answer = await tap.waitRelated(id, isReply, timeoutMs);
    if (this.doneKey !== undefined) await tap.waitRelated(id, isReaction(this.doneKey), timeoutMs);
    if (!measured) return;
    if (!cmd || !eyes || !answer) {
      this.missing++;
      return;
    }
    this.reaction.push(eyes.at - cmd.at);
    this.reply.push(answer.at - cmd.at);
    this.reactionTs.push(eyes.ts - cmd.ts);
    this.replyTs.push(answer.ts - cmd.ts);
  }

  result(commands: number): BotLatency {
    const fifth = Math.max(1, Math.floor(this.reply.length / 5));
    return {
      bot: this.bot,
      reaction: summarize(this.reaction),
      reply: summarize(this.reply),
      reactionTs: summarize(this.reactionTs),
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
  const hs = await startHomeserver();
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
      subjects = [new Subject("echo bot", echoRoom, echo.proc.pid ?? 0, undefined), new Subject("clanbot", clanRoom, bot.proc.pid ?? 0, "✅")];
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
    await echo.stop();
    const clanbotStop = await stopChild(bot.proc, exited);
    return { echo: echoResult, clanbot: clanResult, clanbotStop };
  } finally {
    await hs.close();
    await rm(dir, { recursive: true, force: true });
  }
}
