//! What the window shows, derived only from the engine's events: the call, its state, and
//! the recording indicator. No egui here, so every rule is tested without a window.

use std::time::{Duration, Instant};

use super::history::{HistoryEntry, RecordingOutcome};
use crate::engine::{
    CallId, CallState, EndKind, Event, Party, RecordingState, RegistrationState, TransferState,
};
use crate::media::session::MediaStats;

/// One call the window shows.
#[derive(Debug, Clone)]
pub struct CallView {
    pub id: CallId,
    /// Who is on the other side, as the user typed it or as the caller said.
    pub remote: String,
    pub incoming: bool,
    /// The account an incoming call was for, when there are several.
    pub account: Option<String>,
    pub state: CallState,
    pub connected_at: Option<Instant>,
    pub recording: RecordingState,
    /// When the recording last went to Recording (for its elapsed time) and how long it had
    /// recorded before.
    recording_since: Option<Instant>,
    recorded_before: Duration,
    /// The other side records too (its `a=record:on`).
    pub far_end_records: bool,
    /// The other side's `a=recordpref`.
    pub far_end_preference: Option<String>,
    pub muted: bool,
    pub codec: Option<String>,
    pub stats: Option<MediaStats>,
    /// When the call began, seconds since the Unix epoch (for the history).
    started: u64,
    /// What recording achieved over the call, for the history.
    ever_recorded: bool,
    gaps: bool,
    recording_asked: bool,
    /// The gaps the engine reported when the recording ended.
    gap_list: Vec<crate::recording::metadata::Gap>,
    /// How a transfer we asked for goes, in words (None: no transfer).
    pub transfer: Option<String>,
    /// A transfer we asked for has no outcome yet.
    pub transfer_pending: bool,
    /// The last minute of quality samples, for the plot.
    pub quality_history: std::collections::VecDeque<QualitySample>,
    /// The metadata session ID its recordings carry.
    recording_session: Option<String>,
    /// The far end is a conference focus: everyone else who is or was in it.
    pub conference: Vec<crate::engine::ConferenceMember>,
    /// Why the conference's participants are not known.
    pub conference_note: Option<String>,
}

/// One statistics report of a call, placed in time for the quality plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySample {
    /// Seconds since the call connected.
    pub at_s: f64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
}

/// Samples kept per call: the engine reports twice a second, so one minute.
const QUALITY_SAMPLES: usize = 120;

/// The indicator: what it says and how loud it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    pub text: String,
    pub tone: Tone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Quiet,
    Busy,
    Live,
    Warning,
    Alarm,
}

/// The window's state.
/// What the window shows of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub name: String,
    /// Its address of record.
    pub aor: String,
    /// Where it registers, when it does (a change here means its old state is stale).
    pub registrar: Option<String>,
}

/// An account and its registration as the engine last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLine {
    pub summary: AccountSummary,
    pub registration: Option<RegistrationState>,
}

#[derive(Debug, Default)]
pub struct Model {
    pub calls: Vec<CallView>,
    /// The last call's end, shown until the next call starts.
    pub last_outcome: Option<String>,
    /// Messages for the user that did not end anything.
    pub notices: Vec<String>,
    /// Finished calls, newest first.
    pub history: Vec<HistoryEntry>,
    /// Finished calls not yet handed to the history file.
    unsaved: Vec<HistoryEntry>,
    /// The enabled accounts, in order, each with its registration.
    pub accounts: Vec<AccountLine>,
    /// The account calls go out on, as chosen in the window; None: the first.
    pub outgoing: Option<String>,
    /// The calls merged into our own conference (empty: none).
    pub local_conference: Vec<CallId>,
}

impl Model {
    /// These accounts are in use now. One that stayed as it was keeps its registration
    /// state; the others are not known to be registered yet. A chosen outgoing account that
    /// is gone falls back to the first.
    pub fn set_accounts(&mut self, accounts: Vec<AccountSummary>) {
        let mut old = core::mem::take(&mut self.accounts);
        self.accounts = accounts
            .into_iter()
            .map(|summary| {
                let registration = old
                    .iter()
                    .position(|line| line.summary == summary)
                    .and_then(|at| old.swap_remove(at).registration);
                AccountLine {
                    summary,
                    registration,
                }
            })
            .collect();
        if let Some(chosen) = &self.outgoing
            && !self.accounts.iter().any(|a| a.summary.name == *chosen)
        {
            self.outgoing = None;
        }
    }

