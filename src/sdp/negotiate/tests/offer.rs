//! The offers we write (codecs, payload types, session versions, re-offers) and the checks
//! the answer to one has to pass.

use super::*;

#[test]
fn offer_lists_codecs_in_preference_order_with_telephone_events() {
    let mut oa = alice();
    let offer = oa.create_offer(Direction::SendRecv);
    assert_eq!(offer.origin.session_id, 1000);
    assert_eq!(offer.origin.session_version, 5);
    assert_eq!(offer.connection, Some(ip("192.0.2.10")));
    let audio = &offer.media[0];
    assert_eq!((audio.port, audio.proto.as_str()), (40000, "RTP/AVP"));
    assert_eq!(audio.ptime, Some(20));
    assert_eq!(audio.direction, Direction::SendRecv);
    let types = payload_types(audio);
    assert_eq!(types, [111, 0, 8, 101, 110]);
    assert_eq!(audio.formats[3], telephone_event_format(101, 8000));
    assert_eq!(audio.formats[4], telephone_event_format(110, 48000));
    let text = offer.to_string();
    assert!(
        text.contains("m=audio 40000 RTP/AVP 111 0 8 101 110\r\n"),
        "{text}"
    );
    assert!(text.contains("a=rtpmap:111 opus/48000/2\r\n"));
    assert!(text.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
    assert!(text.contains("a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-16\r\n"));
    assert!(oa.offer_pending());
}

#[test]
fn offer_without_opus_has_only_the_8k_telephone_event() {
    let mut oa = OfferAnswer::new(caps(vec![Codec::Pcma, Codec::G722]), 1, 1);
    let types = payload_types(&oa.create_offer(Direction::SendRecv).media[0]);
    assert_eq!(types, [8, 9, 101]);

    let mut none = OfferAnswer::new(caps(Vec::new()), 1, 1);
    none.capabilities_mut().telephone_event = false;
    let offer = none.create_offer(Direction::SendRecv);
    assert_eq!(offer.media[0].formats, vec![Codec::Pcmu.payload_format(0)]);
}

#[test]
fn session_version_increments_only_when_content_changes() {
    let mut oa = alice();
    let first = oa.create_offer(Direction::SendRecv);
    oa.cancel_offer();
    let same = oa.create_offer(Direction::SendRecv);
    assert_eq!(same, first);
    assert_eq!(same.origin.session_version, 5);
    oa.cancel_offer();
    let hold = oa.create_offer(Direction::SendOnly);
    assert_eq!(hold.origin.session_version, 6);
    oa.cancel_offer();
    let resume = oa.create_offer(Direction::SendRecv);
    assert_eq!(resume.origin.session_version, 7);
    oa.capabilities_mut().address = ip("192.0.2.99");
    oa.cancel_offer();
    let moved = oa.create_offer(Direction::SendRecv);
    assert_eq!(moved.origin.session_version, 8);
    // RFC 3264 section 8: the o= line only changes its version.
    assert_eq!(moved.origin.address, ip("192.0.2.10"));
    assert_eq!(moved.connection, Some(ip("192.0.2.99")));
}

#[test]
fn reoffer_keeps_media_lines_and_payload_types() {
    let mut oa = alice();
    let offer = remote_offer(concat!(
        "m=video 31000 RTP/AVP 31\r\n",
        "m=audio 30000 RTP/AVP 96 0 97\r\n",
        "a=rtpmap:96 opus/48000/2\r\n",
        "a=rtpmap:97 telephone-event/48000\r\n",
        "m=image 32000 udptl t38\r\n",
    ));
    let answer = oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let reoffer = oa.create_offer(Direction::SendOnly);
    assert_eq!(
        reoffer.origin.session_version,
        answer.origin.session_version + 1
    );
    assert_eq!(reoffer.media.len(), 3);
    assert_eq!(reoffer.media[0].port, 0);
    assert_eq!(reoffer.media[0].kind, MediaKind::Video);
    assert_eq!(reoffer.media[2].non_rtp_formats, ["t38"]);
    let audio = &reoffer.media[1];
    assert_eq!(audio.direction, Direction::SendOnly);
    let types: Vec<(u8, &str, u32)> = audio
        .formats
        .iter()
        .map(|f| (f.payload_type, f.encoding.as_str(), f.clock_rate))
        .collect();
    // Opus and its events keep 96 and 97; 111 and 110 are not used for anything else.
    assert_eq!(
        types,
        [
            (96, "opus", 48000),
            (0, "PCMU", 8000),
            (8, "PCMA", 8000),
            (101, "telephone-event", 8000),
            (97, "telephone-event", 48000),
        ]
    );
    let peer_answer = remote_offer(concat!(
        "m=video 0 RTP/AVP 31\r\n",
        "m=audio 30000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=recvonly\r\n",
        "m=image 0 udptl t38\r\n",
    ));
    let negotiated = oa.receive_answer(&peer_answer).unwrap();
    assert_eq!(negotiated.codec.payload_type, 96);
    assert_eq!(negotiated.local_direction, Direction::SendOnly);
}

#[test]
fn dynamic_payload_type_collisions_pick_a_free_number() {
    let mut oa = alice();
    // The peer uses 111 for the 48 kHz events, so opus has to move.
    let offer = remote_offer(concat!(
        "m=audio 30000 RTP/AVP 0 111\r\n",
        "a=rtpmap:111 telephone-event/8000\r\n",
    ));
    oa.receive_offer(&offer, Direction::SendRecv).unwrap();
    let reoffer = oa.create_offer(Direction::SendRecv);
    let types: Vec<(u8, &str)> = reoffer.media[0]
        .formats
        .iter()
        .map(|f| (f.payload_type, f.encoding.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            (96, "opus"),
            (0, "PCMU"),
            (8, "PCMA"),
            (111, "telephone-event"),
            (110, "telephone-event"),
        ]
    );
}

#[test]
fn answer_checks() {
    let mut oa = alice();
    assert_eq!(
        oa.receive_answer(&remote_offer("m=audio 1 RTP/AVP 0\r\n")),
        Err(SdpError::NoPendingOffer)
    );

    oa.create_offer(Direction::SendRecv);
    let two = remote_offer("m=audio 1 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n");
    assert_eq!(
        oa.receive_answer(&two),
        Err(SdpError::MediaCountMismatch {
            offered: 1,
            answered: 2
        })
    );

    oa.create_offer(Direction::SendRecv);
    let video = remote_offer("m=video 1 RTP/AVP 0\r\n");
    assert_eq!(
        oa.receive_answer(&video),
        Err(SdpError::MediaMismatch { index: 0 })
    );

    oa.create_offer(Direction::SendRecv);
    let rejected = remote_offer("m=audio 0 RTP/AVP 0\r\n");
    assert_eq!(oa.receive_answer(&rejected), Err(SdpError::AudioRejected));

    oa.create_offer(Direction::SendRecv);
    let foreign = remote_offer("m=audio 1 RTP/AVP 18 9\r\n");
    assert_eq!(oa.receive_answer(&foreign), Err(SdpError::NoCommonCodec));

    oa.create_offer(Direction::SendRecv);
    let no_address = SessionDescription::parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n",
    )
    .unwrap();
    assert_eq!(
        oa.receive_answer(&no_address),
        Err(SdpError::MissingConnection)
    );
    assert!(oa.negotiated().is_none());
    assert!(!oa.offer_pending());
}

