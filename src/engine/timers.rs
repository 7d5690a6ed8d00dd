//! The engine's own timers (beside the transaction layer's): what each one is for, arming
//! and disarming them, and what happens when one fires.

use std::time::Instant;

use super::invite_session::TimerChange;
use super::spans::timer_span;
use super::{AccountId, CallId, Engine, Party};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Timer {
    RegisterRefresh(AccountId),
    /// RFC 5626 3.5.1 CRLF ping on a registration's TCP/TLS connection, so NATs and the
    /// registrar keep the flow that carries our incoming calls.
    KeepAlive(AccountId),
    Retransmit2xx(CallId),
    /// Our 2xx to a recorder's INVITE or re-INVITE, resent until its ACK.
    RecorderRetransmit2xx(CallId),
    GlareRetry(CallId),
    MediaCheck(CallId),
    RecordingRetry(CallId),
    RecordingDeadline(CallId),
    /// Our re-INVITE to the recorder met 491: send it again (RFC 3261 14.1).
    RecordingGlareRetry(CallId),
    /// We refresh the recording session (RFC 4028): time for the next refresh.
    RecordingRefresh(CallId),
    /// We refresh the call's session: time for the next refresh.
    SessionRefresh(CallId),
    /// The far end refreshes the call's session and must have done so by now.
    SessionExpiry(CallId),
    /// A recorder that refreshes its session (RFC 4028) must have done so by now.
    RecorderSessionExpiry(CallId),
    /// Time to ask the recorder whether it is still there.
    RecorderProbe(CallId),
    /// The recorder had until now to answer the last probe.
    RecorderProbeDeadline(CallId),
    /// Time to refresh the subscription to a call's conference state.
    ConferenceRefresh(CallId),
    /// The focus had until now to send its first NOTIFY (or its last, once we unsubscribed).
    ConferenceNotifyWait(CallId),
    ShutdownDeadline,
}

impl Engine {
    /// Runs the transaction layer's timers and ours, then hands its events to their owners.
    pub(super) fn run_timers(&mut self) {
        if self
            .transactions
            .next_deadline()
            .is_some_and(|at| at <= self.now)
        {
            self.transactions.on_timeout(self.now);
        }
        while let Some((&(at, seq), _)) = self.timers.iter().next() {
            if at > self.now {
                break;
            }
            let Some(timer) = self.timers.remove(&(at, seq)) else {
                break;
            };
            self.timer_index.remove(&timer);
            self.on_timer(timer);
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer) {
        let span = timer_span(timer);
        let _in_span = span.enter();
        match timer {
            Timer::RegisterRefresh(account) => self.refresh_registration(account),
            Timer::KeepAlive(account) => self.send_keepalive(account),
            Timer::Retransmit2xx(call) => self.retransmit_2xx(call),
            Timer::RecorderRetransmit2xx(call) => self.retransmit_recorder_2xx(call),
            Timer::GlareRetry(call) => self.send_reinvite(call),
            Timer::MediaCheck(call) => self.check_media(call),
            Timer::RecordingRetry(call) => self.retry_recording(call),
            Timer::RecordingDeadline(call) => self.recording_deadline(call),
            Timer::RecorderSessionExpiry(call) => self.recorder_session_expired(call),
            Timer::RecordingGlareRetry(call) => self.send_recording_reinvite(call),
            Timer::RecordingRefresh(call) => self.refresh_recording_session(call),
            Timer::RecorderProbe(call) => self.probe_recorder(call),
            Timer::RecorderProbeDeadline(call) => self.recorder_silent(call),
            Timer::SessionRefresh(call) => self.refresh_call_session(call),
            Timer::SessionExpiry(call) => self.call_session_expired(call),
            Timer::ConferenceRefresh(call) => self.refresh_conference_subscription(call),
            Timer::ConferenceNotifyWait(call) => self.conference_notify_overdue(call),
            Timer::ShutdownDeadline => {
                let calls: Vec<CallId> = self.calls.keys().copied().collect();
                for call in calls {
                    self.end_call(call, None, "shut down", Party::Local);
                }
                let accounts: Vec<AccountId> = self.registrations.keys().copied().collect();
                for account in accounts {
                    self.registrations.remove(&account);
                }
                self.recording_byes = 0;
                self.check_shutdown_complete();
            }
        }
    }

    /// Arms `timer` for `at`, replacing an earlier arming of the same timer.
    pub(super) fn set_timer(&mut self, at: Instant, timer: Timer) {
        self.cancel_timer(timer);
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timer);
        self.timer_index.insert(timer, (at, self.timer_seq));
    }

    /// Arms the refresh or the expiry timer of a session as `change` says, and disarms the
    /// other.
    pub(super) fn arm_session_timer(&mut self, change: TimerChange, refresh: Timer, expiry: Timer) {
        match change {
            TimerChange::Unchanged => {}
            TimerChange::Off => {
                self.cancel_timer(refresh);
                self.cancel_timer(expiry);
            }
            TimerChange::Watch(after) => {
                self.cancel_timer(refresh);
                self.set_timer(self.now + after, expiry);
            }
            TimerChange::Refresh(after) => {
                self.cancel_timer(expiry);
                self.set_timer(self.now + after, refresh);
            }
        }
    }

    pub(super) fn timer_armed(&self, timer: Timer) -> bool {
        self.timer_index.contains_key(&timer)
    }

    pub(super) fn cancel_timer(&mut self, timer: Timer) {
        if let Some(slot) = self.timer_index.remove(&timer) {
            self.timers.remove(&slot);
        }
    }
}
