/// Migration 4: Postgres as the workers' coordinator. A round is one pass over every
/// connection (of a kind: scheduled or backfill); its items are claimed with
/// `FOR UPDATE SKIP LOCKED` under a lease that expires when a worker dies, and a fence
/// that rises with every claim, so a worker whose lease was taken over cannot commit.
/// `graph_app_usage` shares the last usage Graph reported per app between workers.
let migration0004 = Migration(version: 4, name: "work queue", sql: #"""
CREATE TABLE work_rounds (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('scheduled', 'backfill')),
    opened_by  text NOT NULL,
    -- Server clock (clock_timestamp()), never the run's injectable "now": leases are real time.
    opened_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    closed_at  timestamptz
);
CREATE UNIQUE INDEX work_rounds_one_open_per_kind ON work_rounds (kind) WHERE closed_at IS NULL;

CREATE TABLE work_items (
    round_id      bigint NOT NULL REFERENCES work_rounds (id) ON DELETE CASCADE,
    connection_id bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'claimed', 'done')),
    worker_id     text,
    -- Where the claiming process runs: a worker on the same host whose process is gone is
    -- seen at once, without waiting for its lease to end.
    host          text,
    process_id    int,
    fence         bigint NOT NULL DEFAULT 0,
    claims        int NOT NULL DEFAULT 0,
    lease_until   timestamptz,
    claimed_at    timestamptz,
    done_at       timestamptz,
    outcome       text,
    PRIMARY KEY (round_id, connection_id),
    CHECK (state <> 'claimed' OR (worker_id IS NOT NULL AND lease_until IS NOT NULL))
);
CREATE INDEX work_items_open ON work_items (round_id, connection_id) WHERE state <> 'done';

CREATE TABLE graph_app_usage (
    app_id      text PRIMARY KEY,
    percent     int NOT NULL CHECK (percent >= 0),
    regain_at   timestamptz,
    reported_by text NOT NULL,
    reported_at timestamptz NOT NULL
);
"""#)
