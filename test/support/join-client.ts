/** What a browser does with the join page, by hand: keep the check cookie from the form and post it back. */
export interface JoinForm {
  status: number;
  html: string;
  headers: Headers;
  cookie: string | undefined;
  check: string | undefined;
}

export async function openJoinPage(url: string, init: RequestInit = {}): Promise<JoinForm> {
  const res = await fetch(url, init);
  const html = await res.text();
  const cookie = res.headers.get("set-cookie")?.split(";")[0];
  const check = /name="check" value="([^"]+)"/.exec(html)?.[1];
  return { status: res.status, html, headers: res.headers, cookie, check };
}

export async function submitJoinForm(
  url: string,
  form: Pick<JoinForm, "cookie" | "check">,
  user: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; html: string; headers: Headers }> {
  const body = new URLSearchParams({ check: form.check ?? "", user });
  const res = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/x-www-form-urlencoded", ...(form.cookie ? { cookie: form.cookie } : {}), ...headers },
  });
  return { status: res.status, html: await res.text(), headers: res.headers };
}

/** The page's visible text, without tags: what a person reads. */
export function visibleText(html: string): string {
  return html
    .replace(/<head>[\s\S]*?<\/head>/g, "")
    .replace(/<[^>]+>/g, " ")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")
    .replace(/\s+/g, " ")
    .trim();
}
