//! The codecs we know and how their formats are recognised, whatever the peer numbers them.

use super::*;

#[test]
fn codec_descriptions() {
    assert_eq!(Codec::G722.clock_rate(), 8000);
    assert_eq!(Codec::G722.default_payload_type(), 9);
    assert!(Codec::Pcma.is_static());
    assert!(!OPUS.is_static());
    assert_eq!(
        Codec::Opus { inband_fec: false }.payload_format(111),
        PayloadFormat::new(111, "opus", 48000, Some(2)).with_fmtp("minptime=10")
    );
    assert!(Codec::Pcmu.matches(&PayloadFormat::from_static(0).unwrap()));
    assert!(!Codec::Pcmu.matches(&PayloadFormat::from_static(8).unwrap()));
}

#[test]
fn sloppy_opus_without_channels_is_accepted() {
    let mut oa = OfferAnswer::new(caps(vec![OPUS]), 1, 1);
    let offer = remote_offer("m=audio 30000 RTP/AVP 107\r\na=rtpmap:107 OPUS/48000\r\n");
    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(answer.media[0].formats, vec![OPUS.payload_format(107)]);
}
