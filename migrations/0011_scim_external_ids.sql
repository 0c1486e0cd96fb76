-- The SCIM `externalId` of users (RFC 7643 3.1): the provisioning client's
-- own identifier of the resource (an Okta or Entra object id, say), kept
-- for the client and given back to it. Tandem's identity of a person is
-- their stream and their HRIS external id (SCIM `userName`); this value
-- means nothing to the domain, so it is not an event: it is written by the
-- SCIM server after the person's commands commit, and deleted with the
-- User (DELETE erases the person and removes this row).
CREATE TABLE scim_external_ids (
    person_id    uuid PRIMARY KEY,
    -- NULL once the client removed it (the row stays, so revisions only grow).
    external_id  text,
    -- Counts the changes of the value; part of the User's ETag, so that a
    -- change of externalId alone gives a new `meta.version`.
    revision     integer NOT NULL DEFAULT 1,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- Filters such as `externalId eq "…"` look values up by it (case-exact).
CREATE INDEX scim_external_ids_value_idx ON scim_external_ids (external_id);
