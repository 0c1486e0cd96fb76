// A whole coaching program played by a real GraphQL client (urql over HTTP,
// graphql-ws for subscriptions) against a running Tandem server.
//
//   TANDEM_GRAPHQL_URL=http://127.0.0.1:8080/graphql \
//   TANDEM_GRAPHQL_WS_URL=ws://127.0.0.1:8080/graphql \
//   TANDEM_ADMIN_TOKEN=… TANDEM_COORDINATOR_TOKEN=… node story.mjs
//
// Participant tokens carry the person's id, which only exists once the story
// has registered them. So, after registering, the story prints one line
//   TANDEM_PEOPLE {"ada":"<id>","bob":"<id>","cy":"<id>","di":"<id>"}
// and reads one line on stdin
//   TANDEM_TOKENS {"ada":"<jwt>","bob":"<jwt>","cy":"<jwt>","di":"<jwt>"}
// (the Rust test `a_real_client_plays_a_whole_program` answers it).
//
// Ada subscribes to `myEvents` before anything happens to her and must get
// every change of her pair, in order, and nothing she may not see. Midway her
// websocket is dropped, changes happen while she is away, and a new client
// resumes with `after: <last cursor received>`: the missed changes arrive
// exactly once, then the live ones. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';

import { Client, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';

const URL = process.env.TANDEM_GRAPHQL_URL ?? process.argv[2];
const WS_URL = process.env.TANDEM_GRAPHQL_WS_URL ?? URL?.replace(/^http/, 'ws');
const ADMIN = process.env.TANDEM_ADMIN_TOKEN;
const COORDINATOR = process.env.TANDEM_COORDINATOR_TOKEN ?? ADMIN;
const WAIT_MS = Number(process.env.TANDEM_STORY_WAIT_MS ?? 10_000);
if (!URL || !ADMIN) {
  console.error('usage: TANDEM_GRAPHQL_URL=… TANDEM_ADMIN_TOKEN=… [TANDEM_COORDINATOR_TOKEN=…] node story.mjs');
  process.exit(2);
}

const started = Date.now();
const log = (...args) => console.log(`[${String(Date.now() - started).padStart(5)} ms]`, ...args);

// ---------------------------------------------------------------- clients --

/** An urql client over HTTP acting with one token; no document cache. */
function httpClient(token) {
  return new Client({
    url: URL,
    exchanges: [fetchExchange],
    requestPolicy: 'network-only',
    fetchOptions: { headers: { authorization: `Bearer ${token}` } },
  });
}

/** Runs a mutation; returns its data, throwing on any error. */
async function mutate(client, document, variables) {
  const result = await client.mutation(document, variables).toPromise();
  if (result.error) throw new Error(`mutation failed: ${result.error.message}\n${JSON.stringify(variables)}`);
  return result.data;
}

/** Runs a query; returns its data, throwing on any error. */
async function query(client, document, variables) {
  const result = await client.query(document, variables).toPromise();
  if (result.error) throw new Error(`query failed: ${result.error.message}`);
  return result.data;
}

/**
 * A subscriber: its own graphql-ws connection under an urql client, running
 * `myEvents(after)`. Edges queue up; `next()` takes them in order.
 */
async function subscribe(name, token, after) {
  const ws = createWsClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const connected = new Promise((resolve, reject) => {
    ws.on('connected', resolve);
    ws.on('closed', (event) => reject(new Error(`${name}: websocket closed before ack (${event?.code} ${event?.reason})`)));
    ws.on('error', reject);
  });
  const closed = new Promise((resolve) => ws.on('closed', resolve));
  const client = new Client({
    url: URL,
    exchanges: [
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(input, sink) }) };
        },
      }),
    ],
  });
  const queue = [];
  const received = [];
  let wake = null;
  let failure = null;
  let completed = false;
  const subscription = client.subscription(MY_EVENTS, { after }).subscribe((result) => {
    if (result.error) failure ??= new Error(`${name}: subscription error: ${result.error.message}`);
    else if (result.data?.myEvents) {
      queue.push(result.data.myEvents);
      received.push(result.data.myEvents);
    }
    wake?.();
  });
  await withTimeout(connected, `${name}: connection_ack`);
  log(`${name} subscribed to myEvents(after: ${after ?? 'null'})`);
  return {
    name,
    received,
    /** The next edge, waiting up to WAIT_MS for it. */
    async next(what) {
      const deadline = Date.now() + WAIT_MS;
      while (queue.length === 0) {
        if (failure) throw failure;
        if (completed) throw new Error(`${name}: subscription completed while waiting for ${what}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${name}: no event within ${WAIT_MS} ms while waiting for ${what}`);
        await new Promise((resolve) => {
          wake = resolve;
          setTimeout(resolve, Math.min(left, 200));
        });
        wake = null;
      }
      return queue.shift();
    },
    /** Nothing more has arrived (checked after a short quiet time). */
    async quiet(ms = 500) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      if (failure) throw failure;
      assert.deepEqual(
        queue.map((edge) => edge.node.__typename),
        [],
        `${name}: unexpected extra events`,
      );
    },
    /** Drops the connection: unsubscribes and disposes the websocket client. */
    async dispose() {
      completed = true;
      subscription.unsubscribe();
      await ws.dispose();
      await withTimeout(closed, `${name}: websocket close`);
      log(`${name} disconnected (websocket closed)`);
    },
  };
}

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Reads the one line the Rust test answers with. */
async function readTokens() {
  const lines = createInterface({ input: process.stdin });
  try {
    for await (const line of lines) {
      const match = /^TANDEM_TOKENS (.*)$/.exec(line.trim());
      if (match) return JSON.parse(match[1]);
    }
  } finally {
    lines.close();
    process.stdin.pause();
  }
  throw new Error('stdin closed before a TANDEM_TOKENS line arrived');
}

