//! "Test recorder": does the configured SRS answer, and does it take a recording session?
//! OPTIONS first (what it says it supports), then a short test recording session: a SIPREC
//! INVITE for a made-up call with both streams inactive (no media is sent), answered, ACKed
//! and ended with BYE. Each step's finding is reported in words.

use super::answer_sdp;
use crate::engine::invite_session::InviteSession;
use crate::engine::{CheckId, Engine, Event, TxOwner};
use crate::recording::metadata;
use crate::recording::rs_sdp::{self, RsOffer};
use crate::sdp::Direction;
use crate::sip::auth::{ChallengeError, Credentials, DigestSession, Retried, answer_challenge};
use crate::sip::dialog::{Dialog, DialogSecurity};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::multipart;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

/// What the front end asks to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderCheckRequest {
    pub srs: Uri,
    pub destination: Destination,
    pub credentials: Option<Credentials>,
    /// Who the test session says is recording (the user's address).
    pub identity: NameAddr,
}

#[derive(Debug)]
pub(in crate::engine) struct RecorderCheck {
    /// The test session (the OPTIONS before it goes out of dialog, to the same first hop).
    session: InviteSession,
    stage: Stage,
    offer: RsOffer,
    body: (String, Vec<u8>),
    findings: Vec<String>,
}

impl RecorderCheck {
    pub(in crate::engine) fn session(&self) -> &InviteSession {
        &self.session
    }

    pub(in crate::engine) fn session_mut(&mut self) -> &mut InviteSession {
        &mut self.session
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Options,
    Invite,
    Bye,
}

impl Engine {
    pub(in crate::engine) fn check_recorder(
        &mut self,
        check: CheckId,
        request: RecorderCheckRequest,
    ) {
        let user = request
            .identity
            .uri
            .user
            .clone()
            .unwrap_or_else(|| self.config.contact_user.clone());
        let contact = format!(
            "{};+sip.src",
            self.contact_for(request.destination.transport, &user)
        );
        let dialog = Dialog {
            call_id: format!("{}@verbatim", self.rng.token(20)),
            local_tag: self.rng.token(10),
            remote_tag: None,
            local_uri: request.identity.clone(),
            remote_uri: NameAddr::new(request.srs.clone()),
            local_cseq: 0,
            remote_cseq: None,
            remote_target: request.srs.clone(),
            route_set: Vec::new(),
            local_contact: contact,
            security: DialogSecurity::of(&request.srs, request.destination.transport),
        };
        let session_id = self.rng.next_u64() >> 2;
        // A made-up call: no codec of its own comes first.
        let (codecs, telephone_event) = self.recording_codecs(None, Default::default());
        let offer = RsOffer {
            address: self.local_ip(),
            // Inactive streams carry nothing; the discard port says so too.
            ports: vec![9],
            codecs,
            telephone_event,
            labels: vec!["1".into(), "2".into()],
            voices: rs_sdp::voices_for(2),
            direction: Direction::Inactive,
            keys: None,
            session_id,
            session_version: session_id,
        };
        let xml = self.test_metadata(&request.identity);
        let sdp = rs_sdp::offer(&offer).to_string().into_bytes();
        let body = self.sdp_and_metadata(sdp, xml);
        let mut session = self.new_invite_session(dialog, request.destination);
        session.digest = request.credentials.clone().map(DigestSession::new);
        self.recorder_checks.insert(
            check,
            RecorderCheck {
                session,
                stage: Stage::Options,
                offer,
                body,
                findings: Vec::new(),
            },
        );
        self.send_check_request(check, None);
    }

    /// A made-up two-party call: the user and "Recording test".
    fn test_metadata(&mut self, identity: &NameAddr) -> Vec<u8> {
        let now = metadata::format_time(self.wall_clock());
        let mut tester = NameAddr::new(Uri::sip(Some("recording-test"), "verbatim.invalid", None));
        tester.display_name = Some("Recording test".into());
        let party = |who: &NameAddr, id: String| metadata::Party {
            participant_id: id,
            aor: who.uri.to_string(),
            name: who.display_name.clone(),
        };
        let snapshot = metadata::two_party_snapshot(metadata::TwoParty {
            session_id: self.new_id(),
            sip_session_id: String::new(),
            group_id: self.new_id(),
            start_time: now.clone(),
            local: party(identity, self.new_id()),
            remote: party(&tester, self.new_id()),
            streams: vec![
                metadata::StreamSpec {
                    stream_id: self.new_id(),
                    label: "1".into(),
                    sender: metadata::StreamSender::Local,
                },
                metadata::StreamSpec {
                    stream_id: self.new_id(),
                    label: "2".into(),
                    sender: metadata::StreamSender::Remote,
                },
            ],
            associate_time: now,
        });
        snapshot.to_xml().into_bytes()
    }

