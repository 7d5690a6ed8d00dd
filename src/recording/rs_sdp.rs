//! The recording session's SDP (RFC 7866 7.1.1, 8.3): one `sendonly` audio stream per side of
//! the call (or one mixed stream), each labelled (RFC 4574) so the metadata can say whose voice it
//! carries. The call's own codec comes first, so packets can be forwarded as they are; the others
//! follow, so a recorder that wants another codec gets the call transcoded (RFC 7245 3.2.5).

use core::net::{IpAddr, SocketAddr};

use crate::media::srtp::{CryptoAttribute, CryptoSuite};
use crate::recording::metadata::StreamSender;
use crate::sdp::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};

/// Whose voice each of `count` streams carries, the way the metadata binds them: one stream
/// carries both voices mixed, two carry the local user then the far end.
pub fn voices_for(count: usize) -> Vec<Option<StreamSender>> {
    match count {
        1 => vec![Some(StreamSender::Both)],
        _ => vec![Some(StreamSender::Local), Some(StreamSender::Remote)],
    }
}

/// Which of the recording's sockets the m-line at `index` sends from: the nth m-line that
/// carries a voice has the nth; a declined m-line has none.
pub fn stream_slot(voices: &[Option<StreamSender>], index: usize) -> Option<usize> {
    voices.get(index).copied().flatten()?;
    Some(voices.iter().take(index).filter(|v| v.is_some()).count())
}

/// What the offer describes.
#[derive(Debug, Clone)]
pub struct RsOffer {
    pub address: IpAddr,
    /// Our RTP ports, one per stream that carries a voice, in m-line order (see
    /// [`stream_slot`]): each stream has its own socket pair, so its RTCP is its own and a
    /// recorder that tells streams apart by their source finds them apart.
    pub ports: Vec<u16>,
    /// In order of preference: the call's codec first when it is known.
    pub codecs: Vec<PayloadFormat>,
    pub telephone_event: Option<PayloadFormat>,
    /// The labels, in m-line order (ours: 1 = local user, 2 = far end; a recorder's offer
    /// may name them as it likes).
    pub labels: Vec<String>,
    /// Whose voice each m-line carries, in the same order; None for an m-line we decline
    /// (answered with port 0: more streams than a two-party call has voices, or not audio).
    pub voices: Vec<Option<StreamSender>>,
    /// `sendonly` while recording, `inactive` while paused or before media is ready.
    pub direction: Direction,
    /// SRTP key and salt per stream, in label order; None offers plain RTP.
    pub keys: Option<Vec<[u8; 30]>>,
    pub session_id: u64,
    pub session_version: u64,
}

impl RsOffer {
    /// Which of our sockets the m-line at `index` sends from: its stream's own. With fewer
    /// ports than streams (never from the phone) the last one is shared rather than a
    /// stream declined; None for a declined m-line, or when there are no ports at all.
    pub fn socket_slot(&self, index: usize) -> Option<usize> {
        let slot = stream_slot(&self.voices, index)?;
        Some(slot.min(self.ports.len().checked_sub(1)?))
    }

    /// Whether the m-line at `index` is one we stopped (port 0 in our offer): the stream of
    /// a conference party that left. It carries no voice any more.
    pub fn is_retired(&self, index: usize) -> bool {
        stream_slot(&self.voices, index).and_then(|slot| self.ports.get(slot)) == Some(&0)
    }

    /// Our RTP port on the m-line at `index`: its socket's, or 0 when it is declined.
    pub fn port_of(&self, index: usize) -> u16 {
        self.socket_slot(index)
            .and_then(|slot| self.ports.get(slot))
            .copied()
            .unwrap_or(0)
    }
}

pub fn offer(params: &RsOffer) -> SessionDescription {
    let formats: Vec<PayloadFormat> = params
        .codecs
        .iter()
        .chain(params.telephone_event.iter())
        .cloned()
        .collect();
    let lines = params.labels.iter().map(|_| Line {
        kind: MediaKind::Audio,
        declined_proto: None,
        formats: formats.clone(),
        direction: params.direction,
    });
    describe(params, lines)
}

