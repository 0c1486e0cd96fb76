-- One round trip for what a command does first: take its advisory locks,
-- then read its streams. A command must read a stream only after it holds
-- the stream's lock, so that it sees every command that held the lock
-- before; in one plain statement the read would use the snapshot taken
-- before the locks were granted. In a VOLATILE PL/pgSQL function each
-- statement takes a fresh snapshot (READ COMMITTED), so the RETURN QUERY
-- below sees everything committed while the locks were awaited.
--
-- lock_keys are taken in the order given (the caller sorts them, so that
-- two callers cannot deadlock on one another's keys); exclusive[i] says
-- whether key i is taken exclusive or shared. The events returned are those
-- of stream_ids[j] after version after_versions[j], by stream then version,
-- as stored (the reader upcasts).
CREATE FUNCTION tandem_lock_and_read(
    lock_keys bigint[],
    exclusive boolean[],
    stream_ids uuid[],
    after_versions integer[]
) RETURNS SETOF events
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
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

COMMENT ON FUNCTION tandem_lock_and_read(bigint[], boolean[], uuid[], integer[]) IS
    'Takes advisory locks in the order given, then reads streams after given versions with a fresh snapshot.';
