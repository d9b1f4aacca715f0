-- +goose Up

-- Broker codes of native app logins (RFC 8252): each is single use, lives
-- at most 60 s, is stored only as a SHA-256 hash, and is bound to the app
-- (client_id, redirect_uri, PKCE S256 challenge) and to the session it
-- starts. That session is created with the code, but its first refresh
-- token is handed out only when the code is redeemed. A used code is kept
-- (used_at set) so that a second use can revoke the session it started.
CREATE TABLE native_codes (
    hash         bytea PRIMARY KEY,
    session_id   text NOT NULL UNIQUE REFERENCES sessions (id) ON DELETE CASCADE,
    client_id    text NOT NULL,
    redirect_uri text NOT NULL,
    challenge    text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX native_codes_expires_at ON native_codes (expires_at);
