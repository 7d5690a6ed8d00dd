//! SRTP with SDES keys: what each policy offers and accepts, which crypto lines count, and
//! keys that cross over, survive re-offers and never show in `Debug` output.

use super::*;
use crate::media::srtp::{CryptoSuite, KEY_SALT_LEN, SrtpPolicy};

const SUITE_80: CryptoSuite = CryptoSuite::AesCm128HmacSha1_80;

const SUITE_32: CryptoSuite = CryptoSuite::AesCm128HmacSha1_32;

fn key(seed: u8) -> [u8; KEY_SALT_LEN] {
    core::array::from_fn(|i| seed.wrapping_add(7 * i as u8))
}

fn inline(key: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn crypto_line(tag: u32, suite: &str, key: &[u8]) -> String {
    format!("a=crypto:{tag} {suite} inline:{}\r\n", inline(key))
}

fn with_srtp(policy: SrtpPolicy, seed: u8) -> OfferAnswer {
    OfferAnswer::new(
        caps(vec![Codec::Pcmu, Codec::Pcma]).with_srtp(policy, key(seed)),
        1,
        1,
    )
}

fn crypto_of(media: &MediaDescription) -> Vec<CryptoAttribute> {
    media
        .attributes
        .iter()
        .filter(|a| a.name == "crypto")
        .map(|a| CryptoAttribute::parse(a.value.as_deref().unwrap()).unwrap())
        .collect()
}

/// Whether every `a=crypto` line of the audio stream carries the key of `seed`.
fn carries_only_key(sdp: &SessionDescription, seed: u8) -> bool {
    crypto_of(&sdp.media[0])
        .iter()
        .all(|c| c.key_salt == key(seed))
}

/// The SRTP keying `oa` agreed on in its last exchange, which the test expects to exist.
fn agreed_srtp(oa: &OfferAnswer) -> NegotiatedSrtp {
    oa.negotiated().unwrap().srtp.clone().unwrap()
}

/// A peer's PCMU stream with the given profile and extra lines.
fn peer_stream(profile: &str, lines: &str) -> String {
    format!("m=audio 30000 {profile} 0\r\n{lines}")
}

#[test]
fn mandatory_offers_savp_with_both_suites_and_our_key() {
    let mut oa = with_srtp(SrtpPolicy::Mandatory, 10);
    let offer = offer_over_wire(&mut oa, Direction::SendRecv);
    let audio = &offer.media[0];
    assert_eq!(audio.proto, "RTP/SAVP");
    let lines = crypto_of(audio);
    assert_eq!(
        lines,
        [
            CryptoAttribute::new(1, SUITE_80, key(10)),
            CryptoAttribute::new(2, SUITE_32, key(10)),
        ]
    );
    let text = offer.to_string();
    assert!(
        text.contains("m=audio 40000 RTP/SAVP 0 8 101\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n",
        inline(&key(10))
    )));
    assert!(text.contains(&format!(
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n",
        inline(&key(10))
    )));
}

#[test]
fn optional_offers_avp_with_crypto_and_off_offers_plain_avp() {
    let mut optional = with_srtp(SrtpPolicy::Optional, 10);
    let offer = optional.create_offer(Direction::SendRecv);
    assert_eq!(offer.media[0].proto, "RTP/AVP");
    assert_eq!(crypto_of(&offer.media[0]).len(), 2);

    let mut off = with_srtp(SrtpPolicy::Off, 10);
    let offer = off.create_offer(Direction::SendRecv);
    assert_eq!(offer.media[0].proto, "RTP/AVP");
    assert!(offer.media[0].attributes.is_empty());
    assert!(!offer.to_string().contains("crypto"));
}

#[test]
fn missing_key_makes_optional_plain_and_mandatory_fail_closed() {
    let mut optional = alice();
    optional.capabilities_mut().srtp = SrtpPolicy::Optional;
    let offer = optional.create_offer(Direction::SendRecv);
    assert_eq!(offer.media[0].proto, "RTP/AVP");
    assert!(offer.media[0].attributes.is_empty());
    optional.cancel_offer();
    let peer = remote_offer(&peer_stream(
        "RTP/AVP",
        &crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(50)),
    ));
    optional.receive_offer(&peer, Direction::SendRecv).unwrap();
    assert_eq!(optional.negotiated().unwrap().srtp, None);

    let mut mandatory = alice();
    mandatory.capabilities_mut().srtp = SrtpPolicy::Mandatory;
    let offer = mandatory.create_offer(Direction::SendRecv);
    assert_eq!(offer.media[0].proto, "RTP/SAVP");
    assert!(offer.media[0].attributes.is_empty());
    mandatory.cancel_offer();
    let error = mandatory
        .receive_offer(&peer, Direction::SendRecv)
        .unwrap_err();
    assert_eq!(error, SdpError::SrtpKeyMissing);
    assert_eq!(error.sip_status(), 500);
    assert!(mandatory.negotiated().is_none());
}