    /// The current stage's request (again, with credentials, after a challenge).
    fn send_check_request(&mut self, check: CheckId, authorization: Option<(String, String)>) {
        let Some(state) = self.recorder_checks.get_mut(&check) else {
            return;
        };
        let method = match state.stage {
            Stage::Options => Method::Options,
            Stage::Invite => Method::Invite,
            Stage::Bye => Method::Bye,
        };
        let mut request = state.session.dialog.request(method);
        match state.stage {
            Stage::Options => {
                request.headers.push(
                    "Accept",
                    format!(
                        "{}, {}",
                        multipart::SDP_CONTENT_TYPE,
                        multipart::METADATA_CONTENT_TYPE
                    ),
                );
            }
            Stage::Invite => {
                request.headers.push("Require", "siprec");
                request.set_body(&state.body.0, state.body.1.clone());
            }
            Stage::Bye => {}
        }
        if let Some((name, value)) = authorization {
            request.headers.push(&name, value);
        }
        let destination = match state.stage {
            Stage::Bye => state.session.next_hop(),
            Stage::Options | Stage::Invite => state.session.first_hop,
        };
        if self
            .start_client_tx(request, destination, TxOwner::RecorderCheck(check))
            .is_none()
        {
            self.finish_check(check, "the request could not be sent");
        }
    }

    pub(in crate::engine) fn on_check_response(&mut self, check: CheckId, response: &Message) {
        let Some(status) = response.status() else {
            return;
        };
        let Some(state) = self.recorder_checks.get(&check) else {
            return;
        };
        let stage = state.stage;
        if status < 200 {
            return;
        }
        if stage == Stage::Invite
            && (200..300).contains(&status)
            && let Some(ack) = state.session.ack.clone()
        {
            // Our ACK was lost: the 2xx came again.
            self.transmits.push_back(ack);
            return;
        }
        if matches!(status, 401 | 407) && stage != Stage::Bye {
            self.answer_check_challenge(check, status, response);
            return;
        }
        let phrase = response
            .reason()
            .unwrap_or(reason_phrase(status))
            .to_owned();
        match stage {
            Stage::Options => {
                let finding = if (200..300).contains(&status) {
                    let siprec = response.headers.has_token("Supported", "siprec")
                        || response.headers.has_token("Require", "siprec");
                    if siprec {
                        format!("OPTIONS: {status} {phrase}; it supports siprec")
                    } else {
                        format!("OPTIONS: {status} {phrase}; it does not list siprec as supported")
                    }
                } else {
                    format!("OPTIONS: {status} {phrase}")
                };
                self.next_check_stage(check, finding, Stage::Invite);
            }
            Stage::Invite if (200..300).contains(&status) => {
                let finding = self.accept_test_session(check, response);
                self.next_check_stage(check, finding, Stage::Bye);
            }
            Stage::Invite => {
                let why = if status == 420 {
                    " (it is not a SIPREC recorder)".to_owned()
                } else {
                    String::new()
                };
                self.note_check(
                    check,
                    format!("test recording session refused: {status} {phrase}{why}"),
                );
                self.finish_check(check, "");
            }
            Stage::Bye => {
                self.note_check(check, format!("test recording session ended ({status})"));
                self.finish_check(check, "");
            }
        }
    }

