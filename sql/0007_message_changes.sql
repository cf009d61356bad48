-- Editing and deleting messages (issue 18).
--
-- Every change to a room's messages (a new message, an edit, a deletion) takes the room's next
-- `change_seq` (1, 2, 3, ...) under the room's row lock, the same lock that numbers messages, so
-- a room's changes commit in `change_seq` order. Each message keeps the number of its latest
-- change: a client that has seen every change up to N asks for the messages whose `change_seq`
-- is above N and learns of every insert, edit and deletion since, each message once, as it is
-- now. Numbers overwritten by a later change of the same message simply no longer appear.
ALTER TABLE rooms
    ADD COLUMN last_change_seq bigint NOT NULL DEFAULT 0;

-- Until now the only changes were inserts, numbered by seq.
UPDATE rooms SET last_change_seq = last_seq;

ALTER TABLE rooms
    -- Every new message is a change, so there are at least as many changes as messages.
    ADD CONSTRAINT rooms_changes_cover_messages CHECK (last_change_seq >= last_seq);

ALTER TABLE messages
    ADD COLUMN change_seq bigint,
    ADD COLUMN edited_at timestamptz,
    -- A deleted message is a tombstone: id, seq, author and time stay, its content is gone.
    ADD COLUMN deleted_at timestamptz;

UPDATE messages SET change_seq = seq;

ALTER TABLE messages
    ALTER COLUMN change_seq SET NOT NULL,
    -- One change, one message: two messages can never carry the same change of a room.
    ADD CONSTRAINT messages_room_change_seq_key UNIQUE (room_id, change_seq),
    ADD CONSTRAINT messages_change_follows_insert CHECK (change_seq >= seq),
    -- A text message has content unless it was deleted; a deleted one has none.
    DROP CONSTRAINT messages_text_has_content,
    ADD CONSTRAINT messages_text_has_content CHECK (kind <> 'text' OR deleted_at IS NOT NULL OR char_length(content) > 0),
    ADD CONSTRAINT messages_deleted_has_no_content CHECK (deleted_at IS NULL OR content IS NULL),
    -- Payments, requests and declines record money that moved (or was asked for): never rewritten.
    ADD CONSTRAINT messages_only_text_changes CHECK (kind = 'text' OR (edited_at IS NULL AND deleted_at IS NULL)),
    ADD CONSTRAINT messages_changed_after_created CHECK (edited_at >= created_at AND deleted_at >= created_at);
