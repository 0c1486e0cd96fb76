-- Webhooks: the sealed signing secrets of webhook endpoints, where each
-- endpoint's delivery stands in the event log, and every delivery attempt.
--
-- The endpoints themselves are streams of the log (stream type 'webhook':
-- WebhookEndpointCreated, WebhookEndpointUpdated, WebhookSecretRotated,
-- WebhookEndpointDisabled, WebhookRedeliveryRequested) and their current
-- settings are the read model `read.webhook_endpoints` (crates/projections).
-- Those events never hold a secret: they name it by `secret_id`, a row of
-- `webhook_secrets` below. The delivery worker (crates/webhooks) writes
-- `webhook_checkpoints` and `webhook_deliveries`.

-- ---------------------------------------------------------------------------
-- webhook_secrets
-- ---------------------------------------------------------------------------
-- One row per signing secret ever issued. The secret (the 32 random bytes
-- behind `whsec_…`) is sealed with ChaCha20-Poly1305 under a key derived
-- from the server secret (TANDEM_SERVER_SECRET) by HMAC-SHA-256 with the
-- label 'tandem webhook secrets v1'; the endpoint and secret ids are the
-- associated data, so a sealed value moved to another row does not open.
-- Without the server secret the table is useless to a reader. A row is
-- written before the event that names it, so a secret whose command was
-- refused is left unreferenced (and never used).
CREATE TABLE webhook_secrets (
    secret_id    uuid PRIMARY KEY,
    endpoint_id  uuid NOT NULL,
    nonce        bytea NOT NULL,
    sealed       bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_secrets_nonce_size CHECK (octet_length(nonce) = 12),
    -- 32 bytes of secret and the 16-byte tag.
    CONSTRAINT webhook_secrets_sealed_size CHECK (octet_length(sealed) = 48)
);
CREATE INDEX webhook_secrets_endpoint_idx ON webhook_secrets (endpoint_id);

COMMENT ON TABLE webhook_secrets IS
    'Webhook signing secrets, sealed (ChaCha20-Poly1305, key derived from the server secret); named by events, never in them.';

-- ---------------------------------------------------------------------------
-- webhook_checkpoints
-- ---------------------------------------------------------------------------
-- One row per endpoint the worker has started on: the cursor of the last
-- event that is done for it (delivered, or not for this endpoint), and the
-- state of the event after it. It moves in the SAME transaction that records
-- an attempt's outcome in `webhook_deliveries`, so a restart resumes with
-- exactly the events after the cursor: an event whose delivery succeeded
-- but was not yet recorded is delivered again (at least once, never lost).
CREATE TABLE webhook_checkpoints (
    endpoint_id       uuid PRIMARY KEY,
    -- (transaction_id, position) of the last event done, in the log's
    -- global order; the cursor the endpoint's creation event left when new.
    transaction_id    xid8 NOT NULL,
    position          bigint NOT NULL,
    -- 'active', or 'failing' once the last retry of an event failed (or it
    -- was refused with a 4xx other than 429): deliveries wait until a
    -- redelivery is asked for.
    status            text NOT NULL DEFAULT 'active',
    -- Failed attempts of the next event so far, and when to try it again.
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    -- How many WebhookRedeliveryRequested events of the endpoint have been
    -- acted on (the read model counts them).
    redeliveries      integer NOT NULL DEFAULT 0,
    -- recorded_at of the last event done, for the lag in seconds.
    last_recorded_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_checkpoints_status CHECK (status IN ('active', 'failing')),
    CONSTRAINT webhook_checkpoints_attempts CHECK (attempts >= 0),
    CONSTRAINT webhook_checkpoints_position CHECK (position >= 0)
);

COMMENT ON TABLE webhook_checkpoints IS
    'Where each webhook endpoint''s delivery stands in the event log; moved with the attempt it records.';

-- ---------------------------------------------------------------------------
-- webhook_deliveries
-- ---------------------------------------------------------------------------
-- Every delivery attempt, in the order made. `message_id` is the
-- `webhook-id` header: one per event, the same for every attempt (and
-- redelivery) of it, so a receiver can drop duplicates.
CREATE TABLE webhook_deliveries (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id    uuid NOT NULL,
    message_id     text NOT NULL,
    event_id       uuid NOT NULL,
    event_type     text NOT NULL,
    -- The event's cursor in the log.
    cursor         text NOT NULL,
    attempt        integer NOT NULL,
    -- 'delivered'; 'retrying' (failed, another attempt is scheduled);
    -- 'failed' (failed, no attempt follows: the endpoint is failing).
    status         text NOT NULL,
    -- The receiver's HTTP status, when it answered.
    http_status    integer,
    -- Why it failed, in Tandem's words (never the receiver's body).
    error          text,
    duration_ms    integer NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz,
    CONSTRAINT webhook_deliveries_status CHECK (status IN ('delivered', 'retrying', 'failed')),
    CONSTRAINT webhook_deliveries_attempt CHECK (attempt >= 1)
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, seq);

COMMENT ON TABLE webhook_deliveries IS
    'Every webhook delivery attempt and its outcome; written with the endpoint''s checkpoint.';