// -------------------------------------------------------------- documents --

const ENVELOPE = `envelope { cursor eventId eventType streamType streamId streamVersion actorRole correlationId redactedFields }`;

const MY_EVENTS = gql`
  subscription MyEvents($after: String) {
    myEvents(after: $after) {
      cursor
      node {
        __typename
        ... on ParticipantEnrolledEvent { ${ENVELOPE} personId programId wantsToWorkOn skills }
        ... on PairFormedEvent { ${ENVELOPE} pairId programId memberIds formedBy kind }
        ... on SessionHeldEvent {
          ${ENVELOPE} pairId sessionId recordedById minutes focus notes activities activitiesVersion
          coaching { coachId coacheeId }
        }
        ... on FeedbackGivenEvent { ${ENVELOPE} pairId feedbackId fromId toId visibility strengths improvements ratings { empathy curiosity } }
        ... on GoalSetEvent { ${ENVELOPE} pairId goalId ownerId accountabilityPartnerId title }
        ... on GoalProgressRecordedEvent { ${ENVELOPE} pairId goalId byId percent note }
        ... on GoalCompletedEvent { ${ENVELOPE} pairId goalId byId note }
        ... on PairDissolvedEvent { ${ENVELOPE} pairId reason note }
        ... on PersonUpdatedEvent { ${ENVELOPE} personId changedFields title }
        ... on PersonRegisteredEvent { ${ENVELOPE} }
        ... on SessionScheduledEvent { ${ENVELOPE} }
        ... on SessionCancelledEvent { ${ENVELOPE} }
        ... on GoalAbandonedEvent { ${ENVELOPE} }
        ... on PairPausedEvent { ${ENVELOPE} }
        ... on PairResumedEvent { ${ENVELOPE} }
        ... on ParticipantWithdrewEvent { ${ENVELOPE} }
      }
    }
  }
`;

