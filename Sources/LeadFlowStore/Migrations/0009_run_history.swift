/// Migration 9: what each run did, per connection and form, kept in tables (`leadflow runs`
/// reads them, the metrics count from them), and what keeping tidy needs.
///
/// - `run_passes`: one row per connection pass of a run: its job, outcome, pages, leads,
///   Graph requests and errors, rate-limit waits, seconds per stage, the archive it wrote.
///   `run_forms`: one row per form of a pass: its window, pages, leads, counts, requests
///   and, when it failed, the error's code. Both go with their run.
/// - `runs.failures`: the passes of the run that failed (a connection skipped, a form not
///   read); with the status it tells "finished without failure" (exit 0 or 2), which is
///   what the metrics call a success. NULL for runs finished before this migration.
/// - `metric_totals`: running totals the metrics' counters (`…_total`) report: they only
///   rise, survive every run and every prune, and are shared by every worker.
/// - `archives.pruned_at` and `prunes`: `archive prune` removes a file and keeps its row
///   (leads still name the archive their raw payload was in), and every prune is recorded.
let migration0009 = Migration(version: 9, name: "run history", sql: #"""
ALTER TABLE runs ADD COLUMN failures integer CHECK (failures >= 0);

CREATE TABLE run_passes (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id                  bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    connection_id           bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    -- preflight: the connection went no further (void, skipped, held by another run).
    job                     text NOT NULL CHECK (job IN ('preflight', 'scheduled', 'void_period', 'window', 'backfill')),
    void_period_id          bigint REFERENCES void_periods (id) ON DELETE SET NULL,
    state                   text NOT NULL CHECK (state IN ('loaded', 'void', 'skipped', 'partial', 'idle')),
    -- The void cause, the reason it was skipped or idle, the forms that failed: no secret.
    detail                  text,
    pages                   integer NOT NULL DEFAULT 0 CHECK (pages >= 0),
    inserted                integer NOT NULL DEFAULT 0 CHECK (inserted >= 0),
    updated                 integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    unchanged               integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0),
    rejected                integer NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    erased                  integer NOT NULL DEFAULT 0 CHECK (erased >= 0),
    graph_requests          integer NOT NULL DEFAULT 0 CHECK (graph_requests >= 0),
    -- Error code → how many answers carried it (retried ones too).
    graph_errors            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(graph_errors) = 'object'),
    rate_limit_waits        integer NOT NULL DEFAULT 0 CHECK (rate_limit_waits >= 0),
    rate_limit_wait_seconds double precision NOT NULL DEFAULT 0 CHECK (rate_limit_wait_seconds >= 0),
    preflight_seconds       double precision NOT NULL DEFAULT 0,
    extract_seconds         double precision NOT NULL DEFAULT 0,
    archive_seconds         double precision NOT NULL DEFAULT 0,
    load_seconds            double precision NOT NULL DEFAULT 0,
    -- NULL: the pass read nothing new, so it wrote no archive.
    archive_id              bigint REFERENCES archives (id)
);
CREATE INDEX run_passes_run ON run_passes (run_id);
CREATE INDEX run_passes_connection ON run_passes (connection_id, run_id);

CREATE TABLE run_forms (
    pass_id        bigint NOT NULL REFERENCES run_passes (id) ON DELETE CASCADE,
    form_id        text NOT NULL,
    window_from    timestamptz,
    window_to      timestamptz,
    pages          integer NOT NULL DEFAULT 0 CHECK (pages >= 0),
    -- Leads Graph gave in the window (rejected ones included).
    leads          integer NOT NULL DEFAULT 0 CHECK (leads >= 0),
    inserted       integer NOT NULL DEFAULT 0 CHECK (inserted >= 0),
    updated        integer NOT NULL DEFAULT 0 CHECK (updated >= 0),
    unchanged      integer NOT NULL DEFAULT 0 CHECK (unchanged >= 0),
    rejected       integer NOT NULL DEFAULT 0 CHECK (rejected >= 0),
    graph_requests integer NOT NULL DEFAULT 0 CHECK (graph_requests >= 0),
    graph_errors   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(graph_errors) = 'object'),
    -- Set when the form's window could not be read: the error's stable code and safe text.
    error_code     text,
    error          text,
    PRIMARY KEY (pass_id, form_id)
);

CREATE TABLE metric_totals (
    name  text NOT NULL CHECK (name ~ '^[a-z_]+$'),
    -- The one label's value (an instance, an error code), '' for none.
    label text NOT NULL DEFAULT '',
    value double precision NOT NULL DEFAULT 0 CHECK (value >= 0),
    PRIMARY KEY (name, label)
);

ALTER TABLE archives ADD COLUMN pruned_at timestamptz;

CREATE TABLE prunes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('archives', 'runs')),
    -- What was older than this instant could go.
    cutoff     timestamptz NOT NULL,
    pruned_at  timestamptz NOT NULL,
    host       text NOT NULL,
    -- Archives removed, or runs deleted.
    removed    integer NOT NULL CHECK (removed >= 0),
    -- Older than the cutoff, but kept (what the gap report and erasure need).
    kept       integer NOT NULL CHECK (kept >= 0),
    bytes      bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    -- Rows of other tables that went with the runs (work items, form snapshots, …).
    details    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
"""#)
