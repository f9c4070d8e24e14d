/**
 * Runs at most `width` tasks at once; the others wait their turn, in order. At start a bot may be
 * invited into a thousand rooms at once: joining and greeting them a few at a time keeps hundreds
 * of requests (each with its sockets, buffers and promises alive for seconds) from piling up.
 */
export class Concurrency {
  private readonly width: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(width: number) {
    this.width = width;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running < this.width) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      // The slot passes straight to the next task in line, or is given back.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
