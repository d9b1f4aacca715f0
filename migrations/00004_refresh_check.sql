-- +goose Up

-- broker_check_refresh judges a refresh token presented to an endpoint that
-- does not rotate it (link, logout): only the session's live token, or its
-- parent within the grace while the child is still unused, counts as the
-- session. Any older generation is a reuse: the session is revoked, exactly
-- as broker_rotate_refresh does. Nothing else is written.
-- +goose StatementBegin
CREATE FUNCTION broker_check_refresh(
    p_hash bytea, p_now timestamptz, p_grace interval, p_idle interval)
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
    RETURN QUERY SELECT 'reused'::text, s.id, s.user_id, s.idp, s.expires_at;
END;
$$;
-- +goose StatementEnd

