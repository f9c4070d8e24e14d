import type { Backups, Schedules } from "../commands/backup-types.ts";
import type { Deploys } from "../commands/deploy-types.ts";
import { BadInput, Refusal, ReportedFailure, UserError } from "../commands/errors.ts";
import { clipQuote, cutAnswer, fitAnswer } from "../commands/answer-size.ts";
import { code, concat, formatDuration, type Message } from "../commands/format.ts";
import { findCommand } from "../commands/help.ts";
import { formatSlowDown } from "../commands/limit-format.ts";
import { allows, levelFor } from "../commands/levels.ts";
import { nearest } from "../commands/suggest.ts";
import { bindInput, selectSubcommand, tokenize } from "../commands/parse-input.ts";
import type {
  Attachment,
  AuditResult,
  ClanStore,
  ClanView,
  Clock,
  CommandContext,
  CommandPlace,
  CommandSpec,
  Confirmation,
  LevelThresholds,
  Log,
  ReceivedReply,
  SentMessage,
} from "../commands/types.ts";
import type { Invites } from "../commands/invite-types.ts";
import type { SshMachines } from "../commands/ssh-types.ts";
import type { Vms } from "../commands/vm-types.ts";
import { ClanCliError } from "../ops/clan-cli.ts";
import { finishCommand, startCommand } from "../storage/audit.ts";
import { writeSoon } from "../ops/write-soon.ts";
import { isWriteFailure, type Db } from "../storage/db.ts";
import type { CommandLimit } from "./command-limit.ts";

/** What a front end knows about a message addressed to the bot. */
export interface Incoming {
  clan: string;
  room: string;
  eventId: string | undefined;
  /** When the sender sent it (server time), for the maximum command age. */
  sentAt: number;
  sender: { id: string; name: string; powerLevel: number };
  /**
   * The sender's power level as the room says now: read again when a ✅ confirms, since the level
   * may have been lowered meanwhile. Without it (the console) the level does not change.
   */
  powerLevelNow?: () => number;
  /** The command line without prefix or mention: `deploy laptop --dry-run`. */
  line: string;
  /**
   * Resolves once the front end has stored that this event is handled: the answer (👀) may go
   * before, the command runs only after, so that a crash in between never makes it run twice.
   */
  claimed?: Promise<void>;
  /** Where it was sent (Matrix): an encrypted room or not, a direct chat with the bot or a shared room. */
  place?: CommandPlace;
}

/** How a front end answers one message: replies relate to it, reactions go on it. */
export interface ReplyChannel {
  reply(message: Message): Promise<SentMessage>;
  replyFile(file: Attachment): Promise<void>;
  react(key: string): Promise<void>;
  /** Posts a question in reply; confirmed only by ✅ from `from` within `timeoutMs`. */
  ask(message: Message, from: string, timeoutMs: number): Promise<Confirmation>;
  /** Posts a request in reply; resolves with the next text or image `from` sends within `timeoutMs`. */
  askFor(message: Message, from: string, timeoutMs: number, opts?: { anyText?: boolean }): Promise<ReceivedReply | undefined>;
  /** Takes the command's own message out of the room; false when the bot may not (or cannot here). */
  removeCommand?(reason: string): Promise<boolean>;
}

export interface ClanRuntime {
  view: ClanView;
  store: ClanStore;
  deploys: Deploys;
  backups: Backups;
  schedules: Schedules;
  ssh: SshMachines;
  invites: Invites;
  vms: Vms;
  thresholds: LevelThresholds;
}

export interface DispatcherDeps {
  table: readonly CommandSpec[];
  db: Db;
  clans: ReadonlyMap<string, ClanRuntime>;
  clock: Clock;
  log: Log;
  prefix: string;
  maxCommandAgeMs: number;
  confirmTimeoutMs: number;
  installReplyTimeoutMs: number;
  /** Commands per person and clan; without it nobody is limited. */
  limit?: CommandLimit;
}

/**
 * The one meaning of each reaction on a command: ❌ it was tried and failed; ⛔ the bot would not
 * (permission, someone else's lock, a limit, not set up here, too old); ❓ what was typed is not a
 * command it can run (unknown command, machine or flag, a value out of range): nothing was tried.
 */
export const REACTION = { taken: "👀", done: "✅", failed: "❌", refused: "⛔", invalid: "❓" } as const;

