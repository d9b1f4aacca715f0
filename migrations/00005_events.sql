-- +goose Up

-- Events for the product's backends (Standard Webhooks), as a transactional
-- outbox: every change writes its events in its own transaction through
-- broker_emit, which fans each event out to the endpoints whose filter takes
-- it. The endpoints table mirrors events.endpoints of the config; brokers
-- write it at start. A delivery worker claims due deliveries by pushing
-- next_attempt_at forward (a lease), so two brokers never send one delivery
-- at once, and a broker that dies mid-send leaves it due again after the
-- lease (at least once).
CREATE TABLE event_endpoints (
    url   text PRIMARY KEY,
    types text[] -- NULL: every type
);

CREATE TABLE events (
    id         text PRIMARY KEY, -- the webhook-id, the same on every attempt
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE event_deliveries (
    event_id        text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint        text NOT NULL REFERENCES event_endpoints (url) ON DELETE CASCADE,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    given_up_at     timestamptz,
    last_error      text, -- a status or an error class, never a body
    PRIMARY KEY (event_id, endpoint)
);
CREATE INDEX event_deliveries_due ON event_deliveries (endpoint, next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- +goose StatementBegin
CREATE FUNCTION broker_emit(p_type text, p_data jsonb, p_now timestamptz) RETURNS void
LANGUAGE sql AS $$
    WITH e AS (
        INSERT INTO events (id, type, data, created_at)
        VALUES ('msg_' || replace(gen_random_uuid()::text, '-', ''), p_type, p_data, p_now)
        RETURNING id
    )
    INSERT INTO event_deliveries (event_id, endpoint, next_attempt_at)
    SELECT e.id, ep.url, p_now FROM e, event_endpoints ep
    WHERE ep.types IS NULL OR p_type = ANY (ep.types);
$$;
-- +goose StatementEnd

-- The audit log: one row per security-relevant action, kept for
-- audit.retention. A refresh that simply rotates writes none.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    type       text NOT NULL,
    user_id    text,
    session_id text,
    provider   text,
    ip         text,
    user_agent text,
    actor      text NOT NULL,
    detail     text -- an error code, a reason; never personal data
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (user_id, id);

-- The refresh functions report a reuse (an event and an audit row) in the
-- statement that detects it, with the client's address and agent.
DROP FUNCTION broker_rotate_refresh(bytea, bytea, timestamptz, interval, interval);

-- +goose StatementBegin
CREATE FUNCTION broker_rotate_refresh(
    p_hash bytea, p_child bytea, p_now timestamptz, p_grace interval, p_idle interval,
    p_ip text, p_ua text)
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
    IF FOUND THEN
        PERFORM broker_emit('session.revoked',
            jsonb_build_object('user_id', s.user_id, 'session_id', s.id, 'reason', 'reuse_detected'), p_now);
        INSERT INTO audit_log (at, type, user_id, session_id, provider, ip, user_agent, actor)
            VALUES (p_now, 'refresh_reuse', s.user_id, s.id, s.idp, p_ip, p_ua, 'user');
    END IF;
    RETURN QUERY SELECT 'reused'::text, s.id, s.user_id, s.idp, s.expires_at;
END;
$$;
-- +goose StatementEnd

-- broker_check_refresh judges a refresh token presented to an endpoint that
-- does not rotate it (link, logout): only the session's live token, or its
-- parent within the grace while the child is still unused, counts as the
-- session. Any older generation is a reuse: the session is revoked, exactly
-- as broker_rotate_refresh does. Nothing else is written.
-- +goose StatementBegin
CREATE FUNCTION broker_check_refresh(
    p_hash bytea, p_now timestamptz, p_grace interval, p_idle interval,
    p_ip text, p_ua text)
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
        RETURN QUERY SELECT 'live'::text, s.id, s.user_id, s.idp, s.expires_at;
        RETURN;
    END IF;
    IF p_now < t.rotated_at + p_grace THEN
        SELECT rt.rotated_at INTO child_rotated FROM refresh_tokens rt WHERE rt.hash = t.child_hash;
        IF FOUND AND child_rotated IS NULL THEN
            RETURN QUERY SELECT 'live'::text, s.id, s.user_id, s.idp, s.expires_at;
            RETURN;
        END IF;
    END IF;
    UPDATE sessions SET revoked_at = p_now, revoked_reason = 'reuse' WHERE id = s.id AND revoked_at IS NULL;
    IF FOUND THEN
        PERFORM broker_emit('session.revoked',
            jsonb_build_object('user_id', s.user_id, 'session_id', s.id, 'reason', 'reuse_detected'), p_now);
        INSERT INTO audit_log (at, type, user_id, session_id, provider, ip, user_agent, actor)
            VALUES (p_now, 'refresh_reuse', s.user_id, s.id, s.idp, p_ip, p_ua, 'user');
    END IF;
    RETURN QUERY SELECT 'reused'::text, s.id, s.user_id, s.idp, s.expires_at;
END;
$$;
-- +goose StatementEnd
