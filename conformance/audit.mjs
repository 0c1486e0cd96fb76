// Runs the graphql-http server audit (GraphQL-over-HTTP spec conformance)
// against a running Tandem GraphQL endpoint.
//
//   node audit.mjs http://127.0.0.1:8080/graphql
//   TANDEM_GRAPHQL_URL=http://127.0.0.1:8080/graphql node audit.mjs
//
// Prints one line per audit (ok / MAY notice / SHOULD warn / MUST error) and a
// summary line, and exits non-zero when any MUST fails or any SHOULD warns:
// Tandem aims at full conformance, not just the mandatory part.
import { auditServer } from 'graphql-http';

const url = process.argv[2] ?? process.env.TANDEM_GRAPHQL_URL;
if (!url) {
  console.error('usage: node audit.mjs <graphql-url>  (or set TANDEM_GRAPHQL_URL)');
  process.exit(2);
}

const results = await auditServer({ url });

const label = { ok: 'ok', notice: 'MAY', warn: 'SHOULD', error: 'MUST' };
const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const result of results) {
  counts[result.status] += 1;
  const line = `${label[result.status].padEnd(6)} ${result.id} ${result.name}`;
  if (result.status === 'ok') {
    console.log(line);
    continue;
  }
  let detail = result.reason;
  if (result.response) {
    // The response body tells why; read it once (audits hand over unread responses).
    const body = await result.response.text().catch(() => '<unreadable body>');
    detail += ` [status ${result.response.status}, content-type ${result.response.headers.get('content-type')}, body ${body.slice(0, 300)}]`;
  }
  console.log(`${line}\n       -> ${detail}`);
}

console.log(
  `audit summary: ${counts.ok} ok, ${counts.error} MUST failed, ${counts.warn} SHOULD warned, ${counts.notice} MAY not met, ${results.length} total`,
);
process.exit(counts.error > 0 || counts.warn > 0 ? 1 : 0);
