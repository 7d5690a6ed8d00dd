//! The SDP model and its writer.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use super::SdpError;

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when there is no user name.
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    /// The originator's address. An `o=` carrying a host name instead of an IP literal is read
    /// as the unspecified address: the origin only identifies the session, nothing is sent there.
    pub address: IpAddr,
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// The `s=` line; `-` when the sender had nothing to say.
    pub session_name: String,
    /// The session-level `c=` address, the default for media without their own.
    pub connection: Option<IpAddr>,
    pub media: Vec<MediaDescription>,
    /// Session-level attributes in their order. A session-level direction attribute is not kept
    /// here: it is copied into every media description without one of its own.
    pub attributes: Vec<Attribute>,
}

/// The media type of an `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// `image`, `application`, `text`... kept as written.
    Other(String),
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub kind: MediaKind,
    /// Port 0 means the stream is rejected or disabled (RFC 3264 section 6).
    pub port: u16,
    /// Transport protocol, e.g. `RTP/AVP`, `RTP/SAVP`, `udptl`.
    pub proto: String,
    /// RTP payload formats in the order of the `m=` line, i.e. the sender's preference.
    pub formats: Vec<PayloadFormat>,
    /// Format tokens that are not RTP payload types, such as `t38` on an `udptl` image stream.
    /// They are written after `formats` on the `m=` line.
    pub non_rtp_formats: Vec<String>,
    pub direction: Direction,
    /// The media-level `c=` address, which overrides the session-level one.
    pub connection: Option<IpAddr>,
    /// From `a=rtcp` (RFC 3605). Only the port is kept: an address there is dropped.
    pub rtcp_port: Option<u16>,
    /// From `a=ptime`, in milliseconds. A fractional ptime stays a raw attribute.
    pub ptime: Option<u32>,
    /// Every other attribute (`label`, `crypto`, `record`, `recordpref`, `rtcp-mux`...) in its
    /// order, exactly as received.
    pub attributes: Vec<Attribute>,
}

/// One RTP payload format of an `m=` line with its `rtpmap` and `fmtp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    pub payload_type: u8,
    /// Encoding name as written, e.g. `PCMU`, `opus`, `telephone-event`. Empty for a dynamic
    /// payload type the sender gave no `rtpmap` for.
    pub encoding: String,
    /// RTP clock rate in Hz; 0 when unknown.
    pub clock_rate: u32,
    /// Encoding parameters of the `rtpmap`: the channel count for audio.
    pub channels: Option<u8>,
    /// Parameters of the `a=fmtp` line for this payload type.
    pub fmtp: Option<String>,
}

/// Media direction attribute (RFC 4566 section 6, RFC 3264 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// A property attribute (`a=name`) or value attribute (`a=name:value`).
///
/// `Debug` hides every `inline:` key of an `a=crypto` value (RFC 4568 section 9.1, including
/// an `FEC_KEY` session parameter), since keys must never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl SessionDescription {
    /// An empty session: no media, no attributes.
    pub fn new(
        origin: Origin,
        session_name: impl Into<String>,
        connection: Option<IpAddr>,
    ) -> Self {
        SessionDescription {
            origin,
            session_name: session_name.into(),
            connection,
            media: Vec::new(),
            attributes: Vec::new(),
        }
    }

    /// Reads SDP text. Line endings may be CRLF or LF, the final one may be missing; see the
    /// module documentation for what is tolerated.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        super::parse::parse(text)
    }

    /// The address media of `media` go to: its own `c=`, else the session's.
    pub fn connection_for(&self, media: &MediaDescription) -> Option<IpAddr> {
        media.connection.or(self.connection)
    }

    /// True when any active stream uses the RFC 2543 hold address `c=0.0.0.0`.
    pub fn is_rfc2543_hold(&self) -> bool {
        self.media
            .iter()
            .any(|m| !m.is_rejected() && m.is_rfc2543_hold(self.connection))
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(text: &str) -> Result<Self, SdpError> {
        SessionDescription::parse(text)
    }
}

