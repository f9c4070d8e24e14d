import type { Db } from "./db.ts";

/**
 * Schema changes, in order. Migration N brings the file to `PRAGMA user_version = N`.
 * Never edit one that has shipped: add the next. Every table is keyed by clan where it holds clan state.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clan TEXT NOT NULL,
    room TEXT NOT NULL,
    sender TEXT NOT NULL,
    command TEXT NOT NULL,
    line TEXT NOT NULL,
    event_id TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    result TEXT NOT NULL,
    detail TEXT
  );
  CREATE INDEX audit_by_clan ON audit (clan, id DESC);

  -- Events the bot has taken, so that no command runs twice (restarts replay sync).
  CREATE TABLE handled_events (
    event_id TEXT PRIMARY KEY,
    clan TEXT NOT NULL,
    handled_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX handled_events_by_time ON handled_events (handled_at);

  -- The bot's own login, so that restarts reuse its device (and, later, its crypto store).
  CREATE TABLE matrix_session (
    homeserver TEXT NOT NULL,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    access_token TEXT NOT NULL,
    PRIMARY KEY (homeserver, user_id)
  );

  -- The accumulated sync (rooms' state and the position to resume from).
  CREATE TABLE sync_state (
    user_id TEXT PRIMARY KEY,
    next_batch TEXT NOT NULL,
    data TEXT NOT NULL,
    saved_at INTEGER NOT NULL
  );
  `,
  `
  -- A deploy (or dry run) of one or more machines; its id is the audit id of the command that started it.
  CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    clan TEXT NOT NULL,
    room TEXT NOT NULL,
    event_id TEXT,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    revision TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    result TEXT NOT NULL,
    cancelled_by TEXT,
    log_path TEXT,
    -- 0 while an interrupted deploy has not been told to its room yet.
    announced INTEGER NOT NULL DEFAULT 1
  );
  CREATE INDEX deploys_by_clan ON deploys (clan, id DESC);
  CREATE INDEX deploys_by_result ON deploys (result);

  CREATE TABLE deploy_machines (
    deploy_id INTEGER NOT NULL REFERENCES deploys (id),
    machine TEXT NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    store_path TEXT,
    -- The clan process (leader of its process group) and its start time, to find it again after a crash.
    pid INTEGER,
    pid_start TEXT,
    PRIMARY KEY (deploy_id, machine)
  ) WITHOUT ROWID;
  CREATE INDEX deploy_machines_by_machine ON deploy_machines (machine, deploy_id DESC);

  -- !lock: keeps others from deploying a machine until it is unlocked or expires.
  CREATE TABLE machine_locks (
    clan TEXT NOT NULL,
    machine TEXT NOT NULL,
    holder TEXT NOT NULL,
    reason TEXT,
    since INTEGER NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (clan, machine)
  ) WITHOUT ROWID;
  `,
  `
  -- SSH host keys pinned on first contact with a machine (or accepted with !trust).
  CREATE TABLE host_keys (
    clan TEXT NOT NULL,
    machine TEXT NOT NULL,
    -- The address it was first seen at (host or [host]:port), for people reading the table.
    host TEXT NOT NULL,
    key_type TEXT NOT NULL,
    key_base64 TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    pinned_at INTEGER NOT NULL,
    pinned_by TEXT NOT NULL,
    PRIMARY KEY (clan, machine)
  ) WITHOUT ROWID;
  `,
  `
  -- Join codes (!invite): only a hash of the token is kept; a use is taken in one UPDATE, so it is atomic.
  CREATE TABLE invites (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clan TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    creator TEXT NOT NULL,
    creator_name TEXT NOT NULL,
    note TEXT,
    max_uses INTEGER NOT NULL,
    uses_left INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_by TEXT,
    revoked_at INTEGER
  );
  CREATE INDEX invites_by_clan ON invites (clan, id DESC);

  -- Who was invited through which code, when, and when they joined the room.
  CREATE TABLE invite_uses (
    invite_id INTEGER NOT NULL REFERENCES invites (id),
    user_id TEXT NOT NULL,
    used_at INTEGER NOT NULL,
    joined_at INTEGER
  );
  CREATE INDEX invite_uses_by_user ON invite_uses (user_id, joined_at);
  `,
  `
  -- !vm run: a VM of a clan machine on the bot's host; its id is the audit id of the command that started it.
  CREATE TABLE vms (
    id INTEGER PRIMARY KEY,
    clan TEXT NOT NULL,
    machine TEXT NOT NULL,
    sender TEXT NOT NULL,
    backend TEXT NOT NULL,
    -- JSON: [{"host": 8080, "guest": 80}, ...]
    ports TEXT NOT NULL,
    log_path TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    -- building, running, or how it ended (stopped, killed, exited, crashed, failed, lost, interrupted).
    result TEXT NOT NULL,
    -- The leader of the VM's process group and its start time, to find it again after a restart.
    pid INTEGER,
    pid_start TEXT,
    ended_at INTEGER,
    exit_code INTEGER,
    exit_signal TEXT,
    stopped_by TEXT,
    reason TEXT
  );
  CREATE INDEX vms_by_clan ON vms (clan, machine, id DESC);
  CREATE INDEX vms_by_result ON vms (result);
  `,
  `
  -- One backup run of one machine (clan backups create), by a command or a schedule. Its id is the
  -- audit id of the command, or of the audit row a scheduled run writes for itself.
  CREATE TABLE backup_runs (
    id INTEGER PRIMARY KEY,
    clan TEXT NOT NULL,
    machine TEXT NOT NULL,
    provider TEXT,
    sender TEXT NOT NULL,
    schedule_id INTEGER,
    -- The slot a scheduled run was for, and whether it fell due while the bot was down.
    due_at INTEGER,
    late INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER NOT NULL,
    run_started_at INTEGER,
    finished_at INTEGER,
    -- running, ok, failed, cancelled, timed-out, skipped, interrupted
    result TEXT NOT NULL,
    archive TEXT,
    exit_code INTEGER,
    tail TEXT,
    note TEXT,
    -- The clan process (leader of its process group) and its start time, to find it again after a crash.
    pid INTEGER,
    pid_start TEXT,
    -- 0 while the room has not been told how it ended (scheduled runs, and runs the bot did not see end).
    announced INTEGER NOT NULL DEFAULT 1
  );
  CREATE INDEX backup_runs_by_machine ON backup_runs (clan, machine, id DESC);
  CREATE INDEX backup_runs_by_result ON backup_runs (result);

  -- !schedule backup: when to back up which machines. next_due is the next slot, kept so that a
  -- restart finds the runs that fell due while the bot was down.
  CREATE TABLE backup_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clan TEXT NOT NULL,
    target TEXT NOT NULL,
    cron TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    notify TEXT NOT NULL,
    provider TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    next_due INTEGER NOT NULL
  );
  CREATE INDEX backup_schedules_by_clan ON backup_schedules (clan, id);

  -- Machines the room was told are overdue (no successful backup for backup.maxAge): one alert
  -- each, until a backup succeeds again.
  CREATE TABLE backup_alerts (
    clan TEXT NOT NULL,
    machine TEXT NOT NULL,
    raised_at INTEGER NOT NULL,
    PRIMARY KEY (clan, machine)
  ) WITHOUT ROWID;
  `,
  `
  -- The accumulated sync, one row a room (sync_state keeps the position and the account data), so
  -- a save writes the rooms that changed since the last one instead of every room as one string.
  -- sync_state.data of an older version still holds all rooms; the next save moves them here.
  CREATE TABLE sync_rooms (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (user_id, room_id)
  ) WITHOUT ROWID;
  `,
  `
  -- What the bot is to post in rooms, stored before it is sent, so that nothing it promised is lost
  -- when it dies, and nothing is posted twice: each row is sent with its own transaction id (the
  -- homeserver answers a repeat with the first event), and the once key makes a notice unique (an
  -- "interrupted" notice, a greeting). A row that relates to another one (an edit of a status message,
  -- a reaction on a question) names it in target, whose event id is known only once it is sent.
  -- The content is dropped once sent: a join link does not stay in the file.
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content TEXT NOT NULL,
    target INTEGER REFERENCES outbox (id) ON DELETE SET NULL,
    once TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    event_id TEXT,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed'))
  );
  CREATE INDEX outbox_pending ON outbox (id) WHERE state = 'pending';
  CREATE INDEX outbox_by_lane ON outbox (lane);
  -- Claims without a command row are found at start (a crash between the two): by event id.
  CREATE INDEX audit_by_event ON audit (event_id);
  `,
];

export async function migrate(db: Db, migrations: readonly string[] = MIGRATIONS): Promise<number> {
  const row = await db.get<{ user_version: number }>("PRAGMA user_version");
  const current = row?.user_version ?? 0;
  if (current > migrations.length) {
    throw new Error(
      `The database is at schema version ${current}, newer than this clanbot knows (${migrations.length}); upgrade clanbot.`,
    );
  }
  for (let version = current + 1; version <= migrations.length; version++) {
    await db.transaction(async (q) => {
      await q.exec(migrations[version - 1] as string);
      await q.exec(`PRAGMA user_version = ${version}`);
    });
  }
  return migrations.length;
}
