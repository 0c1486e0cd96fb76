-- The writers' horizon, corrected: lock holders grouped by backend, and a
-- read that looks at the lock table BEFORE it takes its snapshot.
--
-- The defect (0005): tandem_event_horizon() told the writers' lock and the
-- xid lock of one transaction apart by pg_locks.virtualtransaction. That
-- column is not a property of the lock: pg_locks fills it from the
-- backend's CURRENT local transaction id, read without any lock while the
-- lock table is walked. A writer that commits during the walk clears its
-- local id (ProcArrayEndTransaction) before its locks are released, so one
-- pg_locks result can show its xid lock under "12/466" and its writers'
-- lock under "12/0". Grouped apart, the xid looked like a transaction
-- running WITHOUT the writers' lock and was ignored, while its commit was
-- still invisible to the statement's snapshot (taken before the walk): the
-- horizon passed it and readers skipped its events for good. Observed
-- under load as a tail that "stopped short" of committed events.
--
-- The fix, in two parts:
--
-- 1. Locks are grouped by the holder's pid (a backend keeps its pid for
--    its whole life; a prepared transaction, which has none, keeps its
--    virtualtransaction "-1/<xid>"). The lock table itself is read under
--    all its partition locks, so a writer's xid lock is never seen without
--    its writers' lock: the writers' lock is taken before the xid exists
--    and released after the xid lock (PostgreSQL releases the regular
--    locks, then the advisory ones). This alone makes every reading safe,
--    whichever snapshot it is compared with.
--
-- 2. The readers (tandem_read_events, tandem_event_head) read pg_locks in
--    one statement and take the snapshot they compare it with in the next
--    one (VOLATILE PL/pgSQL: a fresh snapshot per statement under READ
--    COMMITTED). Then a running xid of the snapshot was running when the
--    locks were read, or got its xid after that:
--    * seen without the writers' lock: it can never write an event
--      (tandem_event_writer() refuses once an xid exists), ignored;
--    * anything else (a writer, or an xid too new to be in the lock table
--      yet): kept.
--    Unlike the lock read AFTER the snapshot (tandem_event_horizon, kept
--    for one-statement callers), no transaction that ended in between is
--    kept "just in case": a reading sees every event committed before it
--    started, unless an older writer is still open. And readings are
--    monotonic: an xid below one reading's horizon is finished or a
--    non-writer, and a non-writer still running at the next reading is
--    seen running without the writers' lock again, so a later reading
--    (started after the earlier one returned, from any session) is never
--    lower. At REPEATABLE READ the snapshot is the transaction's, older
--    than the lock read; part 1 keeps that safe, only not exact.

-- The 32-bit xids of transactions that hold an xid and do not hold the
-- event writers' lock of this database: one read of pg_locks. (An xid of
-- another database can never write to this one's events.)
CREATE FUNCTION tandem_event_non_writers() RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(t.xid), '{}')
    FROM (
        SELECT unnest(array_agg(l.transactionid::text::bigint)
                      FILTER (WHERE l.locktype = 'transactionid')) AS xid
        FROM pg_locks l
        WHERE l.granted
          AND ((l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
               OR (l.locktype = 'advisory' AND l.classid = 1415017065::oid
                   AND l.objid = 0::oid AND l.objsubid = 2
                   AND l.database = (SELECT d.oid FROM pg_database d
                                     WHERE d.datname = current_database())))
        GROUP BY coalesce(l.pid::text, l.virtualtransaction)
        HAVING NOT bool_or(l.locktype = 'advisory')
    ) AS t
$$;

COMMENT ON FUNCTION tandem_event_non_writers() IS
    'The 32-bit xids running without the event writers'' lock of this database, from one read of pg_locks grouped by backend.';

-- The horizon of a snapshot given the non-writers: the oldest running xid
-- of the snapshot that is not a known non-writer, or its xmax. xip holds
-- xid8s; pg_locks 32-bit xids, compared with their low 32 bits (all running
-- xids lie within 2^31 of each other, so the low bits identify them).
CREATE FUNCTION tandem_horizon_of(snap pg_snapshot, non_writers bigint[]) RETURNS xid8
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(
        (SELECT min(x.xid)
         FROM pg_snapshot_xip(snap) AS x(xid)
         WHERE (x.xid::text::bigint % 4294967296) <> ALL (non_writers)),
        pg_snapshot_xmax(snap))
$$;

COMMENT ON FUNCTION tandem_horizon_of(pg_snapshot, bigint[]) IS
    'The oldest running xid of the snapshot that is not among the given non-writers, or the snapshot''s xmax.';

-- For a statement that compares the horizon with its own snapshot (lag
-- figures, counts): STABLE, so it runs on the calling statement's snapshot;
-- the lock table is read after that snapshot was taken, so a non-writer
-- that ends in between holds the reading back (safe, not exact, and a
-- later reading may be lower). Readers of the log use tandem_read_events.
CREATE OR REPLACE FUNCTION tandem_event_horizon() RETURNS xid8
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN pg_snapshot_xmin(s.snap) = pg_snapshot_xmax(s.snap) THEN pg_snapshot_xmax(s.snap)
        ELSE tandem_horizon_of(s.snap, tandem_event_non_writers())
    END
    FROM (SELECT pg_current_snapshot() AS snap) AS s
$$;

COMMENT ON FUNCTION tandem_event_horizon() IS
    'The event writers'' horizon for the calling statement''s snapshot (lock table read after it: safe, conservative).';

-- The global read: up to max_rows events after (after_transaction,
-- after_position) in (transaction_id, position) order, below the horizon
-- (lock table first, then the snapshot of the read itself). NULL filters
-- mean "all".
CREATE FUNCTION tandem_read_events(
    after_transaction xid8,
    after_position bigint,
    max_rows bigint,
    only_event_types text[],
    only_stream_id uuid,
    only_stream_type text
) RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    non_writers bigint[];
BEGIN
    non_writers := tandem_event_non_writers();
    -- A new statement, hence a snapshot taken after the lock read; the
    -- horizon is computed from that very snapshot.
    RETURN QUERY
        SELECT e.*
        FROM events e
        WHERE e.transaction_id < (SELECT tandem_horizon_of(pg_current_snapshot(), non_writers))
          AND (e.transaction_id, e.position) > (after_transaction, after_position)
          AND (only_event_types IS NULL OR e.event_type = ANY (only_event_types))
          AND (only_stream_id IS NULL OR e.stream_id = only_stream_id)
          AND (only_stream_type IS NULL OR e.stream_type = only_stream_type)
        ORDER BY e.transaction_id, e.position
        LIMIT max_rows;
END
$$;

COMMENT ON FUNCTION tandem_read_events(xid8, bigint, bigint, text[], uuid, text) IS
    'Events after a cursor, gap-free, below the writers'' horizon (pg_locks read before the snapshot).';

-- The last readable event (none: no row), with the same two steps.
CREATE FUNCTION tandem_event_head() RETURNS TABLE (head_transaction_id xid8, head_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    non_writers bigint[];
BEGIN
    non_writers := tandem_event_non_writers();
    RETURN QUERY
        SELECT e.transaction_id, e.position
        FROM events e
        WHERE e.transaction_id < (SELECT tandem_horizon_of(pg_current_snapshot(), non_writers))
        ORDER BY e.transaction_id DESC, e.position DESC
        LIMIT 1;
END
$$;

COMMENT ON FUNCTION tandem_event_head() IS
    'The cursor of the last event below the writers'' horizon (pg_locks read before the snapshot); no row when none.';

COMMENT ON TABLE events IS
    'Append-only event log. Read gap-free by (transaction_id, position) with tandem_read_events().';