/// Our answer to the recorder's re-offer (RFC 3264 6 and 8): on each m-line the one codec
/// the stream will be sent in (the recorder's first that we offered, as [`read_answer`]
/// takes it) and its telephone-event, port 0 where the recorder refused the stream, and
/// `inactive` where the recorder or we pause it.
pub fn answer_reoffer(
    ours: &RsOffer,
    theirs: &SessionDescription,
) -> Result<SessionDescription, RsSdpError> {
    if theirs.media.len() != ours.labels.len() {
        return Err(RsSdpError::StreamCount {
            offered: ours.labels.len(),
            answered: theirs.media.len(),
        });
    }
    let mut lines = Vec::new();
    for (index, (label, media)) in ours.labels.iter().zip(theirs.media.iter()).enumerate() {
        let ours_declined =
            ours.voices.get(index).is_none_or(Option::is_none) || ours.is_retired(index);
        if media.port == 0 || ours_declined || media.kind != MediaKind::Audio {
            // A refused stream stays refused in the answer, as the offer described it.
            lines.push(Line {
                kind: media.kind.clone(),
                declined_proto: Some(media.proto.clone()),
                formats: media.formats.iter().take(1).cloned().collect(),
                direction: Direction::Inactive,
            });
            continue;
        }
        let codec = first_shared_codec(&ours.codecs, media)
            .ok_or_else(|| RsSdpError::Codec(label.clone()))?;
        let telephone_event = ours
            .telephone_event
            .as_ref()
            .and_then(|_| media.formats.iter().find(|f| f.is_telephone_event()))
            .cloned();
        let direction = if media.direction.receives() && ours.direction == Direction::SendOnly {
            Direction::SendOnly
        } else {
            Direction::Inactive
        };
        lines.push(Line {
            kind: MediaKind::Audio,
            declined_proto: None,
            formats: std::iter::once(codec).chain(telephone_event).collect(),
            direction,
        });
    }
    Ok(describe(ours, lines.into_iter()))
}

/// One of our m-lines: where it listens, what it carries, which way.
struct Line {
    kind: MediaKind,
    /// For an m-line we decline, the offer's transport, answered as it came.
    declined_proto: Option<String>,
    formats: Vec<PayloadFormat>,
    direction: Direction,
}

/// The description of our streams, one labelled m-line per label with its own SRTP key.
fn describe(params: &RsOffer, lines: impl Iterator<Item = Line>) -> SessionDescription {
    let origin = Origin {
        username: "verbatim".into(),
        session_id: params.session_id,
        session_version: params.session_version,
        address: params.address,
    };
    let mut sdp = SessionDescription::new(origin, "Verbatim recording", Some(params.address));
    let proto = if params.keys.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    for (index, (label, line)) in params.labels.iter().zip(lines).enumerate() {
        let port = if line.declined_proto.is_some() {
            0
        } else {
            params.port_of(index)
        };
        let proto = line.declined_proto.as_deref().unwrap_or(proto);
        let mut media = MediaDescription::new(line.kind, port, proto);
        media.formats = line.formats;
        media.direction = line.direction;
        if port == 0 {
            // A declined m-line says only that (RFC 3264 6).
            sdp.media.push(media);
            continue;
        }
        media.ptime = Some(20);
        media
            .attributes
            .push(Attribute::new("label", label.clone()));
        if let Some(key) = params.keys.as_ref().and_then(|keys| keys.get(index)) {
            let crypto = CryptoAttribute::new(1, CryptoSuite::AesCm128HmacSha1_80, *key);
            media
                .attributes
                .push(Attribute::new("crypto", crypto.to_string()));
        }
        sdp.media.push(media);
    }
    sdp
}

/// Where RTCP for `media` goes (RFC 3605 `a=rtcp`, else RFC 3550 11: the RTP port plus one).
fn rtcp_destination(address: IpAddr, media: &MediaDescription) -> SocketAddr {
    let port = media
        .rtcp_port
        .unwrap_or_else(|| media.port.saturating_add(1));
    SocketAddr::new(address, port)
}

/// The first of the recorder's formats on `media` that we offered, with the recorder's
/// payload type and our parameters.
fn first_shared_codec(ours: &[PayloadFormat], media: &MediaDescription) -> Option<PayloadFormat> {
    media.formats.iter().find_map(|theirs| {
        ours.iter()
            .find(|mine| mine.same_codec(theirs))
            .map(|mine| PayloadFormat {
                payload_type: theirs.payload_type,
                ..mine.clone()
            })
    })
}

