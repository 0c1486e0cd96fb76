-- Idempotency records keep keyed digests only.
--
-- `key` becomes the HMAC-SHA-256 (under the server secret) of the subject
-- who sent the key and the key itself, so keys are scoped per subject;
-- `request_hash` the HMAC-SHA-256 of the canonical request. Both are 64
-- lower-case hex digits, and the checks below refuse anything else, so no
-- client key or request text can be stored here by mistake.
--
-- The rows written before held requests in clear (names, e-mails and
-- texts included) under global keys. They cannot be converted without the
-- server secret, which the database does not have, so they are deleted: a
-- retry of a request sent before the upgrade runs as a new request.
DELETE FROM idempotency_keys;

ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_key_not_empty,
    ADD CONSTRAINT idempotency_keys_key_is_digest CHECK (key ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT idempotency_keys_request_hash_is_digest CHECK (request_hash ~ '^[0-9a-f]{64}$');

COMMENT ON COLUMN idempotency_keys.key IS
    'HMAC-SHA-256 (server secret) of the sending subject and the client''s key; never the key itself';
COMMENT ON COLUMN idempotency_keys.request_hash IS
    'HMAC-SHA-256 (server secret) of the canonical request; never the request itself';
