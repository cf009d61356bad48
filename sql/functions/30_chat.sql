-- Chat operations as SQL functions: one round trip per request, every check and write in one
-- transaction. Like the ledger's functions they report business failures as an `outcome` word
-- ('room_not_found', 'not_owner', ...) that the chat component maps to HTTP in one place.
--
-- Lock order, to rule out deadlocks: idempotency key, then payment request (or, for a refund, the
-- payment's transfer), then the memberships a payment rests on, then accounts (inside ledger_pay),
-- then the room row (taken to append the message, held until commit). A payment that waits for a
-- busy account thus holds only its own memberships, not the room: the room's other messages go on.
-- The memberships are held FOR KEY SHARE (behind a shared chat_membership_lock), which a departure
-- (it deletes the row, after locking it before the room) waits for, so a member who leaves while
-- their payment runs is either still a member when it is appended or refused; payments that come
-- after the departure wait for it. Operations without a payment take the room row before
-- their membership checks: a departure or an addition takes it too.

CREATE FUNCTION payment_request_status(r payment_requests) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE WHEN r.status = 'pending' AND r.expires_at <= now() THEN 'expired' ELSE r.status END;

CREATE FUNCTION payment_request_json(r payment_requests) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', r.id,
    'room_id', r.room_id,
    'requester_id', r.requester_id,
    'payer_id', r.payer_id,
    'amount', r.amount::text,
    'currency', r.currency,
    'note', r.note,
    'status', payment_request_status(r),
    'transfer_id', r.transfer_id,
    'expires_at', api_timestamp(r.expires_at),
    'created_at', api_timestamp(r.created_at),
    'split_id', r.split_id
);

-- A split request with its shares, in the order the payers were given: who owes what, and who has
-- paid (each share's status and transfer, and the sum of the accepted shares).
CREATE FUNCTION split_request_json(s split_requests) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', s.id,
    'room_id', s.room_id,
    'requester_id', s.requester_id,
    'amount', s.total::text,
    'currency', s.currency,
    'note', s.note,
    'paid_amount', round(
        coalesce((SELECT sum(r.amount) FROM payment_requests r WHERE r.split_id = s.id AND r.status = 'accepted'), 0),
        (SELECT c.minor_units FROM currencies c WHERE c.code = s.currency))::text,
    'shares', (SELECT json_agg(payment_request_json(r) ORDER BY r.id) FROM payment_requests r WHERE r.split_id = s.id),
    'expires_at', api_timestamp(s.expires_at),
    'created_at', api_timestamp(s.created_at)
);

-- A message as the API shows it; payment kinds embed their transfer, request or split.
CREATE FUNCTION message_json(m messages) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', m.id,
    'room_id', m.room_id,
    'seq', m.seq,
    'sender_id', m.sender_id,
    'kind', m.kind,
    'content', m.content,
    'client_msg_id', m.client_msg_id,
    'created_at', api_timestamp(m.created_at),
    'change_seq', m.change_seq,
    'edited_at', api_timestamp(m.edited_at),
    'deleted_at', api_timestamp(m.deleted_at),
    'transfer', (SELECT transfer_json(t) FROM transfers t WHERE t.id = m.transfer_id),
    'payment_request', (SELECT payment_request_json(r) FROM payment_requests r WHERE r.id = m.payment_request_id),
    'split_request', (SELECT split_request_json(s) FROM split_requests s WHERE s.id = m.split_request_id)
);

-- A room with its members, as returned when it is created, opened or changed.
CREATE FUNCTION room_json(r rooms) RETURNS json
LANGUAGE sql STABLE PARALLEL SAFE
RETURN json_build_object(
    'id', r.id,
    'kind', r.kind,
    'name', r.name,
    'owner_id', r.owner_id,
    'member_count', r.member_count,
    'member_ids', (SELECT coalesce(json_agg(user_id ORDER BY user_id), '[]') FROM room_members WHERE room_id = r.id),
    'created_at', api_timestamp(r.created_at)
);

