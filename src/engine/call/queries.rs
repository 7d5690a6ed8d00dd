//! What the rest of the engine asks of a call, and the check that its media still flows.

use super::*;

impl Engine {
    /// A call's INVITE or re-INVITE went on in another transaction (UDP after TCP failed).
    pub(in crate::engine) fn rekey_call_transaction(&mut self, old: &TxKey, new: &TxKey) {
        for call in self.calls.values_mut() {
            call.session.rekey(old, new);
        }
    }

    /// The INVITE session of the call with this Call-ID.
    pub(in crate::engine) fn call_session(&self, call_id: &str) -> Option<&InviteSession> {
        self.calls
            .values()
            .map(|c| &c.session)
            .find(|s| s.dialog.call_id == call_id)
    }

    pub(in crate::engine) fn call_session_mut(
        &mut self,
        call_id: &str,
    ) -> Option<(CallId, &mut InviteSession)> {
        self.calls
            .iter_mut()
            .map(|(id, c)| (*id, &mut c.session))
            .find(|(_, s)| s.dialog.call_id == call_id)
    }

    pub(in crate::engine) fn call_is_connected(&self, id: CallId) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|c| matches!(c.state, CallState::Connected { .. }))
    }

    /// Whether we placed the call (we are its UAC).
    pub(in crate::engine) fn we_placed(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.role == Role::Caller)
    }

    /// The call's state while it exists.
    pub(in crate::engine) fn call_progress(&self, id: CallId) -> Option<CallState> {
        self.calls.get(&id).map(|c| c.state)
    }

    pub(in crate::engine) fn call_dialog_mut(&mut self, id: CallId) -> Option<&mut Dialog> {
        self.calls.get_mut(&id).map(|c| &mut c.session.dialog)
    }

    /// The credentials the call was placed with (for a challenge in a dialog that goes with
    /// it, such as a conference subscription).
    pub(in crate::engine) fn call_credentials(
        &self,
        id: CallId,
    ) -> Option<crate::sip::auth::Credentials> {
        self.calls
            .get(&id)
            .and_then(|c| c.session.digest.as_ref())
            .map(|digest| digest.credentials().clone())
    }

    pub(in crate::engine) fn call_local_tag(&self, id: CallId) -> Option<String> {
        self.calls
            .get(&id)
            .map(|c| c.session.dialog.local_tag.clone())
    }

    /// The next hop for an in-dialog request.
    pub(in crate::engine) fn next_hop(&self, id: CallId) -> Destination {
        match self.calls.get(&id) {
            // A call that came in over TCP/TLS keeps using that connection: the caller's
            // Contact is often not reachable (NAT, or no listening socket for TLS at all).
            Some(call)
                if call.role == Role::Callee && call.session.first_hop.transport.is_reliable() =>
            {
                call.session.first_hop
            }
            Some(call) => call.session.next_hop(),
            None => Destination::new(
                crate::sip::Transport::Udp,
                core::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            ),
        }
    }

    /// The far end said `Supported: record-aware`: it is told of recording in SDP and shows
    /// it to its user.
    pub(in crate::engine) fn peer_is_record_aware(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.peer_record_aware)
    }

    pub(super) fn schedule_media_check(&mut self, id: CallId) {
        let Some(timeout) = self.config.no_media_timeout else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let at = call.last_media + timeout;
        self.cancel_timer(Timer::MediaCheck(id));
        self.set_timer(at, Timer::MediaCheck(id));
    }

    pub(in crate::engine) fn check_media(&mut self, id: CallId) {
        let Some(timeout) = self.config.no_media_timeout else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !call.session.connected || call.state == CallState::Terminating {
            return;
        }
        // A held call legitimately carries no media from the other side.
        let expecting_media = !call.remote_hold && !call.local_hold;
        if expecting_media && self.now >= call.last_media + timeout {
            let secs = timeout.as_secs();
            self.send_bye(id);
            self.end_call(
                id,
                None,
                &format!("no media received for {secs} s"),
                Party::Local,
            );
            return;
        }
        if !expecting_media && let Some(call) = self.calls.get_mut(&id) {
            call.last_media = self.now;
        }
        self.schedule_media_check(id);
    }
}
