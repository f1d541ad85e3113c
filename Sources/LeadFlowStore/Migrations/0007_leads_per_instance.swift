/// Migration 7: leads keyed per instance, and the leads table tuned for ingest.
///
/// One Page may be connected to several Integrate instances, and each gets every lead
/// (the seed: "authenticate each of those Facebook pages within each Integrate instance"):
/// the key is (instance, lead_id), and every row is kept. Rejections and erasures carry
/// their instance too.
///
/// The four foreign keys of `leads` (connection, archive, first and last run) go: each is a
/// trigger and an index probe per row, which cost more than the rest of a row's load
/// (measured: scripts/bench-run.sh). The load writes only the archive and the run it
/// created in the same transaction, and the tests check that no lead points nowhere. The
/// CHECKs stay: they cost little per row and keep the table honest against any writer.
let migration0007 = Migration(version: 7, name: "leads per instance", sql: #"""
ALTER TABLE leads DROP CONSTRAINT leads_pkey;
ALTER TABLE leads ADD PRIMARY KEY (instance, lead_id);
ALTER TABLE leads
    DROP CONSTRAINT leads_connection_id_fkey,
    DROP CONSTRAINT leads_archive_id_fkey,
    DROP CONSTRAINT leads_first_run_id_fkey,
    DROP CONSTRAINT leads_last_run_id_fkey;

ALTER TABLE lead_rejections ADD COLUMN instance text;
UPDATE lead_rejections r SET instance = c.instance FROM connections c WHERE c.id = r.connection_id;
ALTER TABLE lead_rejections ALTER COLUMN instance SET NOT NULL;
CREATE INDEX lead_rejections_lead ON lead_rejections (instance, lead_id);

-- An erasure for one instance, or (NULL) for every instance.
ALTER TABLE erasures ADD COLUMN instance text;
ALTER TABLE erasures DROP CONSTRAINT erasures_subject_kind_subject_hash_key;
CREATE UNIQUE INDEX erasures_subject ON erasures (subject_kind, subject_hash, coalesce(instance, ''));
"""#)