CREATE FUNCTION chat_is_member(p_room_id bigint, p_user_id bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (SELECT 1 FROM room_members WHERE room_id = p_room_id AND user_id = p_user_id);

-- The advisory lock that queues a membership's payments and departure fairly (the two-key form:
-- a key space apart from idempotency_lock's). Row locks do not: a FOR KEY SHARE request is
-- granted at once while only other key sharers hold the row, even with a departure's FOR UPDATE
-- waiting, so overlapping payments to or from a member could keep them from leaving for good.
-- Heavyweight locks queue a shared request behind a waiting exclusive one. Ids hashed to 32 bits:
-- memberships whose keys collide only queue behind each other.
CREATE FUNCTION chat_membership_lock(p_room_id bigint, p_user_id bigint, p_exclusive boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_exclusive THEN
        PERFORM pg_advisory_xact_lock(hashint8(p_room_id), hashint8(p_user_id));
    ELSE
        PERFORM pg_advisory_xact_lock_shared(hashint8(p_room_id), hashint8(p_user_id));
    END IF;
END;
$$;

-- Those of the users who are members of the room, their memberships locked until commit (FOR KEY
-- SHARE: a departure waits, a read marker moves on), in user id order. Callers decide membership
-- from this answer, not from a later look-up: that could see a membership committed since, which
-- this did not lock, and whose member could then leave while the caller waits for accounts.
CREATE FUNCTION chat_lock_memberships(p_room_id bigint, p_user_ids bigint[]) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    member_id bigint;
BEGIN
    -- In user id order, as the rows: a payment waiting here holds only lower ids' locks.
    FOREACH member_id IN ARRAY ARRAY(SELECT DISTINCT id FROM unnest(p_user_ids) id ORDER BY id) LOOP
        PERFORM chat_membership_lock(p_room_id, member_id, false);
    END LOOP;
    RETURN ARRAY(SELECT user_id FROM room_members WHERE room_id = p_room_id AND user_id = ANY (p_user_ids)
                 ORDER BY user_id FOR KEY SHARE);
END;
$$;

-- Appends a message to a room: draws the next seq and the next change_seq (a new message is a
-- change too) under the room's row lock (held until commit, so messages of a room commit in seq
-- order) and bumps the room's activity. Its sender is a member (callers check that under the room
-- lock, or a payment's under a lock on the membership), except perhaps a refund's: its caller
-- looks without a lock, and a departure may commit in between (its message is then the last of a
-- member who just left, harmless). The check is asserted here for the payment kinds,
-- whose callers check apart from this; a text message's caller checks right after taking the
-- room's lock, and a second look-up on every message would only repeat it.
CREATE FUNCTION chat_append_message(
    p_room_id bigint, p_sender_id bigint, p_kind text, p_content text, p_transfer_id bigint,
    p_payment_request_id bigint, p_client_msg_id text, p_split_request_id bigint DEFAULT NULL)
RETURNS messages
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
    next_change_seq bigint;
    appended messages;
BEGIN
    UPDATE rooms SET last_seq = last_seq + 1, last_change_seq = last_change_seq + 1, last_activity_at = now()
    WHERE id = p_room_id
    RETURNING last_seq, last_change_seq INTO STRICT next_seq, next_change_seq;
    IF p_kind NOT IN ('text', 'refund') AND NOT chat_is_member(p_room_id, p_sender_id) THEN
        RAISE EXCEPTION 'chat_append_message: user % is not a member of room %', p_sender_id, p_room_id;
    END IF;
    INSERT INTO messages (room_id, seq, change_seq, sender_id, kind, content, transfer_id, payment_request_id, client_msg_id,
                          split_request_id)
    VALUES (p_room_id, next_seq, next_change_seq, p_sender_id, p_kind, p_content, p_transfer_id, p_payment_request_id,
            p_client_msg_id, p_split_request_id)
    RETURNING * INTO appended;
    RETURN appended;
END;
$$;

-- POST /chat/create_room. Outcomes: 'created', 'member_not_found', 'too_many_members'.
CREATE FUNCTION chat_create_room(p_owner_id bigint, p_name text, p_member_ids bigint[], p_members_max integer)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
DECLARE
    members bigint[] := ARRAY(SELECT DISTINCT unnest(p_member_ids || p_owner_id));
    created rooms;
BEGIN
    IF cardinality(members) > p_members_max THEN
        RETURN QUERY SELECT 'too_many_members', NULL::text;
    ELSIF (SELECT count(*) FROM users WHERE id = ANY (members)) <> cardinality(members) THEN
        RETURN QUERY SELECT 'member_not_found', NULL::text;
    ELSE
        INSERT INTO rooms (kind, name, owner_id, member_count)
        VALUES ('group', p_name, p_owner_id, cardinality(members))
        RETURNING * INTO created;
        INSERT INTO room_members (room_id, user_id) SELECT created.id, unnest(members);
        RETURN QUERY SELECT 'created', room_json(created)::text;
    END IF;
END;
$$;

-- POST /chat/direct: the one 1:1 room of two users, created on first use. Concurrent first calls
-- meet on the unique direct_key: one inserts, the others wait for it and then find its room. A
-- peer who left the room is not brought back by the other's call.
-- Outcomes: 'created', 'existing', 'self_room', 'user_not_found'.
CREATE FUNCTION chat_direct_room(p_user_id bigint, p_peer_id bigint)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
DECLARE
    key text := least(p_user_id, p_peer_id) || ':' || greatest(p_user_id, p_peer_id);
    room rooms;
    joined integer;
BEGIN
    IF p_user_id = p_peer_id THEN
        RETURN QUERY SELECT 'self_room', NULL::text;
        RETURN;
    ELSIF NOT EXISTS (SELECT 1 FROM users WHERE id = p_peer_id) THEN
        RETURN QUERY SELECT 'user_not_found', NULL::text;
        RETURN;
    END IF;
    INSERT INTO rooms (kind, direct_key) VALUES ('direct', key) ON CONFLICT (direct_key) DO NOTHING;
    outcome := CASE WHEN FOUND THEN 'created' ELSE 'existing' END;
    SELECT * INTO STRICT room FROM rooms WHERE direct_key = key FOR UPDATE;
    -- Opening the room brings its caller back if they had left it; the peer only if they never
    -- left (leaving is the leaver's decision: see room_departures).
    DELETE FROM room_departures WHERE room_id = room.id AND user_id = p_user_id;
    INSERT INTO room_members (room_id, user_id)
    SELECT room.id, member FROM (VALUES (p_user_id), (p_peer_id)) AS candidates (member)
    WHERE NOT EXISTS (SELECT 1 FROM room_departures d WHERE d.room_id = room.id AND d.user_id = member)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS joined = ROW_COUNT;
    UPDATE rooms SET member_count = member_count + joined WHERE id = room.id RETURNING * INTO room;
    resource := room_json(room)::text;
    RETURN NEXT;
END;
$$;

-- POST /chat/rooms/{id}/members. Outcomes: 'added', 'already_member', 'room_not_found',
-- 'not_owner', 'direct_room', 'user_not_found', 'room_full', 'member_left' (they left this room
-- and only they could bring themselves back).
CREATE FUNCTION chat_add_member(p_room_id bigint, p_actor_id bigint, p_user_id bigint, p_members_max integer)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
DECLARE
    room rooms;
BEGIN
    SELECT * INTO room FROM rooms WHERE id = p_room_id FOR UPDATE;
    IF NOT FOUND OR NOT chat_is_member(p_room_id, p_actor_id) THEN
        outcome := 'room_not_found';
    ELSIF room.kind = 'direct' THEN
        outcome := 'direct_room';
    ELSIF room.owner_id IS DISTINCT FROM p_actor_id THEN
        outcome := 'not_owner';
    ELSIF NOT EXISTS (SELECT 1 FROM users WHERE id = p_user_id) THEN
        outcome := 'user_not_found';
    ELSIF chat_is_member(p_room_id, p_user_id) THEN
        outcome := 'already_member';
        resource := room_json(room)::text;
    ELSIF EXISTS (SELECT 1 FROM room_departures WHERE room_id = p_room_id AND user_id = p_user_id) THEN
        outcome := 'member_left';
    ELSIF room.member_count >= p_members_max THEN
        outcome := 'room_full';
    ELSE
        INSERT INTO room_members (room_id, user_id) VALUES (p_room_id, p_user_id);
        UPDATE rooms SET member_count = member_count + 1 WHERE id = p_room_id RETURNING * INTO room;
        outcome := 'added';
        resource := room_json(room)::text;
    END IF;
    RETURN NEXT;
END;
$$;

-- DELETE /chat/rooms/{id}/members/me. An owner who leaves hands the room to the member who
-- joined earliest. Outcomes: 'left', 'room_not_found'.
CREATE FUNCTION chat_leave_room(p_room_id bigint, p_user_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    -- The membership before the room: a payment holds the membership while it waits for accounts,
    -- and takes the room only after them. A user who was no member when this looked is refused
    -- here, before the room: a membership added meanwhile, deleted after taking the room, would
    -- be locked in the payments' order reversed (a deadlock with a payment to them). The
    -- advisory lock first: payments that come after this one wait behind it.
    PERFORM chat_membership_lock(p_room_id, p_user_id, true);
    PERFORM 1 FROM room_members WHERE room_id = p_room_id AND user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'room_not_found';
    END IF;
    PERFORM 1 FROM rooms WHERE id = p_room_id FOR UPDATE;
    DELETE FROM room_members WHERE room_id = p_room_id AND user_id = p_user_id;
    INSERT INTO room_departures (room_id, user_id) VALUES (p_room_id, p_user_id)
    ON CONFLICT (room_id, user_id) DO UPDATE SET left_at = now();
    UPDATE rooms SET
        member_count = member_count - 1,
        owner_id = CASE WHEN owner_id = p_user_id
                        THEN (SELECT user_id FROM room_members WHERE room_id = p_room_id
                              ORDER BY joined_at, user_id LIMIT 1)
                        ELSE owner_id END
    WHERE id = p_room_id;
    RETURN 'left';
END;
$$;

-- POST /chat/send_message and WebSocket message frames. A repeated client_msg_id returns the
-- message it stored (replayed); reusing it for other content is 'client_msg_id_reused'.
-- Outcomes: 'created', 'room_not_found', 'client_msg_id_reused'.
CREATE FUNCTION chat_post_message(p_room_id bigint, p_sender_id bigint, p_content text, p_client_msg_id text)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    existing messages;
BEGIN
    replayed := false;
    -- The room lock serialises this room's sends, so a retry racing its original finds it here.
    PERFORM 1 FROM rooms WHERE id = p_room_id FOR UPDATE;
    IF NOT chat_is_member(p_room_id, p_sender_id) THEN
        outcome := 'room_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_client_msg_id IS NOT NULL THEN
        -- A client_msg_id is unique per sender, across rooms, but the room lock above serialises
        -- one room only: the same id sent to two rooms at once would both miss the look-up and
        -- one would end in a unique violation. This lock, taken last so it cannot deadlock with
        -- the room locks, makes the second wait and then find the first.
        PERFORM pg_advisory_xact_lock(hashtextextended('chat.client_msg_id:' || p_sender_id || ':' || p_client_msg_id, 0));
        SELECT * INTO existing FROM messages WHERE sender_id = p_sender_id AND client_msg_id = p_client_msg_id;
        IF FOUND THEN
            IF existing.room_id = p_room_id AND existing.content = p_content THEN
                outcome := 'created';
                resource := message_json(existing)::text;
                replayed := true;
            ELSE
                outcome := 'client_msg_id_reused';
            END IF;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    outcome := 'created';
    resource := message_json(
        chat_append_message(p_room_id, p_sender_id, 'text', p_content, NULL, NULL, p_client_msg_id))::text;
    RETURN NEXT;
END;
$$;

-- GET /chat/messages/{room}: oldest first within the page. With p_after, the messages right after
-- it (how a reconnecting client fills a gap); otherwise the latest ones before p_before (or the
-- latest of all). NULL when the user is not a member.
CREATE FUNCTION chat_history(p_room_id bigint, p_user_id bigint, p_before bigint, p_after bigint, p_limit integer)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    page messages[];
BEGIN
    IF NOT chat_is_member(p_room_id, p_user_id) THEN
        RETURN NULL;
    END IF;
    IF p_after IS NOT NULL THEN
        page := ARRAY(SELECT m FROM messages m
                      WHERE m.room_id = p_room_id AND m.id > p_after AND (p_before IS NULL OR m.id < p_before)
                      ORDER BY m.id LIMIT p_limit + 1);
    ELSE
        page := ARRAY(SELECT m FROM (SELECT * FROM messages
                                     WHERE room_id = p_room_id AND (p_before IS NULL OR id < p_before)
                                     ORDER BY id DESC LIMIT p_limit + 1) m
                      ORDER BY m.id);
        -- The extra row (fetched to learn whether more exist) is the oldest: drop it from the front.
        IF cardinality(page) > p_limit THEN
            page := page[2:];
            RETURN json_build_object('items', (SELECT json_agg(message_json(m)) FROM unnest(page) m),
                                     'has_more', true)::text;
        END IF;
    END IF;
    RETURN json_build_object(
        'items', coalesce((SELECT json_agg(message_json(m)) FROM unnest(page[1:p_limit]) m), '[]'),
        'has_more', cardinality(page) > p_limit)::text;
END;
$$;

-- POST /chat/rooms/{id}/read: the member has read up to a message of this room (markers only
-- move forward). Outcomes: 'marked', 'room_not_found', 'message_not_found'.
CREATE FUNCTION chat_mark_read(p_room_id bigint, p_user_id bigint, p_up_to_id bigint)
RETURNS TABLE (outcome text, resource text)
LANGUAGE plpgsql AS $$
DECLARE
    marker bigint;
BEGIN
    IF NOT chat_is_member(p_room_id, p_user_id) THEN
        outcome := 'room_not_found';
    ELSIF NOT EXISTS (SELECT 1 FROM messages WHERE id = p_up_to_id AND room_id = p_room_id) THEN
        outcome := 'message_not_found';
    ELSE
        -- The look above took no lock: a departure committed since leaves no row to update.
        UPDATE room_members SET last_read_message_id = greatest(last_read_message_id, p_up_to_id)
        WHERE room_id = p_room_id AND user_id = p_user_id
        RETURNING last_read_message_id INTO marker;
        IF FOUND THEN
            outcome := 'marked';
            resource := json_build_object('room_id', p_room_id, 'user_id', p_user_id, 'up_to_id', marker)::text;
        ELSE
            outcome := 'room_not_found';
        END IF;
    END IF;
    RETURN NEXT;
END;
$$;

-- GET /chat/rooms: the user's rooms, most recent activity first, each with its last message
-- and how many messages from others are unread (counted up to 1000); a page at a time, the next
-- before the room named by p_before_micros (its last activity, in microseconds since the Unix
-- epoch) and p_before_room (its id, for ties). A full page says where the next one starts
-- (`next_before`), so no room is out of reach however many a user is in.
CREATE FUNCTION chat_rooms(p_user_id bigint, p_limit integer, p_before_micros bigint DEFAULT NULL,
                           p_before_room bigint DEFAULT NULL) RETURNS text
LANGUAGE sql STABLE
RETURN (
    SELECT json_build_object(
        'items', coalesce(json_agg(summary ORDER BY activity DESC, room_id DESC), '[]'),
        -- The last room listed: arrays compare element by element, as the page is ordered.
        'next_before', CASE WHEN count(*) = p_limit THEN
            array_to_string(min(ARRAY[(extract(epoch FROM activity) * 1000000)::bigint, room_id]), '_') END)::text
    FROM (
        SELECT r.id AS room_id, r.last_activity_at AS activity, json_build_object(
            'id', r.id,
            'kind', r.kind,
            'name', r.name,
            'owner_id', r.owner_id,
            'member_count', r.member_count,
            'peer_id', CASE WHEN r.kind = 'direct' THEN
                (SELECT user_id FROM room_members WHERE room_id = r.id AND user_id <> p_user_id LIMIT 1) END,
            'last_activity_at', api_timestamp(r.last_activity_at),
            'last_message', (SELECT message_json(m) FROM messages m WHERE m.room_id = r.id ORDER BY m.id DESC LIMIT 1),
            'unread_count', (SELECT count(*) FROM (
                SELECT 1 FROM messages m
                WHERE m.room_id = r.id AND m.id > member.last_read_message_id AND m.sender_id <> p_user_id
                LIMIT 1000) unread)
        ) AS summary
        FROM room_members member JOIN rooms r ON r.id = member.room_id
        WHERE member.user_id = p_user_id
          AND (p_before_micros IS NULL
               OR (r.last_activity_at, r.id)
                  < ('epoch'::timestamptz + p_before_micros * interval '1 microsecond', p_before_room))
        ORDER BY r.last_activity_at DESC, r.id DESC
        LIMIT p_limit
    ) page
);

-- POST /chat/rooms/{id}/payments: a ledger payment (ledger_pay, the same rules as
-- /fintech/transfer) and its `payment` message, both or neither. Outcomes: those of ledger_pay,
-- plus 'room_not_found', 'receiver_not_member', 'idempotency_mismatch'.
CREATE FUNCTION chat_send_payment(
    p_room_id bigint, p_sender_id bigint, p_receiver_id bigint, p_amount numeric, p_currency char(3),
    p_note text, p_default_currency char(3), p_idempotency_key text, p_daily_max numeric DEFAULT NULL,
    p_daily_transfers_max integer DEFAULT NULL)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'user:' || p_sender_id;
    fingerprint bytea := request_fingerprint('chat_payment', p_room_id::text, p_receiver_id::text,
        trim_scale(p_amount)::text, p_currency, p_note);
    result record;
    members bigint[];
BEGIN
    SELECT * INTO result FROM idempotency_claim(scope, p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    replayed := false;
    -- Both memberships held until commit: the room's lock comes last, with the message.
    members := chat_lock_memberships(p_room_id, ARRAY[p_sender_id, p_receiver_id]);
    IF NOT p_sender_id = ANY (members) THEN
        outcome := 'room_not_found';
    ELSIF NOT p_receiver_id = ANY (members) THEN
        outcome := 'receiver_not_member';
    ELSE
        SELECT * INTO result FROM ledger_pay(p_sender_id, p_receiver_id, p_amount, p_currency, p_note,
            p_default_currency, scope, p_idempotency_key, fingerprint, p_daily_max, p_daily_transfers_max);
        outcome := result.outcome;
        IF outcome = 'completed' THEN
            resource := message_json(chat_append_message(
                p_room_id, p_sender_id, 'payment', p_note, (result.posted).id, NULL, NULL))::text;
        END IF;
    END IF;
    PERFORM idempotency_record(scope, p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;

-- POST /chat/rooms/{id}/payment_requests. Outcomes: 'completed', 'room_not_found',
-- 'self_request', 'payer_not_member', 'unsupported_currency', 'invalid_amount_precision',
-- 'idempotency_mismatch'.
CREATE FUNCTION chat_request_payment(
    p_room_id bigint, p_requester_id bigint, p_payer_id bigint, p_amount numeric, p_currency char(3),
    p_note text, p_ttl_seconds integer, p_idempotency_key text)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'user:' || p_requester_id;
    fingerprint bytea := request_fingerprint('chat_payment_request', p_room_id::text, p_payer_id::text,
        trim_scale(p_amount)::text, p_currency, p_note);
    amount numeric := ledger_scaled_amount(p_amount, p_currency);
    request payment_requests;
    result record;
BEGIN
    SELECT * INTO result FROM idempotency_claim(scope, p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    replayed := false;
    PERFORM 1 FROM rooms WHERE id = p_room_id FOR UPDATE;
    IF NOT chat_is_member(p_room_id, p_requester_id) THEN
        outcome := 'room_not_found';
    ELSIF p_payer_id = p_requester_id THEN
        outcome := 'self_request';
    ELSIF NOT chat_is_member(p_room_id, p_payer_id) THEN
        outcome := 'payer_not_member';
    ELSIF NOT EXISTS (SELECT 1 FROM currencies WHERE code = p_currency) THEN
        outcome := 'unsupported_currency';
    ELSIF amount IS NULL THEN
        outcome := 'invalid_amount_precision';
    ELSE
        INSERT INTO payment_requests (room_id, requester_id, payer_id, amount, currency, note, expires_at)
        VALUES (p_room_id, p_requester_id, p_payer_id, amount, p_currency, p_note,
                now() + make_interval(secs => p_ttl_seconds))
        RETURNING * INTO request;
        outcome := 'completed';
        resource := message_json(chat_append_message(
            p_room_id, p_requester_id, 'payment_request', p_note, NULL, request.id, NULL))::text;
    END IF;
    PERFORM idempotency_record(scope, p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;

-- POST /chat/rooms/{id}/payment_requests/{request}/accept|decline. The request row lock makes
-- a request resolve exactly once: a concurrent second accept waits, then finds it resolved.
-- Accepting pays through ledger_pay; if that fails (e.g. insufficient funds) the request stays
-- pending, as it does when its requester has left the room ('receiver_not_member': a payment in
-- the room goes to members only) or its amount is over p_amount_max ('amount_too_large': the limit
-- of a payment when it is made, which an operator may have lowered since the request). Outcomes:
-- 'completed', 'request_not_found', 'not_payer', 'already_resolved', 'request_expired',
-- 'receiver_not_member', 'amount_too_large', 'idempotency_mismatch', and those of ledger_pay.
CREATE FUNCTION chat_resolve_payment_request(
    p_room_id bigint, p_request_id bigint, p_actor_id bigint, p_accept boolean,
    p_default_currency char(3), p_idempotency_key text, p_daily_max numeric DEFAULT NULL,
    p_daily_transfers_max integer DEFAULT NULL, p_amount_max numeric DEFAULT NULL)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    scope text := 'user:' || p_actor_id;
    fingerprint bytea := request_fingerprint('chat_resolve_payment_request', p_room_id::text,
        p_request_id::text, p_accept::text);
    request payment_requests;
    members bigint[];
    result record;
BEGIN
    SELECT * INTO result FROM idempotency_claim(scope, p_idempotency_key, fingerprint);
    IF FOUND THEN
        RETURN QUERY SELECT result.outcome, result.resource, true;
        RETURN;
    END IF;
    replayed := false;
    SELECT * INTO request FROM payment_requests WHERE id = p_request_id AND room_id = p_room_id FOR UPDATE;
    -- The memberships the answer rests on, held until commit (the room's lock comes last, with the
    -- message): the actor's, and for an acceptance the requester's, whom it pays.
    members := chat_lock_memberships(p_room_id,
        array_remove(ARRAY[p_actor_id, CASE WHEN p_accept THEN request.requester_id END], NULL));
    IF request.id IS NULL OR NOT p_actor_id = ANY (members) THEN
        outcome := 'request_not_found';
    ELSIF request.payer_id <> p_actor_id THEN
        outcome := 'not_payer';
    ELSIF request.status <> 'pending' THEN
        outcome := 'already_resolved';
    ELSIF request.expires_at <= now() THEN
        UPDATE payment_requests SET status = 'expired', resolved_at = now() WHERE id = request.id;
        outcome := 'request_expired';
    ELSIF p_accept AND NOT request.requester_id = ANY (members) THEN
        outcome := 'receiver_not_member';
    ELSIF p_accept AND request.amount > p_amount_max THEN
        outcome := 'amount_too_large';
    ELSIF p_accept THEN
        SELECT * INTO result FROM ledger_pay(request.payer_id, request.requester_id, request.amount,
            request.currency, request.note, p_default_currency, scope, p_idempotency_key, fingerprint, p_daily_max,
            p_daily_transfers_max);
        outcome := result.outcome;
        IF outcome = 'completed' THEN
            UPDATE payment_requests SET status = 'accepted', transfer_id = (result.posted).id, resolved_at = now()
            WHERE id = request.id;
            resource := message_json(chat_append_message(
                p_room_id, p_actor_id, 'payment', request.note, (result.posted).id, request.id, NULL))::text;
        END IF;
    ELSE
        UPDATE payment_requests SET status = 'declined', resolved_at = now() WHERE id = request.id;
        outcome := 'completed';
        resource := message_json(chat_append_message(
            p_room_id, p_actor_id, 'payment_declined', NULL, NULL, request.id, NULL))::text;
    END IF;
    PERFORM idempotency_record(scope, p_idempotency_key, outcome, resource);
    RETURN NEXT;
END;
$$;