    pub fn on_registration(&mut self, account: &str, state: RegistrationState) {
        if let Some(line) = self
            .accounts
            .iter_mut()
            .find(|line| line.summary.name == account)
        {
            line.registration = Some(state);
        }
    }

    /// One line per account: who we are there and whether its registrar knows it, with the
    /// reason when it failed. With several accounts each line starts with its name.
    pub fn account_lines(&self) -> Vec<(String, Tone)> {
        let several = self.accounts.len() > 1;
        self.accounts
            .iter()
            .map(|line| {
                let aor = &line.summary.aor;
                let who = if several {
                    format!("{}: {aor}", line.summary.name)
                } else {
                    aor.clone()
                };
                match &line.registration {
                    None | Some(RegistrationState::Unregistered) => {
                        (format!("{who}: not registered"), Tone::Quiet)
                    }
                    Some(RegistrationState::Registering) => {
                        (format!("{who}: registering…"), Tone::Busy)
                    }
                    Some(RegistrationState::Registered { .. }) => {
                        (format!("{who}: registered"), Tone::Quiet)
                    }
                    Some(RegistrationState::Failed { reason }) => {
                        (format!("{who}: registration failed: {reason}"), Tone::Alarm)
                    }
                }
            })
            .collect()
    }

    /// What the tray shows: whether a call is recorded in full, whether something wants the
    /// user (a call rings, a recording failed or is retried), and a line per call.
    pub fn tray_state(&self) -> super::tray::TrayState {
        let recording = self
            .calls
            .iter()
            .any(|call| matches!(call.recording, RecordingState::Recording));
        let attention = self.calls.iter().any(|call| {
            call.state == CallState::Incoming
                || matches!(
                    call.recording,
                    RecordingState::Failed { .. } | RecordingState::Retrying { .. }
                )
        });
        let lines: Vec<String> = self
            .calls
            .iter()
            .map(|call| {
                let what = if call.state == CallState::Incoming {
                    "ringing"
                } else {
                    match &call.recording {
                        RecordingState::Off => "not recorded",
                        RecordingState::Starting => "recording starts",
                        RecordingState::Recording => "recording",
                        RecordingState::Paused { .. } => "recording paused",
                        RecordingState::Retrying { .. } => "recording lost, retrying",
                        RecordingState::RecordingWithGaps => "recording, with gaps",
                        RecordingState::OneSide { .. } => "recording one side only",
                        RecordingState::Unencrypted => "recording, unencrypted",
                        RecordingState::Failed { .. } => "recording failed",
                    }
                };
                format!("{}: {what}", call.remote)
            })
            .collect();
        super::tray::TrayState {
            recording,
            attention,
            summary: if lines.is_empty() {
                "No call".into()
            } else {
                lines.join("\n")
            },
        }
    }

    /// A call we placed: shown at once, before the engine says anything.
    pub fn dialled(&mut self, id: CallId, remote: String) {
        self.last_outcome = None;
        self.calls.push(CallView::new(id, remote, false));
    }

    pub fn call(&self, id: CallId) -> Option<&CallView> {
        self.calls.iter().find(|c| c.id == id)
    }

    /// Two connected calls that Merge would put together: one in the conference (when there
    /// is one) or the oldest, and the newest connected call not in it.
    pub fn merge_candidates(&self) -> Option<(CallId, CallId)> {
        let connected: Vec<CallId> = self
            .calls
            .iter()
            .filter(|c| c.is_connected())
            .map(|c| c.id)
            .collect();
        let outside = connected
            .iter()
            .rev()
            .find(|c| !self.local_conference.contains(c))
            .copied()?;
        let inside = self
            .local_conference
            .first()
            .copied()
            .or_else(|| connected.iter().find(|c| **c != outside).copied())?;
        (inside != outside).then_some((inside, outside))
    }

    /// Whether another call may be placed: none is up, or every call is on hold (the user
    /// consults someone, to transfer to or merge with).
    pub fn may_place_a_call(&self) -> bool {
        self.calls.iter().all(|c| {
            matches!(
                c.state,
                CallState::Connected {
                    local_hold: true,
                    ..
                }
            )
        })
    }

    /// With two calls up and no conference: the first call, whose far end an attended
    /// transfer would hand over, and the newer one (the consultation) it would go to.
    pub fn attended_transfer_candidates(&self) -> Option<(&CallView, &CallView)> {
        if !self.local_conference.is_empty() {
            return None;
        }
        match self
            .calls
            .iter()
            .filter(|c| c.is_connected())
            .collect::<Vec<_>>()[..]
        {
            // Not while a transfer of the first is under way: a second REFER would spoil it.
            [call, consultation] if !call.transfer_pending => Some((call, consultation)),
            _ => None,
        }
    }

