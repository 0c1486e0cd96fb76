// GraphiQL offline: loads TANDEM_BASE/graphiql in headless Chromium with
// every request to another host aborted, waits for the editor, runs a
// query with TANDEM_TOKEN in the headers editor and checks the result
// pane. Fails on any request that left for another host, any script
// error and any Content-Security-Policy violation. Prints
// "graphiql browser: OK" or fails.
import { deadline, fail, launch } from "./browser.mjs";

deadline(90);
const base = process.env.TANDEM_BASE;
const token = process.env.TANDEM_TOKEN;
const subject = process.env.TANDEM_SUBJECT;
if (!base || !token || !subject) fail("set TANDEM_BASE, TANDEM_TOKEN and TANDEM_SUBJECT");
const origin = new URL(base).origin;

const browser = await launch();
try {
  const context = await browser.newContext();
  const served = [];
  const blocked = [];
  // The outside world is unreachable: only the Tandem server answers.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) {
      served.push(url);
      return route.continue();
    }
    blocked.push(url);
    return route.abort("blockedbyclient");
  });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });

  const response = await page.goto(`${base}/graphiql`);
  if (response.status() !== 200) fail(`/graphiql answered ${response.status()}`);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 30000 });
  await page.waitForSelector(".graphiql-execute-button");
  console.log(`GraphiQL rendered from ${served.length} requests to ${origin}`);

  // The editors are CodeMirror instances: set the query and the headers.
  await page.evaluate((token) => {
    const editors = (selector) => [...document.querySelectorAll(selector)].map((e) => e.CodeMirror);
    editors(".graphiql-query-editor .CodeMirror")[0].setValue("query Me { me { subject roles } }");
    // The editor tools: variables, then headers.
    editors(".graphiql-editor-tool .CodeMirror")[1].setValue(JSON.stringify({ Authorization: `Bearer ${token}` }));
  }, token);
  await page.waitForTimeout(300);
  await page.click(".graphiql-execute-button");
  await page
    .waitForFunction(
      (subject) => document.querySelector(".graphiql-response")?.innerText.includes(subject),
      subject,
      { timeout: 20000 },
    )
    .catch(() => {});
  const result = await page.evaluate(() => document.querySelector(".graphiql-response")?.innerText ?? "");
  if (!result.includes(`"subject": "${subject}"`)) fail(`the result pane shows: ${result}\n${problems.join("\n")}`);
  console.log(`query result: ${result.replace(/\s+/g, " ").trim()}`);
  if (blocked.length > 0) fail(`GraphiQL tried to load from other hosts: ${blocked.join(", ")}`);
  if (problems.length > 0) fail(problems.join("\n"));

  // The block is real: another page of the same browser cannot reach
  // another host (the GraphiQL page's CSP would refuse it anyway).
  const other = await context.newPage();
  const outside = await other.goto("https://graphql.org/").then(
    () => "reached",
    (error) => error.message.split("\n")[0],
  );
  if (outside === "reached" || blocked.length !== 1) fail(`a request to another host was not blocked: ${outside}`);
  console.log(`outside hosts blocked: ${outside}`);
  console.log("graphiql browser: OK");
} finally {
  await browser.close();
}
