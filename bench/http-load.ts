// A closed-loop HTTP load generator: `connections` keep-alive connections, each sending GET <url>
// one after another for `seconds`; prints one JSON line of counts and latencies (ms).
import { Agent, get } from "node:http";

const [url, connections, seconds] = [process.argv[2] as string, Number(process.argv[3]), Number(process.argv[4])];
const agent = new Agent({ keepAlive: true, maxSockets: connections });
const latencies: number[] = [];
const statuses: Record<number, number> = {};
let errors = 0;

function once(): Promise<void> {
  const start = performance.now();
  return new Promise((resolve) => {
    get(url, { agent }, (res) => {
      res.resume();
      res.on("end", () => {
        latencies.push(performance.now() - start);
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
        resolve();
      });
    }).on("error", () => {
      errors++;
      resolve();
    });
  });
}

// Warm-up, not counted.
const warmEnd = performance.now() + 1000;
await Promise.all(Array.from({ length: connections }, async () => { while (performance.now() < warmEnd) await once(); }));
latencies.length = 0;
for (const k of Object.keys(statuses)) delete statuses[Number(k)];
const begin = performance.now();
const end = begin + seconds * 1000;
await Promise.all(Array.from({ length: connections }, async () => { while (performance.now() < end) await once(); }));
const elapsed = performance.now() - begin;
agent.destroy();
process.stdout.write(`${JSON.stringify({ count: latencies.length, elapsedMs: elapsed, latencies, statuses, errors })}\n`);
