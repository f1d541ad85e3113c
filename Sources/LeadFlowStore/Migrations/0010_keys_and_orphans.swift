/// Migration 10: the erasure key is a key of its own, token keys can be rotated, and what a
/// killed run or erasure leaves is found again. (Version 9 is another change's.)
///
/// Tombstones carry the id of the erasure key they were hashed under. Those written before
/// were hashed under an HKDF of the token key: they are marked `token:<id>`, naming the token
/// key of the connection authenticated last (`unknown` when there is none), and the first
/// command that needs the erasure key writes that derived key to its own file, records it in
/// `erasure_key` and gives them its id (`KeyCustody`), so they keep matching after the token
/// key is rotated. `retired_token_keys` lists token keys a rotation removed: a `connect`
/// that sealed under one while the rotation ran is refused.
///
/// A run holds a lease (server clock) that its process renews: a run marked running whose
/// lease ended, on any host, is dead, and its spool folder and unrecorded archive files can
/// go. `swept_at` marks the failed or abandoned runs whose leftovers a sweep has removed.
/// `erasure_pending` holds archives an erasure could not rewrite on its host (keyed hashes of
/// what to take out, never who).
let migration0010 = Migration(version: 10, name: "keys and orphans", sql: #"""
ALTER TABLE erasures ADD COLUMN key_id text;
UPDATE erasures SET key_id = 'token:' || coalesce(
    (SELECT token_key_id FROM connections ORDER BY authenticated_at DESC, id DESC LIMIT 1), 'unknown');
ALTER TABLE erasures ALTER COLUMN key_id SET NOT NULL;

CREATE TABLE erasure_key (
    key_id                 text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    origin                 text NOT NULL CHECK (origin IN ('generated', 'legacy')),
    -- For a legacy key: the token key it was derived from.
    derived_from_token_key text,
    created_at             timestamptz NOT NULL,
    -- One erasure key per database.
    one_row                boolean NOT NULL DEFAULT true UNIQUE CHECK (one_row),
    CHECK ((origin = 'legacy') = (derived_from_token_key IS NOT NULL))
);

CREATE TABLE retired_token_keys (
    key_id     text PRIMARY KEY,
    retired_at timestamptz NOT NULL
);

ALTER TABLE runs ADD COLUMN lease_until timestamptz, ADD COLUMN swept_at timestamptz;
-- Runs of an older binary in flight during the upgrade keep an hour before they count as dead.
UPDATE runs SET lease_until = clock_timestamp() + interval '1 hour' WHERE status = 'running';

CREATE TABLE erasure_pending (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id   bigint NOT NULL REFERENCES archives (id) ON DELETE CASCADE,
    key_id       text NOT NULL,
    -- Keyed hashes (HMAC under the erasure key) of the e-mails and lead ids to take out.
    hashes       text[] NOT NULL CHECK (cardinality(hashes) > 0),
    reason       text NOT NULL CHECK (reason <> ''),
    requested_at timestamptz NOT NULL
);
CREATE INDEX erasure_pending_archive ON erasure_pending (archive_id);
"""#)
