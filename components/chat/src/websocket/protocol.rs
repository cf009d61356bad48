//! Pushpin's WebSocket-over-HTTP encoding: a body is a sequence of events, each `TYPE\r\n` or
//! `TYPE <hex length>\r\n<bytes>\r\n`. CLOSE content is a 2-byte big-endian code plus a reason.

#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Open,
    Text(Vec<u8>),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Vec<u8>),
    Disconnect,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    Open,
    Text(String),
    Pong(Vec<u8>),
    Close(Vec<u8>),
}

impl Outgoing {
    pub fn close(code: u16, reason: &str) -> Self {
        let mut content = code.to_be_bytes().to_vec();
        content.extend_from_slice(reason.as_bytes());
        Self::Close(content)
    }
}

/// Parses a request body; None when it is not well-formed.
pub fn parse(mut body: &[u8]) -> Option<Vec<Incoming>> {
    let mut events = Vec::new();
    while !body.is_empty() {
        let line_end = body.windows(2).position(|pair| pair == b"\r\n")?;
        let line = std::str::from_utf8(&body[..line_end]).ok()?;
        body = &body[line_end + 2..];
        let (kind, content) = match line.split_once(' ') {
            None => (line, Vec::new()),
            Some((kind, hex_length)) => {
                let length = usize::from_str_radix(hex_length, 16).ok()?;
                // Checked: a length near usize::MAX must not wrap around (or panic).
                let content_end = length.checked_add(2)?;
                if body.len() < content_end || &body[length..content_end] != b"\r\n" {
                    return None;
                }
                let content = body[..length].to_vec();
                body = &body[length + 2..];
                (kind, content)
            }
        };
        events.push(match kind {
            "OPEN" => Incoming::Open,
            "TEXT" => Incoming::Text(content),
            "BINARY" => Incoming::Binary,
            "PING" => Incoming::Ping(content),
            "PONG" => Incoming::Pong,
            "CLOSE" => Incoming::Close(content),
            "DISCONNECT" => Incoming::Disconnect,
            _ => return None,
        });
    }
    Some(events)
}

pub fn encode(events: &[Outgoing]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        let (kind, content): (&str, &[u8]) = match event {
            Outgoing::Open => ("OPEN", &[]),
            Outgoing::Text(text) => ("TEXT", text.as_bytes()),
            Outgoing::Pong(payload) => ("PONG", payload),
            Outgoing::Close(content) => ("CLOSE", content),
        };
        if content.is_empty() && matches!(event, Outgoing::Open) {
            body.extend_from_slice(format!("{kind}\r\n").as_bytes());
        } else {
            body.extend_from_slice(format!("{kind} {:x}\r\n", content.len()).as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_batch_of_events() {
        let body = b"OPEN\r\nTEXT 5\r\nhello\r\nPING 0\r\n\r\nCLOSE 2\r\n\x03\xe8\r\nDISCONNECT\r\n";
        assert_eq!(
            parse(body),
            Some(vec![
                Incoming::Open,
                Incoming::Text(b"hello".to_vec()),
                Incoming::Ping(Vec::new()),
                Incoming::Close(vec![0x03, 0xe8]),
                Incoming::Disconnect,
            ])
        );
    }

    #[test]
    fn refuses_malformed_bodies() {
        for body in [&b"OPEN"[..], b"TEXT 9\r\nhello\r\n", b"TEXT zz\r\nhello\r\n", b"SHOUT\r\n", b"TEXT 5\r\nhelloXX"]
        {
            assert_eq!(parse(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn lengths_near_the_top_of_usize_are_refused_not_wrapped() {
        for body in [&b"TEXT ffffffff\r\nhi\r\n"[..], b"TEXT ffffffffffffffff\r\nhi\r\n", b"TEXT fffffffffffffffff\r\n"]
        {
            assert_eq!(parse(body), None, "{:?}", String::from_utf8_lossy(body));
        }
    }

    /// A small mutation fuzzer (xorshift, fixed seed): bytes of a valid batch flipped, dropped,
    /// duplicated and replaced by hex digits; the parser answers Some or None, never panics.
    #[test]
    fn mutated_bodies_never_panic() {
        let valid = b"OPEN\r\nTEXT 5\r\nhello\r\nPING 0\r\n\r\nCLOSE 2\r\n\x03\xe8\r\nDISCONNECT\r\n";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let mut body = valid.to_vec();
            for _ in 0..=next() % 4 {
                let at = usize::try_from(next() % body.len() as u64).expect("small");
                match next() % 4 {
                    0 => body[at] = next().to_le_bytes()[0],
                    1 => drop(body.remove(at)),
                    2 => body.insert(at, body[at]),
                    _ => body[at] = b"0123456789abcdef "[usize::try_from(next() % 17).expect("small")],
                }
                if body.is_empty() {
                    break;
                }
            }
            let _ = parse(&body);
        }
    }

    #[test]
    fn encodes_what_it_parses() {
        let body = encode(&[Outgoing::Open, Outgoing::Text("m:hi".into()), Outgoing::close(4403, "no")]);
        assert_eq!(body, b"OPEN\r\nTEXT 4\r\nm:hi\r\nCLOSE 4\r\n\x11\x33no\r\n");
    }
}
