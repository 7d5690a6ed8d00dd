//! Answering a peer's offer: which stream, which codecs and events, which direction, and
//! when no answer is possible.

use super::*;
use core::net::Ipv4Addr;

#[test]
fn answer_keeps_offer_payload_types_and_order() {
    let mut oa = alice();
    let offer = remote_offer(PEER_AUDIO);
    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let audio = &answer.media[0];
    let types = payload_types(audio);
    assert_eq!(types, [0, 8, 96, 101]);
    assert_eq!(audio.formats[2], OPUS.payload_format(96));
    assert_eq!(audio.formats[3], telephone_event_format(101, 8000));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert_eq!(audio.port, 40000);
    assert_eq!(answer.connection, Some(ip("192.0.2.10")));

    let negotiated = oa.negotiated().unwrap();
    assert_eq!(negotiated.remote_address, ip("203.0.113.9"));
    assert_eq!(negotiated.remote_rtp_port, 30000);
    assert_eq!(negotiated.remote_rtcp_port, Some(30001));
    assert_eq!(negotiated.codec, PayloadFormat::new(0, "PCMU", 8000, None));
    assert_eq!(
        negotiated.telephone_event,
        Some(PayloadFormat::new(101, "telephone-event", 8000, None).with_fmtp("0-15"))
    );
    assert_eq!(negotiated.local_direction, Direction::SendRecv);
    assert!(!negotiated.remote_on_hold);
    assert_eq!(negotiated.ptime, 20);
}

#[test]
fn answer_direction_follows_rfc_3264_section_6_1() {
    use Direction::*;
    let cases = [
        // (offered, our wish, answered)
        (SendRecv, SendRecv, SendRecv),
        (SendRecv, SendOnly, SendOnly),
        (SendRecv, Inactive, Inactive),
        (SendOnly, SendRecv, RecvOnly),
        (SendOnly, SendOnly, Inactive),
        (RecvOnly, SendRecv, SendOnly),
        (RecvOnly, SendOnly, SendOnly),
        (Inactive, SendRecv, Inactive),
        (Inactive, SendOnly, Inactive),
    ];
    for (offered, wish, expected) in cases {
        let mut oa = alice();
        let offer = remote_offer(&format!("m=audio 30000 RTP/AVP 0\r\na={offered}\r\n"));
        let answer = oa.receive_offer(&offer, wish).unwrap();
        assert_eq!(answer.media[0].direction, expected, "{offered} {wish}");
        let negotiated = oa.negotiated().unwrap();
        assert_eq!(negotiated.local_direction, expected);
        assert_eq!(
            negotiated.remote_on_hold,
            matches!(offered, SendOnly | Inactive),
            "{offered}"
        );
        assert!(
            wire(&answer)
                .to_string()
                .contains(&format!("a={expected}\r\n"))
        );
    }
}

#[test]
fn rfc2543_hold_offer_is_answered_recvonly_and_reported() {
    let mut oa = alice();
    let offer = remote_offer("m=audio 30000 RTP/AVP 0\r\n");
    let mut held = offer.clone();
    held.connection = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let held = wire(&held);
    let answer = oa.receive_offer(&held, Direction::SendRecv).unwrap();
    assert_eq!(answer.media[0].direction, Direction::RecvOnly);
    let negotiated = oa.negotiated().unwrap();
    assert!(negotiated.remote_on_hold);
    assert!(negotiated.remote_address.is_unspecified());
    assert!(!negotiated.local_direction.sends());
    assert_eq!(oa.offer_direction(false), Direction::RecvOnly);
    assert_eq!(oa.offer_direction(true), Direction::Inactive);

    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(answer.media[0].direction, Direction::SendRecv);
    assert!(!oa.negotiated().unwrap().remote_on_hold);
    assert_eq!(oa.offer_direction(false), Direction::SendRecv);
    assert_eq!(oa.offer_direction(true), Direction::SendOnly);
}

#[test]
fn other_streams_are_answered_with_port_zero_and_same_formats() {
    let mut oa = alice();
    let offer = remote_offer(concat!(
        "m=video 31000 RTP/AVP 96 31\r\na=rtpmap:96 H264/90000\r\n",
        "m=audio 30000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abcd\r\n",
        "m=audio 30002 RTP/AVP 9\r\n",
        "m=audio 30004 RTP/AVP 8\r\n",
        "m=image 32000 udptl t38\r\n",
    ));
    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(answer.media.len(), 5);
    let ports: Vec<u16> = answer.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 0, 0, 40000, 0]);
    for (offered, answered) in offer.media.iter().zip(&answer.media) {
        assert_eq!(offered.kind, answered.kind);
        assert_eq!(offered.proto, answered.proto);
    }
    assert_eq!(answer.media[0].formats, offer.media[0].formats);
    assert!(answer.media[1].attributes.is_empty());
    assert_eq!(answer.media[4].non_rtp_formats, ["t38"]);
    assert_eq!(answer.media[3].formats[0].encoding, "PCMA");
    let text = answer.to_string();
    assert!(text.contains("m=video 0 RTP/AVP 96 31\r\n"), "{text}");
    assert!(text.contains("m=image 0 udptl t38\r\n"));
    assert!(!text.contains("crypto"));
    assert_eq!(oa.negotiated().unwrap().remote_rtp_port, 30004);
}

