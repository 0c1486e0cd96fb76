// Headless Chromium for the browser tests (browser-cors.mjs,
// browser-graphiql.mjs), driven by playwright-core: the machine's own
// Chromium (TANDEM_CHROMIUM, default /usr/bin/chromium), never a browser
// downloaded by Playwright. Playwright gives it a fresh, empty profile.
import { chromium } from "playwright-core";

export async function launch() {
  return chromium.launch({
    executablePath: process.env.TANDEM_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      // Without these Chromium keeps calling home, and a closed network
      // refuses those connections many at a time.
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/// Fails the script with a message.
export function fail(message) {
  console.error(`FAILED: ${message}`);
  process.exit(1);
}

/// Ends the script if it has not ended within `seconds`.
export function deadline(seconds) {
  setTimeout(() => fail(`did not finish within ${seconds} s`), seconds * 1000).unref();
}
