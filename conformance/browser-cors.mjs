// CORS from a real browser: pages served from two other origins (tiny
// static servers started here) call Tandem's /graphql with fetch(), a
// bearer token and Apollo's and trace-context headers, so the browser
// sends a preflight first.
//
// Protocol with the test that runs it: this script prints
//   ORIGINS {"allowed": "http://127.0.0.1:P1", "refused": "http://127.0.0.1:P2"}
// and reads one line
//   TANDEM {"url": "http://127.0.0.1:P/graphql", "token": "…"}
// from a Tandem server that allows only the first origin, with a request
// budget of a few requests a minute. It checks that the allowed page gets
// data, then a 429 whose Retry-After and RateLimit headers its script can
// read; and that the refused page's fetch fails with a CORS error. Prints
// "cors browser: OK" or fails.
import { createServer } from "node:http";
import { createInterface } from "node:readline";

import { deadline, fail, launch } from "./browser.mjs";

deadline(90);

// The page: a script that calls Tandem as a front end would.
const PAGE = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>A front end</title></head>
<body><h1>A front end on another origin</h1>
<script>
  window.callTandem = async (url, token) => {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/graphql-response+json",
          Authorization: "Bearer " + token,
          "apollographql-client-name": "cors-test",
          "apollographql-client-version": "1.0.0",
          traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
        body: JSON.stringify({ query: "{ me { subject roles } }" }),
      });
      const header = (name) => response.headers.get(name);
      return {
        status: response.status,
        body: await response.json(),
        retryAfter: header("retry-after"),
        limit: header("ratelimit-limit"),
        remaining: header("ratelimit-remaining"),
        reset: header("ratelimit-reset"),
        policy: header("ratelimit-policy"),
      };
    } catch (error) {
      return { error: String(error) };
    }
  };
</script></body></html>`;

function serve() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    });
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

const origin = (server) => `http://127.0.0.1:${server.address().port}`;
const allowedServer = await serve();
const refusedServer = await serve();
const allowed = origin(allowedServer);
const refused = origin(refusedServer);
console.log(`ORIGINS ${JSON.stringify({ allowed, refused })}`);

const lines = createInterface({ input: process.stdin });
const tandem = await new Promise((resolve) => {
  lines.on("line", (line) => {
    if (line.startsWith("TANDEM ")) resolve(JSON.parse(line.slice("TANDEM ".length)));
  });
});
lines.close();

const browser = await launch();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  const console_ = [];
  page.on("console", (message) => console_.push(message.text()));

  // The allowed origin: data, then (past the budget) a readable 429.
  await page.goto(`${allowed}/`);
  const first = await page.evaluate(([url, token]) => window.callTandem(url, token), [tandem.url, tandem.token]);
  if (first.error) fail(`the allowed origin's fetch failed: ${first.error}\n${console_.join("\n")}`);
  if (first.status !== 200 || first.body?.data?.me?.subject !== tandem.subject) {
    fail(`the allowed origin got ${JSON.stringify(first)}`);
  }
  console.log(`allowed origin ${allowed}: data ${JSON.stringify(first.body.data)}`);
  let limited = null;
  for (let i = 0; i < 10 && !limited; i++) {
    const r = await page.evaluate(([url, token]) => window.callTandem(url, token), [tandem.url, tandem.token]);
    if (r.error) fail(`a later fetch failed: ${r.error}`);
    if (r.status === 429) limited = r;
  }
  if (!limited) fail("no 429 within 10 requests past the budget");
  if (limited.body?.errors?.[0]?.extensions?.code !== "RATE_LIMITED") fail(`429 body: ${JSON.stringify(limited.body)}`);
  const retryAfter = Number(limited.retryAfter);
  if (!Number.isInteger(retryAfter) || retryAfter < 1) fail(`Retry-After not readable: ${JSON.stringify(limited)}`);
  if (limited.limit !== String(tandem.limit) || limited.remaining !== "0" || Number(limited.reset) < 1 || !limited.policy) {
    fail(`RateLimit headers not readable: ${JSON.stringify(limited)}`);
  }
  console.log(
    `allowed origin: 429 with Retry-After ${limited.retryAfter}, RateLimit-Limit ${limited.limit}, ` +
      `RateLimit-Remaining ${limited.remaining}, RateLimit-Reset ${limited.reset}, RateLimit-Policy ${limited.policy}`,
  );

  // The refused origin: the browser blocks the call.
  await page.goto(`${refused}/`);
  console_.length = 0;
  const blocked = await page.evaluate(([url, token]) => window.callTandem(url, token), [tandem.url, tandem.token]);
  if (!blocked.error) fail(`the refused origin got an answer: ${JSON.stringify(blocked)}`);
  await page.waitForTimeout(200);
  if (!console_.some((text) => text.includes("CORS policy"))) {
    fail(`no CORS error reported for the refused origin: ${blocked.error}\n${console_.join("\n")}`);
  }
  console.log(`refused origin ${refused}: ${blocked.error} (${console_.find((t) => t.includes("CORS policy"))})`);
  console.log("cors browser: OK");
} finally {
  await browser.close();
  allowedServer.close();
  refusedServer.close();
}
