//! A local conference: calls merged into one, with this phone as the focus and the mixer
//! (RFC 4579 2, RFC 7245 3.1.5). Each remote party hears the local user and every other
//! party, never itself; the local user hears them all (each call's audio goes to the
//! speaker, where the driver sums the calls). A party that hangs up leaves; with one party
//! left the call is an ordinary two-party call again. Our Contact in each merged call says
//! `isfocus`, and each party hears of it by re-INVITE.
//!
//! The mixing is the engine's: every call keeps the far end's last decoded frame, and the
//! frame a member sends is the local user's plus the other members' last frames (at most
//! one tick, 20 ms, old).

use super::{CallId, Engine, Event};
use crate::media::{FRAME_SAMPLES, mix_into};

/// The feature tag a focus's Contact carries (RFC 3840, RFC 4579 4.6).
const ISFOCUS: &str = ";isfocus";

impl Engine {
    /// Merges `call` and `with` into the conference (starting one, or adding the one that is
    /// not in it yet). Both must be connected; held calls are resumed.
    pub(super) fn merge(&mut self, call: CallId, with: CallId) {
        let problem = if call == with {
            Some("a call cannot be merged with itself")
        } else if !self.call_is_connected(call) || !self.call_is_connected(with) {
            Some("only connected calls can be merged")
        } else if !self.local_conference.is_empty()
            && !self.local_conference.contains(&call)
            && !self.local_conference.contains(&with)
        {
            Some("there is a conference already: merge a call into it")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: problem.to_owned(),
            });
            return;
        }
        let joining: Vec<CallId> = [call, with]
            .into_iter()
            .filter(|c| !self.local_conference.contains(c))
            .collect();
        let muted = self
            .local_conference
            .first()
            .or(Some(&call))
            .and_then(|first| self.media.get(first))
            .is_some_and(|m| m.session.is_muted());
        for member in &joining {
            self.local_conference.push(*member);
        }
        // First the recording takes the newcomers, so that the re-INVITE saying we are the
        // focus also carries `a=record` to them.
        self.record_conference();
        for member in joining {
            self.become_focus_of(member);
            // The conference is muted or not as a whole.
            self.set_muted(member, muted);
        }
        self.events.push_back(Event::LocalConference {
            members: self.local_conference.clone(),
        });
    }

    /// Our Contact in `call` says we are the focus; the far end hears it by re-INVITE (which
    /// also takes the call off hold).
    fn become_focus_of(&mut self, call: CallId) {
        let Some(dialog) = self.call_dialog_mut(call) else {
            return;
        };
        if !dialog.local_contact.ends_with(ISFOCUS) {
            dialog.local_contact.push_str(ISFOCUS);
        }
        let held = self.calls.get(&call).is_some_and(|c| c.is_local_hold());
        if held {
            self.set_hold(call, false);
        } else {
            self.send_reinvite(call);
        }
    }

    /// `call` ended: it leaves the conference, which ends when one call is left.
    pub(super) fn leave_local_conference(&mut self, call: CallId) {
        if !self.local_conference.contains(&call) {
            return;
        }
        self.recording_party_left(call);
        self.local_conference.retain(|c| *c != call);
        if self.local_conference.len() < 2 {
            self.local_conference.clear();
        }
        self.events.push_back(Event::LocalConference {
            members: self.local_conference.clone(),
        });
    }

    /// The other members of `call`'s conference (none when it is in none).
    pub(super) fn conference_peers(&self, call: CallId) -> Vec<CallId> {
        if !self.local_conference.contains(&call) {
            return Vec::new();
        }
        self.local_conference
            .iter()
            .copied()
            .filter(|c| *c != call)
            .collect()
    }

    /// What the other members of `call`'s conference said in their last frames, mixed into
    /// `out`; false when `call` is in no conference.
    pub(super) fn mix_other_members(&self, call: CallId, out: &mut [f32; FRAME_SAMPLES]) -> bool {
        // Every tick of every member: no allocation here.
        if !self.local_conference.contains(&call) {
            return false;
        }
        for peer in self.local_conference.iter().filter(|c| **c != call) {
            if let Some(media) = self.media.get(peer) {
                mix_into(out, media.heard());
            }
        }
        true
    }
}
