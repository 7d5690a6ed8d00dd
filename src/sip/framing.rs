//! Cutting a TCP/TLS byte stream into SIP messages by Content-Length (RFC 3261 18.3), and the
//! CRLF keep-alive of RFC 5626 3.5.1 (a double CRLF "ping" is answered with a single CRLF "pong").

use super::message::{MAX_BODY_BYTES, MAX_HEAD_BYTES, ParseError, content_length, find_head_end};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one whole message, ready for [`Message::parse`].
    Message(Vec<u8>),
    /// The peer sent a keep-alive ping; answer with `\r\n`.
    Ping,
    /// A single CRLF: the peer's pong to our ping.
    Pong,
}

/// Buffers what one connection delivered until whole messages can be cut from it.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buffer: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next frame, `Ok(None)` when more bytes are needed. An error means the stream can no
    /// longer be framed (no or bad Content-Length, oversize) and the connection must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.buffer.starts_with(b"\r\n\r\n") {
            self.buffer.drain(..4);
            return Ok(Some(Frame::Ping));
        }
        if self.buffer == b"\r\n" {
            self.buffer.clear();
            return Ok(Some(Frame::Pong));
        }
        if self.buffer.starts_with(b"\r\n")
            && self.buffer.len() > 2
            && self.buffer.get(2) != Some(&b'\r')
        {
            self.buffer.drain(..2);
            return Ok(Some(Frame::Pong));
        }
        if self.buffer.is_empty() || self.buffer.starts_with(b"\r") {
            return Ok(None);
        }
        let Some((head_len, body_start)) = find_head_end(&self.buffer) else {
            if self.buffer.len() > MAX_HEAD_BYTES {
                return Err(ParseError::HeadTooLarge);
            }
            return Ok(None);
        };
        if head_len > MAX_HEAD_BYTES {
            return Err(ParseError::HeadTooLarge);
        }
        let head = self.buffer.get(..body_start).unwrap_or(&[]);
        let declared = declared_length(head)?;
        if declared > MAX_BODY_BYTES {
            return Err(ParseError::BodyTooLarge);
        }
        let total = body_start + declared;
        if self.buffer.len() < total {
            return Ok(None);
        }
        let rest = self.buffer.split_off(total);
        let message = std::mem::replace(&mut self.buffer, rest);
        Ok(Some(Frame::Message(message)))
    }
}

/// Content-Length is mandatory on streams: without it the message boundary is unknown.
fn declared_length(head: &[u8]) -> Result<usize, ParseError> {
    let text = core::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let mut headers = super::message::Headers::default();
    for line in text.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
                headers.push("Content-Length", value.trim());
            }
        }
    }
    content_length(&headers)?.ok_or(ParseError::MissingHeader("Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        format!(
            "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn cuts_messages_delivered_in_pieces_and_together() {
        let one = msg("hello");
        let two = msg("");
        let all = format!("{one}{two}");
        let mut framer = StreamFramer::new();
        for chunk in all.as_bytes().chunks(7) {
            framer.push(chunk);
        }
        assert_eq!(
            framer.next_frame().unwrap(),
            Some(Frame::Message(one.into_bytes()))
        );
        assert_eq!(
            framer.next_frame().unwrap(),
            Some(Frame::Message(two.into_bytes()))
        );
        assert_eq!(framer.next_frame().unwrap(), None);
        assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn waits_for_the_whole_body() {
        let text = msg("0123456789");
        let mut framer = StreamFramer::new();
        framer.push(&text.as_bytes()[..text.len() - 3]);
        assert_eq!(framer.next_frame().unwrap(), None);
        framer.push(&text.as_bytes()[text.len() - 3..]);
        assert!(matches!(
            framer.next_frame().unwrap(),
            Some(Frame::Message(_))
        ));
    }

    #[test]
    fn keepalives_are_recognised() {
        let mut framer = StreamFramer::new();
        framer.push(b"\r\n\r\n");
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Ping));
        framer.push(b"\r\n");
        assert_eq!(framer.next_frame().unwrap(), Some(Frame::Pong));
    }

    #[test]
    fn missing_content_length_on_a_stream_is_fatal() {
        let mut framer = StreamFramer::new();
        framer.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(
            framer.next_frame(),
            Err(ParseError::MissingHeader("Content-Length"))
        );
    }

    #[test]
    fn oversize_head_is_refused() {
        let mut framer = StreamFramer::new();
        framer.push(&vec![b'a'; MAX_HEAD_BYTES + 10]);
        assert_eq!(framer.next_frame(), Err(ParseError::HeadTooLarge));
    }
}
