// `npm run bench`: clanbot's latency against a bare echo bot, and one bot process in many rooms.
// Prints a table of figures with their goals and verdicts; exits 0 even when a goal is missed.
//   node bench/run.ts [--quick] [--only latency|scale] [--bot-node-options="<V8/Node flags for clanbot>"]
import { parseArgs } from "node:util";
import { runLatency, type BotLatency, type LatencyResult } from "./latency.ts";
import { STOP_GRACE_MS, type Stopped } from "./proc.ts";
import { runScale, type ScaleResult } from "./scale.ts";
import { formatTable, mb, ms, ratio, seconds, type Row } from "./stats.ts";

const LATENCY_RATIO_GOAL = 1.1;
const SCALE_P99_GOAL_MS = 250;
const RSS_GOAL = 300 * 2 ** 20;

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    // NODE_OPTIONS for the clanbot process only, e.g. --bot-node-options="--max-semi-space-size=16"
    "bot-node-options": { type: "string" },
    // Pause after each latency command (ms), so that each command finds the bot idle.
    gap: { type: "string", default: "0" },
  },
});
const botNodeOptions = args["bot-node-options"];
const quick = args.quick === true;
const progress = (line: string): void => void process.stderr.write(`${line}\n`);

function stopRow(who: string, s: Stopped): Row {
  return {
    metric: `${who}: SIGTERM -> exit`,
    value: s.killed ? `> ${seconds(s.ms)} (SIGKILLed)` : seconds(s.ms),
    goal: `< ${seconds(STOP_GRACE_MS)}`,
    met: !s.killed,
  };
}

function latencyRows(r: LatencyResult): Row[] {
  const rows: Row[] = [];
  const figure = (b: BotLatency): Row[] => [
    { metric: `${b.bot}: command -> 👀 p50`, value: ms(b.reaction.p50) },
    { metric: `${b.bot}: command -> 👀 p99`, value: ms(b.reaction.p99) },
    { metric: `${b.bot}: command -> reply p50`, value: ms(b.reply.p50) },
    { metric: `${b.bot}: command -> reply p99`, value: ms(b.reply.p99) },
    {
      metric: `${b.bot}: origin_server_ts 👀/reply p50, p99`,
      value: `${b.reactionTs.p50}/${b.replyTs.p50}, ${b.reactionTs.p99}/${b.replyTs.p99} ms`,
    },
    { metric: `${b.bot}: CPU per command`, value: ms(b.cpuMsPerCommand) },
    { metric: `${b.bot}: reply p50, first -> last fifth`, value: `${ms(b.replyP50First)} -> ${ms(b.replyP50Last)}` },
    { metric: `${b.bot}: RSS after the run`, value: mb(b.rss) },
    { metric: `${b.bot}: commands answered`, value: `${b.reply.n}/${b.reply.n + b.missing}`, goal: "all", met: b.missing === 0 },
  ];
  rows.push(...figure(r.echo), ...figure(r.clanbot));
  const vs = (what: string, c: number, e: number): Row => ({
    metric: `clanbot/echo ${what}`,
    value: ratio(c / e),
    baseline: `${ms(c)} vs ${ms(e)}`,
    goal: `<= ${LATENCY_RATIO_GOAL.toFixed(2)}x`,
    met: c / e <= LATENCY_RATIO_GOAL,
  });
  rows.push(
    vs("👀 p50", r.clanbot.reaction.p50, r.echo.reaction.p50),
    vs("👀 p99", r.clanbot.reaction.p99, r.echo.reaction.p99),
    vs("reply p50", r.clanbot.reply.p50, r.echo.reply.p50),
    vs("reply p99", r.clanbot.reply.p99, r.echo.reply.p99),
    stopRow("clanbot (1 room)", r.clanbotStop),
  );
  return rows;
}