/// What the SRS answered for one of our streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredStream {
    pub label: String,
    /// Whose voice the stream carries (the same binding the metadata states); None for an
    /// m-line we declined.
    pub voice: Option<StreamSender>,
    /// False when the SRS declined the stream (port 0): stop sending on it.
    pub accepted: bool,
    pub destination: SocketAddr,
    /// Where the stream's RTCP goes: the recorder's `a=rtcp` port, or the next one up.
    pub rtcp_destination: SocketAddr,
    /// The codec the recorder chose for the stream, with the recording's payload type.
    pub codec: PayloadFormat,
    pub telephone_event: Option<u8>,
    /// The recorder's SRTP key; None for plain RTP (to an SRTP offer: it refused SRTP).
    pub crypto: Option<CryptoAttribute>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsSdpError {
    #[error("the recorder answered {answered} streams to our {offered}")]
    StreamCount { offered: usize, answered: usize },
    #[error("the recorder answered stream {0} with a codec we did not offer")]
    Codec(String),
    #[error("the recorder answered stream {0} without an address")]
    NoAddress(String),
    #[error("the recorder refused SRTP on stream {0}")]
    NoCrypto(String),
    #[error("the recorder declined every stream")]
    AllDeclined,
    #[error("the recorder offered no audio stream")]
    NoStreams,
}

/// Reads the SRS's answer against our offer (m-lines in the same order, RFC 3264 6).
pub fn read_answer(
    offer: &RsOffer,
    answer: &SessionDescription,
) -> Result<Vec<AnsweredStream>, RsSdpError> {
    if answer.media.len() != offer.labels.len() {
        return Err(RsSdpError::StreamCount {
            offered: offer.labels.len(),
            answered: answer.media.len(),
        });
    }
    let mut streams = Vec::new();
    for (index, (label, media)) in offer.labels.iter().zip(answer.media.iter()).enumerate() {
        let voice = offer
            .voices
            .get(index)
            .copied()
            .flatten()
            .filter(|_| !offer.is_retired(index));
        // An inactive answer to a sendonly offer declines the stream; to an inactive offer
        // (a pause) it is the expected reply.
        let accepted = voice.is_some()
            && media.port != 0
            && (media.direction != Direction::Inactive || offer.direction == Direction::Inactive);
        let address = answer
            .connection_for(media)
            .ok_or_else(|| RsSdpError::NoAddress(label.clone()))?;
        // The answer's first format that we offered is what the recorder will receive.
        let chosen = first_shared_codec(&offer.codecs, media);
        let codec = match (chosen, offer.codecs.first(), accepted) {
            (Some(codec), _, _) => codec,
            (None, Some(first), false) => first.clone(),
            _ => return Err(RsSdpError::Codec(label.clone())),
        };
        let telephone_event = media
            .formats
            .iter()
            .find(|f| f.is_telephone_event())
            .map(|f| f.payload_type);
        let crypto = media
            .attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("crypto"))
            .find_map(|a| {
                a.value
                    .as_deref()
                    .and_then(|v| CryptoAttribute::parse(v).ok())
            });
        // A plain RTP/AVP answer to our SRTP offer is the recorder refusing SRTP: whether
        // that is acceptable is the recording policy's call, not this reading's. An SRTP
        // answer without a key it could use is broken.
        let secure = media.proto.eq_ignore_ascii_case("RTP/SAVP");
        if offer.keys.is_some() && accepted && secure && crypto.is_none() {
            return Err(RsSdpError::NoCrypto(label.clone()));
        }
        let crypto = crypto.filter(|_| secure);
        streams.push(AnsweredStream {
            label: label.clone(),
            voice,
            accepted,
            destination: SocketAddr::new(address, media.port),
            rtcp_destination: rtcp_destination(address, media),
            codec,
            telephone_event,
            crypto,
        });
    }
    if streams.iter().all(|s| !s.accepted) && offer.direction != Direction::Inactive {
        return Err(RsSdpError::AllDeclined);
    }
    Ok(streams)
}

