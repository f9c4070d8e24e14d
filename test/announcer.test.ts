import assert from "node:assert/strict";
import { test } from "node:test";
import { Announcer } from "../bot/announcer.ts";
import type { Message } from "../commands/format.ts";

const note = (text: string): Message => ({ text, html: text });
const quiet = () => {
  const errors: string[] = [];
  const log = { info: () => {}, warn: (_f: object, m: string) => errors.push(m), error: (_f: object, m: string) => errors.push(m) };
  return { log, errors };
};

test("announcements made before a front end connects are posted, in order, when it does", async () => {
  const { log } = quiet();
  const announcer = new Announcer(log);
  assert.equal(await announcer.announce("home", note("first")), false);
  assert.equal(await announcer.announce("work", note("second")), false);
  const posted: string[] = [];
  await announcer.connect(async (clan, m) => void posted.push(`${clan}: ${m.text}`));
  assert.deepEqual(posted, ["home: first", "work: second"]);
  assert.equal(await announcer.announce("home", note("third")), true);
  assert.deepEqual(posted, ["home: first", "work: second", "home: third"]);
});

test("a failed post is logged and reported as not posted; later ones still go out", async () => {
  const { log, errors } = quiet();
  const announcer = new Announcer(log);
  const posted: string[] = [];
  await announcer.connect(async (_clan, m) => {
    if (m.text === "bad") throw new Error("homeserver went away");
    posted.push(m.text);
  });
  assert.equal(await announcer.announce("home", note("bad")), false);
  assert.equal(await announcer.announce("home", note("good")), true);
  assert.deepEqual(posted, ["good"]);
  assert.deepEqual(errors, ["could not post an announcement in the clan's room"]);
});

test("while no front end is connected, only the newest announcements are kept", async () => {
  const { log, errors } = quiet();
  const announcer = new Announcer(log, 2);
  for (const t of ["a", "b", "c"]) await announcer.announce("home", note(t));
  const posted: string[] = [];
  await announcer.connect(async (_clan, m) => void posted.push(m.text));
  assert.deepEqual(posted, ["b", "c"]);
  assert.equal(errors.length, 1);
  announcer.disconnect();
  assert.equal(await announcer.announce("home", note("d")), false);
});
