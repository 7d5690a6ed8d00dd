//! Reading SDP text into our model, one line at a time through the sdp-rs line parsers.
//!
//! See the module documentation of `sdp` for why the sdp-rs document parser is not used.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sdp_rs::lines;

use super::SdpError;
use super::session::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};

/// What an `a=` line means to us.
enum Parsed {
    Direction(Direction),
    Rtpmap(PayloadFormat),
    Fmtp(u8, String),
    Ptime(u32),
    Rtcp(u16),
    /// A malformed `rtpmap` or `fmtp`: dropped, so the payload type falls back to the static
    /// table instead of carrying a half-read mapping.
    Invalid,
    /// Kept as received.
    Other,
}

struct ParsedAttribute {
    raw: Attribute,
    parsed: Parsed,
}

struct MediaBuilder {
    kind: MediaKind,
    port: u16,
    proto: String,
    formats: String,
    connection: Option<IpAddr>,
    attributes: Vec<ParsedAttribute>,
}

fn malformed(line: usize, what: &str) -> SdpError {
    SdpError::Malformed(format!("line {line}: {what}"))
}

pub(super) fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    let mut seen_version = false;
    let mut origin: Option<Origin> = None;
    let mut session_name: Option<String> = None;
    let mut connection: Option<IpAddr> = None;
    let mut session_attributes: Vec<ParsedAttribute> = Vec::new();
    let mut media: Vec<MediaBuilder> = Vec::new();

    for (index, raw_line) in text.split('\n').enumerate() {
        let number = index.saturating_add(1);
        // Trailing blanks are cut because several stacks leave them, and sdp-rs would make them
        // part of the last field (`a=rtpmap:0 PCMU/8000 ` has no valid clock rate).
        let line = raw_line
            .strip_suffix('\r')
            .unwrap_or(raw_line)
            .trim_end_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        // Tabs are not field separators in SDP, and refusing them (like every other control
        // character) means whatever we accept can be written back unchanged.
        if line.chars().any(char::is_control) {
            return Err(malformed(number, "control character"));
        }
        let mut chars = line.chars();
        let kind = match (chars.next(), chars.next()) {
            (Some(kind), Some('=')) if kind.is_ascii_lowercase() => kind,
            _ => return Err(malformed(number, "not a <type>=<value> line")),
        };
        if !seen_version && kind != 'v' {
            return Err(malformed(number, "SDP must start with v="));
        }
        // The sdp-rs line parsers expect the line break that ends each line.
        let owned = format!("{line}\r\n");
        let in_media = media.last_mut();
        match (kind, in_media) {
            ('v', _) => {
                if seen_version {
                    return Err(malformed(number, "repeated v= line"));
                }
                parse_version(&owned, number)?;
                seen_version = true;
            }
            ('o', None) => {
                if origin.is_some() {
                    return Err(malformed(number, "repeated o= line"));
                }
                origin = Some(parse_origin(&owned, number)?);
            }
            ('s', None) => {
                if session_name.is_some() {
                    return Err(malformed(number, "repeated s= line"));
                }
                session_name = Some(parse_session_name(&owned, number)?);
            }
            ('c', None) => {
                if connection.is_some() {
                    return Err(malformed(number, "repeated session-level c= line"));
                }
                connection = Some(parse_connection(&owned, number)?);
            }
            ('c', Some(current)) => {
                // Several c= lines only occur with layered multicast; the first one is ours.
                let address = parse_connection(&owned, number)?;
                current.connection.get_or_insert(address);
            }
            ('a', None) => session_attributes.push(parse_attribute(&owned, number)?),
            ('a', Some(current)) => current.attributes.push(parse_attribute(&owned, number)?),
            ('m', _) => media.push(parse_media(&owned, number)?),
            // Information, bandwidth and key lines are allowed everywhere and not modelled.
            ('i' | 'b' | 'k', _) => {}
            // Timing, URI, e-mail and phone lines: SIP sessions are unbounded, so `t=` is
            // always written as `t=0 0` and the others carry nothing the call needs.
            ('u' | 'e' | 'p' | 't' | 'r' | 'z', None) => {}
            ('o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z', Some(_)) => {
                return Err(malformed(
                    number,
                    "session-level line inside a media description",
                ));
            }
            // RFC 8866 section 5: a description with an unknown type letter must be ignored
            // as a whole.
            _ => return Err(malformed(number, "unknown line type")),
        }
    }

    if !seen_version {
        return Err(SdpError::Malformed("empty SDP".into()));
    }
    let origin = origin.ok_or_else(|| SdpError::Malformed("missing o= line".into()))?;

    let mut session_direction = None;
    let mut attributes = Vec::new();
    for attribute in session_attributes {
        match attribute.parsed {
            Parsed::Direction(direction) => {
                session_direction.get_or_insert(direction);
            }
            _ => attributes.push(attribute.raw),
        }
    }

    Ok(SessionDescription {
        origin,
        // A few stacks omit s=, and RFC 4566 says `-` stands for "no name".
        session_name: session_name
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "-".to_owned()),
        connection,
        media: media
            .into_iter()
            .map(|builder| build_media(builder, session_direction))
            .collect(),
        attributes,
    })
}