    /// The call the controls act on: the newest one that has not ended.
    pub fn current(&self) -> Option<&CallView> {
        self.calls.last()
    }

    pub fn on_event(&mut self, event: &Event, now: Instant) {
        match event {
            Event::IncomingCall {
                call,
                from,
                account,
                ..
            } => {
                self.last_outcome = None;
                let mut view = CallView::new(*call, from.clone(), true);
                // Which of several accounts rings matters; with one it goes without saying.
                if self.accounts.len() > 1 {
                    view.account.clone_from(account);
                }
                self.calls.push(view);
            }
            Event::ReplacingCall { call, from, .. } => {
                self.last_outcome = None;
                self.calls.push(CallView::new(*call, from.clone(), true));
            }
            Event::CallState { call, state } => {
                if let Some(view) = self.call_mut(*call) {
                    if matches!(state, CallState::Connected { .. }) && view.connected_at.is_none() {
                        view.connected_at = Some(now);
                    }
                    view.state = *state;
                }
            }
            Event::Media { call, negotiated } => {
                if let Some(view) = self.call_mut(*call) {
                    view.codec = Some(negotiated.codec.encoding.clone());
                }
            }
            Event::Recording { call, state, .. } => {
                if let Some(view) = self.call_mut(*call) {
                    view.set_recording(state.clone(), now);
                }
            }
            Event::FarEndRecording { call, recording } => {
                if let Some(view) = self.call_mut(*call) {
                    view.far_end_records = *recording;
                }
            }
            Event::RecordingPreference { call, preference } => {
                if let Some(view) = self.call_mut(*call) {
                    view.far_end_preference = Some(preference.clone());
                }
            }
            Event::RecordingSessionId { call, session_id } => {
                if let Some(view) = self.call_mut(*call) {
                    view.recording_session = Some(session_id.clone());
                }
            }
            Event::RecordingGaps { call, gaps } => {
                if let Some(view) = self.call_mut(*call) {
                    view.gap_list = gaps.clone();
                }
            }
            Event::LocalConference { members } => self.local_conference = members.clone(),
            Event::ConferenceRoster { call, members } => {
                if let Some(view) = self.call_mut(*call) {
                    view.conference = members.clone();
                }
            }
            Event::ConferenceUnknown { call, reason } => {
                if let Some(view) = self.call_mut(*call) {
                    view.conference_note = Some(reason.clone());
                }
            }
            Event::MediaStats { call, stats } => {
                if let Some(view) = self.call_mut(*call) {
                    view.record_quality(stats, now);
                    view.stats = Some(stats.clone());
                }
            }
            Event::CallEnded { call, reason } => {
                let remote = self
                    .call(*call)
                    .map(|c| c.remote.clone())
                    .unwrap_or_default();
                if let Some(view) = self.call(*call) {
                    let entry = view
                        .history_entry(now, (!reason.was_connected).then(|| reason.text.clone()));
                    self.history.insert(0, entry.clone());
                    self.unsaved.push(entry);
                }
                self.calls.retain(|c| c.id != *call);
                self.last_outcome = Some(if reason.kind == EndKind::Transferred {
                    format!("Call with {remote} transferred")
                } else if reason.was_connected {
                    format!("Call with {remote} ended")
                } else {
                    format!("Call with {remote} failed: {}", reason.text)
                });
            }
            Event::Transfer { call, state } => {
                if let Some(view) = self.call_mut(*call) {
                    view.transfer = Some(transfer_text(state));
                    view.transfer_pending = !matches!(
                        state,
                        TransferState::Succeeded | TransferState::Failed { .. }
                    );
                }
            }
            Event::TransferRequested {
                target,
                referred_by,
                ..
            } => {
                let by = referred_by.as_deref().unwrap_or("The other side");
                self.notices
                    .push(format!("{by} transferred you to {target}"));
            }
            Event::Warning { message, .. } => self.notices.push(message.clone()),
            _ => {}
        }
        // Only the newest are shown; the rest would only grow.
        if self.notices.len() > 20 {
            self.notices.drain(..self.notices.len() - 20);
        }
    }

    /// Finished calls for the history file, once each.
    pub fn take_unsaved(&mut self) -> Vec<HistoryEntry> {
        core::mem::take(&mut self.unsaved)
    }

