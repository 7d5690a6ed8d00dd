//! One engine driven directly, with every peer (far end, registrar, recorder) played by the
//! test on documentation addresses: for what a simulated phone or recorder would not do.

use core::time::Duration;

use super::*;
use crate::media::srtp::SrtpPolicy;

pub(super) const LOCAL: &str = "192.0.2.10";
pub(super) const FAR_TLS: &str = "192.0.2.1:5061";
pub(super) const FAR_UDP: &str = "192.0.2.1:5060";
pub(super) const RECORDER_TCP: &str = "192.0.2.7:5060";
pub(super) const FAR_KEY: &str = "dGxzLWRpYWxvZy10ZXN0LWtleS1vZi0zMC1ieXRl";

/// One engine and everything it has said, in virtual time.
pub(super) struct Phone {
    pub(super) engine: Engine,
    pub(super) now: Instant,
    pub(super) sent: Vec<(Destination, Vec<u8>)>,
    pub(super) events: Vec<Event>,
    /// Each media packet: from which socket pair, where to, and its bytes.
    pub(super) media_sent: Vec<(MediaSocket, core::net::SocketAddr, Vec<u8>)>,
    /// Each RTCP packet, the same way.
    pub(super) rtcp_sent: Vec<(MediaSocket, core::net::SocketAddr, Vec<u8>)>,
    /// Socket pairs the engine asked for mid-session, with the port each got.
    pub(super) bound: Vec<(MediaSocket, u16)>,
    bound_mid_session: u16,
}

impl Phone {
    pub(super) fn new(srtp: SrtpPolicy) -> Phone {
        Phone::configured(srtp, |_| {})
    }

    /// A phone whose configuration `configure` changes first.
    pub(super) fn configured(srtp: SrtpPolicy, configure: impl FnOnce(&mut EngineConfig)) -> Phone {
        let now = Instant::now();
        let listeners = [Transport::Udp, Transport::Tcp, Transport::Tls].map(|transport| {
            let port = transport.default_port();
            Destination::new(transport, format!("{LOCAL}:{port}").parse().unwrap())
        });
        let mut config = EngineConfig {
            listeners: listeners.to_vec(),
            srtp,
            key_source: KeySource::new(|buffer: &mut [u8]| buffer.fill(7)),
            seed: 3,
            // Scripted peers send no RTP; the call must outlast minutes of virtual time.
            no_media_timeout: None,
            // Scripted recorders answer only what a test scripts; probing has its own tests.
            recorder_probe_interval: None,
            ..EngineConfig::default()
        };
        configure(&mut config);
        let engine = Engine::new(config, now);
        let mut phone = Phone {
            engine,
            now,
            sent: Vec::new(),
            events: Vec::new(),
            media_sent: Vec::new(),
            rtcp_sent: Vec::new(),
            bound: Vec::new(),
            bound_mid_session: 0,
        };
        phone.drain();
        phone
    }

    pub(super) fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Output::Transmit { destination, data } => self.sent.push((destination, data)),
                Output::Event(event) => self.events.push(event),
                Output::Media {
                    socket,
                    destination,
                    data,
                    rtcp,
                } => {
                    let sent = if rtcp {
                        &mut self.rtcp_sent
                    } else {
                        &mut self.media_sent
                    };
                    sent.push((socket, destination, data));
                }
                Output::BindMedia { socket } => {
                    self.bound_mid_session += 1;
                    let port = 44_000 + 2 * self.bound_mid_session;
                    self.bound.push((socket, port));
                    self.engine.handle_input(
                        self.now,
                        Input::MediaBound {
                            socket,
                            port: Ok(port),
                        },
                    );
                }
                Output::Playback { .. } => {}
                Output::Timeout(_) => return,
            }
        }
    }

    pub(super) fn input(&mut self, input: Input) {
        self.engine.handle_input(self.now, input);
        self.drain();
    }

    pub(super) fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        while self.now < end {
            self.now += Duration::from_millis(100);
            self.input(Input::Timeout);
        }
    }

    pub(super) fn receive_from_far_end(&mut self, over: Destination, message: &Message) {
        let data = message.to_bytes();
        self.input(match over.transport {
            Transport::Udp => Input::Datagram { source: over, data },
            _ => Input::Stream { source: over, data },
        });
    }

    pub(super) fn dial(&mut self, target: &str, destination: Destination) -> CallId {
        let call = CallId(704);
        self.input(Input::Command(Command::Dial {
            call,
            request: DialRequest {
                target: Uri::parse(target).unwrap(),
                from: NameAddr::parse("<sip:alice@example.com>").unwrap(),
                destination,
                route: None,
                credentials: None,
                media_port: 40000,
                record: None,
                srtp: None,
                notice: None,
            },
        }));
        call
    }

    /// The messages sent so far, parsed, with where each went.
    pub(super) fn messages(&self) -> Vec<(Destination, Message)> {
        self.sent
            .iter()
            .map(|(d, data)| (*d, Message::parse(data).unwrap()))
            .collect()
    }

    /// Hangs up `call`, a call over UDP to the far end, whose BYE the far end answers.
    pub(super) fn hang_up_over_udp(&mut self, call: CallId) {
        self.input(Input::Command(Command::Hangup { call }));
        let bye = self
            .messages()
            .into_iter()
            .rev()
            .find_map(|(_, m)| (m.method() == Some(&Method::Bye)).then_some(m))
            .unwrap();
        self.receive_from_far_end(udp(FAR_UDP), &bye.response(200, "OK", None));
    }

    pub(super) fn end_reason(&self, call: CallId) -> Option<String> {
        self.events.iter().find_map(|e| match e {
            Event::CallEnded { call: c, reason } if *c == call => Some(reason.text.clone()),
            _ => None,
        })
    }
}

