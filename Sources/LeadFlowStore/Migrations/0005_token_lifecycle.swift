/// Migration 5: tokens as Facebook issues them. The user token is no longer kept (it ends
/// after ~60 days, and preflight reads everything from the Page token's `debug_token`);
/// what the exchange said of it, and who authenticated, are kept for people to read.
let migration0005 = Migration(version: 5, name: "token lifecycle", sql: #"""
ALTER TABLE connections
    DROP COLUMN user_token_ciphertext,
    ADD COLUMN authenticator_name    text,
    -- The long-lived user token's end (the exchange's expires_in): informational only.
    ADD COLUMN user_token_expires_at timestamptz;
"""#)