    /// The history read back at start, behind anything finished since.
    pub fn load_history(&mut self, entries: Vec<HistoryEntry>) {
        self.history.extend(entries);
    }

    /// The calls in the history whose party matches `search` (any part of the address or
    /// name, in any case; a number also without its separators); all of them for an empty
    /// search.
    pub fn history_matching<'m>(
        &'m self,
        search: &'m str,
    ) -> impl Iterator<Item = &'m HistoryEntry> + 'm {
        let wanted = search.trim().to_lowercase();
        let digits: String = wanted
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let number_like = !digits.is_empty()
            && wanted
                .chars()
                .all(|c| c.is_ascii_digit() || "+-.() ".contains(c));
        self.history.iter().filter(move |entry| {
            let party = entry.party.to_lowercase();
            wanted.is_empty()
                || party.contains(&wanted)
                || (number_like
                    && party
                        .chars()
                        .filter(|c| c.is_ascii_digit() || *c == '+')
                        .collect::<String>()
                        .contains(&digits))
        })
    }

    fn call_mut(&mut self, id: CallId) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.id == id)
    }
}

/// What to dial to reach a party the history shows: its address, without the display
/// name and the tag an incoming call's From header carries.
pub fn dialable(party: &str) -> String {
    match crate::sip::uri::NameAddr::parse(party) {
        Ok(name_addr) => {
            let mut uri = name_addr.uri;
            uri.headers = None;
            uri.to_string()
        }
        Err(_) => party.to_owned(),
    }
}

fn transfer_text(state: &TransferState) -> String {
    match state {
        TransferState::Requested => "Transferring…".into(),
        TransferState::Accepted => "Transfer accepted; the other side is calling".into(),
        TransferState::Progress { status: 180 | 183 } => "Transfer target is ringing".into(),
        TransferState::Progress { .. } => "Transfer under way".into(),
        TransferState::Succeeded => "Transferred".into(),
        TransferState::Failed { reason } => format!("Transfer failed: {reason}"),
    }
}

impl CallView {
    fn new(id: CallId, remote: String, incoming: bool) -> CallView {
        CallView {
            id,
            remote,
            incoming,
            account: None,
            state: if incoming {
                CallState::Incoming
            } else {
                CallState::Calling
            },
            connected_at: None,
            recording: RecordingState::Off,
            recording_since: None,
            recorded_before: Duration::ZERO,
            far_end_records: false,
            far_end_preference: None,
            muted: false,
            codec: None,
            stats: None,
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            ever_recorded: false,
            gaps: false,
            recording_asked: false,
            gap_list: Vec::new(),
            transfer: None,
            transfer_pending: false,
            quality_history: std::collections::VecDeque::new(),
            recording_session: None,
            conference: Vec::new(),
            conference_note: None,
        }
    }

    fn history_entry(&self, now: Instant, failure: Option<String>) -> HistoryEntry {
        let recording = match (self.recording_asked, self.ever_recorded, self.gaps) {
            (false, _, _) => RecordingOutcome::NotRecorded,
            (true, false, _) => RecordingOutcome::Failed,
            (true, true, true) => RecordingOutcome::Partial,
            (true, true, false) => RecordingOutcome::Recorded,
        };
        HistoryEntry {
            incoming: self.incoming,
            party: self.remote.clone(),
            started: self.started,
            duration_s: self
                .connected_at
                .map_or(0, |at| now.saturating_duration_since(at).as_secs()),
            failure,
            recording,
            gaps: self.gap_list.clone(),
            recording_session: self.recording_session.clone(),
            conference: self.conference.iter().map(Into::into).collect(),
            conference_note: self.conference_note.clone(),
        }
    }

    /// The compact quality line: codec, loss, jitter, round trip.
    fn record_quality(&mut self, stats: &MediaStats, now: Instant) {
        let Some(connected_at) = self.connected_at else {
            return;
        };
        if self.quality_history.len() == QUALITY_SAMPLES {
            self.quality_history.pop_front();
        }
        self.quality_history.push_back(QualitySample {
            at_s: now.saturating_duration_since(connected_at).as_secs_f64(),
            loss_percent: stats.loss_percent,
            jitter_ms: stats.jitter_ms,
            rtt_ms: stats.rtt_ms,
        });
    }

