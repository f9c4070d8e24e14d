/** One place in a machine's line: the first holds the machine, the others wait in order. */
export interface QueueTicket<T> {
  /** Resolves when this ticket holds the machine. */
  readonly granted: Promise<void>;
  /** 0 while holding the machine, else how many are ahead. */
  position(): number;
  /** Who holds the machine now. */
  holder(): T | undefined;
  /** Gives up the place (or the machine, passing it to the next). Safe to call twice. */
  leave(): void;
}

interface Entry<T> {
  owner: T;
  grant: () => void;
}

/**
 * One line per machine: only the first in line may act on the machine, the rest wait their turn.
 * `onChange` hears every move of a machine's line, so waiting deploys can show their position.
 */
export class MachineQueue<T> {
  private readonly lines = new Map<string, Entry<T>[]>();
  private readonly onChange: (machine: string) => void;

  constructor(onChange: (machine: string) => void = () => undefined) {
    this.onChange = onChange;
  }

  enter(machine: string, owner: T): QueueTicket<T> {
    const line = this.lines.get(machine) ?? [];
    this.lines.set(machine, line);
    let grant!: () => void;
    const granted = new Promise<void>((resolve) => (grant = resolve));
    const entry: Entry<T> = { owner, grant };
    line.push(entry);
    if (line.length === 1) grant();
    let left = false;
    return {
      granted,
      position: () => line.indexOf(entry),
      holder: () => line[0]?.owner,
      leave: () => {
        if (left) return;
        left = true;
        const at = line.indexOf(entry);
        line.splice(at, 1);
        if (line.length === 0) this.lines.delete(machine);
        else if (at === 0) line[0]?.grant();
        this.onChange(machine);
      },
    };
  }

  /** Who is in a machine's line, holder first. */
  owners(machine: string): T[] {
    return (this.lines.get(machine) ?? []).map((e) => e.owner);
  }
}

/** Whatever holds a machine in a clan's shared line: a deploy (rollback, install, restore) or a backup. */
export interface MachineHolder {
  /** The audit id people call it by (`#42`). */
  readonly id: number;
  readonly sender: string;
  /** What it does to the machine, for those waiting behind it: "deploying it", "backing it up". */
  readonly activity: string;
  /** Since when it has been doing that to `machine`. */
  since(machine: string): number;
  /** Its place in `machine`'s line moved. */
  moved(machine: string): void;
}

/**
 * The one line per machine that a clan's deploys and backups share, so that nothing runs on a
 * machine while another run holds it; every move is told to those in that machine's line.
 */
export function sharedMachineQueue(): MachineQueue<MachineHolder> {
  const queue: MachineQueue<MachineHolder> = new MachineQueue((machine) => {
    for (const holder of queue.owners(machine)) holder.moved(machine);
  });
  return queue;
}

/** At most `size` at once; the rest wait in order. */
export class Slots {
  private readonly size: number;
  private used = 0;
  private readonly waiting: { take: () => void }[] = [];

  constructor(size: number) {
    this.size = size;
  }

  get inUse(): number {
    return this.used;
  }

  /** Resolves with the function that gives the slot back; rejects if `signal` aborts while waiting. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    const release = (): (() => void) => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        this.used--;
        const next = this.waiting.shift();
        if (next) next.take();
      };
    };
    if (this.used < this.size) {
      this.used++;
      return Promise.resolve(release());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        take: () => {
          signal?.removeEventListener("abort", onAbort);
          this.used++;
          resolve(release());
        },
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(waiter);
        if (at !== -1) this.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  /** Runs `task` in a slot once one is free, and gives the slot back when it ends, however it ends. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }
}
