-- Who left which room (issue 14): leaving is the leaver's decision, so nobody else can put them
-- back. A row here stops the owner's "add member" and the other party's reopening of a direct
-- room from re-adding the user; only the user's own action (opening the direct chat themselves)
-- brings them back, and removes the row.
CREATE TABLE room_departures (
    room_id bigint NOT NULL REFERENCES rooms (id),
    user_id bigint NOT NULL REFERENCES users (id),
    left_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