/** What is kept of a command line and of an outcome's detail in the audit table (a line can be 60 KB). */
const MAX_STORED_LINE = 500;
const MAX_STORED_DETAIL = 1_000;

/**
 * A channel whose answers always fit in one event: a long answer goes out cut short with the whole
 * of it as a file, a long edit or question is cut. People always get an answer, never M_TOO_LARGE.
 */
function withinEventSize(channel: ReplyChannel): ReplyChannel {
  const editable = (sent: SentMessage): SentMessage => ({ edit: (m) => sent.edit(cutAnswer(m)) });
  return {
    async reply(message) {
      const { message: fitted, file } = fitAnswer(message);
      const sent = await channel.reply(fitted);
      if (file) await channel.replyFile(file);
      return editable(sent);
    },
    replyFile: (file) => channel.replyFile(file),
    react: (key) => channel.react(key),
    async ask(message, from, timeoutMs) {
      const answer = await channel.ask(cutAnswer(message), from, timeoutMs);
      return { confirmed: answer.confirmed, question: editable(answer.question) };
    },
    askFor: (message, from, timeoutMs, opts) => channel.askFor(cutAnswer(message), from, timeoutMs, opts),
    ...(channel.removeCommand ? { removeCommand: (reason: string) => (channel.removeCommand as (r: string) => Promise<boolean>)(reason) } : {}),
  };
}

/** A read-only command whose answer takes longer than this shows 👀 meanwhile. */
export const TAKEN_AFTER_MS = 1000;

function cannotStore(line: string): Message {
  return concat(
    "I did not run ",
    code(line),
    ": I cannot write to my database (the disk may be full), and I run nothing I could not remember having run. " +
      "Try again later; I take commands again as soon as I can write.",
  );
}

type Outcome = { result: Exclude<AuditResult, "running">; detail?: string };

/**
 * Turns a message into a command run: parse, look up, check age and permission, bind arguments,
 * run, answer, and audit every step. The one place that catches what commands throw.
 */
export class Dispatcher {
  private readonly deps: DispatcherDeps;
  private readonly running = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(deps: DispatcherDeps) {
    this.deps = deps;
  }

