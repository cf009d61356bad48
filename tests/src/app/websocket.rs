//! A chat client on a real WebSocket through Pushpin.
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::{TestApp, TestUser};

/// What the server sent: a JSON text frame, or a close with its code.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketEvent {
    Text(Value),
    Closed(u16),
}

/// What the server sent, unchecked: a text frame as received, or a close with its code.
#[derive(Debug, Clone, PartialEq)]
pub enum RawSocketEvent {
    Text(String),
    Closed(u16),
}

pub struct ChatSocket {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl ChatSocket {
    /// Opens `/chat/ws/{room}` with the token in the subprotocol header, as browsers do.
    pub fn connect(app: &TestApp, room: i64, token: &str) -> anyhow::Result<Self> {
        let mut request = app.ws_url(&format!("/chat/ws/{room}")).into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", format!("sendinchat.v1, bearer.{token}").parse()?);
        Self::connect_request(request)
    }

    /// Opens `/chat/ws/{room}` as `user` and returns once the socket's subscription is live.
    ///
    /// Pushpin applies a subscription shortly after the handshake completes, so an event
    /// published in between is not delivered (clients recover it with `?after=`). Tests need
    /// exact delivery counts, so this sends typing notices until one comes back through the
    /// room's channel.
    pub fn join(app: &TestApp, room: i64, user: &TestUser) -> anyhow::Result<Self> {
        let mut socket = Self::connect(app, room, &user.token)?;
        socket.await_subscription(user)?;
        Ok(socket)
    }

    /// Sends typing notices as `user` until one comes back through the room's channel.
    pub fn await_subscription(&mut self, user: &TestUser) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            self.send(&json!({"type": "typing"}));
            while let Some(event) = self.next_event(Duration::from_millis(300)) {
                match event {
                    SocketEvent::Text(event) if event["type"] == "typing" && event["user_id"] == user.id => {
                        return Ok(());
                    }
                    SocketEvent::Text(_) => continue,
                    SocketEvent::Closed(code) => anyhow::bail!("socket closed ({code}) while joining"),
                }
            }
        }
        anyhow::bail!("the socket's subscription did not become live")
    }

    /// Opens a WebSocket at `path` (e.g. with `?token=`), with no subprotocol.
    pub fn connect_path(app: &TestApp, path: &str) -> anyhow::Result<Self> {
        Self::connect_request(app.ws_url(path).into_client_request()?)
    }

    fn connect_request(request: tungstenite::handshake::client::Request) -> anyhow::Result<Self> {
        let (socket, _response) = tungstenite::connect(request)?;
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_nodelay(true)?;
        }
        Ok(Self { socket })
    }

    pub fn send(&mut self, frame: &Value) {
        self.socket.send(Message::text(frame.to_string())).expect("send frame");
    }

    pub fn send_raw(&mut self, message: Message) {
        self.try_send_raw(message).expect("send frame");
    }

    /// Sends a frame the gateway may refuse by closing the socket while it is being written.
    pub fn try_send_raw(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.socket.send(message)
    }

    /// The next event within `timeout`, or `None`, its text checked against the API contract.
    /// Pings are answered along the way.
    pub fn next_event(&mut self, timeout: Duration) -> Option<SocketEvent> {
        Some(match self.next_raw_event(timeout)? {
            RawSocketEvent::Text(text) => SocketEvent::Text(crate::contract::check_server_event(&text)),
            RawSocketEvent::Closed(code) => SocketEvent::Closed(code),
        })
    }

    /// The next event within `timeout`, or `None`, unchecked: for benchmarks, where checking
    /// every frame against the contract costs the client more CPU than the server's delivery.
    pub fn next_raw_event(&mut self, timeout: Duration) -> Option<RawSocketEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.checked_duration_since(Instant::now())?;
            if let MaybeTlsStream::Plain(stream) = self.socket.get_ref() {
                stream.set_read_timeout(Some(remaining.max(Duration::from_millis(1)))).ok()?;
            }
            match self.socket.read() {
                Ok(Message::Text(text)) => return Some(RawSocketEvent::Text(text.as_str().to_owned())),
                Ok(Message::Close(frame)) => {
                    return Some(RawSocketEvent::Closed(frame.map_or(1005, |frame| u16::from(frame.code))));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(error))
                    if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    return None;
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Some(RawSocketEvent::Closed(1006));
                }
                // The gateway went away without a close frame (killed or restarted): 1006, as
                // browsers report it.
                Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => {
                    return Some(RawSocketEvent::Closed(1006));
                }
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    return Some(RawSocketEvent::Closed(1006));
                }
                Err(error) => panic!("websocket read: {error}"),
            }
        }
    }

    /// The next event of `type` (skipping others, e.g. typing notices), or `None` on timeout.
    pub fn next_of_type(&mut self, kind: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event(deadline.checked_duration_since(Instant::now())?)? {
                SocketEvent::Text(event) if event["type"] == kind => return Some(event),
                SocketEvent::Text(_) => continue,
                SocketEvent::Closed(code) => {
                    panic!("socket closed ({code}) while waiting for {kind}")
                }
            }
        }
    }

    pub fn close(mut self) {
        let _ = self
            .socket
            .close(Some(tungstenite::protocol::CloseFrame { code: CloseCode::Normal, reason: "bye".into() }));
        let _ = self.socket.flush();
    }
}