function scaleRows(r: ScaleResult): Row[] {
  return [
    { metric: `scale: start -> joined all ${r.rooms} rooms`, value: seconds(r.allJoinedMs) },
    { metric: `scale: start -> greeted in all rooms`, value: seconds(r.allGreetedMs) },
    { metric: `scale: start -> first answer (ready)`, value: seconds(r.firstAnswerMs) },
    { metric: `scale: command -> 👀 p50 / p99`, value: `${ms(r.reaction.p50)} / ${ms(r.reaction.p99)}` },
    { metric: `scale: command -> reply p50`, value: ms(r.reply.p50) },
    { metric: `scale: command -> reply p99`, value: ms(r.reply.p99), goal: `< ${SCALE_P99_GOAL_MS} ms`, met: r.reply.p99 < SCALE_P99_GOAL_MS },
    { metric: `scale: command -> reply max`, value: ms(r.reply.max) },
    {
      metric: `scale: slowest replies (ms @ s into load)`,
      value: r.slowest.map((s) => `${s.ms.toFixed(0)} @ ${s.sentAtS.toFixed(1)}`).join(", "),
    },
    { metric: `scale: commands answered`, value: `${r.reply.n}/${r.sent}`, goal: "all", met: r.missing === 0 },
    { metric: `scale: sender lag max (schedule kept?)`, value: ms(r.sendLagMaxMs) },
    { metric: `scale: CPU per command`, value: ms(r.cpuMsPerCommand) },
    { metric: `scale: test homeserver CPU (of one core)`, value: `${(100 * r.hsCpuShare).toFixed(0)} %` },
    { metric: `scale: test homeserver loop delay p99 / max`, value: `${ms(r.hsLoopDelayP99Ms)} / ${ms(r.hsLoopDelayMaxMs)}` },
    { metric: `scale: RSS when ready`, value: mb(r.rssAtReady) },
    { metric: `scale: RSS peak, start-up`, value: mb(r.rssPeakStartup), goal: "< 300 MB", met: r.rssPeakStartup < RSS_GOAL },
    { metric: `scale: RSS peak, under load`, value: mb(r.rssPeakLoad), goal: "< 300 MB", met: r.rssPeakLoad < RSS_GOAL },
    { metric: `scale: RSS after load (+5 s)`, value: mb(r.rssAfterLoad), goal: "< 300 MB", met: r.rssAfterLoad < RSS_GOAL },
    { metric: `scale: RSS high-water mark (VmHWM)`, value: mb(r.rssHwm) },
    stopRow(`scale: clanbot (${r.rooms} rooms)`, r.stop),
  ];
}

async function main(): Promise<void> {
  const began = performance.now();
  const rows: Row[] = [];
  const failures: string[] = [];
  if (args.only === undefined || args.only === "latency") {
    const n = quick ? 200 : 1000;
    progress(`latency: ${n} commands per bot, one at a time, after ${quick ? 20 : 50} warm-up`);
    try {
      rows.push(...latencyRows(await runLatency({ commands: n, warmup: quick ? 20 : 50, timeoutMs: 10_000, gapMs: Number(args.gap), progress, botNodeOptions })));
    } catch (err) {
      failures.push(`latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  if (args.only === undefined || args.only === "scale") {
    const rooms = quick ? 100 : 1000;
    try {
      rows.push(...scaleRows(await runScale({ rooms, rate: 20, durationMs: quick ? 5000 : 30_000, drainMs: 30_000, progress, botNodeOptions })));
    } catch (err) {
      failures.push(`scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  const flags = botNodeOptions ? `, clanbot NODE_OPTIONS="${botNodeOptions}"` : "";
  process.stdout.write(`\nclanbot benchmark${quick ? " (quick)" : ""}, Node ${process.version}${flags}, ${((performance.now() - began) / 1000).toFixed(0)} s\n\n`);
  process.stdout.write(`${formatTable(rows)}\n`);
  const missed = rows.filter((r) => r.met === false);
  process.stdout.write(`\n${missed.length ? `GOALS MISSED: ${missed.map((r) => r.metric).join("; ")}` : "All goals met."}\n`);
  for (const f of failures) process.stdout.write(`\nBENCH FAILED TO RUN: ${f}\n`);
  process.stdout.write(
    [
      "",
      "How to read it: times are taken at the test homeserver (sub-ms clock), from the command being stored to the",
      "bot's 👀 / reply being stored. Latency: the echo bot and clanbot run side by side and take turns, one command",
      "at a time, so background load on the machine falls on both alike; p99 of 1,000 samples still moves by tens of",
      "percent between runs. Scale: commands go out on a fixed schedule without waiting for answers. RSS is the bot",
      "process's VmRSS (bot/main.ts under Node's type stripping, which adds ~17 MB over the built dist/ JavaScript).",
      "",
    ].join("\n"),
  );
}

// matrix-js-sdk and undici leave timers and sockets behind; the children are stopped by now.
await main().catch((err: unknown) => process.stderr.write(`bench: ${String(err)}\n`));
process.exit(0);