pub(super) fn tls(address: &str) -> Destination {
    Destination::new(Transport::Tls, address.parse().unwrap())
}

pub(super) fn udp(address: &str) -> Destination {
    Destination::new(Transport::Udp, address.parse().unwrap())
}

/// The metadata a recording session's INVITE carries.
pub(super) fn metadata_of(rs_invite: &Message) -> crate::recording::metadata::Metadata {
    use crate::sip::multipart;
    let content_type = rs_invite.headers.get("Content-Type").unwrap();
    let parts = multipart::parse(content_type, &rs_invite.body).unwrap();
    let xml = multipart::find(&parts, multipart::METADATA_CONTENT_TYPE).unwrap();
    crate::recording::metadata::parse(&String::from_utf8_lossy(&xml.body)).unwrap()
}

pub(super) fn body(message: &Message) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

/// The far end's 2xx to `invite`: PCMU, SRTP when offered, `contact` as its Contact.
pub(super) fn answer(invite: &Message, contact: &str) -> Message {
    let mut ok = invite.response(200, "OK", Some("far1"));
    ok.headers.push("Contact", contact);
    let offer = body(invite);
    let (proto, crypto) = if offer.contains("RTP/SAVP") {
        (
            "RTP/SAVP",
            format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{FAR_KEY}\r\n"),
        )
    } else {
        ("RTP/AVP", String::new())
    };
    let sdp = format!(
        "v=0\r\no=far 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 30000 {proto} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}a=sendrecv\r\n"
    );
    ok.set_body("application/sdp", sdp.into_bytes());
    ok
}

pub(super) fn invite_sent(phone: &Phone) -> Message {
    phone
        .messages()
        .into_iter()
        .find(|(_, m)| m.method() == Some(&Method::Invite))
        .map(|(_, m)| m)
        .unwrap()
}

/// A call to the far end over TLS with mandatory SRTP, answered with `contact`.
pub(super) fn tls_call_answered_with(contact: &str) -> (Phone, CallId) {
    let mut phone = Phone::new(SrtpPolicy::Mandatory);
    let call = phone.dial(&format!("sips:bob@{FAR_TLS}"), tls(FAR_TLS));
    let invite = invite_sent(&phone);
    assert!(
        body(&invite).contains("inline:"),
        "SRTP is offered over TLS"
    );
    phone.receive_from_far_end(tls(FAR_TLS), &answer(&invite, contact));
    (phone, call)
}

/// The recording's packets during a second of the call's audio: where each went, and its
/// RTP payload type.
pub(super) fn recording_rtp_during_a_second(
    phone: &mut Phone,
    call: CallId,
) -> Vec<(core::net::SocketAddr, u8)> {
    phone.media_sent.clear();
    for _ in 0..50 {
        phone.input(Input::MediaTick {
            call,
            captured: vec![0.1; crate::media::FRAME_SAMPLES],
        });
        phone.run_for(Duration::from_millis(20));
    }
    phone
        .media_sent
        .iter()
        .filter(|(socket, _, _)| matches!(socket, MediaSocket::Recording { .. }))
        .map(|(_, to, data)| (*to, data.get(1).map_or(0, |b| b & 0x7f)))
        .collect()
}

/// Every recording state the phone reported, in order.
pub(super) fn states(phone: &Phone) -> Vec<RecordingState> {
    phone
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Recording { state, .. } => Some(state.clone()),
            _ => None,
        })
        .collect()
}