#[test]
fn answer_codec_is_the_first_one_we_offered() {
    let mut oa = alice();
    oa.create_offer(Direction::SendRecv);
    let answer = remote_offer(concat!(
        "m=audio 30000 RTP/AVP 18 8 0 111 101\r\n",
        "a=rtpmap:111 opus/48000\r\n",
        "a=rtpmap:101 telephone-event/8000\r\n",
        "a=recvonly\r\n",
    ));
    let negotiated = oa.receive_answer(&answer).unwrap();
    assert_eq!(negotiated.codec, PayloadFormat::new(8, "PCMA", 8000, None));
    assert_eq!(negotiated.telephone_event.unwrap().payload_type, 101);
    assert_eq!(negotiated.local_direction, Direction::SendOnly);
    assert!(!negotiated.remote_on_hold);

    oa.create_offer(Direction::SendRecv);
    let holding = remote_offer("m=audio 30000 RTP/AVP 0\r\na=sendonly\r\n");
    let negotiated = oa.receive_answer(&holding).unwrap();
    assert_eq!(negotiated.local_direction, Direction::RecvOnly);
    assert!(negotiated.remote_on_hold);
}

#[test]
fn answer_without_rtpmap_uses_our_mapping() {
    let mut oa = alice();
    oa.create_offer(Direction::SendRecv);
    let answer = remote_offer("m=audio 30000 RTP/AVP 111 110\r\n");
    let negotiated = oa.receive_answer(&answer).unwrap();
    assert_eq!(negotiated.codec.encoding, "opus");
    assert_eq!(negotiated.codec.channels, Some(2));
    assert_eq!(negotiated.telephone_event.unwrap().clock_rate, 48000);
}
