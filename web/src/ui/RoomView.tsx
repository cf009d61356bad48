// One room: its messages (older ones on scrolling up), live updates, typing, read markers, the
// composer and payments.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Timeline } from '../chat';
import { useObserved } from '../observable';
import { href, navigate } from '../router';
import type { Id, RoomSummary } from '../types';
import type { Services } from './App';
import { UsernameForm } from './ChatsScreen';
import { ErrorText, useSubmission } from './common';
import { MessageItem } from './MessageItem';
import { PaymentPanel } from './PaymentPanel';

/** Within this many pixels of the bottom counts as reading the newest messages. */
const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 40;

export function RoomView({ services, roomId }: { services: Services; roomId: Id }) {
  const chat = useObserved(services.chat);
  useObserved(services.users);
  useEffect(() => {
    chat.open(roomId);
    return () => chat.close();
  }, [chat, roomId]);
  const room = chat.room(roomId);
  const timeline = chat.timelines.get(roomId);
  if (timeline === undefined) return <main class="room-pane" id="main" />;
  const title = room === undefined ? 'Chat' : chat.title(room);

  return (
    <main class="room-pane" id="main" aria-labelledby="room-heading">
      <RoomHeader services={services} room={room} roomId={roomId} title={title} />
      {chat.links.get(roomId) === 'reconnecting' ? (
        <p class="banner" role="status">
          Reconnecting… new messages will appear when the connection is back.
        </p>
      ) : null}
      <ErrorText error={timeline.closedNotice ?? timeline.error} />
      <MessageList services={services} roomId={roomId} timeline={timeline} />
      <TypingLine services={services} timeline={timeline} />
      {timeline.closedNotice === null ? <Composer services={services} room={room} roomId={roomId} /> : null}
    </main>
  );
}

function RoomHeader({ services, room, roomId, title }: { services: Services; room: RoomSummary | undefined; roomId: Id; title: string }) {
  const [confirmingLeave, setConfirmingLeave] = useState(false);
  const { error, submit } = useSubmission();
  const leave = () =>
    submit(async () => {
      await services.chat.leave(roomId);
      navigate({ screen: 'chats' });
    });
  const isOwner = room?.kind === 'group' && room.owner_id === services.me.id;
  return (
    <header class="room-header">
      <a class="back" href={href({ screen: 'chats' })}>
        ← Chats
      </a>
      <h2 id="room-heading">{title}</h2>
      {room?.kind === 'group' ? <span class="hint">{room.member_count} members</span> : null}
      <div class="room-actions">
        {isOwner ? (
          <details class="add-member">
            <summary>Add member</summary>
            <UsernameForm
              label="Username"
              action="Add member"
              onSubmit={(username) => services.chat.addMember(roomId, username)}
            />
          </details>
        ) : null}
        {confirmingLeave ? (
          <span class="confirm" role="group" aria-label="Leave this chat?">
            Leave this chat?
            <button type="button" class="danger" onClick={leave}>
              Leave
            </button>
            <button type="button" onClick={() => setConfirmingLeave(false)}>
              Stay
            </button>
          </span>
        ) : (
          <button type="button" class="quiet" onClick={() => setConfirmingLeave(true)}>
            Leave chat
          </button>
        )}
      </div>
      <ErrorText error={error} />
    </header>
  );
}