#[test]
fn no_common_codec_is_a_488() {
    let mut oa = OfferAnswer::new(caps(vec![Codec::Pcma]), 1, 1);
    let cases = [
        "m=audio 30000 RTP/AVP 0 18 101\r\na=rtpmap:101 telephone-event/8000\r\n",
        "m=audio 30000 RTP/SAVP 8\r\n",
        "m=audio 0 RTP/AVP 8\r\n",
        "m=video 30000 RTP/AVP 8\r\n",
        "m=audio 30000 RTP/AVP 96\r\na=rtpmap:96 PCMA/16000\r\n",
        "",
    ];
    for media in cases {
        let error = oa
            .receive_offer(&remote_offer(media), Direction::SendRecv)
            .unwrap_err();
        assert_eq!(error, SdpError::NoCommonCodec, "{media}");
        assert_eq!(error.sip_status(), 488);
    }
    assert!(oa.negotiated().is_none());
    assert!(oa.local_description().is_none());
}

#[test]
fn telephone_event_needs_a_matching_clock_rate() {
    let mut oa = OfferAnswer::new(caps(vec![Codec::Pcmu]), 1, 1);
    let offer = remote_offer(concat!(
        "m=audio 30000 RTP/AVP 96 0 97 98\r\n",
        "a=rtpmap:96 opus/48000/2\r\n",
        "a=rtpmap:97 telephone-event/48000\r\n",
        "a=rtpmap:98 telephone-event/8000\r\n",
    ));
    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let types = payload_types(&answer.media[0]);
    assert_eq!(types, [0, 98]);
    assert_eq!(
        oa.negotiated()
            .unwrap()
            .telephone_event
            .as_ref()
            .unwrap()
            .payload_type,
        98
    );

    let mut opus_only = OfferAnswer::new(caps(vec![OPUS]), 1, 1);
    let answer = opus_only
        .receive_offer(&offer, Direction::SendRecv)
        .unwrap();
    let types = payload_types(&answer.media[0]);
    assert_eq!(types, [96, 97]);
    let negotiated = opus_only.negotiated().unwrap();
    assert_eq!(negotiated.codec.payload_type, 96);
    assert_eq!(
        negotiated.telephone_event.as_ref().unwrap().clock_rate,
        48000
    );

    let mut no_dtmf = OfferAnswer::new(caps(vec![Codec::Pcmu]), 1, 1);
    no_dtmf.capabilities_mut().telephone_event = false;
    let answer = no_dtmf.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(answer.media[0].formats.len(), 1);
    assert_eq!(no_dtmf.negotiated().unwrap().telephone_event, None);
}

#[test]
fn uses_peer_rtcp_port_and_ptime() {
    let mut oa = alice();
    let offer = remote_offer("m=audio 30000 RTP/AVP 8\r\na=rtcp:30011\r\na=ptime:30\r\n");
    oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let negotiated = oa.negotiated().unwrap();
    assert_eq!(negotiated.remote_rtcp_port, Some(30011));
    assert_eq!(negotiated.ptime, 30);
}

#[test]
fn crossing_offers_are_refused_with_491() {
    let mut oa = alice();
    oa.create_offer(Direction::SendRecv);
    let error = oa
        .receive_offer(&remote_offer(PEER_AUDIO), Direction::SendRecv)
        .unwrap_err();
    assert_eq!(error, SdpError::OfferPending);
    assert_eq!(error.sip_status(), 491);
    assert!(oa.cancel_offer());
    assert!(!oa.cancel_offer());
    assert!(
        oa.receive_offer(&remote_offer(PEER_AUDIO), Direction::SendRecv)
            .is_ok()
    );
}

#[test]
fn answer_to_identical_reoffer_keeps_the_version() {
    let mut oa = alice();
    let offer = remote_offer(PEER_AUDIO);
    let first = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let refresh = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(first, refresh);
    let hold = oa.receive_offer(&offer, Direction::SendOnly).unwrap();
    assert_eq!(
        hold.origin.session_version,
        first.origin.session_version + 1
    );
}
