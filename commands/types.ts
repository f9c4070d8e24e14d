import type { Backups, Schedules } from "./backup-types.ts";
import type { Deploys } from "./deploy-types.ts";
import type { Invites } from "./invite-types.ts";
import type { SshMachines } from "./ssh-types.ts";
import type { Message } from "./format.ts";
import type { Vms } from "./vm-types.ts";

/** Permission levels, mapped to room power levels per clan (defaults 0, 50, 100). */
export const LEVELS = ["viewer", "operator", "admin"] as const;
export type Level = (typeof LEVELS)[number];
export type LevelThresholds = Readonly<Record<Level, number>>;

export interface ArgSpec {
  readonly name: string;
  readonly summary: string;
  readonly required?: boolean;
  /** Takes the rest of the arguments. Only the last argument may be variadic. */
  readonly variadic?: boolean;
}

export type FlagType = "string" | "boolean" | "integer" | "duration";

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly summary: string;
  readonly multiple?: boolean;
  /** Shown in help: `--expires <duration>`. */
  readonly placeholder?: string;
}

export type FlagValue = string | boolean | number | string[] | number[];

/** What the dispatcher hands a command after checking it against the spec. */
export interface CommandInput {
  readonly args: readonly string[];
  readonly flags: Readonly<Record<string, FlagValue | undefined>>;
  /** The command line as typed, for audit and messages. */
  readonly line: string;
}

export interface Sender {
  readonly id: string;
  readonly name: string;
  readonly powerLevel: number;
  readonly level: Level | undefined;
}

/** A message the bot has sent and may edit while a job moves on. */
export interface SentMessage {
  edit(message: Message): Promise<void>;
}

/** A file to post: an image (QR codes) or a file (full logs). */
export interface Attachment {
  readonly name: string;
  readonly mimetype: string;
  readonly data: Uint8Array;
  /** Set for images: clients lay them out before downloading. */
  readonly image?: { readonly width: number; readonly height: number };
  /** For an image of a QR code: the text it encodes, so that a terminal can draw the code itself. */
  readonly qr?: string;
}

export interface Machine {
  readonly name: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly targetHost?: string;
  readonly machineClass?: string;
}

/** The clan a room is bound to, as commands see it: its name and what the clan CLI can tell. */
export interface ClanView {
  readonly name: string;
  readonly flake: string;
  /**
   * The inventory's machines, as last read (within `clan.inventoryCacheTtl`); `fresh` evaluates the
   * flake again, which only `!refresh` asks for: names people type are checked against the last read.
   */
  machines(signal: AbortSignal, fresh?: boolean): Promise<Machine[]>;
  /**
   * What clan itself would do with an update without names: machines it leaves out
   * (`requireExplicitUpdate`) and machines with no way to reach them (no inventory target, no
   * network route, no configured targetHost), which clan would pick and fail.
   */
  updatePlan?(signal: AbortSignal): Promise<UpdatePlan>;
  /** A machine's NixOS system generations, oldest first (`clan machines generations`). */
  generations?(machine: string, signal: AbortSignal): Promise<Generation[]>;
  /** A machine's vars as `clan vars list` shows them (secret values never: clan prints `********`). */
  vars?(machine: string, signal: AbortSignal): Promise<VarEntry[]>;
  /**
   * `clan vars set <machine> <var>` with the value on its stdin (never argv, never a file); resolves
   * with the flake's commit after it (clan commits the change).
   */
  setVar?(machine: string, varId: string, value: Uint8Array, signal: AbortSignal): Promise<{ commit: string | undefined }>;
  /** Each machine's `system.stateVersion`, as the flake sets it. */
  stateVersions?(signal: AbortSignal): Promise<Record<string, string>>;
}

/** One line of `clan vars list`: `generator/file: value`, `********` (a secret) or `<not set>`. */
export interface VarEntry {
  readonly id: string;
  readonly generator: string;
  readonly file: string;
  readonly state: "secret" | "public" | "missing";
  /** A public value as clan printed it (secret ones are never known). */
  readonly value?: string;
}

export interface Generation {
  readonly generation: number;
  readonly current: boolean;
  readonly date: string;
  readonly nixosVersion: string;
  readonly kernelVersion: string;
}

export interface UpdatePlan {
  readonly explicitOnly: ReadonlySet<string>;
  readonly noRoute: ReadonlySet<string>;
}

/**
 * `invalid`: what was typed is not a command the bot can run (nothing was tried); `limited`: not run,
 * the sender was over the command limit (answered once per window).
 */
export type AuditResult = "running" | "ok" | "failed" | "invalid" | "refused" | "limited" | "expired" | "error" | "interrupted";

