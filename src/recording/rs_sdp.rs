//! The recording session's SDP (RFC 7866 7.1.1, 8.3): one `sendonly` audio stream per side of
//! the call (or one mixed stream), each labelled (RFC 4574) so the metadata can say whose voice it
//! carries. The call's own codec comes first, so packets can be forwarded as they are; the others
//! follow, so a recorder that wants another codec gets the call transcoded (RFC 7245 3.2.5).

use core::net::{IpAddr, SocketAddr};

use crate::media::srtp::{CryptoAttribute, CryptoSuite};
use crate::sdp::{
    Attribute, Direction, MediaDescription, MediaKind, Origin, PayloadFormat, SessionDescription,
};

/// What the offer describes.
#[derive(Debug, Clone)]
pub struct RsOffer {
    pub address: IpAddr,
    /// Our RTP port for every stream: the streams only send, the SRS tells them apart by the
    /// port it receives on.
    pub port: u16,
    /// In order of preference: the call's codec first when it is known.
    pub codecs: Vec<PayloadFormat>,
    pub telephone_event: Option<PayloadFormat>,
    /// The labels, in m-line order (1 = local user, 2 = far end).
    pub labels: Vec<String>,
    /// `sendonly` while recording, `inactive` while paused or before media is ready.
    pub direction: Direction,
    /// SRTP key and salt per stream, in label order; None offers plain RTP.
    pub keys: Option<Vec<[u8; 30]>>,
    pub session_id: u64,
    pub session_version: u64,
}

pub fn offer(params: &RsOffer) -> SessionDescription {
    let origin = Origin {
        username: "verbatim".into(),
        session_id: params.session_id,
        session_version: params.session_version,
        address: params.address,
    };
    let mut sdp = SessionDescription::new(origin, "Verbatim recording", Some(params.address));
    for (index, label) in params.labels.iter().enumerate() {
        let proto = if params.keys.is_some() {
            "RTP/SAVP"
        } else {
            "RTP/AVP"
        };
        let mut media = MediaDescription::new(MediaKind::Audio, params.port, proto);
        media.formats.extend(params.codecs.iter().cloned());
        if let Some(te) = &params.telephone_event {
            media.formats.push(te.clone());
        }
        media.direction = params.direction;
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

/// What the SRS answered for one of our streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredStream {
    pub label: String,
    /// False when the SRS declined the stream (port 0): stop sending on it.
    pub accepted: bool,
    pub destination: SocketAddr,
    /// The codec the recorder chose for the stream, with the recording's payload type.
    pub codec: PayloadFormat,
    pub telephone_event: Option<u8>,
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
    for (label, media) in offer.labels.iter().zip(answer.media.iter()) {
        // An inactive answer to a sendonly offer declines the stream; to an inactive offer
        // (a pause) it is the expected reply.
        let accepted = media.port != 0
            && (media.direction != Direction::Inactive || offer.direction == Direction::Inactive);
        let address = answer
            .connection_for(media)
            .ok_or_else(|| RsSdpError::NoAddress(label.clone()))?;
        // The answer's first format that we offered is what the recorder will receive.
        let chosen = media.formats.iter().find_map(|answered| {
            offer
                .codecs
                .iter()
                .find(|ours| ours.same_codec(answered))
                .map(|ours| PayloadFormat {
                    payload_type: answered.payload_type,
                    ..ours.clone()
                })
        });
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
        if offer.keys.is_some() && accepted && crypto.is_none() {
            return Err(RsSdpError::NoCrypto(label.clone()));
        }
        streams.push(AnsweredStream {
            label: label.clone(),
            accepted,
            destination: SocketAddr::new(address, media.port),
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
/// stream per offered m-line with its label kept, in one codec both sides know, the call's
/// first when the recorder takes it. `ours` gives our address, port, codecs in order of
/// preference, telephone-event, and a key per m-line for SRTP; the returned description
/// (written with [`offer`]) is the answer, and the streams say where each one goes.
pub fn answer_recorders_offer(
    offer: &SessionDescription,
    ours: &RsOffer,
) -> Result<(RsOffer, Vec<AnsweredStream>), RsSdpError> {
    let first = offer.media.first().ok_or(RsSdpError::NoStreams)?;
    let label_of = |index: usize, media: &MediaDescription| {
        media
            .attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case("label"))
            .and_then(|a| a.value.clone())
            .unwrap_or_else(|| (index + 1).to_string())
    };
    let chosen = ours
        .codecs
        .iter()
        .find_map(|mine| {
            first
                .formats
                .iter()
                .find(|theirs| mine.same_codec(theirs))
                .map(|theirs| PayloadFormat {
                    payload_type: theirs.payload_type,
                    ..mine.clone()
                })
        })
        .ok_or_else(|| RsSdpError::Codec(label_of(0, first)))?;
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
    let mut labels = Vec::new();
    let mut streams = Vec::new();
    for (index, media) in offer.media.iter().enumerate() {
        let label = label_of(index, media);
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
        if secure && crypto.is_none() {
            return Err(RsSdpError::NoCrypto(label));
        }
        let accepted = media.port != 0 && media.direction.receives();
        streams.push(AnsweredStream {
            label: label.clone(),
            accepted,
            destination: SocketAddr::new(address, media.port),
            codec: chosen.clone(),
            telephone_event: telephone_event.as_ref().map(|t| t.payload_type),
            crypto,
        });
        labels.push(label);
    }
    let keys = match (secure, &ours.keys) {
        (false, _) => None,
        (true, Some(keys)) if keys.len() >= labels.len() => Some(keys.clone()),
        (true, _) => return Err(RsSdpError::NoCrypto(labels.join(","))),
    };
    let answer = RsOffer {
        address: ours.address,
        port: ours.port,
        codecs: vec![chosen],
        telephone_event,
        labels,
        direction: Direction::SendOnly,
        keys,
        session_id: ours.session_id,
        session_version: ours.session_version,
    };
    Ok((answer, streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> RsOffer {
        RsOffer {
            address: "127.0.0.1".parse().unwrap(),
            port: 30000,
            codecs: vec![
                PayloadFormat::new(0, "PCMU", 8000, None),
                PayloadFormat::new(8, "PCMA", 8000, None),
            ],
            telephone_event: Some(
                PayloadFormat::new(101, "telephone-event", 8000, None).with_fmtp("0-16"),
            ),
            labels: vec!["1".into(), "2".into()],
            direction: Direction::SendOnly,
            keys: None,
            session_id: 7,
            session_version: 1,
        }
    }

    #[test]
    fn offer_has_a_labelled_sendonly_stream_per_side() {
        let text = offer(&params()).to_string();
        assert_eq!(
            text.matches("m=audio 30000 RTP/AVP 0 8 101").count(),
            2,
            "{text}"
        );
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
             m=audio 40000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            answer_recorders_offer(&no_codec, &params()),
            Err(RsSdpError::Codec(_))
        ));
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
             m=audio 40000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\na=recvonly\r\n\
             m=audio 40002 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\na=recvonly\r\n",
        )
        .unwrap();
        assert!(matches!(
            read_answer(&p, &other_codec),
            Err(RsSdpError::Codec(_))
        ));
    }
}
