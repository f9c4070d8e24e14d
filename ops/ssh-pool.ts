import type { SshSession } from "./ssh-connection.ts";

/**
 * SSH connections kept open for a while after use, as OpenSSH's ControlPersist does: the next
 * status of a machine within `keepMs` skips the TCP and SSH handshakes (several round trips each,
 * which is what a status costs on a distant network). One idle connection per machine and address;
 * one in use is never shared. A connection the machine closed meanwhile is dropped, not reused.
 */
export class SshPool {
  private readonly keepMs: number;
  private readonly idle = new Map<string, { session: SshSession; timer: NodeJS.Timeout }>();

  constructor(keepMs: number) {
    this.keepMs = keepMs;
  }

  /** An idle open connection for `key`, taken out of the pool; undefined when there is none. */
  take(key: string): SshSession | undefined {
    const found = this.idle.get(key);
    if (!found) return undefined;
    this.idle.delete(key);
    clearTimeout(found.timer);
    return found.session.isOpen ? found.session : undefined;
  }

  /** Keeps a connection that worked for `keepMs`, or closes it when the pool keeps none. */
  give(key: string, session: SshSession): void {
    if (this.keepMs <= 0 || !session.isOpen) return session.close();
    const old = this.idle.get(key);
    if (old) {
      clearTimeout(old.timer);
      old.session.close();
    }
    const timer = setTimeout(() => {
      if (this.idle.get(key)?.session === session) this.idle.delete(key);
      session.close();
    }, this.keepMs);
    timer.unref();
    this.idle.set(key, { session, timer });
  }

  /** Closes the idle connections of keys starting with `prefix` (a machine that rebooted, a new host key). */
  drop(prefix: string): void {
    for (const [key, { session, timer }] of this.idle) {
      if (!key.startsWith(prefix)) continue;
      clearTimeout(timer);
      session.close();
      this.idle.delete(key);
    }
  }

  close(): void {
    this.drop("");
  }
}