export interface AuditEntry {
  readonly id: number;
  readonly sender: string;
  readonly line: string;
  readonly command: string;
  readonly startedAt: number;
  readonly finishedAt: number | undefined;
  readonly result: AuditResult;
}

/** The clan's own records, already scoped to it: a command cannot reach another clan's state. */
export interface ClanStore {
  recentCommands(limit: number): Promise<AuditEntry[]>;
}

export interface Clock {
  now(): number;
}

export interface Log {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** The answer to a question put to the sender (`confirm`): the question stays editable. */
export interface Confirmation {
  readonly confirmed: boolean;
  readonly question: SentMessage;
}

/** What the sender sent when asked for something: a text, or an image (already downloaded). */
export type ReplyContent =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "image"; readonly data: Uint8Array; readonly mimetype: string };

export interface ReceivedReply {
  readonly content: ReplyContent;
  /** Takes the message out of the room (it held a secret); false when the bot may not. */
  remove(reason: string): Promise<boolean>;
}

/** Where a command was sent: an encrypted room or not; a direct chat with just the sender and the bot, or a shared room. */
export interface CommandPlace {
  readonly encrypted: boolean;
  readonly direct: boolean;
}

/** Everything a command may touch. Built in one place (the dispatcher), narrow on purpose. */
export interface CommandContext {
  readonly sender: Sender;
  readonly clan: ClanView;
  readonly store: ClanStore;
  readonly clock: Clock;
  readonly log: Log;
  readonly signal: AbortSignal;
  /** The audit id of this run, shown to people so they can refer to it. */
  readonly runId: number;
  /** How people address the bot here, for examples in messages: "!" or "clanbot: ". */
  readonly prefix: string;
  readonly thresholds: LevelThresholds;
  readonly deploys: Deploys;
  readonly backups: Backups;
  readonly schedules: Schedules;
  readonly ssh: SshMachines;
  readonly invites: Invites;
  readonly vms: Vms;
  /** How long `!install` waits for the installer's QR code. */
  readonly installReplyTimeoutMs: number;
  /** How long `confirm` waits for the sender's ✅. */
  readonly confirmTimeoutMs: number;
  reply(message: Message): Promise<SentMessage>;
  replyFile(file: Attachment): Promise<void>;
  react(key: string): Promise<void>;
  /** Asks the sender: only their ✅ on the question, within `confirmTimeoutMs`, confirms. */
  confirm(question: Message): Promise<Confirmation>;
  /**
   * Asks the sender for something (a photo, a pasted text): their next such message within `timeoutMs`;
   * with `anyText`, any text message (a secret), even one that looks like a command.
   */
  askFor(question: Message, timeoutMs: number, opts?: { anyText?: boolean }): Promise<ReceivedReply | undefined>;
  /** Where the command was sent; undefined in the console. */
  readonly place?: CommandPlace;
  /** Takes the command's own message out of the room (a secret typed into it); false when the bot may not. */
  removeCommand(reason: string): Promise<boolean>;
  /** Words typed after a `keepWords` command's last kept word (never shown: they may be a secret). */
  readonly extraWords: number;
  /**
   * Work that goes on after the command's outcome is shown (✅ or ❌ on it, the audit row): the last
   * edit of a status message waiting for its gap, a log attachment. The bot waits for it before it
   * stops; a failure is logged.
   */
  later(work: Promise<void>): void;
}

export interface CommandSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly summary: string;
  readonly level: Level;
  readonly args: readonly ArgSpec[];
  readonly flags: readonly FlagSpec[];
  /**
   * Changes nothing (no machine, no clan, nothing the bot keeps but its own caches): its answer is its
   * outcome (no ✅; 👀 only while it takes more than a moment), and after a crash it is answered again.
   */
  readonly readOnly?: boolean;
  /**
   * Only this many words of the command line (the command's name included) are kept in the audit and
   * quoted in answers: what follows may be a secret typed by mistake (`!secret set nas x/y VALUE`).
   */
  readonly keepWords?: number;
  /** Extra lines for `!help <command>`. */
  readonly details?: string;
  /** What `!help <command>` adds about this bot's own set-up (which VM backend it found). */
  readonly helpNote?: (ctx: CommandContext) => string | undefined;
  /**
   * A command family (`!vm run|list|stop|logs`): the first word picks the subcommand, whose spec
   * (named "vm run", with its own level, arguments and flags) is checked and run instead. Without a
   * subcommand word, this spec's own `run` answers.
   */
  readonly subcommands?: readonly CommandSpec[];
  /** Returns the answer; a command that replies by itself (progress messages) returns nothing. */
  run(ctx: CommandContext, input: CommandInput): Promise<Message | void>;
}
