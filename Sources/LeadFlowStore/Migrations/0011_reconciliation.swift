/// Migration 11: Facebook's form counters reconciled with what each instance holds.
///
/// `withheld_leads` records the lead ids an instance will never hold because their person
/// was erased (skipped on read, or deleted by `erase`): without it an erased person's lead
/// would read as missing for ever. `form_reconciliations` keeps, per instance and form,
/// what the last comparison found and when deeper windows were last read again (they are
/// paced: hourly while a shortfall is young, daily after). The form index gains the instance: the count of what an instance holds of a
/// form, and the load's look-up of a window's known leads, are both by (instance, form).
let migration0011 = Migration(version: 11, name: "reconciliation", sql: #"""
CREATE TABLE withheld_leads (
    instance    text NOT NULL,
    form_id     text NOT NULL,
    lead_id     text NOT NULL CHECK (lead_id ~ '^[0-9]+$'),
    reason      text NOT NULL CHECK (reason IN ('erased')),
    withheld_at timestamptz NOT NULL,
    PRIMARY KEY (instance, lead_id)
);
CREATE INDEX withheld_leads_form ON withheld_leads (instance, form_id);

CREATE TABLE form_reconciliations (
    instance            text NOT NULL,
    form_id             text NOT NULL,
    connection_id       bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    checked_at          timestamptz NOT NULL,
    -- leads_count - expired_leads_count, as Graph gave them.
    facebook_count      integer NOT NULL CHECK (facebook_count >= 0),
    held                integer NOT NULL CHECK (held >= 0),
    missing             integer GENERATED ALWAYS AS (greatest(0, facebook_count - held)) STORED,
    -- Since when the counts have disagreed (NULL: they agree): re-reads are hourly for
    -- the first two days of a shortfall, daily after.
    short_since         timestamptz,
    reread_at           timestamptz,
    deepest_reread_at   timestamptz,
    PRIMARY KEY (instance, form_id)
);

-- What an instance holds of a form counts its rejections too.
CREATE INDEX lead_rejections_form ON lead_rejections (instance, form_id);

DROP INDEX leads_form_created;
CREATE INDEX leads_instance_form_created ON leads (instance, form_id, created_at);
"""#)
