//! Tracing spans per call, account, recording and timer, so a log line says whose it is.

use super::*;

/// Log lines of work on one call, account or recording carry its id (a span), so a log
/// of many calls can be read one call at a time.
fn call_span(call: CallId) -> tracing::Span {
    tracing::info_span!("call", id = call.0)
}

fn account_span(account: AccountId) -> tracing::Span {
    tracing::info_span!("account", id = account.0)
}

fn recording_span(call: CallId) -> tracing::Span {
    tracing::info_span!("recording", call = call.0)
}

pub(super) fn command_span(command: &Command) -> tracing::Span {
    match command {
        Command::Register { account, .. } | Command::Unregister { account } => {
            account_span(*account)
        }
        Command::StartRecording { call, .. }
        | Command::StopRecording { call }
        | Command::AcceptRecorder { call, .. }
        | Command::DeclineRecorder { call }
        | Command::PauseRecording { call }
        | Command::ResumeRecording { call } => recording_span(*call),
        Command::Dial { call, .. }
        | Command::Answer { call, .. }
        | Command::Reject { call, .. }
        | Command::Hangup { call }
        | Command::Hold { call }
        | Command::Resume { call }
        | Command::Ping { call }
        | Command::RequestOffer { call }
        | Command::SendDtmf { call, .. }
        | Command::Mute { call, .. }
        | Command::Merge { call, .. }
        | Command::Transfer { call, .. }
        | Command::TransferToCall { call, .. }
        | Command::FollowTransfer { call, .. }
        | Command::DeclineTransfer { call, .. } => call_span(*call),
        Command::CheckRecorder { check, .. } => tracing::info_span!("recorder_check", id = check.0),
        Command::SetCodecs(_)
        | Command::SetNotice(_)
        | Command::SetCalledAccounts(_)
        | Command::Shutdown => tracing::Span::none(),
    }
}

pub(super) fn timer_span(timer: Timer) -> tracing::Span {
    match timer {
        Timer::RegisterRefresh(account) | Timer::KeepAlive(account) => account_span(account),
        Timer::RecorderRetransmit2xx(call)
        | Timer::RecordingRetry(call)
        | Timer::RecordingDeadline(call)
        | Timer::RecordingGlareRetry(call)
        | Timer::RecordingRefresh(call)
        | Timer::RecorderSessionExpiry(call)
        | Timer::RecorderProbe(call)
        | Timer::RecorderProbeDeadline(call) => recording_span(call),
        Timer::Retransmit2xx(call)
        | Timer::GlareRetry(call)
        | Timer::MediaCheck(call)
        | Timer::SessionRefresh(call)
        | Timer::SessionExpiry(call)
        | Timer::ConferenceRefresh(call)
        | Timer::ConferenceNotifyWait(call) => call_span(call),
        Timer::ShutdownDeadline => tracing::Span::none(),
    }
}

pub(super) fn owner_span(owner: Option<TxOwner>) -> tracing::Span {
    match owner {
        Some(TxOwner::Register(account)) => account_span(account),
        Some(
            TxOwner::Invite(call)
            | TxOwner::ReInvite(call)
            | TxOwner::Update(call)
            | TxOwner::Bye(call)
            | TxOwner::Cancel(call)
            | TxOwner::Ping(call)
            | TxOwner::Refer(call)
            | TxOwner::ConferenceSubscribe(call),
        ) => call_span(call),
        Some(TxOwner::Recording(call)) => recording_span(call),
        Some(TxOwner::RecordingClose(recording)) => {
            tracing::info_span!("closing_recording", id = recording.0)
        }
        Some(TxOwner::RecorderCheck(check)) => tracing::info_span!("recorder_check", id = check.0),
        Some(TxOwner::RecordingBye { call, .. } | TxOwner::RecorderProbe(call)) => {
            recording_span(call)
        }
        Some(TxOwner::Stateless) | None => tracing::Span::none(),
    }
}
