/// Migration 12: the connection lease, in place of a session advisory lock.
///
/// A session advisory lock lives as long as its session: a worker frozen (SIGSTOP, a
/// paused VM) during extraction kept it, so the worker that took its work item over found
/// the connection locked, reported it idle and nobody loaded it that round. A lease row is
/// taken over once it lapses, its fence raised; every window commit checks the fence.
let migration0012 = Migration(version: 12, name: "connection leases", sql: #"""
CREATE TABLE connection_leases (
    connection_id bigint PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
    holder        text NOT NULL,
    -- Rises with every taking: a commit under an older fence is refused.
    fence         bigint NOT NULL CHECK (fence > 0),
    -- Server clock (clock_timestamp()): leases are real time even when "now" is injected.
    lease_until   timestamptz NOT NULL,
    taken_at      timestamptz NOT NULL
);
"""#)