const LAUNCH = gql`
  mutation Launch($i: LaunchProgramInput!) {
    launchProgram(input: $i) { position replayed program { id name status participantCount format { kind } } }
  }
`;
const REGISTER = gql`
  mutation Register($i: RegisterPersonInput!) {
    registerPerson(input: $i) { position person { id name email title } }
  }
`;
const ENROL = gql`
  mutation Enrol($i: EnrolParticipantInput!) {
    enrolParticipant(input: $i) { position program { id participantCount } }
  }
`;
const FORM = gql`
  mutation Form($i: FormPairInput!) {
    formPair(input: $i) { position pair { id status formedBy memberIds members { id name } } }
  }
`;
const HOLD = gql`
  mutation Hold($i: HoldSessionInput!) {
    holdSession(input: $i) {
      position replayed
      session { id status minutes focus notes activities coaching { coach { id } coachee { id } } pair { id sessionsHeld } }
    }
  }
`;
const FEEDBACK = gql`
  mutation Feedback($i: GiveFeedbackInput!) {
    giveFeedback(input: $i) { position feedback { id visibility strengths improvements ratings { empathy curiosity } from { id } to { id } } }
  }
`;
const SET_GOAL = gql`
  mutation SetGoal($i: SetGoalInput!) {
    setGoal(input: $i) { position goal { id status title owner { id } accountabilityPartner { id } } }
  }
`;
const PROGRESS = gql`
  mutation Progress($i: RecordGoalProgressInput!) {
    recordGoalProgress(input: $i) { position goal { id status latestPercent progress { byId percent note } } }
  }
`;
const COMPLETE = gql`
  mutation Complete($i: CloseGoalInput!) {
    completeGoal(input: $i) { position goal { id status completedOn } }
  }
`;
const DISSOLVE = gql`
  mutation Dissolve($i: DissolvePairInput!) {
    dissolvePair(input: $i) { position pair { id status dissolveReason dissolvedOn } }
  }
`;
const UPDATE_PERSON = gql`
  mutation UpdatePerson($i: UpdatePersonInput!) {
    updatePerson(input: $i) { position person { id title } }
  }
`;
const PAIR = gql`
  query Pair($id: ID!) {
    pair(id: $id) {
      id status sessionsHeld dissolveReason
      sessions { edges { node { id status activities } } }
      feedback { edges { node { id strengths from { id } to { id } } } }
      goals { edges { node { id status latestPercent } } }
    }
  }
`;

// ------------------------------------------------------------------ story --

const summary = [];
const step = (text) => {
  summary.push(text);
  log(text);
};

const admin = httpClient(ADMIN);
const coordinator = httpClient(COORDINATOR);

// 1. An admin launches a program.
let d = await mutate(admin, LAUNCH, {
  i: {
    name: 'Story buddies',
    purpose: 'ONBOARDING',
    kind: 'PAIRS',
    maxLevelGap: 2,
    cadenceDays: 14,
    startsOn: '2024-01-01',
  },
});
const program = d.launchProgram.program;
assert.equal(program.status, 'OPEN');
assert.equal(program.participantCount, 0);
assert.equal(program.format.kind, 'PAIRS');
assert.equal(d.launchProgram.replayed, false);
step(`admin launched program ${program.id}`);

// 2. Four people are registered.
const names = { ada: 'Ada Story', bob: 'Bob Story', cy: 'Cy Story', di: 'Di Story' };
const people = {};
let lastRegistration;
for (const [key, name] of Object.entries(names)) {
  d = await mutate(admin, REGISTER, {
    i: {
      externalId: `STORY-${key}`,
      name,
      email: `${key}@story.example.com`,
      department: 'Engineering',
      title: 'Engineer',
      level: 3,
      hiredOn: '2020-01-01',
    },
  });
  assert.equal(d.registerPerson.person.name, name);
  people[key] = d.registerPerson.person.id;
  lastRegistration = d.registerPerson.position;
}
step(`admin registered ${Object.keys(people).length} people`);

// The Rust side mints a participant token per person.
console.log(`TANDEM_PEOPLE ${JSON.stringify(people)}`);
const tokens = await withTimeout(readTokens(), 'the TANDEM_TOKENS line on stdin');
const as = Object.fromEntries(Object.entries(tokens).map(([key, token]) => [key, httpClient(token)]));
const { ada, bob, cy, di } = people;

// 3. Ada subscribes before anything happens to her. `after` is the position
// of the last registration, so nothing can slip between subscribing and the
// next change.
let sub = await subscribe('ada#1', tokens.ada, lastRegistration);
const seen = []; // every edge Ada received, over both connections
const expect = async (s, typename, check = () => {}) => {
  const edge = await s.next(typename);
  assert.equal(edge.node.__typename, typename, `${s.name}: expected ${typename}, got ${JSON.stringify(edge.node)}`);
  assert.equal(edge.cursor, edge.node.envelope.cursor, 'edge cursor = envelope cursor');
  assert.equal(`${edge.node.envelope.eventType}Event`, typename);
  check(edge.node);
  seen.push(edge);
  return edge;
};

// 4. Everyone enrols: Ada and Bob themselves, the coordinator enrols Cy and Di.
let count = 0;
for (const key of ['ada', 'bob']) {
  d = await mutate(as[key], ENROL, { i: { programId: program.id, enrolledOn: '2024-01-02', wantsToWorkOn: `${key} things`, skills: ['listening'] } });
  assert.equal(d.enrolParticipant.program.participantCount, ++count, 'read-your-writes: the count includes me');
}
for (const key of ['cy', 'di']) {
  d = await mutate(coordinator, ENROL, { i: { programId: program.id, personId: people[key], enrolledOn: '2024-01-02' } });
  assert.equal(d.enrolParticipant.program.participantCount, ++count);
}
step('4 participants enrolled (2 by themselves, 2 by the coordinator)');
await expect(sub, 'ParticipantEnrolledEvent', (e) => {
  assert.equal(e.personId, ada);
  assert.equal(e.programId, program.id);
  assert.equal(e.wantsToWorkOn, 'ada things');
  assert.equal(e.envelope.actorRole, 'participant');
});