#[test]
fn answer_to_savp_takes_the_first_supported_line_with_our_key() {
    let mut oa = with_srtp(SrtpPolicy::Optional, 20);
    let lines = [
        crypto_line(1, "AES_256_CM_HMAC_SHA1_80", &[1; 46]),
        crypto_line(2, "AES_CM_128_HMAC_SHA1_80", &[2; 16]),
        format!(
            "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31|1:4\r\n",
            inline(&key(3))
        ),
        format!(
            "a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{} UNENCRYPTED_SRTCP\r\n",
            inline(&key(4))
        ),
        format!(
            "a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{}|2^31 KDR=0 WSH=128\r\n",
            inline(&key(5))
        ),
        crypto_line(6, "AES_CM_128_HMAC_SHA1_80", &key(6)),
    ]
    .concat();
    let offer = remote_offer(&peer_stream("RTP/SAVP", &lines));
    let answer = answer_over_wire(&mut oa, &offer, Direction::SendRecv);
    let audio = &answer.media[0];
    assert_eq!((audio.port, audio.proto.as_str()), (40000, "RTP/SAVP"));
    assert_eq!(
        crypto_of(audio),
        [CryptoAttribute::new(5, SUITE_32, key(20))]
    );
    let srtp = agreed_srtp(&oa);
    assert_eq!(srtp.suite, SUITE_32);
    assert_eq!(srtp.local_key_salt, key(20));
    assert_eq!(srtp.remote_key_salt, key(5));
}

#[test]
fn savp_is_refused_when_srtp_is_off() {
    let crypto = crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(50));
    let both = remote_offer(&format!(
        "{}{}",
        peer_stream("RTP/SAVP", &crypto),
        "m=audio 30002 RTP/AVP 8\r\n"
    ));
    let mut oa = with_srtp(SrtpPolicy::Off, 10);
    let answer = oa.receive_offer(&both, Direction::SendRecv).unwrap();
    let ports: Vec<u16> = answer.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 40000]);
    assert_eq!(answer.media[0].proto, "RTP/SAVP");
    assert!(!answer.to_string().contains("crypto"));
    assert_eq!(oa.negotiated().unwrap().srtp, None);
    assert_eq!(oa.negotiated().unwrap().remote_rtp_port, 30002);

    let mut oa = with_srtp(SrtpPolicy::Off, 10);
    let only = remote_offer(&peer_stream("RTP/SAVP", &crypto));
    let error = oa.receive_offer(&only, Direction::SendRecv).unwrap_err();
    assert_eq!(error, SdpError::SrtpNotEnabled);
    assert_eq!(error.sip_status(), 488);
    assert!(oa.negotiated().is_none() && oa.local_description().is_none());
}

#[test]
fn avp_with_crypto_follows_the_policy() {
    let offer = remote_offer(&peer_stream(
        "RTP/AVP",
        &crypto_line(7, "AES_CM_128_HMAC_SHA1_80", &key(50)),
    ));
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Mandatory] {
        let mut oa = with_srtp(policy, 10);
        let answer = answer_over_wire(&mut oa, &offer, Direction::SendRecv);
        assert_eq!(answer.media[0].proto, "RTP/AVP", "{policy}");
        assert_eq!(
            crypto_of(&answer.media[0]),
            [CryptoAttribute::new(7, SUITE_80, key(10))]
        );
        let srtp = agreed_srtp(&oa);
        assert_eq!(
            (srtp.suite, srtp.local_key_salt, srtp.remote_key_salt),
            (SUITE_80, key(10), key(50))
        );
    }
    let mut off = with_srtp(SrtpPolicy::Off, 10);
    let answer = off.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert_eq!(answer.media[0].proto, "RTP/AVP");
    assert!(answer.media[0].attributes.is_empty());
    assert_eq!(off.negotiated().unwrap().srtp, None);
}

