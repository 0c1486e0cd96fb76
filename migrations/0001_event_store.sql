-- The event store: one append-only log of every event of every stream, plus
-- the record of idempotency keys that makes a retried command return its
-- first result instead of appending twice.
--
-- The store is generic: it knows streams, versions and JSON, never domain
-- types. Reading code lives in crates/store; see its module docs for why the
-- global read is ordered by (transaction_id, position).

-- ---------------------------------------------------------------------------
-- events
-- ---------------------------------------------------------------------------
CREATE TABLE events (
    -- Global order of insertion. An identity never goes back, but it is handed
    -- out at INSERT time, not at COMMIT time: a transaction can hold a lower
    -- position and commit after one with a higher position. Positions alone
    -- therefore cannot serve as a gap-free cursor (see transaction_id).
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,

    -- The 64-bit (epoch-extended, never wrapping) id of the writing top-level
    -- transaction. Readers only take rows whose transaction is below the
    -- snapshot's xmin, i.e. certainly finished, and order by
    -- (transaction_id, position): that order never gets a new row inserted
    -- behind a reader's cursor. Writers never set it: a row carrying an
    -- older id than its real writer's could land behind readers' cursors.
    -- (Only copying a whole log, e.g. a restore, sets it, keeping the ids.)
    transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),

    -- The aggregate instance the event belongs to, and its kind. stream_type
    -- lets readers filter and lets operators see what a stream is without
    -- decoding its events.
    stream_id       uuid NOT NULL,
    stream_type     text NOT NULL,

    -- 1, 2, 3 … per stream, without gaps. Together with the unique constraint
    -- below it is the optimistic-concurrency check: two writers that both
    -- read version n cannot both store version n + 1.
    stream_version  integer NOT NULL,

    -- Client-chosen (UUID v7) id; unique so that the same event can never be
    -- stored twice, e.g. by a blind retry.
    event_id        uuid NOT NULL,

    -- What the data means and in which shape it was written. Readers run an
    -- upcaster chain from (event_type, schema_version) to today's shape;
    -- stored rows are never rewritten.
    event_type      text NOT NULL,
    schema_version  smallint NOT NULL,

    data            jsonb NOT NULL,
    -- Who caused it and why: actor, correlation, causation, idempotency key,
    -- trace id. Kept apart from data so that the domain shape stays clean.
    metadata        jsonb NOT NULL,

    -- Wall-clock time of the writing transaction (now() is the transaction's
    -- start time, the same for every event of one append).
    recorded_at     timestamptz NOT NULL DEFAULT now(),

    -- Named so that the Rust code can map a unique violation on it to a
    -- typed Conflict by constraint name.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    CONSTRAINT events_event_id_key UNIQUE (event_id),

    CONSTRAINT events_stream_version_positive CHECK (stream_version >= 1),
    CONSTRAINT events_schema_version_positive CHECK (schema_version >= 1),
    CONSTRAINT events_event_type_not_empty CHECK (event_type <> ''),
    CONSTRAINT events_stream_type_not_empty CHECK (stream_type <> '')
);

COMMENT ON TABLE events IS
    'Append-only event log. Read gap-free by (transaction_id, position) below pg_snapshot_xmin(pg_current_snapshot()).';

-- The global read: WHERE transaction_id < xmin AND (transaction_id, position)
-- > cursor ORDER BY transaction_id, position LIMIT n is a range scan on this
-- index. Reading a stream uses the (stream_id, stream_version) unique index.
CREATE INDEX events_transaction_position_idx ON events (transaction_id, position);

-- ---------------------------------------------------------------------------
-- Append-only, enforced by the database
-- ---------------------------------------------------------------------------
-- A history that can be edited is not a history: projections, analysts and
-- the idempotency records all rely on stored events never changing. The
-- triggers catch every role, including the table owner; the REVOKE keeps
-- roles that are not the owner from even trying. (A superuser can still
-- disable triggers; the service must not run as one.)
--
-- SQLSTATE TA001 ("Tandem, append-only") is our own code, so that callers
-- and tests can tell this refusal apart from any other error.
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'TA001',
              HINT = 'Append a compensating event instead of changing history.';
END;
$$;

-- Row level for UPDATE and DELETE: fires for any row touched.
CREATE TRIGGER events_reject_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

-- TRUNCATE fires no row triggers, so it needs its own statement-level one.
CREATE TRIGGER events_reject_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

REVOKE UPDATE, DELETE, TRUNCATE ON events FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Wake-up hint for tails
-- ---------------------------------------------------------------------------
-- Readers poll anyway (a notification can be lost while a listener
-- reconnects, and a commit does not make an event readable while an older
-- transaction is still open), so a NOTIFY only shortens the wait. It carries
-- no payload: identical notifications within one transaction are folded by
-- PostgreSQL, so a transaction appending many events sends at most one, and
-- the statement-level trigger keeps the cost to one call per INSERT.
CREATE FUNCTION events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tandem_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_after_insert
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- ---------------------------------------------------------------------------
-- idempotency_keys
-- ---------------------------------------------------------------------------
-- One row per idempotency key, written in the same transaction as the
-- command's events, so the key exists if and only if the events do. A retry
-- with the same key finds the row and gets the first result back without
-- appending; a retry racing the first attempt waits on an advisory lock (and,
-- as a last resort, on this primary key) until the first attempt has ended.
CREATE TABLE idempotency_keys (
    key             text PRIMARY KEY,

    -- A digest of the request as the client sent it. The same key with a
    -- different request is a client bug (key reuse) and is refused rather
    -- than answered with an unrelated result.
    request_hash    text NOT NULL,

    -- The first result, exactly as returned the first time (the command's
    -- response payload, including the commit cursor for read-your-writes).
    result          jsonb NOT NULL,

    -- Where the first attempt's events are: enough to re-read them and to
    -- rebuild the commit cursor (transaction_id, last_position) a retry may
    -- wait on. NULL when the command appended nothing; stream_id is NULL
    -- when it appended to more than one stream.
    stream_id       uuid,
    first_position  bigint,
    last_position   bigint,
    transaction_id  xid8,

    -- For a future retention job that forgets old keys.
    created_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT idempotency_keys_key_not_empty CHECK (key <> ''),
    CONSTRAINT idempotency_keys_positions_ordered
        CHECK (first_position IS NULL OR last_position IS NULL OR first_position <= last_position)
);
