/// Migration 6: the notification outbox. Each event is written in the transaction that
/// records its fact, once per (connection, type, subject); each delivery (webhook, a mail
/// to the authenticator, a mail to the CSM) is tried until it gets through, with the same
/// event id. The authenticator's address is sealed like the token.
let migration0006 = Migration(version: 6, name: "notifications", sql: #"""
ALTER TABLE connections
    -- `connect --notify-email`, AES-GCM under the token key, bound to the connection.
    ADD COLUMN notify_email_ciphertext bytea,
    ADD COLUMN notify_email_key_id     text,
    ADD CHECK ((notify_email_ciphertext IS NULL) = (notify_email_key_id IS NULL));

CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The id receivers see and deduplicate on: the same on every redelivery.
    event_id      uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    connection_id bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    type          text NOT NULL CHECK (type IN ('reminder.due', 'reminder.expired', 'connection.created',
                                                'connection.reauthenticated', 'connection.void', 'connection.recovered')),
    -- What makes the fact one: the cycle's start (reminders, reauthentications), the
    -- void period (void, recovered), 'created'.
    subject       text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    -- The event's own fields: instants, cause, remedy, counts. Never a token, never a lead.
    fields        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields) = 'object'),
    -- When `notify` gave it its channels (from the configuration of that moment).
    routed_at     timestamptz,
    UNIQUE (connection_id, type, subject)
);
CREATE INDEX notifications_unrouted ON notifications (id) WHERE routed_at IS NULL;

CREATE TABLE notification_deliveries (
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'mail:authenticator', 'mail:csm')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_attempt_at timestamptz,
    next_attempt_at timestamptz NOT NULL,
    -- Safe to show: the notifier strips secrets and addresses before it stores it.
    last_error      text,
    delivered_at    timestamptz,
    -- A notifier's claim, on the database's own clock (LEADFLOW_NOW may stand still).
    leased_until    timestamptz,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
"""#)
