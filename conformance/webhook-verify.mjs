// Verifies Standard Webhooks signatures with the `standardwebhooks` package,
// an implementation independent of Tandem's: the webhook tests pipe every
// request their receiver got through it.
//
// Input (stdin): one JSON object per line,
//   {"secret": "whsec_…", "headers": {"webhook-id": …, "webhook-timestamp": …, "webhook-signature": …}, "body": "…"}
// Output (stdout): one JSON object per input line, in order,
//   {"ok": true, "payload": <the verified body, parsed>} or {"ok": false, "error": "…"}
import readline from "node:readline";
import sw from "standardwebhooks";

const { Webhook } = sw;
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let out;
  try {
    const { secret, headers, body } = JSON.parse(line);
    const payload = new Webhook(secret).verify(body, headers);
    out = { ok: true, payload };
  } catch (e) {
    out = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
