-- Chat: rooms, members, messages, read markers and payment requests.
--
-- Messages of a room are numbered by `seq` (1, 2, 3, ... with no gaps). A new message takes the
-- room's row lock to draw its number, so within a room messages commit in `seq` (and `id`) order:
-- a client that has seen message N and asks for `after=N` can never miss one that commits later
-- with a smaller number. That is what makes reconnect-and-fill-the-gap exact.

CREATE TABLE rooms (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text NOT NULL,
    name             text,
    -- Group rooms have an owner who may add members; direct rooms have none.
    owner_id         bigint REFERENCES users (id),
    -- Direct rooms: '<smaller user id>:<larger user id>', so each pair has exactly one room.
    direct_key       text,
    last_seq         bigint NOT NULL DEFAULT 0,
    member_count     integer NOT NULL DEFAULT 0,
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rooms_kind_valid CHECK (kind IN ('group', 'direct')),
    CONSTRAINT rooms_direct_key_key UNIQUE (direct_key),
    CONSTRAINT rooms_direct_shape CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CONSTRAINT rooms_group_named CHECK (kind = 'direct' OR char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT rooms_member_count_non_negative CHECK (member_count >= 0)
);

CREATE TABLE room_members (
    room_id              bigint NOT NULL REFERENCES rooms (id),
    user_id              bigint NOT NULL REFERENCES users (id),
    joined_at            timestamptz NOT NULL DEFAULT now(),
    -- Highest message id this member has read (0: none).
    last_read_message_id bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);

CREATE INDEX room_members_user_idx ON room_members (user_id);

CREATE TABLE payment_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id      bigint NOT NULL REFERENCES rooms (id),
    requester_id bigint NOT NULL REFERENCES users (id),
    payer_id     bigint NOT NULL REFERENCES users (id),
    amount       numeric NOT NULL,
    currency     char(3) NOT NULL REFERENCES currencies (code),
    note         text,
    status       text NOT NULL DEFAULT 'pending',
    transfer_id  bigint REFERENCES transfers (id),
    expires_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payment_requests_amount_positive CHECK (amount > 0),
    CONSTRAINT payment_requests_distinct_parties CHECK (requester_id <> payer_id),
    CONSTRAINT payment_requests_status_valid CHECK (status IN ('pending', 'accepted', 'declined', 'expired')),
    -- Accepted exactly when paid; resolved exactly when no longer pending.
    CONSTRAINT payment_requests_paid_iff_accepted CHECK ((status = 'accepted') = (transfer_id IS NOT NULL)),
    CONSTRAINT payment_requests_resolved_iff_final CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CONSTRAINT payment_requests_note_length CHECK (char_length(note) <= 280)
);

CREATE TABLE messages (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id            bigint NOT NULL REFERENCES rooms (id),
    seq                bigint NOT NULL,
    sender_id          bigint NOT NULL REFERENCES users (id),
    kind               text NOT NULL,
    content            text,
    transfer_id        bigint REFERENCES transfers (id),
    payment_request_id bigint REFERENCES payment_requests (id),
    -- Chosen by the client so a retried send is recognised instead of stored twice.
    client_msg_id      text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_room_seq_key UNIQUE (room_id, seq),
    CONSTRAINT messages_sender_client_msg_id_key UNIQUE (sender_id, client_msg_id),
    CONSTRAINT messages_kind_valid CHECK (kind IN ('text', 'payment', 'payment_request', 'payment_declined')),
    CONSTRAINT messages_text_has_content CHECK (kind <> 'text' OR char_length(content) > 0),
    CONSTRAINT messages_payment_has_transfer CHECK ((kind = 'payment') = (transfer_id IS NOT NULL)),
    CONSTRAINT messages_request_has_request
        CHECK (kind NOT IN ('payment_request', 'payment_declined') OR payment_request_id IS NOT NULL),
    CONSTRAINT messages_client_msg_id_length CHECK (char_length(client_msg_id) BETWEEN 1 AND 64)
);

CREATE INDEX messages_room_idx ON messages (room_id, id);
