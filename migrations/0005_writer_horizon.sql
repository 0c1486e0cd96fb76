-- The readers' horizon, set by event writers only.
--
-- Readers take only rows of transactions below a horizon, ordered by
-- (transaction_id, position) (see 0001). Until now the horizon was
-- pg_snapshot_xmin(pg_current_snapshot()): the oldest transaction with an
-- xid still running ANYWHERE on the cluster. One long transaction that
-- never touches `events` (another database's migration, an operator's psql
-- session) stalled every feed, tail and read-your-writes wait for as long as
-- it stayed open.
--
-- Now every transaction that may write events announces itself first, by
-- taking a shared transaction-level advisory lock (the writers' lock)
-- BEFORE it has an xid, and readers ignore a running xid whose transaction
-- does not hold that lock. Why nothing can be skipped:
--
-- * A transaction holds the writers' lock from before its xid is assigned
--   until after its xid lock is released (PostgreSQL releases the xid lock,
--   then the advisory locks, at the end of a transaction). So while an xid
--   is visibly running, an event writer's lock is visibly held too.
-- * A transaction that has an xid and does not hold the lock can never
--   write an event: tandem_event_writer() refuses to take the lock once an
--   xid is assigned, and the insert trigger below refuses rows from a
--   transaction that has not taken it.
-- * A transaction that ends between the snapshot and the pg_locks read
--   shows no xid lock, so it is NOT ignored (conservative): its commit may be
--   invisible to the statement's snapshot.
-- * pg_locks is read once per statement; PostgreSQL builds it under all
--   lock-table partition locks, one consistent view of both kinds of lock.

-- The writers' lock: pg_advisory_xact_lock_shared(class, 0), two-int form
-- (pg_locks.objsubid = 2, so it never collides with the one-bigint keys of
-- the command service). The class is the ASCII bytes "TWri"; the store's
-- per-stream locks use "TStr". Shared, so writers never wait on each other.
-- The flag `tandem.event_writer` records in the transaction (SET LOCAL
-- semantics: undone with the savepoint that set it, together with a lock
-- taken in that savepoint) that the lock is held, so the check costs no
-- lock-table read.
CREATE FUNCTION tandem_event_writer() RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('tandem.event_writer', true) = 'on' THEN
        RETURN;
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        -- Too late: a reader may already have ignored this transaction's
        -- xid and moved past it.
        RAISE EXCEPTION 'a transaction must take the event writers'' lock before its first write'
            USING ERRCODE = 'TA002',
                  HINT = 'Append events (or call tandem_event_writer()) before writing anything else in the transaction.';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1415017065, 0);
    PERFORM set_config('tandem.event_writer', 'on', true);
END
$$;

COMMENT ON FUNCTION tandem_event_writer() IS
    'Announces the transaction as an event writer (shared advisory lock "TWri", 0) before it has an xid; refuses once it has one.';

-- Every INSERT into events announces its transaction. A statement-level
-- BEFORE trigger runs before the first row is inserted, hence before the
-- first write of a transaction that writes events first; a transaction that
-- wrote something else first and never announced itself is refused.
CREATE FUNCTION events_require_writer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tandem_event_writer();
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_require_writer_before_insert
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_require_writer();

-- The horizon: every event of a transaction below it is final and visible
-- to the calling statement. STABLE, so that it runs on the CALLING
-- statement's snapshot (a VOLATILE function would take its own), which is
-- what makes "rows below the horizon" and "the horizon" agree; call it as
-- `(SELECT tandem_event_horizon())` so it is evaluated once.
--
-- horizon = least(xmax(S), min{x in xip(S) : x is not running without the
-- writers' lock}), S the statement's snapshot. pg_locks is only read when
-- some transaction is in progress. pg_locks.transactionid is a 32-bit xid;
-- it is compared with the low 32 bits of the xid8 (all running xids lie
-- within 2^31 of each other, so the low bits identify them).
CREATE FUNCTION tandem_event_horizon() RETURNS xid8
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN pg_snapshot_xmin(s.snap) = pg_snapshot_xmax(s.snap) THEN pg_snapshot_xmax(s.snap)
        ELSE coalesce((
            SELECT min(x.xid)
            FROM pg_snapshot_xip(s.snap) AS x(xid)
            WHERE (x.xid::text::bigint % 4294967296) NOT IN (
                -- The xids of transactions running without the writers' lock
                -- in this database (an xid of another database can never
                -- write to this one's events). One read of pg_locks.
                SELECT t.xid
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
                    GROUP BY l.virtualtransaction
                    HAVING NOT bool_or(l.locktype = 'advisory')
                ) AS t
            )
        ), pg_snapshot_xmax(s.snap))
    END
    FROM (SELECT pg_current_snapshot() AS snap) AS s
$$;

COMMENT ON FUNCTION tandem_event_horizon() IS
    'Readers take events of transactions below this xid8: the oldest transaction of the snapshot that is not known to run without the event writers'' lock.';

-- The lock-and-read statement of the command service announces the
-- transaction as well, before its locks: a command's first statement, so
-- the announcement comes before any write of the command, whatever it
-- writes first. Same body as in 0004 otherwise.
CREATE OR REPLACE FUNCTION tandem_lock_and_read(
    lock_keys bigint[],
    exclusive boolean[],
    stream_ids uuid[],
    after_versions integer[]
) RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM tandem_event_writer();
    FOR i IN 1 .. coalesce(array_length(lock_keys, 1), 0) LOOP
        IF exclusive[i] THEN
            PERFORM pg_advisory_xact_lock(lock_keys[i]);
        ELSE
            PERFORM pg_advisory_xact_lock_shared(lock_keys[i]);
        END IF;
    END LOOP;
    RETURN QUERY
        SELECT e.*
        FROM unnest(stream_ids, after_versions) AS w(wanted_id, after_version)
        CROSS JOIN LATERAL (
            SELECT * FROM events
            WHERE events.stream_id = w.wanted_id AND events.stream_version > w.after_version
            ORDER BY events.stream_version
        ) AS e
        ORDER BY e.stream_id, e.stream_version;
END
$$;

COMMENT ON TABLE events IS
    'Append-only event log. Read gap-free by (transaction_id, position) below tandem_event_horizon().';
