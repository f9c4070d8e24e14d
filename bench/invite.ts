// !invite: QR code creation per join code, and the join page's throughput on one core.
import { execFileSync, spawn } from "node:child_process";
import { qrPng } from "../ops/qr-png.ts";
import { newInviteToken } from "../ops/invite-token.ts";
import { freePort } from "../test/support/fake-machine.ts";
import { summarize, type Summary } from "./stats.ts";

const SERVER = new URL("./join-server-child.ts", import.meta.url).pathname;
const LOAD = new URL("./http-load.ts", import.meta.url).pathname;

export interface InviteBenchResult {
  qr: Summary;
  /** Pinned to one core each (server, load) when taskset is there. */
  pinned: boolean;
  connections: number;
  requests: number;
  rps: number;
  latency: Summary;
  statuses: Record<number, number>;
  errors: number;
}

function hasTaskset(): boolean {
  try {
    execFileSync("taskset", ["-c", "0", "true"]);
    return true;
  } catch {
    return false;
  }
}

/** `node args` pinned to `core` when possible. */
function nodeOn(core: number, pinned: boolean, args: string[]) {
  const [cmd, argv] = pinned ? ["taskset", ["-c", String(core), process.execPath, ...args]] : [process.execPath, args];
  return spawn(cmd as string, argv as string[], { stdio: ["ignore", "pipe", "inherit"] });
}

export async function runInviteBench(o: { qrCodes: number; seconds: number; connections: number; progress: (l: string) => void }): Promise<InviteBenchResult> {
  o.progress(`invite: ${o.qrCodes} QR codes`);
  const times: number[] = [];
  for (let i = 0; i < o.qrCodes + 20; i++) {
    const link = `https://join.example.org/join/${newInviteToken()}`;
    const start = performance.now();
    qrPng(link);
    if (i >= 20) times.push(performance.now() - start);
  }

  const pinned = hasTaskset();
  const port = await freePort();
  o.progress(`invite: join page on ${pinned ? "core 0" : "any core"}, ${o.connections} connections for ${o.seconds} s`);
  const server = nodeOn(0, pinned, [SERVER, String(port)]);
  try {
    const link = await new Promise<string>((resolve, reject) => {
      let out = "";
      server.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /READY (\S+)\n/.exec(out);
        if (m) resolve(m[1] as string);
      });
      server.once("exit", (code) => reject(new Error(`the join page server exited (${code})`)));
    });
    const load = nodeOn(1, pinned, [LOAD, link, String(o.connections), String(o.seconds)]);
    let out = "";
    load.stdout?.on("data", (c: Buffer) => (out += c.toString()));
    await new Promise<void>((resolve) => load.once("exit", () => resolve()));
    const r = JSON.parse(out) as { count: number; elapsedMs: number; latencies: number[]; statuses: Record<number, number>; errors: number };
    return {
      qr: summarize(times),
      pinned,
      connections: o.connections,
      requests: r.count,
      rps: r.count / (r.elapsedMs / 1000),
      latency: summarize(r.latencies),
      statuses: r.statuses,
      errors: r.errors,
    };
  } finally {
    server.kill("SIGKILL");
  }
}