    pub fn quality(&self) -> Option<String> {
        let stats = self.stats.as_ref()?;
        let rtt = stats
            .rtt_ms
            .map_or_else(String::new, |rtt| format!(" · RTT {rtt:.0} ms"));
        let srtp = if stats.srtp { " · SRTP" } else { "" };
        Some(format!(
            "{} · loss {:.1}% · jitter {:.0} ms{rtt}{srtp}",
            stats.codec, stats.loss_percent, stats.jitter_ms
        ))
    }

    fn set_recording(&mut self, state: RecordingState, now: Instant) {
        match &state {
            RecordingState::Off => {}
            RecordingState::Recording => {
                self.recording_asked = true;
                self.ever_recorded = true;
            }
            RecordingState::Unencrypted => {
                self.recording_asked = true;
                self.ever_recorded = true;
            }
            RecordingState::RecordingWithGaps | RecordingState::OneSide { .. } => {
                self.recording_asked = true;
                self.ever_recorded = true;
                self.gaps = true;
            }
            RecordingState::Retrying { .. } | RecordingState::Failed { .. } => {
                self.recording_asked = true;
                // A failure after something was recorded leaves the recording with a hole.
                self.gaps |= self.ever_recorded;
            }
            RecordingState::Starting | RecordingState::Paused { .. } => {
                self.recording_asked = true;
            }
        }
        let (was_live, live) = (self.recording.is_live(), state.is_live());
        if was_live && !live {
            if let Some(since) = self.recording_since.take() {
                self.recorded_before += now.saturating_duration_since(since);
            }
        } else if !was_live && live {
            self.recording_since = Some(now);
        }
        self.recording = state;
    }

    /// Time recorded so far, pauses and gaps left out.
    pub fn recorded(&self, now: Instant) -> Duration {
        self.recorded_before
            + self
                .recording_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    pub fn is_recording_or_trying(&self) -> bool {
        !matches!(
            self.recording,
            RecordingState::Off | RecordingState::Failed { .. }
        )
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.state, CallState::Connected { .. })
    }

    pub fn state_text(&self, now: Instant) -> String {
        match self.state {
            CallState::Calling => "Calling…".into(),
            CallState::Ringing => "Ringing…".into(),
            CallState::Incoming => "Incoming call".into(),
            CallState::Connected {
                local_hold,
                remote_hold,
            } => {
                let elapsed = self
                    .connected_at
                    .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
                let hold = match (local_hold, remote_hold) {
                    (true, _) => " (on hold)",
                    (false, true) => " (held by the other side)",
                    _ => "",
                };
                format!("Connected {}{hold}", clock(elapsed))
            }
            CallState::Terminating => "Hanging up…".into(),
        }
    }

