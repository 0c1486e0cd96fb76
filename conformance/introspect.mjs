// Runs graphql-js's standard introspection query, with every option on, as
// GraphQL Code Generator, graphql-inspector, Postman and Insomnia send it,
// against TANDEM_GRAPHQL_URL (with TANDEM_TOKEN as a bearer token when set);
// builds a client schema from the answer and compares it with the checked-in
// SDL (TANDEM_SDL). Prints one line "introspection: OK ..." or fails.
// TANDEM_EXPECT_REFUSED=1: the server must refuse introspection with an error.
import { readFileSync } from "node:fs";
import {
  GraphQLSchema,
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
} from "graphql";

const url = process.env.TANDEM_GRAPHQL_URL;
const token = process.env.TANDEM_TOKEN;
const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});

const headers = { "content-type": "application/json", accept: "application/graphql-response+json" };
if (token) headers.authorization = `Bearer ${token}`;
const res = await fetch(url, {
  method: "POST",
  headers,
  body: JSON.stringify({ query, operationName: "IntrospectionQuery" }),
});
const body = await res.json();
if (process.env.TANDEM_EXPECT_REFUSED === "1") {
  const refused = body.errors?.length > 0 && !body.data?.__schema;
  console.log(refused ? `introspection refused as expected: ${body.errors[0].message}` : "introspection answered");
  process.exit(refused ? 0 : 1);
}
if (res.status !== 200 || body.errors) {
  console.error(`introspection refused: HTTP ${res.status} ${JSON.stringify(body.errors ?? body)}`);
  process.exit(1);
}
// async-graphql answers `__schema { description }` with a fixed text about
// schemas in general rather than a description of this one; the SDL has none.
const client = buildClientSchema(body.data).toConfig();
const fromServer = lexicographicSortSchema(new GraphQLSchema({ ...client, description: undefined }));
const checkedIn = lexicographicSortSchema(buildSchema(readFileSync(process.env.TANDEM_SDL, "utf8")));
const a = printSchema(fromServer);
const b = printSchema(checkedIn);
if (a !== b) {
  const al = a.split("\n");
  const bl = b.split("\n");
  const i = al.findIndex((l, k) => l !== bl[k]);
  const around = (l) => l.slice(Math.max(0, i - 2), i + 6).join("\n    ");
  console.error(`introspection differs from the SDL at line ${i + 1}:\n  server:\n    ${around(al)}\n  SDL:\n    ${around(bl)}`);
  process.exit(1);
}
const types = Object.keys(fromServer.getTypeMap()).length;
console.log(`introspection: OK, ${types} types, ${query.length} bytes of query`);
