/// Migration 3: the windows a void period's backfill has committed, one per form, so a
/// killed backfill resumes where its committed windows end and the period is marked
/// backfilled only when every form's window is in.
let migration0003 = Migration(version: 3, name: "backfill windows", sql: #"""
CREATE TABLE backfill_windows (
    void_period_id bigint NOT NULL REFERENCES void_periods (id) ON DELETE CASCADE,
    connection_id  bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    form_id        text NOT NULL,
    window_from    timestamptz,
    window_to      timestamptz NOT NULL,
    run_id         bigint NOT NULL REFERENCES runs (id),
    committed_at   timestamptz NOT NULL,
    PRIMARY KEY (void_period_id, form_id),
    CHECK (window_from IS NULL OR window_from < window_to)
);
"""#)