    /// The recording indicator: it says what the engine says, never what was clicked.
    pub fn indicator(&self, now: Instant) -> Indicator {
        let recorded = clock(self.recorded(now));
        match &self.recording {
            RecordingState::Off => Indicator {
                text: "Not recording".into(),
                tone: Tone::Quiet,
            },
            RecordingState::Starting => Indicator {
                text: "Starting recording…".into(),
                tone: Tone::Busy,
            },
            RecordingState::Recording => Indicator {
                text: format!("Recording {recorded}"),
                tone: Tone::Live,
            },
            RecordingState::RecordingWithGaps => Indicator {
                text: format!("Recording {recorded} (with gaps)"),
                tone: Tone::Warning,
            },
            RecordingState::Unencrypted => Indicator {
                text: format!("Recording {recorded}, unencrypted: the recorder refused SRTP"),
                tone: Tone::Warning,
            },
            RecordingState::OneSide { missing } => Indicator {
                text: format!(
                    "Recording {recorded}, {} only: the recorder refused {}",
                    match missing {
                        Party::Local => "the other side's voice",
                        Party::Remote => "your voice",
                    },
                    match missing {
                        Party::Local => "yours",
                        Party::Remote => "the other side's",
                    }
                ),
                tone: Tone::Warning,
            },
            RecordingState::Paused { by: Party::Local } => Indicator {
                text: format!("Recording paused by you ({recorded} recorded)"),
                tone: Tone::Warning,
            },
            RecordingState::Paused { by: Party::Remote } => Indicator {
                text: format!("Recording paused by the recorder ({recorded} recorded)"),
                tone: Tone::Warning,
            },
            RecordingState::Retrying {
                reason, in_seconds, ..
            } => Indicator {
                text: format!("Not recording: {reason}; retrying in {in_seconds} s"),
                tone: Tone::Alarm,
            },
            RecordingState::Failed { reason } => Indicator {
                text: format!("Recording failed: {reason}"),
                tone: Tone::Alarm,
            },
        }
    }
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {

    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn summary(name: &str, aor: &str) -> AccountSummary {
        AccountSummary {
            name: name.into(),
            aor: aor.into(),
            registrar: Some("sip:example.net".into()),
        }
    }

    #[test]
    fn each_account_shows_its_own_registration_and_an_incoming_call_names_its_account() {
        let mut model = Model::default();
        model.set_accounts(vec![summary("home", "sip:alice@home.example.net")]);
        model.on_registration("home", RegistrationState::Registering);
        assert_eq!(
            model.account_lines()[0].0,
            "sip:alice@home.example.net: registering…",
            "one account: no name needed"
        );
        model.set_accounts(vec![
            summary("home", "sip:alice@home.example.net"),
            summary("work", "sip:alice@work.example.com"),
        ]);
        model.on_registration(
            "work",
            RegistrationState::Failed {
                reason: "403".into(),
            },
        );
        let lines = model.account_lines();
        assert_eq!(lines[0].0, "home: sip:alice@home.example.net: registering…");
        assert_eq!(
            lines[1],
            (
                "work: sip:alice@work.example.com: registration failed: 403".into(),
                Tone::Alarm
            )
        );

        model.on_event(
            &Event::IncomingCall {
                call: CallId(5),
                from: "<sip:bob@example.org>;tag=1".into(),
                to: "<sip:alice@WORK.example.com>".into(),
                request_uri: "sip:alice@192.0.2.7:5060".into(),
                account: Some("work".into()),
            },
            Instant::now(),
        );
        assert_eq!(model.calls[0].account.as_deref(), Some("work"));

        model.outgoing = Some("work".into());
        model.set_accounts(vec![summary("home", "sip:alice@home.example.net")]);
        assert_eq!(
            model.outgoing, None,
            "a chosen account that is gone is forgotten"
        );
        assert_eq!(
            model.accounts[0].registration,
            Some(RegistrationState::Registering)
        );
        // No longer registering (registrar cleared): its old state is not shown.
        model.set_accounts(vec![AccountSummary {
            registrar: None,
            ..summary("home", "sip:alice@home.example.net")
        }]);
        assert_eq!(
            model.account_lines()[0].0,
            "sip:alice@home.example.net: not registered"
        );
    }

    #[test]
    fn the_quality_plot_keeps_the_last_minute() {
        let start = Instant::now();
        let mut model = Model::default();
        let call = CallId(719);
        model.dialled(call, "sip:bob@example.com".into());
        model.on_event(
            &Event::CallState {
                call,
                state: CallState::Connected {
                    local_hold: false,
                    remote_hold: false,
                },
            },
            start,
        );
        let stats = MediaStats {
            codec: "PCMU",
            packets_sent: 0,
            packets_received: 0,
            packets_lost: 0,
            loss_percent: 1.5,
            jitter_ms: 4.0,
            rtt_ms: Some(12.0),
            late_packets: 0,
            concealed_frames: 0,
            srtp: false,
            srtp_failures: 0,
        };
        for half_seconds in 1..=200u64 {
            let now = start + Duration::from_millis(500 * half_seconds);
            model.on_event(
                &Event::MediaStats {
                    call,
                    stats: stats.clone(),
                },
                now,
            );
        }
        let history = &model.call(call).unwrap().quality_history;
        assert_eq!(history.len(), QUALITY_SAMPLES);
        assert_eq!(history.back().unwrap().at_s, 100.0);
        assert_eq!(history.front().unwrap().at_s, 40.5);
        assert_eq!(history.back().unwrap().rtt_ms, Some(12.0));
    }

    fn recording(model: &mut Model, id: CallId, state: RecordingState, at: Instant) {
        model.on_event(
            &Event::Recording {
                call: id,
                recording: crate::engine::RecordingId(99),
                state,
            },
            at,
        );
    }

    #[test]
    fn the_indicator_follows_the_engine_and_counts_only_recorded_time() {
        let start = Instant::now();
        let mut model = Model::default();
        let id = CallId(1);
        model.dialled(id, "sip:bob@example.com".into());
        let view = |m: &Model, s: u64| {
            m.call(id)
                .unwrap()
                .indicator(start + Duration::from_secs(s))
        };
        assert_eq!(view(&model, 0).text, "Not recording");
        recording(&mut model, id, RecordingState::Starting, start);
        assert_eq!(view(&model, 0).tone, Tone::Busy);
        let at = |s: u64| start + Duration::from_secs(s);
        recording(&mut model, id, RecordingState::Recording, at(1));
        assert_eq!(view(&model, 11).text, "Recording 0:10");
        recording(
            &mut model,
            id,
            RecordingState::Paused { by: Party::Remote },
            at(11),
        );
        assert_eq!(
            view(&model, 20).text,
            "Recording paused by the recorder (0:10 recorded)"
        );
        recording(&mut model, id, RecordingState::Recording, at(20));
        assert_eq!(view(&model, 25).text, "Recording 0:15");
        recording(
            &mut model,
            id,
            RecordingState::Retrying {
                reason: "the recorder ended the recording".into(),
                attempt: 1,
                in_seconds: 2,
            },
            at(25),
        );
        let retrying = view(&model, 26);
        assert_eq!(retrying.tone, Tone::Alarm);
        assert!(
            retrying.text.contains("retrying in 2 s"),
            "{}",
            retrying.text
        );
        recording(&mut model, id, RecordingState::RecordingWithGaps, at(28));
        assert_eq!(view(&model, 30).text, "Recording 0:17 (with gaps)");
        recording(
            &mut model,
            id,
            RecordingState::OneSide {
                missing: Party::Remote,
            },
            at(30),
        );
        let one_side = view(&model, 31);
        assert_eq!(one_side.tone, Tone::Warning);
        assert_eq!(
            one_side.text,
            "Recording 0:18, your voice only: the recorder refused the other side's"
        );
    }

    #[test]
    fn a_call_ends_with_its_reason() {
        let mut model = Model::default();
        let id = CallId(2);
        model.dialled(id, "sip:bob@example.com".into());
        model.on_event(
            &Event::CallEnded {
                call: id,
                reason: crate::engine::EndReason {
                    status: Some(486),
                    text: "Busy Here".into(),
                    by: Party::Remote,
                    was_connected: false,
                    kind: EndKind::Ended,
                },
            },
            Instant::now(),
        );
        assert!(model.current().is_none());
        assert_eq!(
            model.last_outcome.as_deref(),
            Some("Call with sip:bob@example.com failed: Busy Here")
        );
        let saved = model.take_unsaved();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].failure.as_deref(), Some("Busy Here"));
        assert_eq!(saved[0].recording, RecordingOutcome::NotRecorded);
        assert!(model.take_unsaved().is_empty(), "handed over once");
    }

    #[test]
    fn the_history_says_how_much_was_recorded() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let outcome = |states: Vec<RecordingState>| {
            let mut model = Model::default();
            let id = CallId(3);
            model.dialled(id, "sip:c@x".into());
            for (i, state) in states.into_iter().enumerate() {
                recording(&mut model, id, state, at(i as u64));
            }
            model.on_event(&hung_up(id), at(10));
            model.history[0].recording
        };
        assert_eq!(outcome(vec![]), RecordingOutcome::NotRecorded);
        assert_eq!(
            outcome(vec![RecordingState::Starting, RecordingState::Recording]),
            RecordingOutcome::Recorded
        );
        let retry = RecordingState::Retrying {
            reason: "x".into(),
            attempt: 1,
            in_seconds: 2,
        };
        assert_eq!(
            outcome(vec![
                RecordingState::Recording,
                retry.clone(),
                RecordingState::RecordingWithGaps
            ]),
            RecordingOutcome::Partial
        );
        assert_eq!(
            outcome(vec![RecordingState::Starting, retry]),
            RecordingOutcome::Failed
        );
    }

    /// A connected call the user hung up.
    fn hung_up(call: CallId) -> Event {
        Event::CallEnded {
            call,
            reason: crate::engine::EndReason {
                status: None,
                text: "hung up".into(),
                by: Party::Local,
                was_connected: true,
                kind: EndKind::Ended,
            },
        }
    }

    #[test]
    fn the_gaps_reported_at_the_end_go_into_the_history() {
        let mut model = Model::default();
        let id = CallId(4);
        let now = Instant::now();
        model.dialled(id, "sip:d@x".into());
        let gap = crate::recording::metadata::Gap {
            from: "2026-11-26T10:00:00.000Z".into(),
            to: Some("2026-11-26T10:00:04.000Z".into()),
            reason: "the recorder ended the recording".into(),
        };
        model.on_event(
            &Event::RecordingGaps {
                call: id,
                gaps: vec![gap.clone()],
            },
            now,
        );
        model.on_event(&hung_up(id), now);
        assert_eq!(model.take_unsaved()[0].gaps, vec![gap]);
    }

    #[test]
    fn the_conference_roster_is_shown_and_kept_in_the_history() {
        let mut model = Model::default();
        let now = Instant::now();
        let (with_roster, refused) = (CallId(5), CallId(6));
        model.dialled(with_roster, "sip:conf@x".into());
        model.dialled(refused, "sip:conf2@x".into());
        let bob = crate::engine::ConferenceMember {
            aor: "sip:bob@x".into(),
            name: Some("Bob".into()),
            joined: "2026-12-07T10:00:00.000Z".into(),
            left: Some("2026-12-07T10:05:00.000Z".into()),
        };
        model.on_event(
            &Event::ConferenceRoster {
                call: with_roster,
                members: vec![bob.clone()],
            },
            now,
        );
        model.on_event(
            &Event::ConferenceUnknown {
                call: refused,
                reason: "the focus refused (489 Bad Event)".into(),
            },
            now,
        );
        assert_eq!(model.call(with_roster).unwrap().conference, vec![bob]);
        for call in [with_roster, refused] {
            model.on_event(&hung_up(call), now);
        }
        let saved = model.take_unsaved();
        assert_eq!(
            saved[0].conference,
            vec![super::super::history::ConferencePresence {
                participant: "Bob <sip:bob@x>".into(),
                joined: "2026-12-07T10:00:00.000Z".into(),
                left: Some("2026-12-07T10:05:00.000Z".into()),
            }]
        );
        assert_eq!(saved[0].conference_note, None);
        assert!(saved[1].conference.is_empty());
        assert_eq!(
            saved[1].conference_note.as_deref(),
            Some("the focus refused (489 Bad Event)")
        );
    }

    #[test]
    fn merge_is_offered_for_two_connected_calls_and_then_for_a_third() {
        let mut model = Model::default();
        let now = Instant::now();
        let connected = CallState::Connected {
            local_hold: false,
            remote_hold: false,
        };
        let (a, b, c) = (CallId(7), CallId(8), CallId(9));
        model.dialled(a, "sip:a@x".into());
        model.on_event(
            &Event::CallState {
                call: a,
                state: connected,
            },
            now,
        );
        assert_eq!(model.merge_candidates(), None, "one call");
        model.dialled(b, "sip:b@x".into());
        assert_eq!(model.merge_candidates(), None, "the second still rings");
        model.on_event(
            &Event::CallState {
                call: b,
                state: connected,
            },
            now,
        );
        assert_eq!(model.merge_candidates(), Some((a, b)));
        model.on_event(
            &Event::LocalConference {
                members: vec![a, b],
            },
            now,
        );
        assert_eq!(model.merge_candidates(), None, "both are in it");
        model.dialled(c, "sip:c@x".into());
        model.on_event(
            &Event::CallState {
                call: c,
                state: connected,
            },
            now,
        );
        assert_eq!(model.merge_candidates(), Some((a, c)), "the third joins");
    }

    #[test]
    fn clock_formats_minutes_and_hours() {
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}