  /** Handles one message; never throws (failures are answered and logged). */
  dispatch(msg: Incoming, channel: ReplyChannel): Promise<void> {
    const run = this.handle(msg, withinEventSize(channel)).catch((err: unknown) => {
      this.deps.log.error({ err, room: msg.room, event: msg.eventId }, "could not answer a command");
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
    return run;
  }

  /** Waits for running commands; after `graceMs` they are told to stop (their signal aborts). */
  async drain(graceMs: number): Promise<void> {
    const timer = setTimeout(() => this.stopping.abort(new Error("the bot is shutting down")), graceMs);
    await Promise.allSettled([...this.running]);
    clearTimeout(timer);
  }

  private async handle(incoming: Incoming, channel: ReplyChannel): Promise<void> {
    let msg = incoming;
    const { clock, db, prefix } = this.deps;
    const clan = this.deps.clans.get(msg.clan);
    if (!clan) throw new Error(`no runtime for clan ${msg.clan}`);
    const startedAt = clock.now();
    let words: string[] = [];
    let parseError: UserError | undefined;
    try {
      words = tokenize(msg.line);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      parseError = err;
    }
    const name = (words[0] ?? msg.line.split(/\s/, 1)[0] ?? "").toLowerCase();
    const spec = findCommand(this.deps.table, name);
    // A command that may carry a secret typed by mistake: only its first words are kept or quoted.
    const keep = spec?.keepWords;
    const extraWords = keep !== undefined && words.length > keep ? words.length - keep : 0;
    if (keep !== undefined && parseError !== undefined) {
      parseError = new BadInput("I could not read that command line (an unclosed quote?). I do not quote it back: it may hold a secret.");
    }
    if (keep !== undefined && (parseError !== undefined || extraWords > 0)) {
      words = words.slice(0, keep);
      msg = { ...msg, line: words.join(" ") || name };
    }
    // Out of the room at once, whoever sent it and whatever comes of the command.
    const removal = extraWords > 0 ? (channel.removeCommand?.("it held a secret") ?? Promise.resolve(false)) : undefined;
    removal?.catch(() => undefined);
    // The audit row is written while the bot already answers: 👀 must not wait for the disk.
    const runIdPromise = startCommand(db, {
      clan: msg.clan,
      room: msg.room,
      sender: msg.sender.id,
      command: spec?.name ?? name,
      line: clipQuote(`${prefix}${msg.line}`, MAX_STORED_LINE),
      eventId: msg.eventId,
      startedAt,
    });
    // Awaited below on every path; this only keeps an early failure from counting as unhandled meanwhile.
    runIdPromise.catch(() => undefined);
    const finish = async (o: Outcome): Promise<void> => {
      const runId = await runIdPromise;
      const at = clock.now();
      // The outcome is shown already; its record follows when the database takes it (a full disk).
      await writeSoon(() => finishCommand(db, runId, o.result, at, o.detail), this.deps.log, `the outcome of command #${runId}`);
    };
    const answer = async (o: Outcome, reaction: string, message: Message): Promise<void> => {
      // The audit row gets its outcome even when the answer cannot be sent.
      try {
        await channel.reply(message);
        await channel.react(reaction);
      } finally {
        await finish({ ...o, detail: o.detail === undefined ? undefined : clipQuote(o.detail, MAX_STORED_DETAIL) });
      }
    };

    const level = levelFor(msg.sender.powerLevel, clan.thresholds);
    // Before anything else is answered: a flood of typos must not be answered message by message either.
    const limit = this.deps.limit;
    const verdict = limit?.check(msg.clan, msg.sender.id, level, msg.sentAt);
    if (limit && verdict?.limited) {
      const { requests, windowMs } = limit;
      const detail = `over the limit of ${requests} commands in ${formatDuration(windowMs)}`;
      if (!verdict.tell) return finish({ result: "limited", detail: `${detail}; not answered` });
      return answer({ result: "limited", detail }, REACTION.refused, formatSlowDown({ requests, windowMs, retryAfterMs: verdict.retryAfterMs }));
    }

    if (parseError) return answer({ result: "invalid", detail: parseError.message }, REACTION.invalid, concat(parseError.message));
    if (!spec) {
      return answer({ result: "invalid", detail: "unknown command" }, REACTION.invalid, this.unknownCommand(name));
    }
    const age = clock.now() - msg.sentAt;
    if (age > this.deps.maxCommandAgeMs) {
      return answer(
        { result: "expired", detail: `sent ${formatDuration(age)} before the bot saw it` },
        REACTION.refused,
        concat(
          "I did not run ",
          code(clipQuote(`${prefix}${msg.line}`)),
          `: it was sent ${formatDuration(age)} ago, while I was away, and commands older than ` +
            `${formatDuration(this.deps.maxCommandAgeMs)} are not run. Send it again if you still want it.`,
        ),
      );
    }
    let command: { spec: CommandSpec; words: readonly string[] };
    try {
      command = selectSubcommand(spec, words.slice(1), prefix);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return answer({ result: "invalid", detail: err.message }, REACTION.invalid, concat(err.message));
    }
    if (!allows(level, command.spec.level)) {
      const need = clan.thresholds[command.spec.level];
      return answer(
        { result: "refused", detail: `needs ${command.spec.level}` },
        REACTION.refused,
        concat(
          code(`${prefix}${command.spec.name}`),
          ` needs the ${command.spec.level} level (power level ${need} in this room); ` +
            `you have power level ${msg.sender.powerLevel}. A room admin can raise it.`,
        ),
      );
    }
    let input;
    try {
      input = bindInput(command.spec, command.words, `${prefix}${msg.line}`, prefix);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      return answer({ result: "invalid", detail: err.message }, REACTION.invalid, concat(err.message));
    }

    // A read-only command's answer is its sign: 👀 only when it is not there in a moment. Others show
    // at once that they were taken, and end with ✅ or ❌.
    const quiet = command.spec.readOnly === true;
    let taken: Promise<void> | undefined;
    const showTaken = (): Promise<void> =>
      channel.react(REACTION.taken).catch((err: unknown) => this.deps.log.warn({ err, room: msg.room }, "could not show that a command was taken"));
    const takenTimer = quiet ? setTimeout(() => (taken = showTaken()), TAKEN_AFTER_MS) : undefined;
    if (!quiet) taken = showTaken();
    let runId: number;
    try {
      [runId] = await Promise.all([runIdPromise, msg.claimed]);
    } catch (err) {
      clearTimeout(takenTimer);
      if (!isWriteFailure(err)) throw err;
      // Nothing may run that the bot could not remember having run: said from memory, not stored.
      this.deps.log.error({ err, room: msg.room, event: msg.eventId }, "cannot store a command; not running it");
      await channel.reply(cannotStore(`${prefix}${msg.line}`));
      await channel.react(REACTION.failed);
      return;
    }
    const afterwards: Array<Promise<void>> = [];
    const ctx: CommandContext = {
      sender: { ...msg.sender, level },
      clan: clan.view,
      store: clan.store,
      deploys: clan.deploys,
      backups: clan.backups,
      schedules: clan.schedules,
      ssh: clan.ssh,
      invites: clan.invites,
      vms: clan.vms,
      installReplyTimeoutMs: this.deps.installReplyTimeoutMs,
      confirmTimeoutMs: this.deps.confirmTimeoutMs,
      clock,
      log: this.deps.log,
      signal: this.stopping.signal,
      runId,
      prefix,
      thresholds: clan.thresholds,
      reply: (m) => channel.reply(m),
      replyFile: (f) => channel.replyFile(f),
      react: (k) => channel.react(k),
      confirm: async (question) => {
        const answer = await channel.ask(question, msg.sender.id, this.deps.confirmTimeoutMs);
        if (answer.confirmed) await this.refuseIfLevelLost(msg, command.spec, clan.thresholds, answer);
        return answer;
      },
      askFor: (question, timeoutMs, opts) => channel.askFor(question, msg.sender.id, timeoutMs, opts),
      ...(msg.place ? { place: msg.place } : {}),
      removeCommand: (reason) => removal ?? channel.removeCommand?.(reason) ?? Promise.resolve(false),
      extraWords,
      later: (work) => {
        // Caught at once, so that a failure while the outcome is being shown is not unhandled.
        afterwards.push(work.catch((err: unknown) => this.deps.log.warn({ err, runId, clan: msg.clan }, "work after a command's outcome failed")));
      },
    };
    try {
      try {
        const result = await command.spec.run(ctx, input);
        clearTimeout(takenTimer);
        if (result) await channel.reply(result);
        if (!quiet) await channel.react(REACTION.done);
        await finish({ result: "ok" });
      } catch (err) {
        clearTimeout(takenTimer);
        if (err instanceof ReportedFailure) {
          await channel.react(REACTION.failed);
          return finish({ result: "failed", detail: err.message });
        }
        if (err instanceof Refusal) return answer({ result: "refused", detail: err.message }, REACTION.refused, concat(err.message));
        if (err instanceof BadInput) return answer({ result: "invalid", detail: err.message }, REACTION.invalid, concat(err.message));
        if (err instanceof UserError || err instanceof ClanCliError) {
          return answer({ result: "failed", detail: err.message }, REACTION.failed, concat(err.message));
        }
        this.deps.log.error({ err, runId, clan: msg.clan, command: command.spec.name }, "command failed with an internal error");
        return answer(
          { result: "error", detail: err instanceof Error ? err.message : String(err) },
          REACTION.failed,
          concat(`Internal error (reference #${runId}). The details are in the bot's log.`),
        );
      }
    } finally {
      // The outcome is shown and audited; what the command left to finish (a last edit) ends before the run does.
      await Promise.all([...afterwards, taken]);
    }
  }

  /** A ✅ counts only while its sender still has the command's level: it may have been lowered since they asked. */
  private async refuseIfLevelLost(msg: Incoming, spec: CommandSpec, thresholds: LevelThresholds, answer: Confirmation): Promise<void> {
    if (!msg.powerLevelNow) return;
    const now = msg.powerLevelNow();
    if (allows(levelFor(now, thresholds), spec.level)) return;
    const text =
      `${msg.sender.name} now has power level ${now}, and ${this.deps.prefix}${spec.name} needs the ${spec.level} level ` +
      `(power level ${thresholds[spec.level]}): the ✅ does not count, nothing was done.`;
    await answer.question.edit(concat(text));
    throw new Refusal(text);
  }

  private unknownCommand(name: string): Message {
    const { table, prefix } = this.deps;
    const names = table.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    const guess = nearest(name, names);
    const suggestion = guess !== undefined ? concat(" Did you mean ", code(prefix + (findCommand(table, guess)?.name ?? guess)), "?") : "";
    return concat("I don't know the command ", code(clipQuote(prefix + name, 40)), ".", suggestion, " ", code(`${prefix}help`), " lists what I can do.");
  }
}