function MessageList({ services, roomId, timeline }: { services: Services; roomId: Id; timeline: Timeline }) {
  const list = useRef<HTMLDivElement>(null);
  const previous = useRef({ firstId: 0, scrollHeight: 0 });
  const firstId = timeline.messages[0]?.id ?? 0;

  // Older messages prepended: keep what was on screen in place. New ones appended: follow them
  // if the reader was at the bottom. Where the reader is comes from the list as it stands (its
  // height before this render), not from the last scroll event: a render that lands between a
  // scroll and its event (a typing notice as the reader scrolls up) would otherwise snap the
  // list back to the bottom, and the scroll would never ask for older messages.
  useLayoutEffect(() => {
    const element = list.current;
    if (element === null) return;
    const wasNearBottom = previous.current.scrollHeight - element.scrollTop - element.clientHeight < NEAR_BOTTOM_PX;
    if (previous.current.firstId !== 0 && firstId < previous.current.firstId) {
      element.scrollTop += element.scrollHeight - previous.current.scrollHeight;
    } else if (wasNearBottom) {
      element.scrollTop = element.scrollHeight;
    }
    previous.current = { firstId, scrollHeight: element.scrollHeight };
  });

  const onScroll = () => {
    const element = list.current;
    if (element === null) return;
    if (element.scrollTop < NEAR_TOP_PX && timeline.hasOlder) void services.chat.loadOlder(roomId);
  };

  const mine = timeline.messages.filter((message) => message.sender_id === services.me.id);
  const lastMine = mine.at(-1)?.id;
  const seenBy = lastMine === undefined ? [] : [...timeline.readBy].filter(([, upTo]) => upTo >= lastMine).map(([user]) => user);

  return (
    <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label="Messages" tabIndex={0}>
      <ol class="message-list">
      {timeline.hasOlder ? (
        <li class="older">
          <button type="button" disabled={timeline.loadingOlder} onClick={() => void services.chat.loadOlder(roomId)}>
            {timeline.loadingOlder ? 'Loading…' : 'Show older messages'}
          </button>
        </li>
      ) : null}
      {timeline.loaded && timeline.messages.length === 0 ? <li class="hint">No messages yet. Say hello!</li> : null}
      {timeline.messages.map((message) => (
        <MessageItem
          key={message.id}
          services={services}
          message={message}
          seenBy={message.id === lastMine ? seenBy : []}
        />
      ))}
      {timeline.outbox.map((item) => (
        <li key={item.clientMsgId} class="message mine pending">
          <p class="text">{item.content}</p>
          {item.error === null ? (
            <span class="hint">Sending…</span>
          ) : (
            <span class="error" role="alert">
              {item.error}{' '}
              <button type="button" onClick={() => void services.chat.send(roomId, item.content, item.clientMsgId)}>
                Retry
              </button>
              <button type="button" onClick={() => services.chat.discard(roomId, item.clientMsgId)}>
                Discard
              </button>
            </span>
          )}
        </li>
      ))}
      </ol>
    </div>
  );
}

function TypingLine({ services, timeline }: { services: Services; timeline: Timeline }) {
  const names = [...timeline.typing.keys()].map((user) => services.users.name(user));
  const text = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  return (
    <p class="typing" aria-live="polite">
      {text}
    </p>
  );
}

type Panel = 'pay' | 'request' | null;

function Composer({ services, room, roomId }: { services: Services; room: RoomSummary | undefined; roomId: Id }) {
  const [text, setText] = useState('');
  const [panel, setPanel] = useState<Panel>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => input.current?.focus(), [roomId]);

  const send = () => {
    const content = text.trim();
    if (content === '') return;
    setText('');
    void services.chat.send(roomId, content);
  };
  const toggle = (which: Exclude<Panel, null>) => setPanel(panel === which ? null : which);

  return (
    <div class="composer-area">
      {panel !== null && room !== undefined ? (
        <PaymentPanel services={services} room={room} kind={panel} onDone={() => setPanel(null)} />
      ) : null}
      <form
        class="composer"
        onSubmit={(event) => {
          event.preventDefault();
          send();
        }}
      >
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={input}
          rows={1}
          maxLength={4096}
          placeholder="Message"
          value={text}
          onInput={(event) => {
            setText(event.currentTarget.value);
            services.chat.typing(roomId);
          }}
          onKeyDown={(event) => {
            // Enter sends; Shift+Enter starts a new line.
            if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
              event.preventDefault();
              send();
            }
          }}
        />
        <button type="submit" class="primary">
          Send
        </button>
      </form>
      <div class="money-actions">
        <button type="button" aria-expanded={panel === 'pay'} onClick={() => toggle('pay')}>
          Pay
        </button>
        <button type="button" aria-expanded={panel === 'request'} onClick={() => toggle('request')}>
          Request money
        </button>
      </div>
    </div>
  );
}

