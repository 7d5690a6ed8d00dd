//! Recording sessions (RFC 7866 SRC side): an INVITE dialog towards the recorder beside each
//! recorded call, whose streams carry copies of both sides of the call, and the RFC 7865
//! metadata that says whose voice each stream is, kept current while the call changes.

mod adopted;
mod attempt;
mod check;
mod conference;
mod liveness;
mod recorder_initiated;
mod replaced;
mod requests;
mod session;
mod snapshot;
mod streams;

use super::invite_session::{InviteSession, UnackedStep};
use super::{CallId, Engine, Event, MediaSocket, Party, RecordingId, Timer, TxOwner};
use crate::media::FRAME_SAMPLES;
use crate::media::codec::CodecKind;
use crate::media::rtcp;
use crate::media::session::{TapSide, TappedPacket};
use crate::media::srtp::SrtpSession;
use crate::recording::forwarder::Forwarder;
use crate::recording::metadata::{self, Gap, StreamSender};
use crate::recording::outgoing::{Outgoing, OutgoingSetup};
use crate::recording::rs_sdp::{self, AnsweredStream, RsOffer};
use crate::recording::transcoder::{PcmSource, Transcoder, TranscoderSetup};
use crate::sdp::{Codec, Direction, PayloadFormat, SessionDescription};
use crate::sip::auth::{ChallengeError, Credentials, DigestSession};
use crate::sip::dialog::{Dialog, DialogSecurity};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::multipart;
use crate::sip::session_timer::{self, PeerTimer};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

use crate::engine::notes::{CallNote, Gate, RecordingNote};

pub(in crate::engine) use adopted::AdoptedSession;
pub(in crate::engine) use check::RecorderCheck;
pub use check::RecorderCheckRequest;
pub(in crate::engine) use recorder_initiated::{RecorderInvite, is_recorder_invite};
pub(in crate::engine) use session::{answer_sdp, reason_text};

/// What the indicator shows. It follows the recording dialog and its media, never the button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    Off,
    /// The INVITE to the recorder is out, or the recorder accepted and the call's media is
    /// not flowing yet.
    Starting,
    /// The recorder accepted and media flows to it.
    Recording,
    Paused {
        by: Party,
    },
    /// The recording failed and will be tried again (the next attempt alternates with the
    /// secondary recorder when there is one).
    Retrying {
        reason: String,
        attempt: u32,
        in_seconds: u64,
    },
    /// Recording again after a failure: what was said meanwhile is missing.
    RecordingWithGaps,
    /// The recorder takes one voice and refused the other's stream (port 0): only part of
    /// the call is recorded. `missing` is whose voice is not.
    OneSide {
        missing: Party,
    },
    /// The recorder takes every stream, but answered our SRTP offer with plain RTP and the
    /// policy does not require SRTP: the call's voices reach it unencrypted.
    Unencrypted,
    Failed {
        reason: String,
    },
}

impl RecordingState {
    /// Whether media is reaching the recorder (all of it or, as the state says, part).
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            RecordingState::Recording
                | RecordingState::RecordingWithGaps
                | RecordingState::OneSide { .. }
                | RecordingState::Unencrypted
        )
    }
}

/// How the call's two voices reach the recorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingMode {
    /// One stream per side (label 1 = the local user, label 2 = the far end).
    #[default]
    Separate,
    /// One stream with both voices mixed (label 1).
    Mixed,
}

impl RecordingMode {
    /// How many streams a recording of a two-party call sends in this mode.
    pub fn stream_count(self) -> usize {
        match self {
            RecordingMode::Separate => 2,
            RecordingMode::Mixed => 1,
        }
    }
}

/// Where and how to record a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRequest {
    /// The recorder's URI (To and Request-URI).
    pub srs: Uri,
    /// Its first hop, already resolved.
    pub destination: Destination,
    /// The local RTP ports the driver bound for the recording's streams, one per stream
    /// (`MediaSocket::Recording` with stream 0, 1, ...): two in separate mode, one mixed.
    pub media_ports: Vec<u16>,
    /// A second recorder, tried in turn with the first after a failure.
    pub secondary: Option<(Uri, Destination)>,
    /// Recording is mandatory: a call is not placed or answered before its recording is up,
    /// and a call whose recording is lost and not back within [`MANDATORY_GRACE`] is ended.
    pub mandatory: bool,
    pub mode: RecordingMode,
    /// SRTP on the recording even when the call itself is plain RTP.
    pub srtp: bool,
    /// For a recorder that challenges (digest, RFC 3261 22).
    pub credentials: Option<Credentials>,
}

/// A recording that starts with the call: given with the dial or the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStart {
    /// The recording session's id, which also names its media sockets in the driver.
    pub recording: RecordingId,
    pub request: RecordingRequest,
}