/// Our answer when the recorder offers (it started the recording session): one sendonly
/// stream per offered audio m-line with the recorder's label kept, whatever it is, in one
/// codec both sides know, the call's first when the recorder takes it. The voices follow
/// the m-lines (one audio stream: both voices mixed; two: the local user, then the far
/// end), which is what the metadata then says; further streams and other media are
/// declined with port 0. `ours` gives our address, port, codecs in order of preference,
/// telephone-event, and a key per m-line for SRTP; the returned description (written with
/// [`offer`]) is the answer, and the streams say where each one goes.
pub fn answer_recorders_offer(
    offer: &SessionDescription,
    ours: &RsOffer,
) -> Result<(RsOffer, Vec<AnsweredStream>), RsSdpError> {
    let label_of = |index: usize, media: &MediaDescription| {
        media
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case("label"))
            .and_then(|a| a.value.clone())
            .unwrap_or_else(|| (index + 1).to_string())
    };
    let audio: Vec<usize> = offer
        .media
        .iter()
        .enumerate()
        .filter(|(_, m)| m.kind == MediaKind::Audio && m.port != 0)
        .map(|(index, _)| index)
        .collect();
    let (first_index, first) = audio
        .first()
        .and_then(|index| Some((*index, offer.media.get(*index)?)))
        .ok_or(RsSdpError::NoStreams)?;
    let chosen = first_shared_codec_in_our_order(&ours.codecs, first)
        .ok_or_else(|| RsSdpError::Codec(label_of(first_index, first)))?;
    let telephone_event = ours.telephone_event.as_ref().and_then(|mine| {
        first
            .formats
            .iter()
            .find(|theirs| theirs.is_telephone_event() && theirs.clock_rate == mine.clock_rate)
            .map(|theirs| PayloadFormat {
                payload_type: theirs.payload_type,
                ..mine.clone()
            })
    });
    let secure = offer
        .media
        .iter()
        .any(|m| m.proto.eq_ignore_ascii_case("RTP/SAVP"));
    let bound = voices_for(audio.len());
    let mut labels = Vec::new();
    let mut voices = Vec::new();
    let mut streams = Vec::new();
    for (index, media) in offer.media.iter().enumerate() {
        let label = label_of(index, media);
        let voice = audio
            .iter()
            .position(|i| *i == index)
            .and_then(|nth| bound.get(nth).copied().flatten());
        let address = offer
            .connection_for(media)
            .ok_or_else(|| RsSdpError::NoAddress(label.clone()))?;
        let crypto = media
            .attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("crypto"))
            .filter_map(|a| a.value.as_deref())
            .filter_map(|v| CryptoAttribute::parse(v).ok())
            .find(|c| c.suite == CryptoSuite::AesCm128HmacSha1_80);
        if secure && voice.is_some() && crypto.is_none() {
            return Err(RsSdpError::NoCrypto(label));
        }
        let accepted = voice.is_some() && media.direction.receives();
        streams.push(AnsweredStream {
            label: label.clone(),
            voice,
            accepted,
            destination: SocketAddr::new(address, media.port),
            rtcp_destination: rtcp_destination(address, media),
            codec: chosen.clone(),
            telephone_event: telephone_event.as_ref().map(|t| t.payload_type),
            crypto,
        });
        labels.push(label);
        voices.push(voice);
    }
    let keys = match (secure, &ours.keys) {
        (false, _) => None,
        (true, Some(keys)) if keys.len() >= labels.len() => Some(keys.clone()),
        (true, _) => return Err(RsSdpError::NoCrypto(labels.join(","))),
    };
    let answer = RsOffer {
        address: ours.address,
        ports: ours.ports.clone(),
        codecs: vec![chosen],
        telephone_event,
        labels,
        voices,
        direction: Direction::SendOnly,
        keys,
        session_id: ours.session_id,
        session_version: ours.session_version,
    };
    Ok((answer, streams))
}

