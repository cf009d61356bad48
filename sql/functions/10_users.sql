-- Users: how they are rendered, and refresh-token rotation.
-- Re-applied by sendinchat-migrate on every run, after the migrations (see migrate/src/lib.rs).

-- Renders a timestamp the way every API response shows one: RFC 3339 in UTC with microseconds.
-- (Spin's Postgres interface cannot read timestamptz columns, so responses carry text.)
CREATE FUNCTION api_timestamp(moment timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN to_char(moment AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

-- The public representation of a user: what /users/me and the user look-ups return.
CREATE FUNCTION user_json(account users) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', account.id,
    'username', account.username,
    'created_at', api_timestamp(account.created_at)
);

-- Issues the first refresh token of a new family (at login). Returns the family's id: the
-- session that access tokens name (`sid`). The user's expired tokens go first, and a few of
-- anyone's: no use remains for them (an expired token is refused whether it is there or not), and
-- sessions abandoned without a logout would otherwise stay for good.
-- Only while the user's password hash is still p_verified_hash, the one the log-in checked, read
-- under a share lock: a password change committed while the log-in was checking the old password
-- (auth_change_password) makes it a failed log-in (NULL), never a session opened with the old
-- password that the change did not end. The user's row is locked before anything else and the
-- sweeps skip what others hold, so this never waits while holding a token a password change
-- (which locks the user's row, then the tokens) could be waiting for. NULL p_verified_hash skips
-- the check: the four-argument call of components deployed before it, during a rolling update
-- (remove the default once every deployment runs them).
CREATE FUNCTION auth_issue_refresh_token(
    p_user_id bigint, p_token text, p_ttl_seconds integer, p_session_lifetime_seconds integer,
    p_verified_hash text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    family bigint;
BEGIN
    PERFORM FROM users
    WHERE id = p_user_id AND (p_verified_hash IS NULL OR password_hash = p_verified_hash)
    FOR SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- Rows another transaction holds (a logout, a rotation of the same family) are skipped, not
    -- waited for: cleaning is best-effort, and waiting in this order could deadlock with theirs.
    DELETE FROM refresh_tokens WHERE id IN (
        SELECT id FROM refresh_tokens WHERE user_id = p_user_id AND expires_at <= now()
        FOR UPDATE SKIP LOCKED);
    -- And a few of anyone's, oldest first: users who never come back would leave theirs for
    -- good. A log-in adds one token and removes up to this many, so the table stays near the size
    -- of its live sessions.
    DELETE FROM refresh_tokens WHERE id IN (
        SELECT id FROM refresh_tokens WHERE expires_at <= now()
        ORDER BY expires_at LIMIT 16 FOR UPDATE SKIP LOCKED);
    INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, session_started_at)
    VALUES (p_user_id, nextval('refresh_token_families'), sha256(convert_to(p_token, 'UTF8')),
            now() + make_interval(secs => least(p_ttl_seconds, p_session_lifetime_seconds)), now())
    RETURNING family_id INTO family;
    RETURN family;
END;
$$;

-- Whether a session (a token family) is live: it still holds a token that is neither revoked
-- (logout, reuse detection) nor expired. WebSockets check it on every request.
CREATE FUNCTION auth_session_is_live(p_family_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT 1 FROM refresh_tokens
    WHERE family_id = p_family_id AND revoked_at IS NULL AND expires_at > now()
);

-- Serialises every change to one token family for the rest of the transaction. Without it, a
-- revoking UPDATE cannot see a successor that a concurrent rotation inserted after the UPDATE's
-- snapshot was taken, so a thief rotating in a loop could keep a live token past reuse detection
-- or logout. (A hash collision with another family only makes two families wait for each other.)
CREATE FUNCTION auth_lock_token_family(p_family_id bigint) RETURNS void
LANGUAGE sql
BEGIN ATOMIC
    SELECT pg_advisory_xact_lock(hashtextextended('refresh_token_family', p_family_id));
END;

-- Exchanges a refresh token for its successor. The family is locked first and the token read
-- again after, so rotation, reuse detection and logout of one family happen one at a time, each
-- seeing everything the previous one wrote.
-- outcome: 'rotated' (user_id and session_id set), 'invalid' (unknown, expired, revoked, or its
-- session is past p_session_lifetime_seconds), or 'reused' (already used: the family, session_id,
-- is now revoked).
CREATE FUNCTION auth_rotate_refresh_token(
    p_presented text, p_successor text, p_ttl_seconds integer, p_session_lifetime_seconds integer)
RETURNS TABLE (outcome text, user_id bigint, session_id bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    presented_hash bytea := sha256(convert_to(p_presented, 'UTF8'));
    presented refresh_tokens;
    successor_expires_at timestamptz;
BEGIN
    PERFORM auth_lock_token_family(family_id) FROM refresh_tokens WHERE token_hash = presented_hash;
    -- A fresh snapshot, taken after the lock: everything the family's previous holder committed.
    SELECT * INTO presented FROM refresh_tokens WHERE token_hash = presented_hash;
    -- No token outlives its session: a rotation never moves the session's end.
    successor_expires_at := least(now() + make_interval(secs => p_ttl_seconds),
                                  presented.session_started_at + make_interval(secs => p_session_lifetime_seconds));

    IF NOT FOUND OR presented.revoked_at IS NOT NULL OR presented.expires_at <= now()
            OR successor_expires_at <= now() THEN
        RETURN QUERY SELECT 'invalid', NULL::bigint, NULL::bigint;
    ELSIF presented.used_at IS NOT NULL THEN
        UPDATE refresh_tokens SET revoked_at = now()
        WHERE family_id = presented.family_id AND revoked_at IS NULL;
        RETURN QUERY SELECT 'reused', NULL::bigint, presented.family_id;
    ELSE
        -- Used tokens stay for reuse detection until they expire; then they are of no use.
        DELETE FROM refresh_tokens WHERE id IN (
            SELECT id FROM refresh_tokens WHERE family_id = presented.family_id AND expires_at <= now()
            FOR UPDATE SKIP LOCKED);
        UPDATE refresh_tokens SET used_at = now() WHERE id = presented.id;
        INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, session_started_at)
        VALUES (presented.user_id, presented.family_id, sha256(convert_to(p_successor, 'UTF8')),
                successor_expires_at, presented.session_started_at);
        RETURN QUERY SELECT 'rotated', presented.user_id, presented.family_id;
    END IF;
END;
$$;

-- Logout: revokes the presented token's whole family, under the family's lock, so no successor
-- minted from it survives. Returns the family (the session whose sockets to close), or NULL when
-- the token is unknown.
CREATE FUNCTION auth_revoke_refresh_token(p_presented text) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    family bigint;
BEGIN
    SELECT family_id INTO family FROM refresh_tokens WHERE token_hash = sha256(convert_to(p_presented, 'UTF8'));
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM auth_lock_token_family(family);
    UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = family AND revoked_at IS NULL;
    RETURN family;
END;
$$;

-- A password change (POST /users/me/password): stores the new hash, made by the component after
-- it checked the current password against p_verified_hash, and ends every other session of the
-- user, each under its family's lock as a logout does, so no successor rotated from it survives.
-- The caller's own session (p_kept_session; NULL for a token without one) stays. Returns the
-- sessions ended, whose sockets the component closes; NULL when the user's hash is no longer
-- p_verified_hash (another change committed while this one checked the old password: the current
-- password the caller gave may not be the current one any more). Only live sessions are ended:
-- a family whose tokens all expired is refused already (auth_session_is_live), and its sockets
-- close at their next re-check.
CREATE FUNCTION auth_change_password(
    p_user_id bigint, p_verified_hash text, p_password_hash text, p_kept_session bigint)
RETURNS bigint[]
LANGUAGE plpgsql
AS $$
DECLARE
    family bigint;
    ended bigint[] := '{}';
BEGIN
    UPDATE users SET password_hash = p_password_hash WHERE id = p_user_id AND password_hash = p_verified_hash;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- In id order, as every locker of several families must, so two changes cannot deadlock.
    FOR family IN
        SELECT DISTINCT t.family_id FROM refresh_tokens t
        WHERE t.user_id = p_user_id AND t.family_id IS DISTINCT FROM p_kept_session
          AND t.revoked_at IS NULL AND t.expires_at > now()
        ORDER BY t.family_id
    LOOP
        PERFORM auth_lock_token_family(family);
        UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = family AND revoked_at IS NULL;
        ended := ended || family;
    END LOOP;
    RETURN ended;
END;
$$;
