//! SIP messages: parsing from bytes, typed access to the headers the stack needs, and printing.
//!
//! Headers are kept as (canonical name, raw value) pairs in arrival order, so that anything the
//! stack does not understand passes through untouched, and values are parsed on access. Compact
//! names (`v`, `f`, `i`, ...) are expanded on parse; folded lines are unfolded.

use core::fmt;

mod headers;
mod reason_phrases;

pub use headers::{Header, Headers, canonical_name};
pub use reason_phrases::reason_phrase;

use super::uri::{NameAddr, Uri, UriError, find_param, parse_params, split_unquoted};

/// Upper bounds that keep a hostile peer from making us buffer without end.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_HEADERS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message is empty")]
    Empty,
    #[error("message head is not terminated by an empty line")]
    Incomplete,
    #[error("message head exceeds {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("message head is not valid UTF-8")]
    NotUtf8,
    #[error("bad start line: {0:?}")]
    BadStartLine(String),
    #[error("unsupported SIP version {0:?}")]
    BadVersion(String),
    #[error("bad request URI: {0}")]
    BadRequestUri(UriError),
    #[error("bad header line: {0:?}")]
    BadHeaderLine(String),
    #[error("bad Content-Length: {0:?}")]
    BadContentLength(String),
    #[error("Content-Length {declared} is larger than the {actual} body bytes received")]
    BodyTruncated { declared: usize, actual: usize },
    #[error("missing mandatory header {0}")]
    MissingHeader(&'static str),
    #[error("bad {0} header: {1}")]
    BadHeader(&'static str, String),
    #[error("CSeq method {cseq} does not match request method {method}")]
    CSeqMethodMismatch { cseq: String, method: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Update,
    Info,
    Prack,
    Refer,
    Notify,
    Subscribe,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn parse(token: &str) -> Method {
        // Methods are case-sensitive (RFC 3261 7.1): "invite" is an unknown extension method.
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "UPDATE" => Method::Update,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: Uri },
    Response { status: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A Via header value (RFC 3261 20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, String> {
        let value = squeeze_around_slash(value.trim());
        let (protocol, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| format!("no sent-by in {value:?}"))?;
        let mut parts = protocol.split('/').map(str::trim);
        let (name, version, transport) = (parts.next(), parts.next(), parts.next());
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP"))
            || version != Some("2.0")
            || transport.is_none_or(str::is_empty)
        {
            return Err(format!("bad sent-protocol {protocol:?}"));
        }
        // Whitespace is allowed around '/' and ';' (RFC 4475 wsinv), so squeeze it out first.
        let rest: String = rest.split_whitespace().collect::<Vec<_>>().join("");
        let mut pieces = split_unquoted(&rest, b';').into_iter();
        let sent_by = pieces.next().unwrap_or("");
        let (host, port) = if let Some(stripped) = sent_by.strip_prefix('[') {
            let end = stripped.find(']').ok_or("unterminated IPv6 sent-by")?;
            let host = format!("[{}]", stripped.get(..end).unwrap_or(""));
            let port = stripped.get(end + 1..).and_then(|p| p.strip_prefix(':'));
            (host, port)
        } else {
            match sent_by.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (sent_by.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err("empty sent-by host".into());
        }
        let port = match port {
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
            None => None,
        };
        let pieces: Vec<&str> = pieces.collect();
        if pieces.iter().any(|p| p.is_empty()) {
            return Err("empty Via parameter".into());
        }
        let params = parse_params(&pieces.join(";"));
        Ok(Via {
            transport: transport.unwrap_or("").to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self
            .params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(entry) => entry.1 = value,
            None => self.params.push((name.to_owned(), value)),
        }
    }
}

/// `SIP / 2.0 / UDP` is legal (RFC 4475 3.1.1.1): drop the whitespace around each '/'.
fn squeeze_around_slash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_slash = false;
    for c in text.chars() {
        if c == '/' {
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('/');
            after_slash = true;
        } else if after_slash && c.is_ascii_whitespace() {
            continue;
        } else {
            after_slash = false;
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, String> {
        let mut parts = value.split_whitespace();
        let number = parts
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("bad sequence number in {value:?}"))?;
        let method = parts
            .next()
            .map(Method::parse)
            .ok_or_else(|| format!("no method in {value:?}"))?;
        if parts.next().is_some() {
            return Err(format!("trailing text in {value:?}"));
        }
        Ok(CSeq { number, method })
    }
}

impl Message {
    pub fn request(method: Method, uri: Uri) -> Message {
        Message {
            start: StartLine::Request { method, uri },
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    pub fn call_id(&self) -> Option<&str> {
        self.headers.get("Call-ID").map(str::trim)
    }

    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let raw = self
            .headers
            .get("CSeq")
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        CSeq::parse(raw).map_err(|e| ParseError::BadHeader("CSeq", e))
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let first = self
            .headers
            .list("Via")
            .into_iter()
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(first).map_err(|e| ParseError::BadHeader("Via", e))
    }

    pub fn from_header(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("From")
    }

    pub fn to_header(&self) -> Result<NameAddr, ParseError> {
        self.name_addr("To")
    }

    fn name_addr(&self, name: &'static str) -> Result<NameAddr, ParseError> {
        let raw = self
            .headers
            .get(name)
            .ok_or(ParseError::MissingHeader(name))?;
        NameAddr::parse(raw).map_err(|e| ParseError::BadHeader(name, e.to_string()))
    }

    /// All Contact values; `*` (REGISTER wildcard) is skipped.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, ParseError> {
        self.headers
            .list("Contact")
            .into_iter()
            .filter(|c| *c != "*")
            .map(|c| {
                NameAddr::parse(c).map_err(|e| ParseError::BadHeader("Contact", e.to_string()))
            })
            .collect()
    }

    pub fn content_type(&self) -> Option<String> {
        self.headers.get("Content-Type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// Checks what RFC 3261 8.1.1 and 8.2 require of every request and response, so the layers
    /// above can rely on it. A request that fails gets a 400 with the error as reason phrase.
    pub fn validate(&self) -> Result<(), ParseError> {
        for name in ["Call-ID", "From", "To"] {
            let name_static: &'static str = match name {
                "Call-ID" => "Call-ID",
                "From" => "From",
                _ => "To",
            };
            if self.headers.all(name).is_empty() {
                return Err(ParseError::MissingHeader(name_static));
            }
            if self.headers.all(name).len() > 1 {
                return Err(ParseError::BadHeader(
                    name_static,
                    "appears more than once".into(),
                ));
            }
        }
        if self.call_id().is_none_or(str::is_empty) {
            return Err(ParseError::BadHeader("Call-ID", "empty".into()));
        }
        for raw in self.headers.all("Via") {
            for via in split_unquoted(raw, b',') {
                Via::parse(via).map_err(|e| ParseError::BadHeader("Via", e))?;
            }
        }
        self.top_via()?;
        self.from_header()?;
        self.to_header()?;
        let cseq = self.cseq()?;
        if self.headers.all("CSeq").len() > 1 {
            return Err(ParseError::BadHeader(
                "CSeq",
                "appears more than once".into(),
            ));
        }
        if let Some(method) = self.method()
            && cseq.method != *method
        {
            return Err(ParseError::CSeqMethodMismatch {
                cseq: cseq.method.to_string(),
                method: method.to_string(),
            });
        }
        if let Some(mf) = self.headers.get("Max-Forwards") {
            mf.trim()
                .parse::<u8>()
                .map_err(|_| ParseError::BadHeader("Max-Forwards", mf.to_owned()))?;
        }
        if let Some(expires) = self.headers.get("Expires") {
            expires
                .trim()
                .parse::<u32>()
                .map_err(|_| ParseError::BadHeader("Expires", expires.to_owned()))?;
        }
        Ok(())
    }

    /// Parses one complete message (a UDP datagram or a message framed off a stream).
    /// Content-Length, when present, bounds the body; a datagram shorter than it declares is an
    /// error and extra bytes after it are ignored (RFC 3261 18.3).
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        let data = skip_leading_crlf(data);
        if data.is_empty() {
            return Err(ParseError::Empty);
        }
        let (head_len, body_start) = find_head_end(data).ok_or({
            if data.len() > MAX_HEAD_BYTES {
                ParseError::HeadTooLarge
            } else {
                ParseError::Incomplete
            }
        })?;
        if head_len > MAX_HEAD_BYTES {
            return Err(ParseError::HeadTooLarge);
        }
        let head = data.get(..head_len).ok_or(ParseError::Incomplete)?;
        let head = core::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
        let rest = data.get(body_start..).unwrap_or(&[]);
        let (start, headers) = parse_head(head)?;
        let body = match content_length(&headers)? {
            Some(declared) => {
                if declared > MAX_BODY_BYTES {
                    return Err(ParseError::BodyTooLarge);
                }
                rest.get(..declared)
                    .ok_or(ParseError::BodyTruncated {
                        declared,
                        actual: rest.len(),
                    })?
                    .to_vec()
            }
            None => {
                if rest.len() > MAX_BODY_BYTES {
                    return Err(ParseError::BodyTooLarge);
                }
                rest.to_vec()
            }
        };
        Ok(Message {
            start,
            headers,
            body,
        })
    }

    /// Prints the message with a Content-Length that matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
            }
            StartLine::Response { status, reason } => {
                out.extend_from_slice(format!("SIP/2.0 {status} {reason}\r\n").as_bytes());
            }
        }
        for h in self.headers.iter() {
            if h.name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// A response to this request with the headers RFC 3261 8.2.6.2 copies (Via, From, To,
    /// Call-ID, CSeq), and a To tag added when the request had none and `to_tag` is given.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut headers = Headers::default();
        for h in self.headers.iter() {
            let name = h.name.as_str();
            // RFC 3261 12.1.1: responses that can set up a dialog echo Record-Route, so
            // the caller's route set runs through the same proxies.
            let dialog_forming = (101..300).contains(&status);
            if name == "Via"
                || name == "From"
                || name == "Call-ID"
                || name == "CSeq"
                || (name == "Record-Route" && dialog_forming)
            {
                headers.push(name, h.value.clone());
            } else if name == "To" {
                let mut value = h.value.clone();
                if let Some(tag) = to_tag {
                    let has_tag = NameAddr::parse(&value).is_ok_and(|na| na.tag().is_some());
                    if !has_tag && status != 100 {
                        value.push_str(";tag=");
                        value.push_str(tag);
                    }
                }
                headers.push("To", value);
            }
        }
        Message {
            start: StartLine::Response {
                status,
                reason: reason.to_owned(),
            },
            headers,
            body: Vec::new(),
        }
    }

    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.set("Content-Type", content_type);
        self.body = body;
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

fn skip_leading_crlf(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(data.len());
    data.get(start..).unwrap_or(&[])
}

/// Finds the blank line that ends the head: returns (head length, body start). Bare LF line
/// endings are accepted because some implementations send them.
pub(crate) fn find_head_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < data.len() {
        if data.get(i) == Some(&b'\n') {
            match (data.get(i + 1), data.get(i + 2)) {
                (Some(b'\n'), _) => return Some((i, i + 2)),
                (Some(b'\r'), Some(b'\n')) => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn parse_head(head: &str) -> Result<(StartLine, Headers), ParseError> {
    let mut lines = unfold(head).into_iter();
    let first = lines.next().ok_or(ParseError::Empty)?;
    let start = parse_start_line(&first)?;
    let mut headers = Headers::default();
    // Content-Length is not counted: the printer always writes one, so a message that
    // parses must still parse once printed (a fuzzer found 256 fields plus the added one).
    let mut counted = 0;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ParseError::BadHeaderLine(line.clone()))?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(ParseError::BadHeaderLine(line.clone()));
        }
        if canonical_name(name) != "Content-Length" {
            counted += 1;
            if counted > MAX_HEADERS {
                return Err(ParseError::TooManyHeaders);
            }
        }
        headers.push(name, value.trim());
    }
    Ok((start, headers))
}

/// Splits the head into logical lines: a line that starts with space or tab continues the one
/// before it (RFC 3261 7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t'])
            && let Some(last) = lines.last_mut()
        {
            last.push(' ');
            last.push_str(line.trim_start());
            continue;
        }
        lines.push(line.to_owned());
    }
    lines
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest
            .split_once(' ')
            .ok_or_else(|| ParseError::BadStartLine(line.to_owned()))?;
        if version != "2.0" {
            return Err(ParseError::BadVersion(format!("SIP/{version}")));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let status = code
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=699).contains(c) && code.len() == 3)
            .ok_or_else(|| ParseError::BadStartLine(line.to_owned()))?;
        return Ok(StartLine::Response {
            status,
            reason: reason.to_owned(),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
    let mut parts = line.split(' ');
    let (method, uri, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(v), None) => (m, u, v),
        _ => return Err(ParseError::BadStartLine(line.to_owned())),
    };
    if method.is_empty() || !method.bytes().all(is_token_char) {
        return Err(ParseError::BadStartLine(line.to_owned()));
    }
    if version != "SIP/2.0" {
        if version.starts_with("SIP/") {
            return Err(ParseError::BadVersion(version.to_owned()));
        }
        return Err(ParseError::BadStartLine(line.to_owned()));
    }
    let uri = Uri::parse(uri).map_err(ParseError::BadRequestUri)?;
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri,
    })
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

pub(crate) fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let values = headers.all("Content-Length");
    let mut result = None;
    for raw in values {
        let n = raw
            .trim()
            .parse::<usize>()
            .map_err(|_| ParseError::BadContentLength(raw.to_owned()))?;
        if result.is_some_and(|prev| prev != n) {
            return Err(ParseError::BadContentLength(raw.to_owned()));
        }
        result = Some(n);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

    #[test]
    fn parses_invite_and_keeps_body_to_content_length() {
        let msg = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(msg.method(), Some(&Method::Invite));
        assert_eq!(msg.body, b"v=0\r");
        assert_eq!(msg.cseq().unwrap().number, 314159);
        assert_eq!(msg.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(msg.from_header().unwrap().tag(), Some("1928301774"));
        assert!(msg.contacts().unwrap()[0].param("+sip.instance").is_some());
        msg.validate().unwrap();
    }

    #[test]
    fn round_trips_through_to_bytes() {
        let msg = Message::parse(INVITE.as_bytes()).unwrap();
        let again = Message::parse(&msg.to_bytes()).unwrap();
        assert_eq!(msg, again);
    }

    #[test]
    fn compact_names_and_folding_are_understood() {
        let text = "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nf: <sip:a@b>\r\n ;tag=7\r\nt: sip:x@y\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nm: <sip:a@h>, <sip:b@h>\r\nl: 0\r\n\r\n";
        let msg = Message::parse(text.as_bytes()).unwrap();
        assert_eq!(msg.call_id(), Some("abc"));
        assert_eq!(msg.from_header().unwrap().tag(), Some("7"));
        assert_eq!(msg.contacts().unwrap().len(), 2);
        msg.validate().unwrap();
    }

    #[test]
    fn truncated_body_is_an_error() {
        let text = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert!(matches!(
            Message::parse(text.as_bytes()),
            Err(ParseError::BodyTruncated { .. })
        ));
    }

    #[test]
    fn validation_catches_missing_and_mismatched_headers() {
        let no_callid = INVITE.replace("Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n", "");
        let msg = Message::parse(no_callid.as_bytes()).unwrap();
        assert_eq!(msg.validate(), Err(ParseError::MissingHeader("Call-ID")));
        let mismatch = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK");
        let msg = Message::parse(mismatch.as_bytes()).unwrap();
        assert!(matches!(
            msg.validate(),
            Err(ParseError::CSeqMethodMismatch { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"\r\n\r\n",
            b"INVITE",
            b"SIP/2.0 99 x\r\n\r\n",
            b"INVITE sip:a SIP/2.0\r\nVia\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
        ] {
            assert!(Message::parse(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn response_copies_dialog_headers_and_adds_tag() {
        let req = Message::parse(INVITE.as_bytes()).unwrap();
        let resp = req.response(486, "Busy Here", Some("xyz"));
        assert_eq!(resp.status(), Some(486));
        assert_eq!(resp.to_header().unwrap().tag(), Some("xyz"));
        assert_eq!(resp.headers.get("Call-ID"), req.headers.get("Call-ID"));
        assert!(resp.headers.get("Record-Route").is_none());
        let mut routed = req.clone();
        routed.headers.push("Record-Route", "<sip:p1;lr>");
        routed.headers.push("Record-Route", "<sip:p2;lr>");
        let ok = routed.response(200, "OK", Some("xyz"));
        assert_eq!(
            ok.headers.all("Record-Route"),
            vec!["<sip:p1;lr>", "<sip:p2;lr>"]
        );
        let bytes = resp.to_bytes();
        assert!(
            String::from_utf8(bytes)
                .unwrap()
                .contains("Content-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn via_with_whitespace_and_ipv6() {
        let via =
            Via::parse("SIP / 2.0 / UDP [2001:db8::9:1]:5070 ; branch = z9hG4bKx ; rport").unwrap();
        assert_eq!(via.host, "[2001:db8::9:1]");
        assert_eq!(via.port, Some(5070));
        assert_eq!(via.branch(), Some("z9hG4bKx"));
        assert_eq!(via.param("rport"), Some(None));
    }
}