// 5. Two pairs: the coordinator matches Ada and Bob; Cy and Di choose each other.
d = await mutate(coordinator, FORM, { i: { programId: program.id, memberIds: [ada, bob], formedOn: '2024-01-10' } });
const pair = d.formPair.pair;
assert.equal(pair.status, 'ACTIVE');
assert.equal(pair.formedBy, 'ADMIN');
assert.deepEqual(pair.memberIds, [ada, bob]);
assert.deepEqual(pair.members.map((m) => m.name), ['Ada Story', 'Bob Story']);
d = await mutate(as.cy, FORM, { i: { programId: program.id, memberIds: [cy, di], formedOn: '2024-01-10' } });
const other = d.formPair.pair;
assert.equal(other.formedBy, 'SELF_SELECTED');
step(`pairs formed: ${pair.id} (Ada+Bob, by the coordinator), ${other.id} (Cy+Di, self-selected)`);
await expect(sub, 'PairFormedEvent', (e) => {
  assert.equal(e.pairId, pair.id);
  assert.deepEqual(e.memberIds, [ada, bob]);
  assert.equal(e.envelope.streamType, 'PAIR');
  assert.equal(e.envelope.streamVersion, 1);
  assert.equal(e.envelope.actorRole, 'coordinator');
});

// 6. Sessions. Ada records one with activities and who coached whom; Cy's
// session in the other pair must never reach Ada.
d = await mutate(as.ada, HOLD, {
  i: {
    pairId: pair.id,
    minutes: 45,
    focus: 'Hard conversations',
    notes: 'Bob played the angry customer',
    activities: ['ROLE_PLAY', 'WHAT_IF_SCENARIO'],
    coaching: [{ coachId: ada, coacheeId: bob }],
  },
});
const session1 = d.holdSession.session;
assert.equal(session1.status, 'HELD');
assert.deepEqual(session1.activities, ['ROLE_PLAY', 'WHAT_IF_SCENARIO']);
assert.deepEqual(session1.coaching, [{ coach: { id: ada }, coachee: { id: bob } }]);
assert.equal(session1.pair.sessionsHeld, 1, 'read-your-writes: the pair counts the session');
d = await mutate(as.cy, HOLD, {
  i: { pairId: other.id, minutes: 30, focus: 'Not for Ada', activities: ['EMPATHY_EXERCISE'], coaching: [{ coachId: cy, coacheeId: di }] },
});
assert.equal(d.holdSession.session.pair.sessionsHeld, 1);
step('sessions held: Ada+Bob (ROLE_PLAY, WHAT_IF_SCENARIO; Ada coached Bob), Cy+Di (EMPATHY_EXERCISE)');
await expect(sub, 'SessionHeldEvent', (e) => {
  assert.equal(e.sessionId, session1.id);
  assert.equal(e.pairId, pair.id);
  assert.equal(e.recordedById, ada);
  assert.deepEqual(e.activities, ['ROLE_PLAY', 'WHAT_IF_SCENARIO']);
  assert.deepEqual(e.coaching, [{ coachId: ada, coacheeId: bob }]);
  assert.equal(e.notes, 'Bob played the angry customer', 'members read session notes');
  assert.equal(e.minutes, 45);
});

