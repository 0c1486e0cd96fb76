-- Command-side guard tables.
--
-- Some rules span streams: "a person is in at most one active pair per
-- program" and "an external id belongs to one person". Optimistic
-- concurrency on a single stream cannot hold them when two commands race on
-- different streams (two new pairs sharing a member). The command service
-- therefore writes a row here IN THE SAME TRANSACTION as the events it
-- appends; the unique constraints below make the second of two racing
-- commands fail, after which it re-decides, sees the first one's row and is
-- refused with a domain error. These tables are derived from the event log
-- and hold nothing the log does not.

-- One row per member of a current (active or paused) pair. Deleted in the
-- transaction that appends the pair's PairDissolved.
CREATE TABLE pair_memberships (
    program_id uuid NOT NULL,
    person_id  uuid NOT NULL,
    pair_id    uuid NOT NULL,
    -- The guard itself: one current pair per person per program.
    PRIMARY KEY (program_id, person_id)
);
-- Dissolving a pair and a person leaving look rows up by these.
CREATE INDEX pair_memberships_pair_idx ON pair_memberships (pair_id);
CREATE INDEX pair_memberships_person_idx ON pair_memberships (person_id);

-- The HRIS's id of every registered person, so an import cannot register
-- the same employee twice under two Tandem ids.
CREATE TABLE person_external_ids (
    external_id text PRIMARY KEY,
    person_id   uuid NOT NULL UNIQUE
);
