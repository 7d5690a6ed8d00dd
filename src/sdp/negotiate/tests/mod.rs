//! Tests of offer/answer, one file per side of the exchange plus codecs, two endpoints
//! talking to each other, and SRTP; the endpoints, the peer's SDP and the "wire" are built here.

use core::net::IpAddr;

use super::codec::telephone_event_format;
use super::*;
use crate::sdp::SdpError;

mod answer;
mod codec;
mod exchange;
mod offer;
mod srtp;

const OPUS: Codec = Codec::Opus { inband_fec: true };

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn caps(codecs: Vec<Codec>) -> LocalCapabilities {
    LocalCapabilities::new(ip("192.0.2.10"), 40000, codecs)
}

fn alice() -> OfferAnswer {
    OfferAnswer::new(caps(vec![OPUS, Codec::Pcmu, Codec::Pcma]), 1000, 5)
}

fn bob() -> OfferAnswer {
    OfferAnswer::new(
        LocalCapabilities::new(ip("198.51.100.20"), 50000, vec![Codec::Pcma, Codec::Pcmu]),
        2000,
        1,
    )
}

/// Sends SDP over the "wire": written to text and parsed back.
fn wire(sdp: &SessionDescription) -> SessionDescription {
    SessionDescription::parse(&sdp.to_string()).unwrap()
}

fn remote_offer(media_lines: &str) -> SessionDescription {
    let text = format!(
        "v=0\r\no=peer 77 88 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\n{media_lines}"
    );
    SessionDescription::parse(&text).unwrap()
}

const PEER_AUDIO: &str = concat!(
    "m=audio 30000 RTP/AVP 0 8 96 101\r\n",
    "a=rtpmap:96 opus/48000/2\r\n",
    "a=fmtp:96 maxplaybackrate=16000\r\n",
    "a=rtpmap:101 telephone-event/8000\r\n",
    "a=fmtp:101 0-15\r\n",
);

/// The payload type numbers of a media line, in order.
fn payload_types(media: &MediaDescription) -> Vec<u8> {
    media.formats.iter().map(|f| f.payload_type).collect()
}

/// `offerer`'s offer as the answerer receives it.
fn offer_over_wire(offerer: &mut OfferAnswer, direction: Direction) -> SessionDescription {
    wire(&offerer.create_offer(direction))
}

/// `answerer`'s answer to `offer` as the offerer receives it.
fn answer_over_wire(
    answerer: &mut OfferAnswer,
    offer: &SessionDescription,
    wish: Direction,
) -> SessionDescription {
    wire(&answerer.receive_offer(offer, wish).unwrap())
}