// 7. Feedback both ways, shared with the recipient; Bob also writes a private
// note that Ada must never receive.
d = await mutate(as.ada, FEEDBACK, {
  i: { pairId: pair.id, sessionId: session1.id, toId: bob, visibility: 'RECIPIENT', strengths: 'Stayed calm', improvements: 'Pause more', ratings: { empathy: 4, curiosity: 5 } },
});
const fbAda = d.giveFeedback.feedback;
assert.equal(fbAda.strengths, 'Stayed calm');
assert.equal(fbAda.visibility, 'RECIPIENT');
assert.deepEqual(fbAda.ratings, { empathy: 4, curiosity: 5 });
assert.deepEqual([fbAda.from.id, fbAda.to.id], [ada, bob]);
d = await mutate(as.bob, FEEDBACK, {
  i: { pairId: pair.id, sessionId: session1.id, toId: ada, visibility: 'RECIPIENT', strengths: 'Great scenarios', ratings: { empathy: 5 } },
});
const fbBob = d.giveFeedback.feedback;
assert.equal(fbBob.strengths, 'Great scenarios');
d = await mutate(as.bob, FEEDBACK, {
  i: { pairId: pair.id, toId: ada, visibility: 'PRIVATE', strengths: 'Private: for my eyes only' },
});
const fbPrivate = d.giveFeedback.feedback;
assert.equal(fbPrivate.visibility, 'PRIVATE');
step('feedback exchanged: Ada->Bob and Bob->Ada (RECIPIENT), Bob->Ada (PRIVATE)');
await expect(sub, 'FeedbackGivenEvent', (e) => {
  assert.equal(e.feedbackId, fbAda.id);
  assert.deepEqual([e.fromId, e.toId, e.visibility], [ada, bob, 'RECIPIENT']);
  assert.equal(e.strengths, 'Stayed calm');
  assert.deepEqual(e.envelope.redactedFields, []);
});
await expect(sub, 'FeedbackGivenEvent', (e) => {
  assert.equal(e.feedbackId, fbBob.id);
  assert.deepEqual([e.fromId, e.toId], [bob, ada]);
  assert.equal(e.strengths, 'Great scenarios', 'the recipient reads feedback shared with her');
});

// 8. Ada sets a goal with Bob as her accountability partner.
d = await mutate(as.ada, SET_GOAL, { i: { pairId: pair.id, title: 'Speak up in planning', accountabilityPartnerId: bob } });
const goal = d.setGoal.goal;
assert.equal(goal.status, 'OPEN');
assert.equal(goal.title, 'Speak up in planning');
assert.deepEqual([goal.owner.id, goal.accountabilityPartner.id], [ada, bob]);
step(`Ada set goal ${goal.id}`);
const lastBeforeDrop = await expect(sub, 'GoalSetEvent', (e) => {
  assert.equal(e.goalId, goal.id);
  assert.equal(e.ownerId, ada);
  assert.equal(e.accountabilityPartnerId, bob);
  assert.equal(e.title, 'Speak up in planning');
});
await sub.quiet(300); // the private feedback and Cy's session never came
const firstConnection = sub.received.length;

// 9. Ada's connection drops. While she is away, Bob records a session (and
// retries it with the same idempotency key, as after a network failure) and
// progress on her goal.
await sub.dispose();
const missedSession = {
  pairId: pair.id,
  minutes: 30,
  focus: 'Seeing it from the team lead',
  activities: ['SHIFTING_PERSPECTIVE', 'COLLABORATIVE_STORYTELLING'],
  coaching: [{ coachId: bob, coacheeId: ada }],
  idempotencyKey: 'story-bob-session-2',
};
d = await mutate(as.bob, HOLD, { i: missedSession });
const session2 = d.holdSession.session;
assert.equal(d.holdSession.replayed, false);
assert.equal(session2.pair.sessionsHeld, 2);
assert.deepEqual(session2.coaching, [{ coach: { id: bob }, coachee: { id: ada } }]);
d = await mutate(as.bob, HOLD, { i: missedSession });
assert.equal(d.holdSession.replayed, true, 'the retry is a replay');
assert.equal(d.holdSession.session.id, session2.id);
assert.equal(d.holdSession.session.pair.sessionsHeld, 2, 'the retry held no second session');
d = await mutate(as.bob, PROGRESS, { i: { pairId: pair.id, goalId: goal.id, percent: 60, note: 'Spoke twice this week' } });
assert.equal(d.recordGoalProgress.goal.latestPercent, 60);
assert.deepEqual(d.recordGoalProgress.goal.progress, [{ byId: bob, percent: 60, note: 'Spoke twice this week' }]);
step('while Ada was disconnected: Bob held a session (retried once, replayed) and recorded 60% on her goal');

// 10. Ada comes back with a new client, resuming after the last cursor she got.
sub = await subscribe('ada#2', tokens.ada, lastBeforeDrop.cursor);
await expect(sub, 'SessionHeldEvent', (e) => {
  assert.equal(e.sessionId, session2.id);
  assert.equal(e.recordedById, bob);
  assert.deepEqual(e.activities, ['SHIFTING_PERSPECTIVE', 'COLLABORATIVE_STORYTELLING']);
  assert.deepEqual(e.coaching, [{ coachId: bob, coacheeId: ada }]);
});
await expect(sub, 'GoalProgressRecordedEvent', (e) => {
  assert.equal(e.goalId, goal.id);
  assert.equal(e.byId, bob);
  assert.equal(e.percent, 60);
});
step('Ada resumed with a new client: both missed changes arrived, once each');

