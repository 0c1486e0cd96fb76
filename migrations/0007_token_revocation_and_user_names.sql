-- Revoked bearer tokens, and user names unique without regard to case.

-- Tokens revoked before they expire, by their `jti` claim. Integrators'
-- tools hold long-lived tokens (a year, say); when one leaks or a tool is
-- retired, `tandem token revoke JTI` adds a row here and every API replica
-- refuses the token within seconds, without a restart (each replica
-- re-reads this table at most once a second). Rows only matter until
-- `expires_at`; after it the token is refused for being expired anyway, and
-- the row may be deleted.
CREATE TABLE revoked_tokens (
    jti         text PRIMARY KEY,
    revoked_at  timestamptz NOT NULL DEFAULT now(),
    -- When the token would have expired (NULL: unknown, keep the row).
    expires_at  timestamptz,
    -- Why, for the audit trail ("laptop lost", "tool retired").
    reason      text NOT NULL DEFAULT ''
);
-- Replicas poll "what changed since I last looked".
CREATE INDEX revoked_tokens_revoked_at_idx ON revoked_tokens (revoked_at);

-- External ids are the user names identity providers sync people by, and
-- those compare without regard to case (Okta and Entra treat `Ada@x` and
-- `ada@x` as one account). This makes the command side's guard hold it:
-- of two people registered under case variants of one id, racing or not,
-- the second is refused.
CREATE UNIQUE INDEX person_external_ids_lower_idx ON person_external_ids (lower(external_id));
