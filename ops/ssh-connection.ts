import { connect as tcpConnect } from "node:net";
import ssh2, { type PublicKeyAuthMethod } from "ssh2";
import { hostKeyOf, type HostKey, type HostKeyVerdict } from "./host-keys.ts";
import type { SshTarget } from "./ssh-target.ts";

export type SshFailure =
  | "unreachable"
  | "timeout"
  | "host-key-changed"
  | "host-key-unknown"
  | "auth"
  | "closed"
  | "cancelled";

/** Why a machine could not be reached or a remote command did not finish, in words for the room. */
export class SshError extends Error {
  override readonly name = "SshError";
  readonly kind: SshFailure;
  readonly verdict: HostKeyVerdict | undefined;
  constructor(kind: SshFailure, message: string, verdict?: HostKeyVerdict) {
    super(message);
    this.kind = kind;
    this.verdict = verdict;
  }
}

export interface ConnectOptions {
  target: SshTarget;
  privateKey: string;
  /** Whether the offered host key is the right one (pinning or known_hosts). */
  verifyHostKey(key: HostKey): Promise<HostKeyVerdict>;
  /** Connecting, the handshake and logging in together. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ExecOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Every output line as it comes (both streams); without it, output is only collected. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** At most this much of each stream is kept for the result. */
  maxOutputChars?: number;
}

export interface ExecResult {
  /** undefined when the command ended without an exit status (killed, or the connection dropped). */
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** The connection ended before the command reported how it ended (a reboot does this). */
  dropped: boolean;
}

/** One SSH connection to a machine: fixed commands from the bot's code run on it, each with a timeout. */
export class SshSession {
  readonly hostKey: HostKey;
  readonly pinnedNow: boolean;
  private readonly client: ssh2.Client;
  private closed = false;

  constructor(client: ssh2.Client, hostKey: HostKey, pinnedNow: boolean) {
    this.client = client;
    this.hostKey = hostKey;
    this.pinnedNow = pinnedNow;
    client.once("close", () => (this.closed = true));
  }

  exec(command: string, o: ExecOptions): Promise<ExecResult> {
    if (this.closed) return Promise.reject(new SshError("closed", "the connection is closed"));
    const max = o.maxOutputChars ?? 1024 * 1024;
    return new Promise((resolve, reject) => {
      let settled = false;
      let channel: ssh2.ClientChannel | undefined;
      const out = { stdout: "", stderr: "" };
      const partial = { stdout: "", stderr: "" };
      let exitCode: number | undefined;
      let exitSignal: string | undefined;
      let gotExit = false;
      const finish = (err?: SshError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        this.client.removeListener("close", onClose);
        for (const s of ["stdout", "stderr"] as const) if (partial[s]) o.onLine?.(partial[s], s);
        if (err) {
          channel?.close();
          reject(err);
        } else resolve({ exitCode, signal: exitSignal, ...out, dropped: !gotExit });
      };
      const onAbort = (): void => {
        // Closing the connection is what stops a remote command for sure: sshd hangs up its session.
        this.close();
        finish(new SshError("cancelled", "cancelled"));
      };
      const onClose = (): void => finish();
      const timer = setTimeout(() => {
        this.close();
        finish(new SshError("timeout", `the command did not finish within ${Math.round(o.timeoutMs / 1000)} s`));
      }, o.timeoutMs);
      if (o.signal?.aborted) return onAbort();
      o.signal?.addEventListener("abort", onAbort, { once: true });
      this.client.once("close", onClose);
      this.client.exec(command, (err, ch) => {
        if (err) return finish(new SshError("closed", `the machine refused to run a command: ${err.message}`));
        channel = ch;
        const take = (stream: "stdout" | "stderr") => (chunk: Buffer) => {
          const text = chunk.toString("utf8");
          if (out[stream].length < max) out[stream] += text.slice(0, max - out[stream].length);
          if (!o.onLine) return;
          const parts = (partial[stream] + text).split("\n");
          partial[stream] = parts.pop() ?? "";
          for (const line of parts) o.onLine(line.replace(/\r$/, ""), stream);
        };
        ch.on("data", take("stdout"));
        ch.stderr.on("data", take("stderr"));
        ch.on("exit", (code: number | null, signal?: string) => {
          gotExit = true;
          exitCode = code ?? undefined;
          exitSignal = signal;
        });
        ch.on("close", () => finish());
      });
    });
  }

  /** Not closed by either side yet: a kept connection is only reused while this holds. */
  get isOpen(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.end();
    // end() waits for the server; destroy() makes sure a hung connection goes away too.
    setTimeout(() => this.client.destroy(), 1000).unref();
  }
}

/**
 * Connects and logs in with the bot's key, checking the host key first. Fails with an SshError
 * that says what went wrong: not reachable, too slow, a changed or unknown host key, not authorized.
 */
export function connectSsh(o: ConnectOptions): Promise<SshSession> {
  const { target } = o;
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let verdict: HostKeyVerdict | undefined;
    let offered: HostKey | undefined;
    let settled = false;
    const fail = (err: SshError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      client.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new SshError("cancelled", "cancelled"));
    // ssh2's readyTimeout starts after the TCP connection; this one covers everything.
    const timer = setTimeout(() => fail(new SshError("timeout", `no answer within ${Math.round(o.timeoutMs / 1000)} s`)), o.timeoutMs);
    if (o.signal?.aborted) return onAbort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    client.on("ready", () => {
      if (settled) return client.end();
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      resolve(new SshSession(client, offered as HostKey, verdict?.ok === true && verdict.pinned === true));
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (verdict && !verdict.ok) {
        return fail(
          verdict.reason === "changed"
            ? new SshError("host-key-changed", `its host key changed: it was ${verdict.expected}, it is now ${verdict.offered.fingerprint}`, verdict)
            : new SshError("host-key-unknown", `its host key ${verdict.offered.fingerprint} is not in ${verdict.source}`, verdict),
        );
      }
      if (err.level === "client-authentication") {
        return fail(new SshError("auth", `${target.user}@${target.host} does not accept the bot's SSH key`));
      }
      if (err.level === "client-timeout") return fail(new SshError("timeout", `no answer within ${Math.round(o.timeoutMs / 1000)} s`));
      const code = err.code ? ` (${err.code})` : "";
      fail(new SshError("unreachable", `cannot connect to ${target.host}:${target.port}${code}${err.code ? "" : `: ${err.message}`}`));
    });
    client.on("close", () => fail(new SshError("closed", "the connection closed during login")));
    // ssh2 leaves Nagle's algorithm on: with delayed ACKs every round trip of the login then waits
    // ~40 ms (200 ms for a login instead of 30 on loopback). Our own socket, without the delay.
    const sock = tcpConnect({ host: target.host, port: target.port });
    const byKey: PublicKeyAuthMethod = { type: "publickey", username: target.user, key: o.privateKey };
    sock.setNoDelay(true);
    client.connect({
      sock,
      username: target.user,
      privateKey: o.privateKey,
      // Straight to the key: no "none" attempt first, one round trip less.
      authHandler: [byKey],
      readyTimeout: o.timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      // No agent, no password, no keyboard-interactive: the bot's key or nothing.
      tryKeyboard: false,
      hostVerifier: (blob: Buffer, verify: (ok: boolean) => void) => {
        offered = hostKeyOf(blob);
        o.verifyHostKey(offered).then(
          (v) => {
            verdict = v;
            verify(v.ok);
          },
          (err: unknown) => {
            fail(new SshError("closed", `the host key could not be checked: ${err instanceof Error ? err.message : String(err)}`));
            verify(false);
          },
        );
      },
    });
  });
}