// 11. Live again: Ada completes her goal, the coordinator dissolves the pair,
// and a last change to Ada's person closes her stream of the story.
d = await mutate(as.ada, COMPLETE, { i: { pairId: pair.id, goalId: goal.id, note: 'Did it' } });
assert.equal(d.completeGoal.goal.status, 'COMPLETED');
assert.ok(d.completeGoal.goal.completedOn);
await expect(sub, 'GoalCompletedEvent', (e) => {
  assert.equal(e.goalId, goal.id);
  assert.equal(e.byId, ada);
  assert.equal(e.note, 'Did it');
});
d = await mutate(coordinator, DISSOLVE, { i: { pairId: pair.id, reason: 'COMPLETED', note: 'Goal reached' } });
assert.equal(d.dissolvePair.pair.status, 'DISSOLVED');
assert.equal(d.dissolvePair.pair.dissolveReason, 'COMPLETED');
await expect(sub, 'PairDissolvedEvent', (e) => {
  assert.equal(e.pairId, pair.id);
  assert.equal(e.reason, 'COMPLETED');
  assert.equal(e.note, 'Goal reached');
  assert.equal(e.envelope.actorRole, 'coordinator');
});
d = await mutate(admin, UPDATE_PERSON, { i: { personId: ada, title: 'Senior Engineer' } });
assert.equal(d.updatePerson.person.title, 'Senior Engineer');
await expect(sub, 'PersonUpdatedEvent', (e) => {
  assert.equal(e.personId, ada);
  assert.deepEqual(e.changedFields, ['title']);
  assert.equal(e.title, 'Senior Engineer');
});
await sub.quiet();
step('Ada completed her goal; the coordinator dissolved the pair; her title changed — all received live');
await sub.dispose();

// 12. Across both connections: no duplicate, cursors and events unique, each
// stream's versions increasing, and the order matches the log.
const cursors = seen.map((edge) => edge.cursor);
assert.equal(new Set(cursors).size, cursors.length, 'no cursor twice');
assert.equal(new Set(seen.map((edge) => edge.node.envelope.eventId)).size, seen.length, 'no event twice');
const versions = new Map();
for (const { node } of seen) {
  const { streamId, streamVersion } = node.envelope;
  assert.ok(streamVersion > (versions.get(streamId) ?? 0), `stream ${streamId} goes forward`);
  versions.set(streamId, streamVersion);
}
assert.equal(seen.length, firstConnection + sub.received.length, 'every received edge was expected');
for (const e of seen) assert.ok([ada, pair.id, program.id].includes(e.node.envelope.streamId), 'only Ada, her pair, her program');

// 13. The read model agrees (Ada's view): two sessions, the feedback she may
// read (not Bob's private note), the completed goal, the dissolved pair.
d = await query(as.ada, PAIR, { id: pair.id });
assert.equal(d.pair.status, 'DISSOLVED');
assert.equal(d.pair.sessionsHeld, 2);
assert.deepEqual(d.pair.sessions.edges.map((x) => x.node.id), [session1.id, session2.id]);
assert.deepEqual(d.pair.feedback.edges.map((x) => x.node.id), [fbAda.id, fbBob.id]);
assert.deepEqual(d.pair.goals.edges.map((x) => [x.node.id, x.node.status, x.node.latestPercent]), [[goal.id, 'COMPLETED', 60]]);
d = await query(as.bob, PAIR, { id: pair.id });
assert.deepEqual(d.pair.feedback.edges.map((x) => x.node.id), [fbAda.id, fbBob.id, fbPrivate.id], 'Bob reads his own private note');
step('read models agree (Ada does not see the private feedback, Bob does)');

console.log('\nstory summary:');
for (const line of summary) console.log(`  - ${line}`);
console.log(`  events received by Ada: ${seen.map((edge) => edge.node.__typename.replace(/Event$/, '')).join(' -> ')}`);
console.log(`  (${firstConnection} on the first connection, ${seen.length - firstConnection} after resuming; 0 duplicates)`);
console.log(`story passed in ${Date.now() - started} ms`);
process.exit(0);
