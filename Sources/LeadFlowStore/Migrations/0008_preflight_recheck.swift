/// Migration 8: when each connection's token was last verified with Facebook, so a run
/// every few minutes does not ask Graph the same questions again within the hour.
let migration0008 = Migration(version: 8, name: "preflight recheck", sql: #"""
ALTER TABLE connections ADD COLUMN verified_at timestamptz;
"""#)
