-- +goose Up

-- Users are identified by an opaque random id, never by email or a sequence.
CREATE TABLE users (
    id         text PRIMARY KEY,
    profile    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL
);

-- One row per provider account. The key is (provider, subject): providers
-- may omit or not verify emails (Kakao does), so emails are never a key.
CREATE TABLE identities (
    provider   text NOT NULL,
    subject    text NOT NULL,
    user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile    jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- provider tokens, AES-256-GCM under keys.encryption_key, kept only to
    -- revoke the grant later
    grant_enc  bytea,
    linked_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- A session is one refresh-token family.
CREATE TABLE sessions (
    id             text PRIMARY KEY,
    user_id        text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idp            text NOT NULL,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL, -- absolute; rotation never extends it
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Refresh tokens are stored only as SHA-256 hashes.
CREATE TABLE refresh_tokens (
    hash        bytea PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_hash bytea,
    created_at  timestamptz NOT NULL,
    rotated_at  timestamptz, -- set when this token was exchanged for its child
    child_hash  bytea
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

-- Signing keys. The private half is AES-256-GCM encrypted (AAD = kid).
-- A key signs from activates_at until the next key activates; its state
-- (next, active, retired) is derived from those times by every broker alike.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    alg          text NOT NULL,
    public_der   bytea NOT NULL,
    private_enc  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    activates_at timestamptz NOT NULL
);

-- Single-use values (login states, signup cookies, exchanged id_tokens),
-- by hash, remembered until they would have expired anyway.
CREATE TABLE used_once (
    kind       text NOT NULL,
    hash       bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (kind, hash)
);
CREATE INDEX used_once_expires_at ON used_once (expires_at);

-- Rotates one refresh token in one statement (one round trip). Outcomes:
--   rotated  the token was live: its child is now the live token
--   retried  the token was rotated less than p_grace ago and its child is
--            still live: the same child is handed back (racing tabs, lost
--            responses); nothing is revoked
--   reused   the token was rotated before: the whole session is revoked
--   revoked, expired, unknown
-- The token row is the only lock: the conditional UPDATE lets exactly one
-- of several concurrent rotations win, and the losers (re-reading the row
-- the winner committed) see a retry or a reuse. The session row is not
-- locked: a logout racing a rotation either comes first (and the rotation
-- sees it) or revokes the new child with the rest of the session.
-- Idleness is measured from the session's last use: the presented token's
-- creation or rotation, or sessions.last_used_at, which is refreshed at most
-- once a minute to keep the hot path to one row update and one insert (so a
-- long-rotated token replayed into an active session is still a reuse).
-- +goose StatementBegin
CREATE FUNCTION broker_rotate_refresh(
    p_hash bytea, p_child bytea, p_now timestamptz, p_grace interval, p_idle interval)
RETURNS TABLE (outcome text, session_id text, user_id text, idp text, expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    t refresh_tokens%ROWTYPE;
    s sessions%ROWTYPE;
    child_rotated timestamptz;
BEGIN
    SELECT * INTO t FROM refresh_tokens rt WHERE rt.hash = p_hash;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    SELECT * INTO s FROM sessions ss WHERE ss.id = t.session_id;
    IF s.revoked_at IS NOT NULL THEN
        RETURN QUERY SELECT 'revoked'::text, s.id, s.user_id, s.idp, s.expires_at;
        RETURN;
    END IF;
    IF s.expires_at <= p_now
       OR GREATEST(s.last_used_at, t.created_at, t.rotated_at) + p_idle <= p_now THEN
        RETURN QUERY SELECT 'expired'::text, s.id, s.user_id, s.idp, s.expires_at;
        RETURN;
    END IF;
    IF t.rotated_at IS NULL THEN
        UPDATE refresh_tokens SET rotated_at = p_now, child_hash = p_child
            WHERE hash = p_hash AND rotated_at IS NULL;
        IF FOUND THEN
            INSERT INTO refresh_tokens (hash, session_id, parent_hash, created_at)
                VALUES (p_child, s.id, p_hash, p_now);
            UPDATE sessions SET last_used_at = p_now
                WHERE id = s.id AND last_used_at < p_now - interval '1 minute';
            RETURN QUERY SELECT 'rotated'::text, s.id, s.user_id, s.idp, s.expires_at;
            RETURN;
        END IF;
        -- Another rotation won meanwhile: judge against what it committed.
        SELECT * INTO t FROM refresh_tokens rt WHERE rt.hash = p_hash;
    END IF;
    IF t.child_hash = p_child AND p_now < t.rotated_at + p_grace THEN
        SELECT rt.rotated_at INTO child_rotated FROM refresh_tokens rt WHERE rt.hash = p_child;
        IF FOUND AND child_rotated IS NULL THEN
            RETURN QUERY SELECT 'retried'::text, s.id, s.user_id, s.idp, s.expires_at;
            RETURN;
        END IF;
    END IF;
    UPDATE sessions SET revoked_at = p_now, revoked_reason = 'reuse' WHERE id = s.id AND revoked_at IS NULL;
    RETURN QUERY SELECT 'reused'::text, s.id, s.user_id, s.idp, s.expires_at;
END;
$$;
-- +goose StatementEnd