/// How long a mandatory recording may be down before the call is ended.
pub const MANDATORY_GRACE: core::time::Duration = core::time::Duration::from_secs(10);

/// The call as the metadata describes it, across all its recording sessions: the same IDs
/// in every snapshot, so a recorder can join the pieces of a call with gaps.
#[derive(Debug)]
pub(in crate::engine) struct CallRecord {
    session_id: String,
    /// The call's Session-ID (RFC 7989), both ends, for `<sipSessionID>`.
    sip_session_id: String,
    /// The call's group: the same for every recording session of the call.
    group_id: String,
    local_id: String,
    remote_id: String,
    stream_ids: Vec<String>,
    /// The streams' labels, in m-line order, and whose voice each carries (None: an m-line
    /// of the recorder's that we declined).
    labels: Vec<String>,
    voices: Vec<Option<metadata::StreamSender>>,
    start_time: String,
    local: NameAddr,
    remote: NameAddr,
    /// When the current far end joined (the start, or a change of identity).
    remote_since: String,
    /// Far ends that were replaced (transfer, a new asserted identity): id, identity,
    /// joined, left.
    former_remotes: Vec<(String, NameAddr, String, String)>,
    /// The far end is a conference focus: the other participants it told of, each with
    /// its participant ID (RFC 4575 roster, in the order they joined).
    conference: Vec<(String, crate::engine::ConferenceMember)>,
    /// The other parties of our own conference (we are its focus), in the order they
    /// joined the recorded call; `StreamSender::Member(n)` is the nth one's voice. Parties
    /// that left stay, with when they left, so the indices hold.
    parties: Vec<ConferenceParty>,
    gaps: Vec<Gap>,
    /// Stretches in which the recorder refused one stream (port 0) while taking the others,
    /// by the stream's label: that voice is missing there, though the session was up.
    stream_gaps: Vec<(String, Gap)>,
    on_hold: bool,
    end_time: Option<String>,
}

/// A party of our own conference in the recording of it.
#[derive(Debug, Clone)]
pub(in crate::engine) struct ConferenceParty {
    /// The call the party is on.
    call: CallId,
    participant_id: String,
    who: NameAddr,
    joined: String,
    left: Option<String>,
}

impl CallRecord {
    /// Every stretch some voice was not recorded: the whole call's gaps, then each stream's.
    fn all_gaps(&self) -> Vec<Gap> {
        let mut gaps = self.gaps.clone();
        gaps.extend(self.stream_gaps.iter().map(|(_, gap)| gap.clone()));
        gaps
    }

    /// The recorder's latest answer: a gap opens for each stream it refused that carries a
    /// voice, and closes for each it takes again.
    fn note_refused_streams(&mut self, answered: &[AnsweredStream], now: &str) {
        for stream in answered {
            let open = self
                .stream_gaps
                .iter_mut()
                .find(|(label, gap)| *label == stream.label && gap.to.is_none());
            match (stream.accepted, open) {
                (true, Some((_, gap))) => gap.to = Some(now.to_owned()),
                (false, None) if stream.voice.is_some() => {
                    let whose = match stream.voice {
                        Some(StreamSender::Local) => "our side",
                        Some(StreamSender::Remote) => "the far end",
                        _ => "both sides",
                    };
                    self.stream_gaps.push((
                        stream.label.clone(),
                        Gap {
                            from: now.to_owned(),
                            to: None,
                            reason: format!(
                                "the recorder refused stream {} ({whose})",
                                stream.label
                            ),
                        },
                    ));
                }
                _ => {}
            }
        }
    }

    /// The streams are gone (the session ended or failed): what they lacked ends with them.
    fn close_stream_gaps(&mut self, now: &str) {
        for (_, gap) in &mut self.stream_gaps {
            gap.to.get_or_insert_with(|| now.to_owned());
        }
    }
}

/// How a recording is re-established after failures, for as long as the call lasts.
#[derive(Debug)]
pub(in crate::engine) struct RetryPlan {
    media_id: RecordingId,
    request: RecordingRequest,
    failures: u32,
    record: CallRecord,
    gate: Option<Gate>,
    /// The recorder started this recording: it is not ours to retry.
    recorder_initiated: bool,
    /// The last refusal's Retry-After (seconds): no new attempt at that recorder before.
    retry_after: Option<u64>,
    /// When the failure being handled really began (wall clock), when that was before it
    /// was noticed: a recorder gone silent was last heard then.
    outage_since: Option<core::time::Duration>,
    /// Sockets asked of the driver for parties' streams, by stream slot, with the voice
    /// each stream will carry.
    ports_awaited: Vec<(usize, StreamSender)>,
}

