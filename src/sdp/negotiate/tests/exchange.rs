//! Two endpoints negotiating with each other over the wire: a plain call, hold and resume,
//! and the offer carried in a 200 OK.

use super::*;

#[test]
fn offer_and_answer_between_two_endpoints() {
    let mut alice = alice();
    let mut bob = bob();
    let offer = offer_over_wire(&mut alice, Direction::SendRecv);
    let answer = answer_over_wire(&mut bob, &offer, Direction::SendRecv);
    let types = payload_types(&answer.media[0]);
    // Alice's order, Bob's codecs.
    assert_eq!(types, [0, 8, 101]);
    let at_alice = alice.receive_answer(&answer).unwrap();
    let at_bob = bob.negotiated().unwrap().clone();
    assert_eq!(at_alice.codec.encoding, "PCMU");
    assert_eq!(at_bob.codec.encoding, "PCMU");
    assert_eq!(at_alice.remote_address, ip("198.51.100.20"));
    assert_eq!(at_alice.remote_rtp_port, 50000);
    assert_eq!(at_bob.remote_address, ip("192.0.2.10"));
    assert_eq!(at_bob.remote_rtp_port, 40000);
    assert_eq!(at_alice.telephone_event.as_ref().unwrap().payload_type, 101);
    assert_eq!(at_alice.local_direction, Direction::SendRecv);
    assert!(!alice.offer_pending());
    assert_eq!(alice.negotiated(), Some(&at_alice));
}

#[test]
fn hold_and_resume_between_two_endpoints() {
    use Direction::*;
    let mut alice = alice();
    let mut bob = bob();
    let offer = offer_over_wire(&mut alice, SendRecv);
    alice
        .receive_answer(&answer_over_wire(&mut bob, &offer, SendRecv))
        .unwrap();

    // Alice holds.
    let hold = wire(&alice.create_offer(alice.offer_direction(true)));
    assert_eq!(hold.media[0].direction, SendOnly);
    assert_eq!(hold.origin.session_version, 6);
    let answer = answer_over_wire(&mut bob, &hold, SendRecv);
    assert_eq!(answer.media[0].direction, RecvOnly);
    assert!(bob.negotiated().unwrap().remote_on_hold);
    let at_alice = alice.receive_answer(&answer).unwrap();
    assert_eq!(at_alice.local_direction, SendOnly);
    assert!(!at_alice.remote_on_hold);

    // Bob holds too: he must offer inactive.
    let both = wire(&bob.create_offer(bob.offer_direction(true)));
    assert_eq!(both.media[0].direction, Inactive);
    let answer = answer_over_wire(&mut alice, &both, SendOnly);
    assert_eq!(answer.media[0].direction, Inactive);
    assert!(alice.negotiated().unwrap().remote_on_hold);
    let at_bob = bob.receive_answer(&answer).unwrap();
    assert_eq!(at_bob.local_direction, Inactive);
    // Offering inactive tells nothing new about Alice, who still holds.
    assert!(at_bob.remote_on_hold);

    // Alice resumes while Bob still holds: recvonly.
    let resume = wire(&alice.create_offer(alice.offer_direction(false)));
    assert_eq!(resume.media[0].direction, RecvOnly);
    let answer = answer_over_wire(&mut bob, &resume, SendOnly);
    assert_eq!(answer.media[0].direction, SendOnly);
    let at_alice = alice.receive_answer(&answer).unwrap();
    assert_eq!(at_alice.local_direction, RecvOnly);
    assert!(at_alice.remote_on_hold);
    assert!(!bob.negotiated().unwrap().remote_on_hold);
}

#[test]
fn offerless_invite_offer_in_200_answer_in_ack() {
    // The UAS got an INVITE without SDP: it offers in the 200 OK...
    let mut uas = bob();
    let offer = offer_over_wire(&mut uas, Direction::SendRecv);
    // ...the UAC, which sent no SDP, answers in the ACK...
    let mut uac = alice();
    let answer = answer_over_wire(&mut uac, &offer, Direction::SendRecv);
    // ...and the UAS takes the answer from the ACK.
    let negotiated = uas.receive_answer(&answer).unwrap();
    assert_eq!(negotiated.codec.encoding, "PCMA");
    assert_eq!(negotiated.remote_rtp_port, 40000);
    assert_eq!(uac.negotiated().unwrap().codec.encoding, "PCMA");
}
