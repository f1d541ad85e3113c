/// Migration 1: every table of the design, with the keys and checks that say what the
/// data means. Comments on the columns live here, beside the constraints they explain.
let migration0001 = Migration(version: 1, name: "initial schema", sql: #"""
CREATE TABLE runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('scheduled', 'backfill', 'demo')),
    pipeline     text NOT NULL CHECK (pipeline <> ''),
    host         text NOT NULL,
    worker_id    text,
    started_at   timestamptz NOT NULL,
    -- The run's "now": no window of this run reads leads created at or after it.
    upper_bound  timestamptz NOT NULL,
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned')),
    counters     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(counters) = 'object'),
    CHECK (finished_at IS NULL OR finished_at >= started_at),
    -- A run is running exactly while it has no end.
    CHECK ((status = 'running') = (finished_at IS NULL))
);

CREATE TABLE connections (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance                  text NOT NULL CHECK (instance ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
    page_id                   text NOT NULL CHECK (page_id ~ '^[0-9]+$'),
    label                     text NOT NULL UNIQUE CHECK (label ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
    page_name                 text,
    -- The Connector Authenticator: the Facebook user whose token this is.
    authenticator_user_id     text NOT NULL CHECK (authenticator_user_id ~ '^[0-9]+$'),
    -- AES-GCM: 12-byte nonce, ciphertext, 16-byte tag. The token is never stored in clear.
    token_ciphertext          bytea NOT NULL CHECK (octet_length(token_ciphertext) > 28),
    token_key_id              text NOT NULL,
    token_type                text NOT NULL CHECK (token_type IN ('USER', 'PAGE', 'SYSTEM_USER')),
    scopes                    text[] NOT NULL DEFAULT '{}',
    -- Start of the current 90-day cycle (the last authentication or reauthentication).
    authenticated_at          timestamptz NOT NULL,
    -- Facebook's own limits; NULL where Facebook says 0, "never".
    fb_expires_at             timestamptz,
    fb_data_access_expires_at timestamptz,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    UNIQUE (instance, page_id),
    CHECK (updated_at >= created_at)
);

CREATE TABLE auth_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('authenticated', 'reauthenticated', 'verified', 'expiring',
                                                'expired', 'revoked', 'invalid', 'authenticator_changed')),
    occurred_at   timestamptz NOT NULL,
    -- Why, in words that hold no secret: a cause code, a permission's name, a subcode.
    cause         text,
    run_id        bigint REFERENCES runs (id)
);
CREATE INDEX auth_events_connection ON auth_events (connection_id, occurred_at);

CREATE TABLE void_periods (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id   bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    cause           text NOT NULL CHECK (cause IN ('token_expired', 'data_access_expired', 'token_invalidated',
                                                   'permission_revoked', 'lead_access_lost')),
    cause_detail    text,
    -- The earliest evidence: the expiry instant when known, else the first failed check.
    started_at      timestamptz NOT NULL,
    -- The reauthentication that closed it; NULL while it is open.
    ended_at        timestamptz,
    backfill_run_id bigint REFERENCES runs (id),
    backfilled_at   timestamptz,
    CHECK (ended_at IS NULL OR ended_at > started_at),
    -- Only a closed period can be backfilled, and a backfill names its run.
    CHECK (backfilled_at IS NULL OR (ended_at IS NOT NULL AND backfill_run_id IS NOT NULL))
);
-- A connection has at most one open void period.
CREATE UNIQUE INDEX void_periods_one_open ON void_periods (connection_id) WHERE ended_at IS NULL;

CREATE TABLE forms (
    connection_id     bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    form_id           text NOT NULL CHECK (form_id ~ '^[0-9]+$'),
    name              text NOT NULL,
    status            text NOT NULL CHECK (status IN ('ACTIVE', 'ARCHIVED', 'DELETED', 'DRAFT')),
    locale            text,
    created_time      timestamptz,
    first_seen_run_id bigint NOT NULL REFERENCES runs (id),
    last_seen_run_id  bigint NOT NULL REFERENCES runs (id),
    PRIMARY KEY (connection_id, form_id)
);

-- The three counters Facebook keeps per form, as each run saw them: the rise of
-- expired_leads_count across a void period is the measure of leads lost for good.
CREATE TABLE form_snapshots (
    run_id              bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    connection_id       bigint NOT NULL,
    form_id             text NOT NULL,
    taken_at            timestamptz NOT NULL,
    leads_count         integer NOT NULL CHECK (leads_count >= 0),
    organic_leads_count integer NOT NULL CHECK (organic_leads_count >= 0),
    expired_leads_count integer NOT NULL CHECK (expired_leads_count >= 0),
    PRIMARY KEY (run_id, connection_id, form_id),
    FOREIGN KEY (connection_id, form_id) REFERENCES forms (connection_id, form_id) ON DELETE CASCADE
);

-- Leads of a form created before high_water are committed. Moved only in the transaction
-- that commits the window's rows; never past the run's upper bound.
CREATE TABLE watermarks (
    connection_id bigint NOT NULL,
    form_id       text NOT NULL,
    high_water    timestamptz NOT NULL,
    run_id        bigint NOT NULL REFERENCES runs (id),
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (connection_id, form_id),
    FOREIGN KEY (connection_id, form_id) REFERENCES forms (connection_id, form_id) ON DELETE CASCADE
);