fn parse_version(line: &str, number: usize) -> Result<(), SdpError> {
    let (_, token) = lines::version::Tokenizer::<'v'>::tokenize(line)
        .map_err(|_| malformed(number, "invalid v= line"))?;
    lines::Version::try_from(token).map_err(|_| malformed(number, "unsupported SDP version"))?;
    Ok(())
}

fn parse_session_name(line: &str, number: usize) -> Result<String, SdpError> {
    let (_, token) = lines::session_name::Tokenizer::<'s'>::tokenize(line)
        .map_err(|_| malformed(number, "invalid s= line"))?;
    Ok(token.value.to_owned())
}

fn parse_origin(line: &str, number: usize) -> Result<Origin, SdpError> {
    let (_, token) = lines::origin::Tokenizer::tokenize(line)
        .map_err(|_| malformed(number, "invalid o= line"))?;
    let session_id = token
        .sess_id
        .parse()
        .map_err(|_| malformed(number, "o= session id is not a number"))?;
    let session_version = token
        .sess_version
        .parse()
        .map_err(|_| malformed(number, "o= session version is not a number"))?;
    let username = match token.username {
        "" => "-".to_owned(),
        name => name.to_owned(),
    };
    let ip6 = token.addrtype == "IP6";
    // sdp-rs only takes IP literals here; RFC 4566 also allows a host name, which we cannot
    // resolve and do not need, so it becomes the unspecified address.
    let address = match lines::Origin::try_from(token) {
        Ok(origin) => origin.unicast_address,
        Err(_) if ip6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        Err(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    Ok(Origin {
        username,
        session_id,
        session_version,
        address,
    })
}

fn parse_connection(line: &str, number: usize) -> Result<IpAddr, SdpError> {
    let (_, token) = lines::connection::Tokenizer::tokenize(line)
        .map_err(|_| malformed(number, "invalid c= line"))?;
    let connection = lines::Connection::try_from(token)
        .map_err(|_| malformed(number, "c= address is not an IP address"))?;
    Ok(connection.connection_address.base)
}

fn parse_media(line: &str, number: usize) -> Result<MediaBuilder, SdpError> {
    let (_, token) = lines::media::Tokenizer::tokenize(line)
        .map_err(|_| malformed(number, "invalid m= line"))?;
    let media = lines::Media::try_from(token).map_err(|_| malformed(number, "invalid m= port"))?;
    let kind = media.media.to_string();
    let proto = media.proto.to_string();
    // sdp-rs splits on single spaces, so a doubled space yields an empty field.
    if kind.is_empty() || proto.is_empty() {
        return Err(malformed(number, "invalid m= line"));
    }
    Ok(MediaBuilder {
        kind: MediaKind::from_token(&kind),
        port: media.port,
        proto,
        formats: media.fmt,
        connection: None,
        attributes: Vec::new(),
    })
}

fn parse_attribute(line: &str, number: usize) -> Result<ParsedAttribute, SdpError> {
    let (_, token) = lines::attribute::Tokenizer::<'a'>::tokenize(line)
        .map_err(|_| malformed(number, "invalid a= line"))?;
    if token.key.is_empty() || token.key.contains(' ') {
        return Err(malformed(number, "invalid attribute name"));
    }
    let raw = Attribute {
        name: token.key.to_owned(),
        value: token.value.map(str::to_owned),
    };
    let parsed = match token.key {
        // sdp-rs leaves these two untyped.
        "fmtp" => token
            .value
            .and_then(parse_fmtp)
            .map_or(Parsed::Invalid, |(payload_type, params)| {
                Parsed::Fmtp(payload_type, params)
            }),
        "rtcp" => token
            .value
            .and_then(|value| value.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .map_or(Parsed::Other, Parsed::Rtcp),
        key => {
            let is_rtpmap = key == "rtpmap";
            match lines::Attribute::try_from(token) {
                Ok(lines::Attribute::Rtpmap(rtpmap)) => {
                    rtpmap_format(&rtpmap).map_or(Parsed::Invalid, Parsed::Rtpmap)
                }
                Ok(lines::Attribute::Ptime(ptime)) => {
                    whole_millis(ptime).map_or(Parsed::Other, Parsed::Ptime)
                }
                Ok(lines::Attribute::Sendrecv) => Parsed::Direction(Direction::SendRecv),
                Ok(lines::Attribute::Sendonly) => Parsed::Direction(Direction::SendOnly),
                Ok(lines::Attribute::Recvonly) => Parsed::Direction(Direction::RecvOnly),
                Ok(lines::Attribute::Inactive) => Parsed::Direction(Direction::Inactive),
                // sdp-rs 0.2.1 matches `inacive`, so `a=inactive` arrives untyped.
                Ok(lines::Attribute::Other(name, None)) if name == "inactive" => {
                    Parsed::Direction(Direction::Inactive)
                }
                // A bad typed attribute (`a=ptime:x`, `a=orient:sideways`) fails the whole
                // document in sdp-rs; here it is only kept as the raw line it was.
                Err(_) if is_rtpmap => Parsed::Invalid,
                _ => Parsed::Other,
            }
        }
    };
    Ok(ParsedAttribute { raw, parsed })
}

fn dynamic_or_static_payload_type(token: &str) -> Option<u8> {
    token
        .parse::<u8>()
        .ok()
        .filter(|payload_type| *payload_type <= 127)
}

fn parse_fmtp(value: &str) -> Option<(u8, String)> {
    let (payload_type, params) = value.split_once(' ')?;
    let params = params.trim();
    if params.is_empty() {
        return None;
    }
    Some((
        dynamic_or_static_payload_type(payload_type)?,
        params.to_owned(),
    ))
}

fn rtpmap_format(rtpmap: &lines::attribute::Rtpmap) -> Option<PayloadFormat> {
    let payload_type = u8::try_from(rtpmap.payload_type)
        .ok()
        .filter(|payload_type| *payload_type <= 127)?;
    let encoding = rtpmap.encoding_name.trim();
    if encoding.is_empty() || encoding.contains(' ') {
        return None;
    }
    let clock_rate = u32::try_from(rtpmap.clock_rate).ok()?;
    let channels = match rtpmap.encoding_params {
        Some(channels) => Some(u8::try_from(channels).ok()?),
        None => None,
    };
    Some(PayloadFormat::new(
        payload_type,
        encoding,
        clock_rate,
        channels,
    ))
}

fn whole_millis(ptime: f32) -> Option<u32> {
    // Bounded well below u32::MAX, so the cast below is exact.
    if ptime.is_finite() && (1.0..=100_000.0).contains(&ptime) && ptime.fract() == 0.0 {
        Some(ptime as u32)
    } else {
        None
    }
}

fn build_media(builder: MediaBuilder, session_direction: Option<Direction>) -> MediaDescription {
    let mut rtpmaps: Vec<PayloadFormat> = Vec::new();
    let mut fmtps: Vec<(u8, String)> = Vec::new();
    let mut direction = None;
    let mut ptime = None;
    let mut rtcp_port = None;
    let mut attributes = Vec::new();
    for attribute in builder.attributes {
        match attribute.parsed {
            Parsed::Direction(value) => {
                direction.get_or_insert(value);
            }
            Parsed::Rtpmap(format) => {
                if !rtpmaps
                    .iter()
                    .any(|f| f.payload_type == format.payload_type)
                {
                    rtpmaps.push(format);
                }
            }
            Parsed::Fmtp(payload_type, params) => {
                if !fmtps.iter().any(|(pt, _)| *pt == payload_type) {
                    fmtps.push((payload_type, params));
                }
            }
            Parsed::Ptime(value) => {
                ptime.get_or_insert(value);
            }
            Parsed::Rtcp(port) => {
                rtcp_port.get_or_insert(port);
            }
            Parsed::Invalid => {}
            Parsed::Other => attributes.push(attribute.raw),
        }
    }

    // Only RTP profiles have payload type numbers; `udptl t38` or `TCP/BFCP *` formats are
    // opaque tokens.
    let is_rtp = builder.proto.to_ascii_uppercase().contains("RTP/");
    let mut formats = Vec::new();
    let mut non_rtp_formats = Vec::new();
    for token in builder.formats.split_whitespace() {
        match dynamic_or_static_payload_type(token).filter(|_| is_rtp) {
            Some(payload_type) => {
                let mut format = rtpmaps
                    .iter()
                    .find(|f| f.payload_type == payload_type)
                    .cloned()
                    .or_else(|| PayloadFormat::from_static(payload_type))
                    .unwrap_or_else(|| PayloadFormat::new(payload_type, "", 0, None));
                format.fmtp = fmtps
                    .iter()
                    .find(|(pt, _)| *pt == payload_type)
                    .map(|(_, params)| params.clone());
                formats.push(format);
            }
            None => non_rtp_formats.push(token.to_owned()),
        }
    }

    MediaDescription {
        kind: builder.kind,
        port: builder.port,
        proto: builder.proto,
        formats,
        non_rtp_formats,
        direction: direction.or(session_direction).unwrap_or_default(),
        connection: builder.connection,
        rtcp_port,
        ptime,
        attributes,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    const SIPP_UAC: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    const BARESIP_OFFER: &str = concat!(
        "v=0\r\n",
        "o=- 1706634530 2716290891 IN IP4 192.168.1.20\r\n",
        "s=-\r\n",
        "c=IN IP4 192.168.1.20\r\n",
        "t=0 0\r\n",
        "m=audio 10260 RTP/AVP 111 9 0 8 101\r\n",
        "b=AS:128\r\n",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=fmtp:111 stereo=1;sprop-stereo=1\r\n",
        "a=rtpmap:9 G722/8000\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-15\r\n",
        "a=rtcp:10261\r\n",
        "a=rtcp-rsize\r\n",
        "a=sendrecv\r\n",
        "a=label:1\r\n",
        "a=ssrc:3531402186 cname:3bd6a1f8-6b49-4bd5-9a8c-98c1e6f2f3b9\r\n",
        "a=ptime:20\r\n",
    );

    const ASTERISK_OFFER: &str = concat!(
        "v=0\r\n",
        "o=- 1925453071 1925453073 IN IP4 203.0.113.5\r\n",
        "s=Asterisk\r\n",
        "c=IN IP4 203.0.113.5\r\n",
        "t=0 0\r\n",
        "m=audio 17362 RTP/AVP 0 8 3 101\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:3 GSM/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=ptime:20\r\n",
        "a=maxptime:150\r\n",
        "a=sendrecv\r\n",
    );

    const FREESWITCH_OFFER: &str = concat!(
        "v=0\r\n",
        "o=FreeSWITCH 1706600000 1706600001 IN IP4 198.51.100.7\r\n",
        "s=FreeSWITCH\r\n",
        "c=IN IP4 198.51.100.7\r\n",
        "t=0 0\r\n",
        "m=audio 24588 RTP/SAVP 102 9 0 8 101 13\r\n",
        "a=rtpmap:102 opus/48000/2\r\n",
        "a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40\r\n",
        "a=rtpmap:9 G722/8000\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=rtpmap:13 CN/8000\r\n",
        "a=ptime:20\r\n",
        "a=sendrecv\r\n",
        "a=rtcp:24589 IN IP4 198.51.100.7\r\n",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n",
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4\r\n",
    );

    /// A recording server's answer to a SIPREC offer of two sendonly streams (RFC 7866).
    const SIPREC_SRS_ANSWER: &str = concat!(
        "v=0\r\n",
        "o=SRS 2890844527 2890844528 IN IP4 192.0.2.200\r\n",
        "s=-\r\n",
        "c=IN IP4 192.0.2.200\r\n",
        "t=0 0\r\n",
        "m=audio 30000 RTP/AVP 0 8\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=label:1\r\n",
        "a=recvonly\r\n",
        "m=audio 30002 RTP/AVP 0 8\r\n",
        "a=rtpmap:0 PCMU/8000\r\n",
        "a=rtpmap:8 PCMA/8000\r\n",
        "a=label:2\r\n",
        "a=recvonly\r\n",
    );

    /// A recording-aware UA offer (RFC 7866 section 6.1) with media-level c= and a
    /// rejected video stream.
    const RECORDING_AWARE_OFFER: &str = concat!(
        "v=0\r\n",
        "o=alice 100 200 IN IP4 192.0.2.1\r\n",
        "s=call\r\n",
        "t=0 0\r\n",
        "m=audio 49170 RTP/AVP 0 101\r\n",
        "c=IN IP4 192.0.2.2\r\n",
        "b=AS:64\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=fmtp:101 0-16\r\n",
        "a=record:on\r\n",
        "a=recordpref:never\r\n",
        "a=label:1\r\n",
        "m=video 0 RTP/AVP 31\r\n",
        "c=IN IP4 192.0.2.3\r\n",
        "m=image 0 udptl t38\r\n",
    );

    fn all_samples() -> [&'static str; 6] {
        [
            SIPP_UAC,
            BARESIP_OFFER,
            ASTERISK_OFFER,
            FREESWITCH_OFFER,
            SIPREC_SRS_ANSWER,
            RECORDING_AWARE_OFFER,
        ]
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_sipp_default_uac_sdp() {
        let sdp = SessionDescription::parse(SIPP_UAC).unwrap();
        assert_eq!(
            sdp.origin,
            Origin {
                username: "user1".into(),
                session_id: 53655765,
                session_version: 2353687637,
                address: ip("127.0.0.1"),
            }
        );
        assert_eq!(sdp.session_name, "-");
        assert_eq!(sdp.connection, Some(ip("127.0.0.1")));
        assert_eq!(sdp.media.len(), 1);
        let audio = &sdp.media[0];
        assert_eq!(audio.kind, MediaKind::Audio);
        assert_eq!(audio.port, 6000);
        assert_eq!(audio.proto, "RTP/AVP");
        assert_eq!(
            audio.formats,
            vec![PayloadFormat::new(0, "PCMU", 8000, None)]
        );
        assert_eq!(audio.direction, Direction::SendRecv);
        assert!(audio.attributes.is_empty());
    }

    #[test]
    fn parses_baresip_style_offer() {
        let sdp = SessionDescription::parse(BARESIP_OFFER).unwrap();
        let audio = &sdp.media[0];
        let types: Vec<u8> = audio.formats.iter().map(|f| f.payload_type).collect();
        assert_eq!(types, [111, 9, 0, 8, 101]);
        assert_eq!(
            audio.formats[0],
            PayloadFormat::new(111, "opus", 48000, Some(2)).with_fmtp("stereo=1;sprop-stereo=1")
        );
        assert_eq!(audio.format(101).unwrap().fmtp.as_deref(), Some("0-15"));
        assert_eq!(audio.rtcp_port, Some(10261));
        assert_eq!(audio.ptime, Some(20));
        assert_eq!(audio.direction, Direction::SendRecv);
        let names: Vec<&str> = audio.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["rtcp-rsize", "label", "ssrc"]);
        assert_eq!(
            audio.attribute("label").unwrap().value.as_deref(),
            Some("1")
        );
    }

    #[test]
    fn parses_asterisk_style_offer() {
        let sdp = SessionDescription::parse(ASTERISK_OFFER).unwrap();
        assert_eq!(sdp.session_name, "Asterisk");
        let audio = &sdp.media[0];
        assert_eq!(audio.formats[2], PayloadFormat::new(3, "GSM", 8000, None));
        assert_eq!(audio.format(101).unwrap().fmtp.as_deref(), Some("0-16"));
        assert_eq!(audio.attributes, vec![Attribute::new("maxptime", "150")]);
    }

    #[test]
    fn parses_freeswitch_style_srtp_offer_keeping_crypto() {
        let sdp = SessionDescription::parse(FREESWITCH_OFFER).unwrap();
        let audio = &sdp.media[0];
        assert_eq!(audio.proto, "RTP/SAVP");
        assert_eq!(audio.rtcp_port, Some(24589));
        assert!(
            audio
                .format(102)
                .unwrap()
                .fmtp
                .as_deref()
                .unwrap()
                .starts_with("useinbandfec=1;")
        );
        assert_eq!(audio.format(13).unwrap().encoding, "CN");
        let crypto: Vec<&Attribute> = audio
            .attributes
            .iter()
            .filter(|a| a.name == "crypto")
            .collect();
        assert_eq!(crypto.len(), 2);
        assert_eq!(
            crypto[0].value.as_deref(),
            Some(
                "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"
            )
        );
    }

    #[test]
    fn parses_siprec_srs_answer_with_labelled_streams() {
        let sdp = SessionDescription::parse(SIPREC_SRS_ANSWER).unwrap();
        assert_eq!(sdp.media.len(), 2);
        for (media, label, port) in [(&sdp.media[0], "1", 30000), (&sdp.media[1], "2", 30002)] {
            assert_eq!(media.direction, Direction::RecvOnly);
            assert_eq!(media.port, port);
            assert_eq!(
                media.attribute("label").unwrap().value.as_deref(),
                Some(label)
            );
            assert_eq!(media.formats.len(), 2);
        }
    }

    #[test]
    fn parses_recording_preferences_media_connections_and_rejected_streams() {
        let sdp = SessionDescription::parse(RECORDING_AWARE_OFFER).unwrap();
        assert_eq!(sdp.connection, None);
        assert_eq!(sdp.media.len(), 3);
        let audio = &sdp.media[0];
        assert_eq!(audio.connection, Some(ip("192.0.2.2")));
        assert_eq!(sdp.connection_for(audio), Some(ip("192.0.2.2")));
        assert_eq!(
            audio.attributes,
            vec![
                Attribute::new("record", "on"),
                Attribute::new("recordpref", "never"),
                Attribute::new("label", "1"),
            ]
        );
        // PCMU has no rtpmap: filled in from the static table.
        assert_eq!(audio.formats[0], PayloadFormat::new(0, "PCMU", 8000, None));
        let video = &sdp.media[1];
        assert!(video.is_rejected());
        assert_eq!(video.kind, MediaKind::Video);
        assert_eq!(video.formats[0].encoding, "H261");
        let image = &sdp.media[2];
        assert_eq!(image.kind, MediaKind::Other("image".into()));
        assert!(image.formats.is_empty());
        assert_eq!(image.non_rtp_formats, ["t38"]);
    }

    #[test]
    fn round_trip_parse_write_parse_is_identity() {
        for sample in all_samples() {
            let first = SessionDescription::parse(sample).unwrap();
            let written = first.to_string();
            let second =
                SessionDescription::parse(&written).unwrap_or_else(|e| panic!("{e}: {written}"));
            assert_eq!(first, second, "{written}");
            assert_eq!(written, second.to_string());
            assert!(written.ends_with("\r\n"));
            assert!(!written.replace("\r\n", "").contains('\n'));
        }
    }

    #[test]
    fn written_opus_keeps_channels_through_a_round_trip() {
        let sdp = SessionDescription::parse(BARESIP_OFFER).unwrap();
        let written = sdp.to_string();
        assert!(
            written.contains("a=rtpmap:111 opus/48000/2\r\n"),
            "{written}"
        );
        let again = SessionDescription::parse(&written).unwrap();
        assert_eq!(again.media[0].formats[0].channels, Some(2));
    }

    #[test]
    fn inactive_attribute_is_typed() {
        let text = SIPP_UAC.replace("a=rtpmap:0 PCMU/8000\r\n", "a=inactive\r\n");
        let sdp = SessionDescription::parse(&text).unwrap();
        assert_eq!(sdp.media[0].direction, Direction::Inactive);
        assert!(sdp.media[0].attributes.is_empty());
    }

    #[test]
    fn session_level_direction_applies_to_media_without_their_own() {
        let text = concat!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
            "a=sendonly\r\na=tool:test\r\n",
            "m=audio 4000 RTP/AVP 0\r\n",
            "m=audio 4002 RTP/AVP 0\r\na=inactive\r\n",
        );
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.media[0].direction, Direction::SendOnly);
        assert_eq!(sdp.media[1].direction, Direction::Inactive);
        assert_eq!(sdp.attributes, vec![Attribute::new("tool", "test")]);
        let again = SessionDescription::parse(&sdp.to_string()).unwrap();
        assert_eq!(again, sdp);
    }

    #[test]
    fn detects_rfc2543_hold_address() {
        let text = SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let sdp = SessionDescription::parse(&text).unwrap();
        assert!(sdp.is_rfc2543_hold());
        assert_eq!(sdp.media[0].direction, Direction::SendRecv);
        assert_eq!(
            sdp.media[0].effective_direction(sdp.connection),
            Direction::SendOnly
        );
        assert!(
            !SessionDescription::parse(SIPP_UAC)
                .unwrap()
                .is_rfc2543_hold()
        );
    }

    #[test]
    fn accepts_lf_only_missing_final_break_and_blank_lines() {
        let expected = SessionDescription::parse(SIPP_UAC).unwrap();
        let variants = [
            SIPP_UAC.replace("\r\n", "\n"),
            SIPP_UAC.trim_end().to_owned(),
            format!("\r\n{SIPP_UAC}\r\n\r\n"),
            SIPP_UAC.replace("\r\n", " \r\n"),
        ];
        for variant in variants {
            assert_eq!(
                SessionDescription::parse(&variant).unwrap(),
                expected,
                "{variant:?}"
            );
        }
    }

    #[test]
    fn out_of_order_lines_lose_nothing() {
        // sdp-rs's document parser stops silently at the c= after an a= and drops both the
        // c= line and the second m= section.
        let text = concat!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.1\r\n",
            "m=audio 4000 RTP/AVP 0\r\na=ptime:20\r\nc=IN IP4 192.0.2.9\r\n",
            "m=video 0 RTP/AVP 31\r\n",
        );
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.connection, Some(ip("192.0.2.1")));
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.media[0].connection, Some(ip("192.0.2.9")));
        assert_eq!(sdp.media[0].ptime, Some(20));
    }

    #[test]
    fn malformed_typed_attributes_are_kept_raw_not_fatal() {
        let text = SIPP_UAC.replace(
            "a=rtpmap:0 PCMU/8000\r\n",
            "a=ptime:abc\r\na=orient:sideways\r\na=ptime:20.5\r\na=rtcp:x\r\n",
        );
        let sdp = SessionDescription::parse(&text).unwrap();
        let audio = &sdp.media[0];
        assert_eq!(audio.ptime, None);
        assert_eq!(audio.rtcp_port, None);
        assert_eq!(
            audio.attributes,
            vec![
                Attribute::new("ptime", "abc"),
                Attribute::new("orient", "sideways"),
                Attribute::new("ptime", "20.5"),
                Attribute::new("rtcp", "x"),
            ]
        );
        assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
    }

    #[test]
    fn malformed_rtpmap_and_fmtp_fall_back_to_the_static_table() {
        let text = concat!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
            "m=audio 4000 RTP/AVP 0 96 8\r\n",
            "a=rtpmap:0 PCMU\r\n",
            "a=rtpmap:96 opus/-1/2\r\n",
            "a=rtpmap:8  PCMA/8000\r\n",
            "a=rtpmap:300 X/8000\r\n",
            "a=fmtp:0\r\n",
            "a=fmtp:zz a=b\r\n",
        );
        let sdp = SessionDescription::parse(text).unwrap();
        let audio = &sdp.media[0];
        assert_eq!(audio.formats[0], PayloadFormat::new(0, "PCMU", 8000, None));
        assert_eq!(audio.formats[1], PayloadFormat::new(96, "", 0, None));
        assert_eq!(audio.formats[2], PayloadFormat::new(8, "PCMA", 8000, None));
        assert!(audio.attributes.is_empty());
        assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
    }

    #[test]
    fn origin_host_name_is_tolerated_but_connection_host_name_is_not() {
        let text = SIPP_UAC.replace("IN IP4 127.0.0.1\r\ns=", "IN IP4 pbx.example.com\r\ns=");
        let sdp = SessionDescription::parse(&text).unwrap();
        assert!(sdp.origin.address.is_unspecified());
        assert_eq!(sdp.connection, Some(ip("127.0.0.1")));

        let text = SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example.com");
        let error = SessionDescription::parse(&text).unwrap_err();
        assert_eq!(
            error,
            SdpError::Malformed("line 4: c= address is not an IP address".into())
        );
    }

    #[test]
    fn parses_ipv6_and_multicast_connection() {
        let text = concat!(
            "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::2\r\nt=0 0\r\n",
            "m=audio 4000 RTP/AVP 8\r\n",
            "m=audio 4002/2 RTP/AVP 0\r\nc=IN IP4 233.252.0.1/127\r\n",
        );
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.origin.address, ip("2001:db8::1"));
        assert_eq!(sdp.connection, Some(ip("2001:db8::2")));
        assert_eq!(sdp.media[1].port, 4002);
        assert_eq!(sdp.media[1].connection, Some(ip("233.252.0.1")));
    }

    #[test]
    fn ignores_lines_the_model_does_not_hold() {
        let text = concat!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ni=info\r\nu=http://example.com\r\n",
            "e=a@example.com\r\np=+1 555\r\nc=IN IP4 192.0.2.1\r\nb=CT:128\r\n",
            "t=2873397496 2873404696\r\nr=7d 1h 0 25h\r\nz=2882844526 -1h\r\nk=prompt\r\n",
            "m=audio 4000 RTP/AVP 0\r\ni=voice\r\nb=TIAS:64000\r\nk=clear:x\r\n",
        );
        let sdp = SessionDescription::parse(text).unwrap();
        assert_eq!(sdp.media.len(), 1);
        assert!(sdp.attributes.is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let inputs = [
            "",
            "\r\n\r\n",
            "hello world",
            "v=0",
            "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
            "v=0\r\ns=-\r\nt=0 0\r\n",
            "o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",
            "v=0\r\nv=0\r\n",
            "v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
            "v=0\r\no=- 1 99999999999999999999999 IN IP4 1.2.3.4\r\n",
            "v=0\r\no=-\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.4\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nx=unknown\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=x\u{0}y\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nA=x\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n=\r\n",
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\né=x\r\n",
            "\u{feff}v=0\r\n",
        ];
        for input in inputs {
            let error = SessionDescription::parse(input).unwrap_err();
            let text = error.to_string();
            assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_of_the_samples_is_handled() {
        for sample in all_samples() {
            for (end, _) in sample.char_indices() {
                let _ = SessionDescription::parse(&sample[..end]);
            }
            let bytes = sample.as_bytes();
            for position in 0..bytes.len() {
                for replacement in [b' ', b'\r', b'\n', b':', b'/', b'=', b'9', b'a'] {
                    let mut mutated = bytes.to_vec();
                    mutated[position] = replacement;
                    if let Ok(text) = core::str::from_utf8(&mutated)
                        && let Ok(sdp) = SessionDescription::parse(text)
                    {
                        // Whatever we accept, we must be able to write and read again.
                        let again = SessionDescription::parse(&sdp.to_string()).unwrap();
                        assert_eq!(again, sdp, "{text:?}");
                    }
                }
            }
        }
    }

    /// Deterministic xorshift, so a failure always reproduces.
    struct Xorshift(u64);

    impl Xorshift {
        fn next(&mut self, bound: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % bound as u64) as usize
        }
    }

    #[test]
    fn pseudo_random_edits_never_panic_and_accepted_text_round_trips() {
        const PIECES: [&str; 16] = [
            " ",
            "\r\n",
            "\n",
            ":",
            "/",
            "=",
            "0",
            "127",
            "a=",
            "m=audio 0 RTP/AVP 0\r\n",
            "c=IN IP4 0.0.0.0\r\n",
            "a=inactive\r\n",
            "a=rtpmap:",
            "é",
            "\t",
            "65536",
        ];
        let mut random = Xorshift(0x9e37_79b9_7f4a_7c15);
        for sample in all_samples() {
            for _ in 0..2000 {
                let mut text = sample.to_owned();
                for _ in 0..=random.next(3) {
                    let boundaries: Vec<usize> = text
                        .char_indices()
                        .map(|(i, _)| i)
                        .chain([text.len()])
                        .collect();
                    let at = boundaries[random.next(boundaries.len())];
                    let until = boundaries[random.next(boundaries.len())].max(at);
                    match random.next(3) {
                        0 => text.insert_str(at, PIECES[random.next(PIECES.len())]),
                        1 => text.replace_range(at..until.min(at + 8), ""),
                        _ => {
                            let copy = text[at..until].to_owned();
                            text.insert_str(until, &copy);
                        }
                    }
                }
                if let Ok(sdp) = SessionDescription::parse(&text) {
                    let written = sdp.to_string();
                    let again = SessionDescription::parse(&written)
                        .unwrap_or_else(|e| panic!("{e}: {text:?} -> {written:?}"));
                    assert_eq!(again, sdp, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn error_messages_do_not_echo_the_input() {
        let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio SECRET RTP/AVP 0\r\n";
        let error = SessionDescription::parse(text).unwrap_err();
        assert_eq!(error.to_string(), "malformed SDP: line 3: invalid m= port");
        assert!(!error.to_string().contains("SECRET"));
    }

    #[test]
    fn missing_session_name_becomes_dash() {
        let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(SessionDescription::parse(text).unwrap().session_name, "-");
        let text = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\r\nt=0 0\r\n";
        assert_eq!(SessionDescription::parse(text).unwrap().session_name, "-");
    }

    #[test]
    fn from_str_matches_parse() {
        let sdp: SessionDescription = SIPP_UAC.parse().unwrap();
        assert_eq!(sdp, SessionDescription::parse(SIPP_UAC).unwrap());
    }
}
