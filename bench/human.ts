// The human side, kept cheap: plain Client-Server API calls with fetch and an access token,
// no syncing client (answers are observed server-side through the event tap).
const V3 = "/_matrix/client/v3";

export interface Account {
  userId: string;
  accessToken: string;
  deviceId: string;
}

export class Human {
  readonly account: Account;
  private readonly base: string;
  private txn = 0;
  private readonly prefix = `bench-${process.pid}-${Date.now()}`;

  constructor(homeserver: string, account: Account) {
    this.base = homeserver;
    this.account = account;
  }

  private async call<T>(method: string, path: string, body: unknown): Promise<T> {
    const res = await fetch(`${this.base}${V3}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.account.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text) as T;
  }

  async createRoom(name: string, invite: readonly string[]): Promise<string> {
    const { room_id } = await this.call<{ room_id: string }>("POST", "/createRoom", { name, preset: "private_chat", invite });
    return room_id;
  }

  async join(roomId: string): Promise<void> {
    await this.call("POST", `/join/${encodeURIComponent(roomId)}`, {});
  }

  /** Sends a text message; resolves with its event id. */
  async say(roomId: string, body: string): Promise<string> {
    const txnId = `${this.prefix}-${++this.txn}`;
    const path = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`;
    const { event_id } = await this.call<{ event_id: string }>("PUT", path, { msgtype: "m.text", body });
    return event_id;
  }
}
