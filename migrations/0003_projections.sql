-- Projections: where each read model stands in the event log.
--
-- The read models themselves are NOT created here. They are disposable
-- (everything in them is derived from `events`) and are rebuilt whenever
-- their code changes, so their DDL lives next to that code in
-- crates/projections and is run by the projection runner: into the `read`
-- schema on first start, or into a scratch schema by a rebuild that then
-- swaps the finished tables into `read` in one transaction. A migration
-- would only freeze one version of them.

-- The schema the API reads from. Everything in it belongs to a projection
-- and may be dropped and replaced by a rebuild; nothing else should be kept
-- here (a view on top of a read table would block its swap).
CREATE SCHEMA IF NOT EXISTS read;

COMMENT ON SCHEMA read IS
    'Read models maintained by the projection runner (crates/projections). Disposable: rebuilt from the event log.';

-- ---------------------------------------------------------------------------
-- projection_checkpoints
-- ---------------------------------------------------------------------------
-- One row per projection. The runner moves it in the SAME transaction as the
-- read-model writes of a batch, so a batch is applied exactly once: either
-- the writes and the new checkpoint commit together, or neither does and the
-- batch is read again. Each batch transaction locks this row first (SELECT …
-- FOR UPDATE) and checks that it still holds the cursor the batch was read
-- after; that makes two runners (or a runner and a rebuild's swap) take
-- turns and makes a stale runner notice instead of applying twice. The
-- session-level advisory lock that elects one runner per projection only
-- saves the losers the work; correctness rests on this row.
CREATE TABLE projection_checkpoints (
    -- The projection's name, e.g. 'people'.
    name              text PRIMARY KEY,

    -- The cursor of the last event applied, in the log's global order
    -- (transaction_id, position); (0, 0) before the first event. Compared
    -- with events' own columns for lag, hence the same types.
    transaction_id    xid8 NOT NULL DEFAULT '0',
    position          bigint NOT NULL DEFAULT 0,

    -- The version of the projection's code that built the tables. A runner
    -- whose code has another version rebuilds them before serving.
    version           integer NOT NULL,

    -- Events applied since the tables were (re)built, for operators.
    events_applied    bigint NOT NULL DEFAULT 0,

    -- recorded_at of the last event applied: how old the data is.
    last_recorded_at  timestamptz,

    -- When the tables were last built from zero by a rebuild.
    rebuilt_at        timestamptz,

    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT projection_checkpoints_name_not_empty CHECK (name <> ''),
    CONSTRAINT projection_checkpoints_position_not_negative CHECK (position >= 0)
);

COMMENT ON TABLE projection_checkpoints IS
    'Per projection: the (transaction_id, position) cursor of the last event applied, moved in the same transaction as the read-model writes.';

-- Waiters for read-your-writes (possibly in another process) LISTEN on
-- 'tandem_projections'; every batch transaction sends
-- pg_notify('tandem_projections', '<name> <transaction_id>-<position>'),
-- delivered when it commits. Like 'tandem_events', only a hint: waiters also
-- poll this table.