    /// The 2xx to the test INVITE: ACK it and say what the recorder answered.
    fn accept_test_session(&mut self, check: CheckId, response: &Message) -> String {
        let Some(state) = self.recorder_checks.get_mut(&check) else {
            return String::new();
        };
        // The answer would take the session off TLS: it is still ACKed and ended, over TLS.
        let leaves_tls = state.session.dialog.establish_as_uac(response).err();
        state.session.connected = true;
        let ack = state.session.ack_for(response);
        let destination = state.session.next_hop();
        let sent = self.send_2xx_ack(ack, destination);
        if let Some(state) = self.recorder_checks.get_mut(&check) {
            state.session.ack = sent;
        }
        if let Some(error) = leaves_tls {
            return format!(
                "test recording session refused here: the recorder's answer names {}, \
                 which is not TLS; a recording would send its SRTP keys in the clear",
                error.uri
            );
        }
        let Some(state) = self.recorder_checks.get(&check) else {
            return String::new();
        };
        match answer_sdp(response).map(|sdp| rs_sdp::read_answer(&state.offer, &sdp)) {
            Some(Ok(streams)) => {
                let accepted: Vec<String> = streams
                    .iter()
                    .filter(|s| s.accepted)
                    .map(|s| format!("label {} in {}", s.label, s.codec.encoding))
                    .collect();
                if accepted.is_empty() {
                    "test recording session accepted, but every stream was refused".into()
                } else {
                    format!("test recording session accepted: {}", accepted.join(", "))
                }
            }
            Some(Err(error)) => format!("test recording session accepted, but its SDP: {error}"),
            None => "test recording session accepted, but without an SDP answer".into(),
        }
    }

    fn answer_check_challenge(&mut self, check: CheckId, status: u16, response: &Message) {
        let cnonce = self.rng.token(16);
        let Some(state) = self.recorder_checks.get_mut(&check) else {
            return;
        };
        let (method, body) = match state.stage {
            Stage::Invite => ("INVITE", state.body.1.clone()),
            _ => ("OPTIONS", Vec::new()),
        };
        let uri = state.session.dialog.remote_target.to_string();
        let retried = Retried {
            method,
            uri: &uri,
            body: &body,
            cnonce: &cnonce,
        };
        match answer_challenge(state.session.digest.as_mut(), response, retried) {
            Ok(auth) => {
                let header = (auth.name().to_owned(), auth.value());
                self.send_check_request(check, Some(header));
            }
            Err(ChallengeError::NoCredentials) => {
                self.note_check(
                    check,
                    format!("it asks for a password ({status}) and none is configured"),
                );
                self.finish_check(check, "");
            }
            Err(ChallengeError::NoUsableChallenge) => {
                self.finish_check(check, "its challenge has no usable digest");
            }
            Err(ChallengeError::Refused(error)) => {
                self.finish_check(check, &format!("it refused our credentials: {error}"));
            }
            Err(ChallengeError::CannotAnswer(error)) => {
                self.finish_check(check, &format!("cannot answer its challenge: {error}"));
            }
        }
    }

    pub(in crate::engine) fn on_check_timeout(&mut self, check: CheckId) {
        let Some(stage) = self.recorder_checks.get(&check).map(|s| s.stage) else {
            return;
        };
        match stage {
            // Some recorders ignore OPTIONS; the session is what matters.
            Stage::Options => self.next_check_stage(
                check,
                "OPTIONS: no answer (unreachable, or it ignores OPTIONS)".into(),
                Stage::Invite,
            ),
            Stage::Invite => self.finish_check(check, "test recording session: no answer"),
            Stage::Bye => self.finish_check(check, "the test session's BYE got no answer"),
        }
    }

    fn next_check_stage(&mut self, check: CheckId, finding: String, next: Stage) {
        self.note_check(check, finding);
        // The test session is a dialog of its own, not a sequel of the OPTIONS.
        let call_id = (next == Stage::Invite).then(|| format!("{}@verbatim", self.rng.token(20)));
        if let Some(state) = self.recorder_checks.get_mut(&check) {
            state.stage = next;
            if let Some(call_id) = call_id {
                state.session.dialog.call_id = call_id;
            }
        }
        self.send_check_request(check, None);
    }

    fn note_check(&mut self, check: CheckId, finding: String) {
        if let Some(state) = self.recorder_checks.get_mut(&check) {
            state.findings.push(finding);
        }
    }

    /// Ends the check; `problem`, when not empty, is its last finding.
    fn finish_check(&mut self, check: CheckId, problem: &str) {
        if !problem.is_empty() {
            self.note_check(check, problem.to_owned());
        }
        let Some(state) = self.recorder_checks.remove(&check) else {
            return;
        };
        let works = state
            .findings
            .iter()
            .any(|f| f.starts_with("test recording session accepted:"));
        self.events.push_back(Event::RecorderChecked {
            check,
            works,
            findings: state.findings,
        });
    }
}