CREATE TABLE archives (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES runs (id),
    connection_id bigint NOT NULL REFERENCES connections (id),
    -- Relative to LEADFLOW_HOME, so the home folder can move.
    path          text NOT NULL UNIQUE CHECK (path <> '' AND path !~ '^/' AND path !~ '(^|/)\.\.(/|$)'),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes         bigint NOT NULL CHECK (bytes > 0),
    -- manifest.json is always a member.
    members       integer NOT NULL CHECK (members >= 1),
    window_from   timestamptz,
    window_to     timestamptz NOT NULL,
    created_at    timestamptz NOT NULL,
    verified_at   timestamptz NOT NULL,
    -- Set when an erasure rewrote it into a new archive.
    superseded_by bigint REFERENCES archives (id),
    CHECK (window_from IS NULL OR window_from < window_to),
    CHECK (verified_at >= created_at)
);

-- Integrate lead schema v1. Documented in README.md, "The leads table".
CREATE TABLE leads (
    lead_id       text PRIMARY KEY CHECK (lead_id ~ '^[0-9]+$'),
    instance      text NOT NULL,
    connection_id bigint NOT NULL REFERENCES connections (id),
    page_id       text NOT NULL CHECK (page_id ~ '^[0-9]+$'),
    form_id       text NOT NULL CHECK (form_id ~ '^[0-9]+$'),
    form_name     text,
    source_id     text,
    ad_id         text,
    adset_id      text,
    campaign_id   text,
    is_organic    boolean NOT NULL,
    platform      text,
    created_at    timestamptz NOT NULL,
    email         text CHECK (email = lower(btrim(email)) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    first_name    text,
    last_name     text,
    company       text,
    job_title     text,
    phone         text CHECK (phone <> ''),
    country       text CHECK (country ~ '^[A-Z]{2}$'),
    state         text,
    city          text,
    postal_code   text,
    consents      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(consents) = 'object'),
    answers       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(answers) = 'object'),
    raw_sha256    text NOT NULL CHECK (raw_sha256 ~ '^[0-9a-f]{64}$'),
    archive_id    bigint NOT NULL REFERENCES archives (id),
    first_run_id  bigint NOT NULL REFERENCES runs (id),
    last_run_id   bigint NOT NULL REFERENCES runs (id),
    loaded_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- A lead Integrate cannot reach is rejected, not loaded.
    CHECK (email IS NOT NULL OR phone IS NOT NULL),
    -- Organic leads come from no ad.
    CHECK (NOT is_organic OR (ad_id IS NULL AND adset_id IS NULL AND campaign_id IS NULL)),
    CHECK (updated_at >= loaded_at)
);
CREATE INDEX leads_connection_created ON leads (connection_id, created_at);
CREATE INDEX leads_form_created ON leads (form_id, created_at);
CREATE INDEX leads_email ON leads (email);

-- Rejections are rows, not log lines; reasons are codes that hold no personal data.
CREATE TABLE lead_rejections (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        bigint NOT NULL REFERENCES runs (id),
    connection_id bigint NOT NULL REFERENCES connections (id),
    form_id       text NOT NULL,
    -- NULL when the payload had no usable id.
    lead_id       text,
    created_at    timestamptz,
    reasons       text[] NOT NULL CHECK (cardinality(reasons) > 0),
    raw_sha256    text NOT NULL CHECK (raw_sha256 ~ '^[0-9a-f]{64}$'),
    archive_id    bigint REFERENCES archives (id),
    rejected_at   timestamptz NOT NULL
);
CREATE INDEX lead_rejections_connection ON lead_rejections (connection_id, rejected_at);

-- The outbox a mailer or chat hook reads: one reminder per connection, kind and cycle.
CREATE TABLE reminders (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id          bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    kind                   text NOT NULL CHECK (kind IN ('reauthentication_due', 'expired')),
    -- The authentication cycle it belongs to (connections.authenticated_at at the time).
    cycle_started_at       timestamptz NOT NULL,
    due_at                 timestamptz NOT NULL,
    expires_at             timestamptz NOT NULL,
    created_at             timestamptz NOT NULL,
    delivered_at           timestamptz,
    UNIQUE (connection_id, kind, cycle_started_at),
    CHECK (due_at >= cycle_started_at),
    CHECK (due_at <= expires_at),
    CHECK (delivered_at IS NULL OR delivered_at >= created_at)
);

-- Tombstones of erased people: keyed hashes only, so no backfill brings them back and
-- the table itself names nobody.
CREATE TABLE erasures (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject_kind       text NOT NULL CHECK (subject_kind IN ('email', 'lead_id')),
    subject_hash       text NOT NULL CHECK (subject_hash ~ '^[0-9a-f]{64}$'),
    requested_at       timestamptz NOT NULL,
    leads_deleted      integer NOT NULL DEFAULT 0 CHECK (leads_deleted >= 0),
    archives_rewritten integer NOT NULL DEFAULT 0 CHECK (archives_rewritten >= 0),
    UNIQUE (subject_kind, subject_hash)
);
"""#)