#[cfg(test)]
mod history_search_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ui::history::RecordingOutcome;

    fn entry(party: &str) -> HistoryEntry {
        HistoryEntry::sample(party, RecordingOutcome::NotRecorded)
    }

    #[test]
    fn the_history_is_searched_by_any_part_of_the_party_and_by_number() {
        let mut model = Model::default();
        model.load_history(vec![
            entry("\"Bob Smith\" <sip:bob@example.com>"),
            entry("sip:+15551234567@example.com"),
            entry("sip:carol@example.org"),
        ]);
        let found = |search: &str| -> Vec<String> {
            model
                .history_matching(search)
                .map(|e| e.party.clone())
                .collect()
        };
        assert_eq!(found("").len(), 3, "an empty search shows them all");
        assert_eq!(found("SMITH"), vec!["\"Bob Smith\" <sip:bob@example.com>"]);
        assert_eq!(found("example.org"), vec!["sip:carol@example.org"]);
        assert_eq!(
            found("+1 (555) 123"),
            vec!["sip:+15551234567@example.com"],
            "a number as people write it"
        );
        assert!(found("dave").is_empty());
    }

    #[test]
    fn a_party_from_the_history_is_dialled_by_its_address() {
        assert_eq!(
            dialable("\"Bob\" <sip:bob@example.com>;tag=abc"),
            "sip:bob@example.com",
            "an incoming call's From, name and tag dropped"
        );
        assert_eq!(dialable("sip:carol@example.org"), "sip:carol@example.org");
    }
}
