// The room list (with ways to start a chat) beside the open room. On a narrow screen one of the
// two is shown at a time.
import { useRef, useState } from 'preact/hooks';
import type { Chat } from '../chat';
import { formatMoney } from '../money';
import { useObserved } from '../observable';
import { href, navigate } from '../router';
import type { Id, Message, RoomSummary } from '../types';
import type { Services } from './App';
import { ErrorText, Time, UsernameField, useSubmission } from './common';
import { RoomView } from './RoomView';

export function ChatsScreen({ services, roomId }: { services: Services; roomId: Id | null }) {
  return (
    <div class={roomId === null ? 'chats' : 'chats with-room'}>
      <RoomList services={services} openRoomId={roomId} />
      {roomId === null ? (
        <main class="room-pane placeholder" id="main">
          <p>Choose a chat, or start one.</p>
        </main>
      ) : (
        <RoomView key={roomId} services={services} roomId={roomId} />
      )}
    </div>
  );
}

function RoomList({ services, openRoomId }: { services: Services; openRoomId: Id | null }) {
  const chat = useObserved(services.chat);
  useObserved(services.users);
  return (
    <nav class="room-list" aria-labelledby="rooms-heading">
      <h2 id="rooms-heading">Chats</h2>
      <StartChat chat={chat} />
      <ErrorText error={chat.roomsError} />
      {chat.roomsLoaded && chat.rooms.length === 0 ? <p class="hint">No chats yet.</p> : null}
      <ul class="rooms">
        {chat.rooms.map((room) => (
          <li key={room.id}>
            <a
              class="room-link"
              href={href({ screen: 'room', roomId: room.id })}
              aria-current={room.id === openRoomId ? 'page' : undefined}
            >
              <span class="room-title">
                {chat.title(room)}
                {/* A group is named by its owner: marked, it cannot pass for a direct chat with someone. */}
                {room.kind === 'group' ? <span class="room-kind"> · group of {room.member_count}</span> : null}
              </span>
              {room.unread_count > 0 ? (
                <span class="badge" aria-label={`${room.unread_count} unread`}>
                  {room.unread_count}
                </span>
              ) : null}
              <span class="room-preview">{preview(room, services)}</span>
              <Time at={room.last_activity_at} withDate />
            </a>
          </li>
        ))}
      </ul>
      {chat.moreRooms ? (
        <button type="button" onClick={() => chat.showMoreRooms()}>
          Show more chats
        </button>
      ) : null}
    </nav>
  );
}

/** The last message in a few words, as text. */
function preview(room: RoomSummary, services: Services): string {
  const message: Message | null = room.last_message;
  if (message === null) return 'No messages yet';
  const sender = message.sender_id === services.me.id ? 'You' : services.users.name(message.sender_id);
  if (message.deleted_at !== null) return `${sender}: message deleted`;
  switch (message.kind) {
    case 'text':
      return `${sender}: ${message.content ?? ''}`;
    case 'payment':
      return message.transfer === null ? `${sender} paid` : `${sender} paid ${formatMoney(message.transfer.amount, message.transfer.currency)}`;
    case 'payment_request':
      return message.payment_request === null
        ? `${sender} asked for money`
        : `${sender} asked for ${formatMoney(message.payment_request.amount, message.payment_request.currency)}`;
    case 'payment_declined':
      return `${sender} declined a request`;
    case 'split_request':
      return message.split_request === null
        ? `${sender} split a bill`
        : `${sender} split ${formatMoney(message.split_request.amount, message.split_request.currency)}`;
    case 'refund':
      return message.transfer === null ? `${sender} refunded` : `${sender} refunded ${formatMoney(message.transfer.amount, message.transfer.currency)}`;
  }
}

/** Opening a direct chat by username, or creating a group room. */
function StartChat({ chat }: { chat: Chat }) {
  const details = useRef<HTMLDetailsElement>(null);
  // The chat that was started opens, and the forms fold away.
  const show = (roomId: Id) => {
    if (details.current !== null) details.current.open = false;
    navigate({ screen: 'room', roomId });
  };
  return (
    <details class="start-chat" ref={details}>
      <summary>New chat</summary>
      <UsernameForm
        label="Chat with (username)"
        action="Open chat"
        onSubmit={async (username) => show(await chat.directRoom(username))}
      />
      <CreateRoomForm chat={chat} onCreated={show} />
    </details>
  );
}

/** One username and a button: open a direct chat, add a member. */
export function UsernameForm({
  label,
  action,
  onSubmit,
}: {
  label: string;
  action: string;
  onSubmit: (username: string) => Promise<void>;
}) {
  const [username, setUsername] = useState('');
  const { busy, error, submit } = useSubmission();
  const add = (event: Event) => {
    event.preventDefault();
    void submit(async () => {
      await onSubmit(username);
      setUsername('');
    });
  };
  return (
    <form class="inline-form" onSubmit={add} aria-label={action}>
      <UsernameField label={label} value={username} onInput={setUsername} />
      <button type="submit" disabled={busy}>
        {action}
      </button>
      <ErrorText error={error} />
    </form>
  );
}

function CreateRoomForm({ chat, onCreated }: { chat: Chat; onCreated: (roomId: Id) => void }) {
  const [name, setName] = useState('');
  const [members, setMembers] = useState('');
  const { busy, error, submit } = useSubmission();
  const create = (event: Event) => {
    event.preventDefault();
    void submit(async () => {
      const usernames = members.split(/[\s,]+/).filter((username) => username !== '');
      const roomId = await chat.createRoom(name.trim(), usernames);
      setName('');
      setMembers('');
      onCreated(roomId);
    });
  };
  return (
    <form class="inline-form" onSubmit={create} aria-label="Create a group room">
      <label>
        Room name
        <input required maxLength={100} value={name} onInput={(event) => setName(event.currentTarget.value)} />
      </label>
      <label>
        Members (usernames, separated by commas)
        <input
          autocapitalize="none"
          spellcheck={false}
          value={members}
          onInput={(event) => setMembers(event.currentTarget.value)}
        />
      </label>
      <button type="submit" disabled={busy}>
        Create room
      </button>
      <ErrorText error={error} />
    </form>
  );
}