/// One stream towards the recorder: how its packets are made, and the socket pair they
/// leave from (its own).
#[derive(Debug)]
struct RsStream {
    socket: MediaSocket,
    /// The call whose media feeds the stream: the recorded call, or in our conference the
    /// call of the party whose voice it carries.
    source: CallId,
    voice: StreamSender,
    feed: StreamFeed,
}

#[derive(Debug)]
enum StreamFeed {
    /// The recorder takes the call's codec: packets are copied.
    Forward(Forwarder),
    /// Another codec, or mixed mode: the call's audio is encoded afresh.
    Transcode(Transcoder),
}

impl RsStream {
    fn set_paused(&mut self, paused: bool) {
        match &mut self.feed {
            StreamFeed::Forward(f) => f.set_paused(paused),
            StreamFeed::Transcode(t) => t.set_paused(paused),
        }
    }

    fn out(&mut self) -> &mut Outgoing {
        match &mut self.feed {
            StreamFeed::Forward(f) => &mut f.out,
            StreamFeed::Transcode(t) => &mut t.out,
        }
    }
}

#[derive(Debug)]
pub(in crate::engine) struct Recording {
    /// The call recorded.
    call: CallId,
    /// The id the driver knows the recording's media sockets by.
    media_id: RecordingId,
    session: InviteSession,
    /// The INVITE's body, sent again when the recorder challenges.
    invite_body: (String, Vec<u8>),
    offer: RsOffer,
    streams: Vec<RsStream>,
    /// The recorder's answer while the call has no media yet: streams are built from it
    /// once the call's codec is known.
    answered: Option<Vec<AnsweredStream>>,
    /// Where the streams go now and how, as last agreed with the recorder: a re-offer or a
    /// re-answer that changes it rebuilds them (RFC 3264 8).
    applied: Vec<AnsweredStream>,
    /// Some stream encodes the call's audio, so every tick's PCM is wanted.
    wants_pcm: bool,
    state: RecordingState,
    /// A pause was asked while the resume (or the reverse) was in flight.
    want_paused: bool,
    /// The metadata changed since the recorder last heard it.
    metadata_dirty: bool,
    /// How many m-lines the offer had before our re-INVITE in flight added some (a party
    /// joined): a refusal takes them back out.
    lines_before_offer: Option<usize>,
    /// The call ended while our re-INVITE was in flight: the end's metadata, sent once it
    /// is answered.
    closing_metadata: Option<Vec<u8>>,
    /// The user was told the recorder refused SRTP (once per session).
    warned_unencrypted: bool,
    /// The CNAME all the recording's streams carry in RTCP; made when they are first built.
    cname: String,
    /// Our OPTIONS asking the recorder whether it is there, while unanswered.
    probe: Option<TxKey>,
    /// The recorder missed a probe's deadline: our BYE to it will likely go unanswered too.
    gone_silent: bool,
    /// When the recorder last sent a receiver report on our streams, if it ever did.
    reported_at: Option<std::time::Instant>,
    /// Streams (by label) whose loss the recorder's reports made us warn of.
    warned_loss: Vec<String>,
    /// The last moment (wall clock) the recorder was known to be there: it answered or asked
    /// something in the session.
    heard_at: core::time::Duration,
}

impl Recording {
    /// A session about to start (its INVITE going out, or the recorder's being answered).
    fn new(
        call: CallId,
        media_id: RecordingId,
        session: InviteSession,
        invite_body: (String, Vec<u8>),
        offer: RsOffer,
        now: core::time::Duration,
    ) -> Recording {
        Recording {
            call,
            media_id,
            session,
            invite_body,
            offer,
            streams: Vec::new(),
            answered: None,
            applied: Vec::new(),
            wants_pcm: false,
            state: RecordingState::Starting,
            want_paused: false,
            metadata_dirty: false,
            lines_before_offer: None,
            closing_metadata: None,
            warned_unencrypted: false,
            cname: String::new(),
            probe: None,
            gone_silent: false,
            warned_loss: Vec::new(),
            reported_at: None,
            heard_at: now,
        }
    }
}

impl Engine {
    /// The one way a call tells its recordings what happened to it.
    pub(in crate::engine) fn tell_recordings(&mut self, call: CallId, note: CallNote) {
        match note {
            CallNote::Media { on_hold } => {
                self.recording_media_ready(call);
                self.recording_hold_changed(call, on_hold);
            }
            CallNote::FarEndIs(remote) => self.recording_identity_changed(call, *remote),
            CallNote::FarEndAsksPause => self.pause_recording(call, true),
            CallNote::FarEndRefuses => self.stop_recording(call),
            CallNote::SessionId(session_id) => self.recording_session_id_known(call, session_id),
            CallNote::Roster(members) => self.recording_roster_changed(call, members),
            CallNote::Ended => {
                self.decline_recorder(call);
                self.stop_recording(call);
            }
        }
    }
}
