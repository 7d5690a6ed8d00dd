//! How a call ends: hang-up, BYE, a transfer that took the far end, a session timer that ran
//! out, a far end that would leave TLS; and the end itself, which stops all the call owns.

use super::*;

impl Engine {
    pub(in crate::engine) fn hangup(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let gated = call.role == Role::Caller
            && call.session.invite_key.is_none()
            && !call.session.connected;
        match (call.role, call.session.connected, call.state) {
            (_, _, CallState::Terminating) => {}
            (Role::Caller, false, _) if gated => {
                // Still waiting for its mandatory recording: the INVITE never left.
                self.end_call(id, None, "hung up before the call was placed", Party::Local);
            }
            (Role::Caller, false, _) => {
                if call.provisional_received {
                    self.send_cancel(id);
                } else {
                    // RFC 3261 9.1: no CANCEL before a provisional response; send it then.
                    call.cancel_when_possible = true;
                    call.state = CallState::Terminating;
                }
                self.events.push_back(Event::CallState {
                    call: id,
                    state: CallState::Terminating,
                });
            }
            (Role::Callee, false, _) => self.reject(id, 603),
            (_, true, _) => self.send_bye(id),
        }
    }

    pub(in crate::engine) fn send_bye(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.state = CallState::Terminating;
        call.session.unacked_2xx = None;
        let bye = call.session.dialog.request(Method::Bye);
        self.cancel_timer(Timer::Retransmit2xx(id));
        self.cancel_timer(Timer::MediaCheck(id));
        self.events.push_back(Event::CallState {
            call: id,
            state: CallState::Terminating,
        });
        let destination = self.next_hop(id);
        if self
            .start_client_tx(bye, destination, TxOwner::Bye(id))
            .is_none()
        {
            self.finish_bye(id);
        }
    }

    pub(in crate::engine) fn finish_bye(&mut self, id: CallId) {
        let text = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.bye_text.take())
            .unwrap_or_else(|| "hung up".to_owned());
        self.end_call(id, None, &text, Party::Local);
    }

    /// The far end asked to move the call off TLS: the call ends, its BYE still over TLS.
    pub(super) fn end_call_leaving_tls(&mut self, id: CallId, error: &LeavesTls) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some(format!(
                "the far end would move the call off TLS ({}), so it was ended",
                error.uri
            ));
        }
        self.send_bye(id);
    }

    /// We refresh the call's session (RFC 4028): a re-INVITE (or UPDATE) with the session as
    /// it is, then the next one half an interval later.
    pub(in crate::engine) fn refresh_call_session(&mut self, id: CallId) {
        let Some(timer) = self.calls.get(&id).and_then(|c| c.session.timer) else {
            return;
        };
        self.send_reinvite(id);
        self.set_timer(self.now + timer.refresh_after(), Timer::SessionRefresh(id));
    }

    /// Puts what we agreed of the far end's session timer in our 2xx to its request, and
    /// arms it (RFC 4028 9).
    pub(super) fn agree_call_timer(&mut self, id: CallId, asked: PeerTimer, ok: &mut Message) {
        if let Some(call) = self.calls.get_mut(&id) {
            let change = call.session.agree_timer(asked, ok);
            self.arm_session_timer(change, Timer::SessionRefresh(id), Timer::SessionExpiry(id));
        }
    }

    /// The session timer the 2xx to our INVITE, re-INVITE or UPDATE set, armed.
    pub(super) fn adopt_call_timer(&mut self, id: CallId, ok: &Message) {
        if let Some(call) = self.calls.get_mut(&id) {
            let change = call.session.adopt_timer(ok);
            self.arm_session_timer(change, Timer::SessionRefresh(id), Timer::SessionExpiry(id));
        }
    }

    /// The far end refreshes the session and stopped doing so: it is gone (RFC 4028 10).
    pub(in crate::engine) fn call_session_expired(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some(
                "the far end stopped refreshing the session (session timer expired)".to_owned(),
            );
            self.send_bye(id);
        }
    }

    /// The far end took the call over to the transfer target: our part ends.
    pub(in crate::engine) fn hang_up_transferred(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.bye_text = Some("transferred".to_owned());
            call.transferred = true;
        }
        self.send_bye(id);
    }

    pub(in crate::engine) fn end_call(
        &mut self,
        id: CallId,
        status: Option<u16>,
        text: &str,
        by: Party,
    ) {
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.pending_recordings.remove(&id);
        self.media_public.remove(&id);
        self.forget_transfers(id);
        self.stop_following_focus(id);
        self.leave_local_conference(id);
        self.tell_recordings(id, CallNote::Ended);
        self.cancel_timer(Timer::RecordingDeadline(id));
        self.end_media(id);
        for timer in [
            Timer::Retransmit2xx(id),
            Timer::GlareRetry(id),
            Timer::MediaCheck(id),
            Timer::SessionRefresh(id),
            Timer::SessionExpiry(id),
        ] {
            self.cancel_timer(timer);
        }
        self.events.push_back(Event::CallEnded {
            call: id,
            reason: EndReason {
                status,
                text: text.to_owned(),
                by,
                was_connected: call.session.connected,
                kind: if call.transferred {
                    EndKind::Transferred
                } else {
                    EndKind::Ended
                },
            },
        });
        self.check_shutdown_complete();
    }
}
