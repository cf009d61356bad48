-- Editing and deleting messages, and the changes feed that tells a returning client about them
-- (issue 18; the columns and constraints are in sql/0007_message_changes.sql).
--
-- Every change takes the room's row lock first and then the room's next change_seq, as a new
-- message does: a room's changes are serialised (an edit racing a deletion of the same message
-- waits for it, then sees it) and commit in change_seq order, so `changes_after` never skips one.

-- PATCH /chat/rooms/{id}/messages/{message}: the author rewrites a text message within
-- p_window_seconds of sending it. It keeps its id and seq, and takes a new change_seq. Sending
-- the content it already has changes nothing (a retried edit): replayed, no new change.
-- Outcomes: 'edited', 'room_not_found', 'message_missing', 'not_author', 'payment_message',
-- 'message_deleted', 'edit_window_closed'.
CREATE FUNCTION chat_edit_message(
    p_room_id bigint, p_message_id bigint, p_user_id bigint, p_content text, p_window_seconds bigint)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    message messages;
    change bigint;
BEGIN
    replayed := false;
    PERFORM 1 FROM rooms WHERE id = p_room_id FOR UPDATE;
    SELECT * INTO message FROM messages WHERE id = p_message_id AND room_id = p_room_id;
    IF NOT chat_is_member(p_room_id, p_user_id) THEN
        outcome := 'room_not_found';
    ELSIF message.id IS NULL THEN
        outcome := 'message_missing';
    ELSIF message.sender_id <> p_user_id THEN
        outcome := 'not_author';
    ELSIF message.kind <> 'text' THEN
        outcome := 'payment_message';
    ELSIF message.deleted_at IS NOT NULL THEN
        outcome := 'message_deleted';
    ELSIF message.content = p_content THEN
        outcome := 'edited';
        resource := message_json(message)::text;
        replayed := true;
    ELSIF message.created_at + make_interval(secs => p_window_seconds) <= now() THEN
        outcome := 'edit_window_closed';
    ELSE
        UPDATE rooms SET last_change_seq = last_change_seq + 1 WHERE id = p_room_id
        RETURNING last_change_seq INTO change;
        -- now() is when this transaction began, which can be before the message, or its last
        -- edit, that it found once it held the room's lock; a change is never dated before those.
        UPDATE messages SET content = p_content,
            edited_at = greatest(now(), message.created_at, message.edited_at), change_seq = change
        WHERE id = message.id
        RETURNING * INTO message;
        outcome := 'edited';
        resource := message_json(message)::text;
    END IF;
    RETURN NEXT;
END;
$$;

-- DELETE /chat/rooms/{id}/messages/{message}: the author or the room's owner deletes a text
-- message. Its content is removed from the row (a tombstone keeps id, seq, author and time) and
-- it takes a new change_seq. Deleting it again changes nothing: replayed, no new change.
-- Outcomes: 'deleted', 'room_not_found', 'message_missing', 'not_author_or_owner',
-- 'payment_message'.
CREATE FUNCTION chat_delete_message(p_room_id bigint, p_message_id bigint, p_user_id bigint)
RETURNS TABLE (outcome text, resource text, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    room rooms;
    message messages;
    change bigint;
BEGIN
    replayed := false;
    SELECT * INTO room FROM rooms WHERE id = p_room_id FOR UPDATE;
    SELECT * INTO message FROM messages WHERE id = p_message_id AND room_id = p_room_id;
    IF NOT chat_is_member(p_room_id, p_user_id) THEN
        outcome := 'room_not_found';
    ELSIF message.id IS NULL THEN
        outcome := 'message_missing';
    ELSIF message.sender_id <> p_user_id AND room.owner_id IS DISTINCT FROM p_user_id THEN
        outcome := 'not_author_or_owner';
    ELSIF message.kind <> 'text' THEN
        outcome := 'payment_message';
    ELSIF message.deleted_at IS NOT NULL THEN
        outcome := 'deleted';
        resource := message_json(message)::text;
        replayed := true;
    ELSE
        UPDATE rooms SET last_change_seq = last_change_seq + 1 WHERE id = p_room_id
        RETURNING last_change_seq INTO change;
        -- Never dated before the message or its last edit (see chat_edit_message).
        UPDATE messages SET content = NULL,
            deleted_at = greatest(now(), message.created_at, message.edited_at), change_seq = change
        WHERE id = message.id
        RETURNING * INTO message;
        outcome := 'deleted';
        resource := message_json(message)::text;
    END IF;
    RETURN NEXT;
END;
$$;

-- GET /chat/messages/{room}?changes_after=N: the messages whose latest change (their insert, edit
-- or deletion) is after change N, in change order, each as it is now. NULL when the user is not
-- a member.
CREATE FUNCTION chat_changes(p_room_id bigint, p_user_id bigint, p_changes_after bigint, p_limit integer)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    page messages[];
BEGIN
    IF NOT chat_is_member(p_room_id, p_user_id) THEN
        RETURN NULL;
    END IF;
    page := ARRAY(SELECT m FROM messages m
                  WHERE m.room_id = p_room_id AND m.change_seq > p_changes_after
                  ORDER BY m.change_seq LIMIT p_limit + 1);
    RETURN json_build_object(
        'items', coalesce((SELECT json_agg(message_json(m)) FROM unnest(page[1:p_limit]) m), '[]'),
        'has_more', cardinality(page) > p_limit)::text;
END;
$$;