/// The first of our codecs (in our order of preference) that the recorder offers on
/// `media`, with the recorder's payload type.
fn first_shared_codec_in_our_order(
    ours: &[PayloadFormat],
    media: &MediaDescription,
) -> Option<PayloadFormat> {
    ours.iter().find_map(|mine| {
        media
            .formats
            .iter()
            .find(|theirs| mine.same_codec(theirs))
            .map(|theirs| PayloadFormat {
                payload_type: theirs.payload_type,
                ..mine.clone()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RsOffer {
        RsOffer {
            address: "127.0.0.1".parse().unwrap(),
            ports: vec![30000, 30002],
            codecs: vec![
                PayloadFormat::new(0, "PCMU", 8000, None),
                PayloadFormat::new(8, "PCMA", 8000, None),
            ],
            telephone_event: Some(
                PayloadFormat::new(101, "telephone-event", 8000, None).with_fmtp("0-16"),
            ),
            labels: vec!["1".into(), "2".into()],
            voices: voices_for(2),
            direction: Direction::SendOnly,
            keys: None,
            session_id: 7,
            session_version: 1,
        }
    }

    #[test]
    fn the_nth_voiced_m_line_sends_from_the_nth_socket() {
        let mut p = params();
        p.labels = vec!["v".into(), "1".into(), "2".into(), "x".into()];
        p.voices = vec![
            None,
            Some(StreamSender::Local),
            Some(StreamSender::Remote),
            None,
        ];
        let slots: Vec<_> = (0..4).map(|i| p.socket_slot(i)).collect();
        assert_eq!(slots, vec![None, Some(0), Some(1), None]);
        assert_eq!(
            (0..4).map(|i| p.port_of(i)).collect::<Vec<_>>(),
            vec![0, 30000, 30002, 0]
        );
        p.ports = vec![30000];
        assert_eq!(
            p.socket_slot(2),
            Some(0),
            "too few ports: the last is shared, and the stream sends from its socket"
        );
        p.ports.clear();
        assert_eq!(p.socket_slot(1), None);
        assert_eq!(p.port_of(1), 0);
    }

    #[test]
    fn offer_has_a_labelled_sendonly_stream_per_side_each_from_its_own_port() {
        let text = offer(&params()).to_string();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("m=audio 30002 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("a=label:1") && text.contains("a=label:2"));
        assert_eq!(text.matches("a=sendonly").count(), 2);
        let reparsed = SessionDescription::parse(&text).unwrap();
        assert_eq!(reparsed.media.len(), 2);
    }

    #[test]
    fn srtp_offer_has_its_own_key_per_stream() {
        let mut p = params();
        p.keys = Some(vec![[1; 30], [2; 30]]);
        let text = offer(&p).to_string();
        assert_eq!(text.matches("RTP/SAVP").count(), 2);
        assert_eq!(
            text.matches("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
                .count(),
            2
        );
    }

    #[test]
    fn answer_gives_a_destination_per_stream_and_port_zero_declines() {
        let p = params();
        let answer = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0\r\na=recvonly\r\na=label:1\r\n\
             m=audio 0 RTP/AVP 0\r\na=recvonly\r\na=label:2\r\n",
        )
        .unwrap();
        let streams = read_answer(&p, &answer).unwrap();
        assert!(streams[0].accepted && !streams[1].accepted);
        assert_eq!(streams[0].destination.port(), 40000);
        assert_eq!(streams[0].codec.payload_type, 0);
    }

    #[test]
    fn the_recorder_may_pick_another_offered_codec() {
        let answer = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8\r\na=recvonly\r\n\
             m=audio 40002 RTP/AVP 8\r\na=recvonly\r\n",
        )
        .unwrap();
        let streams = read_answer(&params(), &answer).unwrap();
        assert!(streams.iter().all(|s| s.codec.encoding == "PCMA"));
    }

    #[test]
    fn a_recorders_offer_is_answered_stream_by_stream_with_its_labels() {
        let offer = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 0\r\na=recvonly\r\na=label:agent\r\n\
             m=audio 40002 RTP/AVP 8 0\r\na=recvonly\r\na=label:customer\r\n",
        )
        .unwrap();
        let (answer, streams) = answer_recorders_offer(&offer, &params()).unwrap();
        // Our preference (PCMU) wins over the recorder's order, both being offered.
        assert_eq!(answer.codecs[0].encoding, "PCMU");
        assert_eq!(answer.labels, vec!["agent", "customer"]);
        assert_eq!(streams[1].destination.port(), 40002);
        assert!(streams.iter().all(|s| s.accepted));
        let text = offer_text(&answer);
        assert_eq!(text.matches("a=sendonly").count(), 2);
        assert!(text.contains("a=label:customer"));
        let no_codec = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            answer_recorders_offer(&no_codec, &params()),
            Err(RsSdpError::Codec(_))
        ));
    }

    #[test]
    fn a_recorders_reoffer_is_answered_with_one_codec_per_stream_and_its_refusals() {
        let reoffer = SessionDescription::parse(
            "v=0\r\no=srs 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=recvonly\r\na=label:1\r\n\
             m=audio 0 RTP/AVP 0\r\na=recvonly\r\na=label:2\r\n",
        )
        .unwrap();
        let text = answer_reoffer(&params(), &reoffer).unwrap().to_string();
        assert!(text.contains("m=audio 30000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(text.contains("m=audio 0 RTP/AVP 0\r\n"), "{text}");
        assert_eq!(text.matches("a=sendonly").count(), 1, "{text}");
        // What we answer is what the streams are built from.
        let streams = read_answer(&params(), &reoffer).unwrap();
        assert_eq!(streams[0].codec.encoding, "PCMA");
        assert!(!streams[1].accepted);

        let mut paused = params();
        paused.direction = Direction::Inactive;
        let text = answer_reoffer(&paused, &reoffer).unwrap().to_string();
        assert!(!text.contains("a=sendonly"), "{text}");

        let unknown = SessionDescription::parse(
            "v=0\r\no=srs 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=recvonly\r\n\
             m=audio 40002 RTP/AVP 0\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            answer_reoffer(&params(), &unknown),
            Err(RsSdpError::Codec(label)) if label == "1"
        ));
    }

    #[test]
    fn a_recorders_streams_carry_voices_by_order_whatever_their_labels_and_extras_are_declined() {
        let offer = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=video 40010 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=recvonly\r\n\
             m=audio 40000 RTP/AVP 0\r\na=recvonly\r\na=label:customer\r\n\
             m=audio 40002 RTP/AVP 0\r\na=recvonly\r\na=label:agent\r\n\
             m=audio 40004 RTP/AVP 0\r\na=recvonly\r\na=label:supervisor\r\n",
        )
        .unwrap();
        let (answer, streams) = answer_recorders_offer(&offer, &params()).unwrap();
        let voices: Vec<_> = streams
            .iter()
            .map(|s| (s.label.as_str(), s.voice))
            .collect();
        assert_eq!(
            voices,
            vec![
                ("1", None),
                ("customer", Some(StreamSender::Local)),
                ("agent", Some(StreamSender::Remote)),
                ("supervisor", None),
            ],
            "the audio m-lines in order: our user, then the far end; the rest declined"
        );
        assert_eq!(
            streams.iter().map(|s| s.accepted).collect::<Vec<_>>(),
            vec![false, true, true, false]
        );
        let text = answer_reoffer(&answer, &offer).unwrap().to_string();
        assert!(text.contains("m=video 0 RTP/AVP 96\r\n"), "{text}");
        // The nth stream with a voice sends from the nth port, whatever m-lines come between.
        assert!(text.contains("m=audio 30000 RTP/AVP 0\r\n"), "{text}");
        assert!(text.contains("m=audio 30002 RTP/AVP 0\r\n"), "{text}");
        assert!(text.contains("m=audio 0 RTP/AVP 0\r\n"), "{text}");
        assert_eq!(text.matches("a=sendonly").count(), 2, "{text}");

        let mixed = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 8\r\na=recvonly\r\na=label:0\r\n",
        )
        .unwrap();
        let (_, streams) = answer_recorders_offer(&mixed, &params()).unwrap();
        assert_eq!(
            streams[0].voice,
            Some(StreamSender::Both),
            "one stream: both voices"
        );
        assert_eq!(streams[0].label, "0");
    }

    fn offer_text(params: &RsOffer) -> String {
        offer(params).to_string()
    }

    #[test]
    fn wrong_answers_are_errors() {
        let p = params();
        let one = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 0\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            read_answer(&p, &one),
            Err(RsSdpError::StreamCount { .. })
        ));
        let other_codec = SessionDescription::parse(
            "v=0\r\no=srs 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 40000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=recvonly\r\n\
             m=audio 40002 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            read_answer(&p, &other_codec),
            Err(RsSdpError::Codec(_))
        ));
    }
}