#[test]
fn plain_avp_under_mandatory_is_a_488_srtp_required() {
    let offer = remote_offer(&peer_stream("RTP/AVP", ""));
    let mut oa = with_srtp(SrtpPolicy::Mandatory, 10);
    let error = oa.receive_offer(&offer, Direction::SendRecv).unwrap_err();
    assert_eq!(error, SdpError::SrtpRequired);
    assert_eq!(error.to_string(), "SRTP required");
    assert_eq!(error.sip_status(), 488);
    assert!(oa.negotiated().is_none());

    let mut optional = with_srtp(SrtpPolicy::Optional, 10);
    let answer = optional.receive_offer(&offer, Direction::SendRecv).unwrap();
    assert!(answer.media[0].attributes.is_empty());
    assert_eq!(optional.negotiated().unwrap().srtp, None);

    // A codec mismatch stays a codec mismatch.
    let pcmu_only = remote_offer("m=audio 30000 RTP/AVP 18\r\n");
    assert_eq!(
        oa.receive_offer(&pcmu_only, Direction::SendRecv),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn unsupported_crypto_lines_only() {
    let aes256 = crypto_line(1, "AES_256_CM_HMAC_SHA1_80", &[1; 46]);
    let avp = remote_offer(&peer_stream("RTP/AVP", &aes256));
    let savp = remote_offer(&peer_stream("RTP/SAVP", &aes256));
    let savp_without_crypto = remote_offer(&peer_stream("RTP/SAVP", ""));

    let mut optional = with_srtp(SrtpPolicy::Optional, 10);
    optional.receive_offer(&avp, Direction::SendRecv).unwrap();
    assert_eq!(optional.negotiated().unwrap().srtp, None);
    for offer in [&savp, &savp_without_crypto] {
        assert_eq!(
            with_srtp(SrtpPolicy::Optional, 10).receive_offer(offer, Direction::SendRecv),
            Err(SdpError::NoCryptoSuite)
        );
    }
    for offer in [&avp, &savp, &savp_without_crypto] {
        assert_eq!(
            with_srtp(SrtpPolicy::Mandatory, 10).receive_offer(offer, Direction::SendRecv),
            Err(SdpError::NoCryptoSuite)
        );
    }
}

#[test]
fn answer_crypto_must_be_one_of_our_lines() {
    let answer_with = |lines: &str| remote_offer(&peer_stream("RTP/AVP", lines));
    let good = crypto_line(2, "AES_CM_128_HMAC_SHA1_32", &key(60));
    let bad_answers = [
        crypto_line(3, "AES_CM_128_HMAC_SHA1_80", &key(60)),
        crypto_line(1, "AES_CM_128_HMAC_SHA1_32", &key(60)),
        crypto_line(2, "AES_CM_128_HMAC_SHA1_32", &[6; 20]),
        format!("{good}{good}"),
        format!(
            "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}|1:4\r\n",
            inline(&key(60))
        ),
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32\r\n".to_owned(),
    ];
    for lines in &bad_answers {
        let mut oa = with_srtp(SrtpPolicy::Optional, 10);
        oa.create_offer(Direction::SendRecv);
        assert_eq!(
            oa.receive_answer(&answer_with(lines)),
            Err(SdpError::CryptoMismatch),
            "{lines}"
        );
        assert!(oa.negotiated().is_none());
        assert!(!oa.offer_pending());
    }

    let mut oa = with_srtp(SrtpPolicy::Optional, 10);
    oa.create_offer(Direction::SendRecv);
    let srtp = oa
        .receive_answer(&answer_with(&good))
        .unwrap()
        .srtp
        .unwrap();
    assert_eq!(
        (srtp.suite, srtp.local_key_salt, srtp.remote_key_salt),
        (SUITE_32, key(10), key(60))
    );

    // Optional accepts a plain answer; Mandatory does not.
    oa.create_offer(Direction::SendRecv);
    assert_eq!(oa.receive_answer(&answer_with("")).unwrap().srtp, None);
    let mut mandatory = with_srtp(SrtpPolicy::Mandatory, 10);
    mandatory.create_offer(Direction::SendRecv);
    assert_eq!(
        mandatory.receive_answer(&remote_offer(&peer_stream("RTP/SAVP", ""))),
        Err(SdpError::SrtpRequired)
    );

    // Crypto we never offered.
    let mut off = with_srtp(SrtpPolicy::Off, 10);
    off.create_offer(Direction::SendRecv);
    assert_eq!(
        off.receive_answer(&answer_with(&good)),
        Err(SdpError::CryptoMismatch)
    );
}

#[test]
fn answer_is_checked_against_the_offer_as_it_was_sent() {
    let mut oa = with_srtp(SrtpPolicy::Optional, 10);
    oa.create_offer(Direction::SendRecv);
    oa.capabilities_mut().srtp_key_salt = Some(key(11));
    oa.capabilities_mut().srtp = SrtpPolicy::Off;
    let answer = remote_offer(&peer_stream(
        "RTP/AVP",
        &crypto_line(1, "AES_CM_128_HMAC_SHA1_80", &key(60)),
    ));
    let srtp = oa.receive_answer(&answer).unwrap().srtp.unwrap();
    assert_eq!(srtp.local_key_salt, key(10));
}

#[test]
fn two_endpoints_negotiate_srtp_and_their_keys_cross_over() {
    let mut alice = OfferAnswer::new(
        caps(vec![OPUS, Codec::Pcmu]).with_srtp(SrtpPolicy::Mandatory, key(100)),
        1000,
        5,
    );
    let mut bob = OfferAnswer::new(
        LocalCapabilities::new(ip("198.51.100.20"), 50000, vec![Codec::Pcmu])
            .with_srtp(SrtpPolicy::Optional, key(200)),
        2000,
        1,
    );
    let offer = offer_over_wire(&mut alice, Direction::SendRecv);
    let answer = answer_over_wire(&mut bob, &offer, Direction::SendRecv);
    assert_eq!(answer.media[0].proto, "RTP/SAVP");
    let at_alice = alice.receive_answer(&answer).unwrap().srtp.unwrap();
    let at_bob = agreed_srtp(&bob);
    assert_eq!(at_alice.suite, SUITE_80);
    assert_eq!(at_bob.suite, SUITE_80);
    assert_eq!(at_alice.local_key_salt, key(100));
    assert_eq!(at_alice.local_key_salt, at_bob.remote_key_salt);
    assert_eq!(at_bob.local_key_salt, at_alice.remote_key_salt);
    assert_ne!(at_alice.local_key_salt, at_alice.remote_key_salt);

    let mut alice_media = at_alice.session().unwrap();
    let mut bob_media = at_bob.session().unwrap();
    let packet = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 0xd5, 0xd5, 0xd5];
    let sent = alice_media.protect_rtp(&packet).unwrap();
    assert_eq!(bob_media.unprotect_rtp(&sent).unwrap(), packet);
    let reply = bob_media.protect_rtp(&packet).unwrap();
    assert_eq!(alice_media.unprotect_rtp(&reply).unwrap(), packet);
}

#[test]
fn reoffers_keep_the_keys_until_the_caller_changes_them() {
    let mut alice = with_srtp(SrtpPolicy::Optional, 100);
    let mut bob = with_srtp(SrtpPolicy::Optional, 200);
    let offer = offer_over_wire(&mut alice, Direction::SendRecv);
    let first = alice
        .receive_answer(&wire(
            &bob.receive_offer(&offer, Direction::SendRecv).unwrap(),
        ))
        .unwrap()
        .srtp
        .unwrap();

    // Alice holds: same key, same tags, so the negotiated keying is unchanged.
    let hold = offer_over_wire(&mut alice, Direction::SendOnly);
    assert!(carries_only_key(&hold, 100));
    let answer = answer_over_wire(&mut bob, &hold, Direction::SendRecv);
    assert_eq!(agreed_srtp(&bob).remote_key_salt, key(100));
    assert_eq!(
        alice.receive_answer(&answer).unwrap().srtp,
        Some(first.clone())
    );

    // Bob, the first answerer, re-offers with the key he answered with.
    let reoffer = offer_over_wire(&mut bob, Direction::SendRecv);
    assert!(carries_only_key(&reoffer, 200));
    let answer = answer_over_wire(&mut alice, &reoffer, Direction::SendRecv);
    bob.receive_answer(&answer).unwrap();
    assert_eq!(alice.negotiated().unwrap().srtp, Some(first.clone()));

    // A new key from the caller goes into the next offer.
    alice.capabilities_mut().srtp_key_salt = Some(key(111));
    let rekey = offer_over_wire(&mut alice, Direction::SendRecv);
    assert!(carries_only_key(&rekey, 111));
    let answer = answer_over_wire(&mut bob, &rekey, Direction::SendRecv);
    let rekeyed = alice.receive_answer(&answer).unwrap().srtp.unwrap();
    assert_eq!(rekeyed.local_key_salt, key(111));
    assert_eq!(rekeyed.remote_key_salt, first.remote_key_salt);
    assert_eq!(agreed_srtp(&bob).remote_key_salt, key(111));
}

#[test]
fn debug_output_never_shows_keys() {
    let mut alice = with_srtp(SrtpPolicy::Mandatory, 100);
    let mut bob = with_srtp(SrtpPolicy::Optional, 200);
    let offer = offer_over_wire(&mut alice, Direction::SendRecv);
    let answer = answer_over_wire(&mut bob, &offer, Direction::SendRecv);
    alice.receive_answer(&answer).unwrap();
    let texts = [
        format!("{alice:?}"),
        format!("{bob:?}"),
        format!("{:?}", alice.negotiated()),
        format!("{:?}", alice.capabilities()),
        format!("{offer:?}"),
        format!("{answer:?}"),
    ];
    for text in &texts {
        for secret in [key(100), key(200)] {
            assert!(!text.contains(&inline(&secret)[..12]), "{text}");
            let bytes = format!("{:?}", &secret[..4]);
            assert!(!text.contains(bytes.trim_matches(['[', ']'])), "{text}");
        }
    }
    assert!(texts[2].contains("AesCm128HmacSha1_80"), "{}", texts[2]);
    assert!(texts[3].contains("Mandatory"), "{}", texts[3]);
}