impl MediaKind {
    /// The media token as written on the `m=` line.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Other(other) => other,
        }
    }

    pub(super) fn from_token(token: &str) -> Self {
        match token {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            other => MediaKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MediaDescription {
    /// A media section with no formats, sendrecv, and no attributes.
    pub fn new(kind: MediaKind, port: u16, proto: impl Into<String>) -> Self {
        MediaDescription {
            kind,
            port,
            proto: proto.into(),
            formats: Vec::new(),
            non_rtp_formats: Vec::new(),
            direction: Direction::SendRecv,
            connection: None,
            rtcp_port: None,
            ptime: None,
            attributes: Vec::new(),
        }
    }

    /// Port 0: the stream is rejected or disabled.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// The format with this payload type.
    pub fn format(&self, payload_type: u8) -> Option<&PayloadFormat> {
        self.formats.iter().find(|f| f.payload_type == payload_type)
    }

    /// The first attribute with this name (`label`, `crypto`...).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// True when this stream's address is unspecified (`c=0.0.0.0` or `c=::`), the RFC 2543
    /// way of saying "send me nothing" that RFC 3264 section 8.4 still requires us to honour.
    pub fn is_rfc2543_hold(&self, session_connection: Option<IpAddr>) -> bool {
        self.connection
            .or(session_connection)
            .is_some_and(|address| address.is_unspecified())
    }

    /// The direction as seen from the sender of this SDP, with an RFC 2543 hold address taken
    /// into account: such a sender receives nothing, so sendrecv becomes sendonly and recvonly
    /// becomes inactive.
    pub fn effective_direction(&self, session_connection: Option<IpAddr>) -> Direction {
        if self.is_rfc2543_hold(session_connection) {
            Direction::from_flags(self.direction.sends(), false)
        } else {
            self.direction
        }
    }
}

impl PayloadFormat {
    pub fn new(
        payload_type: u8,
        encoding: impl Into<String>,
        clock_rate: u32,
        channels: Option<u8>,
    ) -> Self {
        PayloadFormat {
            payload_type,
            encoding: encoding.into(),
            clock_rate,
            channels,
            fmtp: None,
        }
    }

    pub fn with_fmtp(mut self, fmtp: impl Into<String>) -> Self {
        self.fmtp = Some(fmtp.into());
        self
    }

    /// The format of a static payload type (RFC 3551 tables 4 and 5), used when an `m=` line
    /// lists one without an `rtpmap`.
    pub fn from_static(payload_type: u8) -> Option<Self> {
        let (encoding, clock_rate, channels) = match payload_type {
            0 => ("PCMU", 8000, None),
            3 => ("GSM", 8000, None),
            4 => ("G723", 8000, None),
            5 => ("DVI4", 8000, None),
            6 => ("DVI4", 16000, None),
            7 => ("LPC", 8000, None),
            8 => ("PCMA", 8000, None),
            // RFC 3551 4.5.2: G.722 samples at 16 kHz but its RTP clock is 8000 Hz.
            9 => ("G722", 8000, None),
            10 => ("L16", 44100, Some(2)),
            11 => ("L16", 44100, None),
            12 => ("QCELP", 8000, None),
            13 => ("CN", 8000, None),
            14 => ("MPA", 90000, None),
            15 => ("G728", 8000, None),
            16 => ("DVI4", 11025, None),
            17 => ("DVI4", 22050, None),
            18 => ("G729", 8000, None),
            25 => ("CelB", 90000, None),
            26 => ("JPEG", 90000, None),
            28 => ("nv", 90000, None),
            31 => ("H261", 90000, None),
            32 => ("MPV", 90000, None),
            33 => ("MP2T", 90000, None),
            34 => ("H263", 90000, None),
            _ => return None,
        };
        Some(PayloadFormat::new(
            payload_type,
            encoding,
            clock_rate,
            channels,
        ))
    }

    /// RFC 4733 DTMF events.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    /// Same codec regardless of payload type number and fmtp: encoding names compare without
    /// case (RFC 4855 section 3) and a missing channel count means one channel (RFC 4566 6).
    pub fn same_codec(&self, other: &PayloadFormat) -> bool {
        !self.encoding.is_empty()
            && self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }
}

impl Direction {
    /// The direction the answerer mirrors: sendonly and recvonly swap.
    pub fn reverse(self) -> Self {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub fn from_flags(send: bool, receive: bool) -> Self {
        match (send, receive) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// What both allow, e.g. sendrecv and sendonly give sendonly.
    pub fn intersect(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name, e.g. `sendrecv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Attribute {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A property attribute without a value, e.g. `rtcp-mux`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }
}

impl fmt::Debug for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Attribute");
        debug.field("name", &self.name);
        match &self.value {
            Some(value) if self.name.eq_ignore_ascii_case("crypto") => {
                debug.field("value", &Some(WithoutKeys(value)))
            }
            value => debug.field("value", value),
        };
        debug.finish()
    }
}

/// An `a=crypto` value with each field that carries a key replaced.
struct WithoutKeys<'a>(&'a str);

impl fmt::Debug for WithoutKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for (index, field) in self.0.split_ascii_whitespace().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            if field.to_ascii_lowercase().contains("inline:") {
                f.write_str("<redacted>")?;
            } else {
                write!(f, "{}", field.escape_debug())?;
            }
        }
        f.write_str("\"")
    }
}

/// Free text written into a line: control characters are dropped, because a CR or LF from a
/// caller-built value would end the line early and let the value forge further SDP lines.
struct Text<'a>(&'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars().filter(|c| !c.is_control()) {
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// A field between spaces: whitespace is dropped as well, since it would shift the fields after
/// it. An empty token becomes `-` so that the line keeps its field count.
struct Token<'a>(&'a str);

impl fmt::Display for Token<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kept = self
            .0
            .chars()
            .filter(|c| !c.is_control() && !c.is_whitespace())
            .peekable();
        if kept.peek().is_none() {
            return f.write_str("-");
        }
        for c in kept {
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

fn address_type(address: IpAddr) -> &'static str {
    match address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, address: IpAddr) -> fmt::Result {
    write!(f, "c=IN {} {}\r\n", address_type(address), address)
}

fn write_attribute(f: &mut fmt::Formatter<'_>, attribute: &Attribute) -> fmt::Result {
    match &attribute.value {
        Some(value) => write!(f, "a={}:{}\r\n", Token(&attribute.name), Text(value)),
        None => write!(f, "a={}\r\n", Token(&attribute.name)),
    }
}

/// Writes SDP with CRLF line endings, lines in RFC 4566 order (`v o s c t`, session `a=`, then
/// per media `m c a`), `rtpmap` channel counts as `/2` and an explicit direction attribute on
/// every media description. The `t=` line is always `t=0 0` (an unbounded session, as SIP uses).
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = &self.origin;
        f.write_str("v=0\r\n")?;
        write!(
            f,
            "o={} {} {} IN {} {}\r\n",
            Token(&origin.username),
            origin.session_id,
            origin.session_version,
            address_type(origin.address),
            origin.address
        )?;
        if self
            .session_name
            .chars()
            .all(|c| c.is_control() || c.is_whitespace())
        {
            f.write_str("s=-\r\n")?;
        } else {
            write!(f, "s={}\r\n", Text(&self.session_name))?;
        }
        if let Some(address) = self.connection {
            write_connection(f, address)?;
        }
        f.write_str("t=0 0\r\n")?;
        for attribute in &self.attributes {
            write_attribute(f, attribute)?;
        }
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

/// One `m=` section with its `c=` and `a=` lines, each ending in CRLF.
impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m={} {} {}",
            Token(self.kind.as_str()),
            self.port,
            Token(&self.proto)
        )?;
        for format in &self.formats {
            write!(f, " {}", format.payload_type)?;
        }
        for token in &self.non_rtp_formats {
            write!(f, " {}", Token(token))?;
        }
        f.write_str("\r\n")?;
        if let Some(address) = self.connection {
            write_connection(f, address)?;
        }
        for format in &self.formats {
            if !format.encoding.is_empty() {
                write!(
                    f,
                    "a=rtpmap:{} {}/{}",
                    format.payload_type,
                    Token(&format.encoding),
                    format.clock_rate
                )?;
                if let Some(channels) = format.channels {
                    write!(f, "/{channels}")?;
                }
                f.write_str("\r\n")?;
            }
            if let Some(fmtp) = &format.fmtp {
                write!(f, "a=fmtp:{} {}\r\n", format.payload_type, Text(fmtp))?;
            }
        }
        if let Some(ptime) = self.ptime {
            write!(f, "a=ptime:{ptime}\r\n")?;
        }
        if let Some(rtcp_port) = self.rtcp_port {
            write!(f, "a=rtcp:{rtcp_port}\r\n")?;
        }
        for attribute in &self.attributes {
            write_attribute(f, attribute)?;
        }
        write!(f, "a={}\r\n", self.direction)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn origin() -> Origin {
        Origin {
            username: "-".into(),
            session_id: 42,
            session_version: 7,
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        }
    }

    fn opus_session() -> SessionDescription {
        let mut sdp = SessionDescription::new(
            origin(),
            "-",
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10))),
        );
        let mut audio = MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP");
        audio.formats = vec![
            PayloadFormat::new(111, "opus", 48000, Some(2)).with_fmtp("minptime=10;useinbandfec=1"),
            PayloadFormat::new(0, "PCMU", 8000, None),
            PayloadFormat::new(101, "telephone-event", 8000, None).with_fmtp("0-16"),
        ];
        audio.ptime = Some(20);
        audio.attributes.push(Attribute::new("label", "1"));
        audio.attributes.push(Attribute::flag("rtcp-mux"));
        sdp.media.push(audio);
        sdp
    }

    #[test]
    fn writes_opus_rtpmap_with_channel_count_after_slash() {
        let text = opus_session().to_string();
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"), "{text}");
        assert!(!text.contains("opus/48000 2"));
    }

    #[test]
    fn writer_emits_rfc_4566_order_with_crlf() {
        let text = opus_session().to_string();
        let expected = concat!(
            "v=0\r\n",
            "o=- 42 7 IN IP4 192.0.2.10\r\n",
            "s=-\r\n",
            "c=IN IP4 192.0.2.10\r\n",
            "t=0 0\r\n",
            "m=audio 4000 RTP/AVP 111 0 101\r\n",
            "a=rtpmap:111 opus/48000/2\r\n",
            "a=fmtp:111 minptime=10;useinbandfec=1\r\n",
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=rtpmap:101 telephone-event/8000\r\n",
            "a=fmtp:101 0-16\r\n",
            "a=ptime:20\r\n",
            "a=label:1\r\n",
            "a=rtcp-mux\r\n",
            "a=sendrecv\r\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn writer_handles_ipv6_and_media_connection() {
        let mut sdp = SessionDescription::new(
            Origin {
                address: IpAddr::V6(Ipv6Addr::LOCALHOST),
                ..origin()
            },
            "call",
            None,
        );
        let mut audio = MediaDescription::new(MediaKind::Audio, 5004, "RTP/AVP");
        audio
            .formats
            .push(PayloadFormat::new(8, "PCMA", 8000, None));
        audio.connection = Some("2001:db8::5".parse().unwrap());
        audio.direction = Direction::Inactive;
        sdp.media.push(audio);
        let text = sdp.to_string();
        assert!(text.contains("o=- 42 7 IN IP6 ::1\r\n"), "{text}");
        assert!(text.contains("m=audio 5004 RTP/AVP 8\r\nc=IN IP6 2001:db8::5\r\n"));
        assert!(text.ends_with("a=inactive\r\n"));
        assert!(!text.contains("\r\nc=IN IP4"));
    }

    #[test]
    fn writer_keeps_caller_text_from_forging_lines() {
        let mut sdp = opus_session();
        sdp.session_name = "x\r\na=injected".into();
        sdp.origin.username = "bad user\n".into();
        sdp.media[0]
            .attributes
            .push(Attribute::new("label", "2\r\nm=video 1 RTP/AVP 0"));
        let text = sdp.to_string();
        assert!(!text.contains("\r\na=injected"));
        assert!(!text.contains("\r\nm=video"));
        assert!(text.contains("o=baduser 42 7"));
        for line in text.split("\r\n") {
            assert!(!line.contains('\n') && !line.contains('\r'));
        }
    }

    #[test]
    fn writer_replaces_empty_session_name_and_username() {
        let mut sdp = opus_session();
        sdp.session_name = String::new();
        sdp.origin.username = " ".into();
        let text = sdp.to_string();
        assert!(text.contains("\r\ns=-\r\n"));
        assert!(text.contains("o=- 42 7 "));
    }

    #[test]
    fn writer_puts_non_rtp_formats_on_the_m_line() {
        let mut sdp = opus_session();
        let mut image = MediaDescription::new(MediaKind::Other("image".into()), 0, "udptl");
        image.non_rtp_formats.push("t38".into());
        sdp.media.push(image);
        assert!(sdp.to_string().contains("\r\nm=image 0 udptl t38\r\n"));
    }

    #[test]
    fn debug_hides_crypto_keys_but_display_keeps_them() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let mut sdp = opus_session();
        sdp.media[0].attributes.push(Attribute::new(
            "crypto",
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4 FEC_KEY=inline:{key}"),
        ));
        let debug = format!("{sdp:?}");
        assert!(!debug.contains(&key[..12]), "{debug}");
        assert!(
            debug.contains(r#"Some("1 AES_CM_128_HMAC_SHA1_80 <redacted> <redacted>")"#),
            "{debug}"
        );
        assert!(debug.contains(r#"value: Some("1")"#), "{debug}");
        assert!(sdp.to_string().contains(&format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"
        )));
    }

    #[test]
    fn direction_reverse_swaps_only_one_way_directions() {
        assert_eq!(Direction::SendOnly.reverse(), Direction::RecvOnly);
        assert_eq!(Direction::RecvOnly.reverse(), Direction::SendOnly);
        assert_eq!(Direction::SendRecv.reverse(), Direction::SendRecv);
        assert_eq!(Direction::Inactive.reverse(), Direction::Inactive);
        assert_eq!(Direction::default(), Direction::SendRecv);
    }

    #[test]
    fn direction_intersect_and_flags() {
        assert_eq!(
            Direction::SendRecv.intersect(Direction::SendOnly),
            Direction::SendOnly
        );
        assert_eq!(
            Direction::RecvOnly.intersect(Direction::SendOnly),
            Direction::Inactive
        );
        for d in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ] {
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
            assert_eq!(d.intersect(Direction::SendRecv), d);
        }
    }

    #[test]
    fn static_payload_types_cover_the_common_codecs() {
        assert_eq!(
            PayloadFormat::from_static(0).unwrap(),
            PayloadFormat::new(0, "PCMU", 8000, None)
        );
        assert_eq!(PayloadFormat::from_static(8).unwrap().encoding, "PCMA");
        let g722 = PayloadFormat::from_static(9).unwrap();
        assert_eq!((g722.encoding.as_str(), g722.clock_rate), ("G722", 8000));
        assert_eq!(PayloadFormat::from_static(18).unwrap().encoding, "G729");
        assert!(PayloadFormat::from_static(96).is_none());
        assert!(PayloadFormat::from_static(2).is_none());
    }

    #[test]
    fn same_codec_ignores_case_and_payload_type() {
        let a = PayloadFormat::new(96, "OPUS", 48000, Some(2));
        let b = PayloadFormat::new(111, "opus", 48000, Some(2)).with_fmtp("useinbandfec=1");
        assert!(a.same_codec(&b));
        assert!(!a.same_codec(&PayloadFormat::new(111, "opus", 48000, None)));
        assert!(
            PayloadFormat::new(0, "PCMU", 8000, None).same_codec(&PayloadFormat::new(
                0,
                "pcmu",
                8000,
                Some(1)
            ))
        );
        assert!(
            !PayloadFormat::new(96, "", 0, None).same_codec(&PayloadFormat::new(96, "", 0, None))
        );
    }

    #[test]
    fn rfc2543_hold_makes_the_sender_not_receive() {
        let mut media = MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP");
        let zero = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(media.is_rfc2543_hold(zero));
        assert_eq!(media.effective_direction(zero), Direction::SendOnly);
        media.direction = Direction::RecvOnly;
        assert_eq!(media.effective_direction(zero), Direction::Inactive);
        media.connection = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(!media.is_rfc2543_hold(zero));
        assert_eq!(media.effective_direction(zero), Direction::RecvOnly);
        let v6 = MediaDescription {
            connection: Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            ..MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP")
        };
        assert!(v6.is_rfc2543_hold(None));
    }
}
