-- Crypto-shredding: one data key per person.
--
-- Every personal field of a stored event (names, e-mails, external ids,
-- free text) is sealed with XChaCha20-Poly1305 under a key derived from the
-- data keys of the people it concerns (see `crates/store/src/vault.rs` and
-- `docs/PRIVACY.md`). The data keys live here, never in clear: each is
-- wrapped (XChaCha20-Poly1305) by the master key, which the database never
-- sees. A key is created in the same transaction as the person's
-- `PersonRegistered` event.
--
-- Erasing a person deletes the key material in the same transaction as
-- the `PersonErased` event and keeps the row as a tombstone (`wrapped`
-- NULL), so that no key can ever be made again for an erased person and
-- every copy of their personal data (in the log, in backups taken after the
-- erasure) stays unreadable. The events themselves are never rewritten.
CREATE TABLE person_keys (
    person_id      uuid PRIMARY KEY,
    -- Which master key wrapped `wrapped` (a digest of it, not the key), so
    -- that a rotation can tell what it has rewrapped and a server started
    -- with the wrong master key says so instead of reading garbage.
    master_key_id  text,
    -- 24-byte nonce, then the sealed 32-byte key and its 16-byte tag.
    wrapped        bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Set when the key was deleted.
    erased_at      timestamptz,
    CONSTRAINT person_keys_material_or_tombstone CHECK (
        (wrapped IS NULL AND master_key_id IS NULL AND erased_at IS NOT NULL)
        OR (wrapped IS NOT NULL AND master_key_id IS NOT NULL AND erased_at IS NULL AND length(wrapped) = 72)
    )
);

COMMENT ON TABLE person_keys IS
    'Per-person data keys wrapped by the master key; a NULL key is a tombstone left by erasure';

-- People erased before this migration get their tombstone now, so that no
-- key is ever made for them. (Their events, written before sealing
-- existed, stay as they were stored: see docs/PRIVACY.md.)
INSERT INTO person_keys (person_id, master_key_id, wrapped, erased_at)
SELECT DISTINCT stream_id, NULL::text, NULL::bytea, now()
FROM events
WHERE event_type = 'PersonErased' AND stream_type = 'person';
