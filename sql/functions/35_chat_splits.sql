-- Split requests: one request to several members of a room at once (tables and their guarantees:
-- sql/0010_split_requests.sql). Each share is a payment request, accepted or declined through
-- chat_resolve_payment_request like any other.

-- p_total divided into p_payer_count equal shares, counted in the currency's minor units (cents):
-- the leftover units go one each to the first payers, so 10.00 among three is 3.34, 3.33, 3.33.
-- The shares sum exactly to p_total, which must already be scaled to p_minor_units.
CREATE FUNCTION split_equal_shares(p_total numeric, p_payer_count integer, p_minor_units smallint)
RETURNS numeric[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT ARRAY(
        SELECT round((units.each + CASE WHEN payer_index <= units.leftover THEN 1 ELSE 0 END) / scale.factor, p_minor_units)
        FROM generate_series(1, p_payer_count) payer_index
        ORDER BY payer_index)
    FROM (SELECT 10::numeric ^ p_minor_units AS factor) scale,
         LATERAL (SELECT div(p_total * scale.factor, p_payer_count) AS each,
                         mod(p_total * scale.factor, p_payer_count) AS leftover) units
);

-- POST /chat/rooms/{id}/split_requests: the split, one share (a payment request) per payer and
-- the `split_request` message, all or nothing. Either p_total is split equally among p_payer_ids
-- (split_equal_shares), or p_share_amounts gives each payer's share, in the same order, and the
-- total is their sum. Every share expires with the split, after p_ttl_seconds.
-- Outcomes: 'completed', 'room_not_found', 'self_request', 'payer_not_member',
-- 'unsupported_currency', 'invalid_amount_precision', 'split_too_small' (an equal share would be
-- less than one minor unit), 'idempotency_mismatch'.
CREATE FUNCTION chat_request_split(
    p_room_id bigint, p_requester_id bigint, p_payer_ids bigint[], p_total numeric, p_share_amounts numeric[],
    p_currency char(3), p_note text, p_ttl_seconds integer, p_idempotency_key text)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'user:' || p_requester_id;
    fingerprint bytea := request_fingerprint('chat_split_request', p_room_id::text, p_payer_ids::text,
        trim_scale(p_total)::text,
        ARRAY(SELECT trim_scale(amount) FROM unnest(p_share_amounts) WITH ORDINALITY given (amount, payer_index)
              ORDER BY payer_index)::text,
        p_currency, p_note);
    minor_units smallint := (SELECT c.minor_units FROM currencies c WHERE c.code = p_currency);
    share_amounts numeric[];
    split split_requests;
    result record;
BEGIN
    SELECT * INTO result FROM idempotency_claim(scope, p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    replayed := false;
    PERFORM 1 FROM rooms WHERE id = p_room_id FOR UPDATE;
    IF p_total IS NOT NULL AND round(p_total, minor_units) = p_total THEN
        share_amounts := split_equal_shares(p_total, cardinality(p_payer_ids), minor_units);
    ELSIF p_total IS NULL AND (SELECT bool_and(round(amount, minor_units) = amount) FROM unnest(p_share_amounts) amount) THEN
        share_amounts := ARRAY(SELECT round(amount, minor_units)
                               FROM unnest(p_share_amounts) WITH ORDINALITY given (amount, payer_index) ORDER BY payer_index);
    END IF;
    IF NOT chat_is_member(p_room_id, p_requester_id) THEN
        outcome := 'room_not_found';
    ELSIF p_requester_id = ANY (p_payer_ids) THEN
        outcome := 'self_request';
    ELSIF (SELECT count(*) FROM room_members WHERE room_id = p_room_id AND user_id = ANY (p_payer_ids))
          <> cardinality(p_payer_ids) THEN
        outcome := 'payer_not_member';
    ELSIF minor_units IS NULL THEN
        outcome := 'unsupported_currency';
    ELSIF share_amounts IS NULL THEN
        outcome := 'invalid_amount_precision';
    ELSIF 0 = ANY (share_amounts) THEN
        outcome := 'split_too_small';
    ELSE
        INSERT INTO split_requests (room_id, requester_id, total, currency, note, share_count, expires_at)
        VALUES (p_room_id, p_requester_id, (SELECT sum(amount) FROM unnest(share_amounts) amount), p_currency,
                p_note, cardinality(p_payer_ids), now() + make_interval(secs => p_ttl_seconds))
        RETURNING * INTO split;
        -- In the order given, so the shares' ids (and the split's listing) keep it.
        INSERT INTO payment_requests (room_id, requester_id, payer_id, amount, currency, note, expires_at, split_id)
        SELECT p_room_id, p_requester_id, share.payer_id, share.amount, p_currency, p_note, split.expires_at, split.id
        FROM unnest(p_payer_ids, share_amounts) WITH ORDINALITY share (payer_id, amount, payer_index)
        ORDER BY share.payer_index;
        outcome := 'completed';
        resource := message_json(chat_append_message(
            p_room_id, p_requester_id, 'split_request', p_note, NULL, NULL, NULL, split.id))::text;
    END IF;
    PERFORM idempotency_record(scope, p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;

-- GET /chat/rooms/{id}/split_requests/{split}: the split with its shares; NULL unless it is a split
-- of this room and the user is a member.
CREATE FUNCTION chat_split_request(p_room_id bigint, p_user_id bigint, p_split_id bigint) RETURNS text
LANGUAGE sql STABLE
RETURN (SELECT split_request_json(s)::text FROM split_requests s
        WHERE s.id = p_split_id AND s.room_id = p_room_id AND chat_is_member(p_room_id, p_user_id));
