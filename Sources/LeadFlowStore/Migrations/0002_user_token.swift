/// Migration 2: keep the Connector Authenticator's user token (sealed) beside the Page
/// token, because `me/permissions` answers only for a user token.
let migration0002 = Migration(version: 2, name: "user token", sql: #"""
ALTER TABLE connections
    ADD COLUMN user_token_ciphertext bytea CHECK (octet_length(user_token_ciphertext) > 28);
"""#)
