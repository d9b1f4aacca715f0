-- +goose Up

-- Disabled users: no login, no token exchange, every session revoked when
-- disabled.
ALTER TABLE users ADD COLUMN disabled_at timestamptz, ADD COLUMN disabled_reason text;

-- What a user's session list shows, recorded once when a session starts
-- (never on the refresh path).
ALTER TABLE sessions ADD COLUMN kind text NOT NULL DEFAULT 'web',
    ADD COLUMN user_agent text, ADD COLUMN ip text;

-- Admin API keys, stored only as SHA-256 hashes.
CREATE TABLE admin_keys (
    name       text PRIMARY KEY,
    hash       bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- Admin search by email (profile field of users or identities).
CREATE INDEX users_profile_email ON users ((profile->>'email'));
CREATE INDEX identities_profile_email ON identities ((profile->>'email'));
