//! Transfer with REFER (RFC 3515), both ways: blind, and attended (RFC 5589 7), where the
//! Refer-To carries a Replaces (RFC 3891) for the transferor's call with the target, which
//! the target's side of it ends when the transferee's call replaces it.
//!
//! Transferring: `Command::Transfer` sends REFER with Refer-To in the call's dialog; the far
//! end's NOTIFYs (Event: refer, a message/sipfrag status line) say how its call to the
//! target goes; when it is answered we hang up our call, and when it fails ours goes on.
//!
//! Being transferred: a REFER in a call's dialog is accepted (202) and reported as
//! `Event::TransferRequested`; the front end resolves the target and follows with
//! `Command::FollowTransfer`, and the new call's progress goes back to the transferor in
//! NOTIFYs until its final answer.

use super::{CallId, CallState, Command, DialRequest, Engine, Event, TxOwner};
use crate::sip::message::{Message, Method, reason_phrase};
use crate::sip::replaces::Replaces;
use crate::sip::transaction::TxKey;
use crate::sip::uri::{NameAddr, Uri};

/// A transfer we are following: the call placed to the target (once the front end placed
/// it), the last status the transferor heard of, and the dialog its INVITE replaces when
/// the transfer is attended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Followed {
    new_call: Option<CallId>,
    reported: u16,
    replaces: Option<Replaces>,
}

/// The consultation an attended transfer of ours hands the far end to, and whether the far
/// end accepted the REFER (from then on the target ending the consultation is the handover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Consultation {
    pub call: CallId,
    pub accepted: bool,
}

/// How a transfer we asked for is going, as the far end reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// The REFER is out.
    Requested,
    /// The far end accepted the REFER (202) and calls the target.
    Accepted,
    /// The far end's call to the target got this provisional status (e.g. 180).
    Progress { status: u16 },
    /// The target answered; our call ends.
    Succeeded,
    /// The REFER was refused or the target did not answer; our call goes on.
    Failed { reason: String },
}

impl Engine {
    /// Asks the far end of `call` to call `target` instead (blind transfer).
    pub(super) fn transfer(&mut self, call: CallId, target: Uri) {
        if !self.call_is_connected(call) {
            self.transfer_failed(call, "only a connected call can be transferred");
            return;
        }
        if self.transfers_out.contains(&call) {
            // A second REFER would be refused (491) and take the first one's outcome with it.
            self.transfer_failed(call, "a transfer of this call is already under way");
            return;
        }
        self.send_refer(call, target);
    }

    /// Asks the far end of `call` to call the far end of `consultation` in our place: the
    /// Refer-To names the consultation's far end with a Replaces for its dialog, as the
    /// target sees it (its tag is the to-tag).
    pub(super) fn transfer_to_call(&mut self, call: CallId, consultation: CallId) {
        if call == consultation {
            self.transfer_failed(call, "a call cannot be transferred to itself");
            return;
        }
        if !self.call_is_connected(call) || !self.call_is_connected(consultation) {
            self.transfer_failed(
                call,
                "both the call and the consultation must be connected to transfer",
            );
            return;
        }
        if self.transfers_out.contains(&call) {
            self.transfer_failed(call, "a transfer of this call is already under way");
            return;
        }
        let we_called = self.we_placed(consultation);
        let Some(dialog) = self.call_dialog_mut(consultation) else {
            return;
        };
        let Some(remote_tag) = dialog.remote_tag.clone() else {
            return;
        };
        let replaces = Replaces {
            call_id: dialog.call_id.clone(),
            to_tag: remote_tag,
            from_tag: dialog.local_tag.clone(),
            early_only: false,
        };
        // The address we reached the target at routes for the transferee too; a caller's
        // From may not route at all (anonymous, a domain without a proxy), its Contact does.
        let mut target = if we_called {
            dialog.remote_uri.uri.clone()
        } else {
            dialog.remote_target.clone()
        };
        target.headers = Some(replaces.as_uri_header());
        self.consultations.insert(
            call,
            Consultation {
                call: consultation,
                accepted: false,
            },
        );
        self.send_refer(call, target);
    }

    fn transfer_failed(&mut self, call: CallId, reason: &str) {
        self.events.push_back(Event::Transfer {
            call,
            state: TransferState::Failed {
                reason: reason.to_owned(),
            },
        });
    }

    fn send_refer(&mut self, call: CallId, target: Uri) {
        let Some(dialog) = self.call_dialog_mut(call) else {
            return;
        };
        let referred_by = dialog.local_uri.uri.to_string();
        let mut refer = dialog.request(Method::Refer);
        refer
            .headers
            .push("Refer-To", NameAddr::new(target).to_string());
        refer
            .headers
            .push("Referred-By", format!("<{referred_by}>"));
        let destination = self.next_hop(call);
        self.transfers_out.insert(call);
        self.start_client_tx(refer, destination, TxOwner::Refer(call));
        self.events.push_back(Event::Transfer {
            call,
            state: TransferState::Requested,
        });
    }

    pub(super) fn on_refer_response(&mut self, call: CallId, response: &Message) {
        let Some(status) = response.status() else {
            return;
        };
        if status < 200 || !self.transfers_out.contains(&call) {
            return;
        }
        let state = if status < 300 {
            if let Some(consultation) = self.consultations.get_mut(&call) {
                consultation.accepted = true;
            }
            TransferState::Accepted
        } else {
            self.transfers_out.remove(&call);
            self.consultations.remove(&call);
            TransferState::Failed {
                reason: format!(
                    "the other side refused the transfer: {status} {}",
                    phrase(response)
                ),
            }
        };
        self.events.push_back(Event::Transfer { call, state });
    }

    pub(super) fn on_refer_timeout(&mut self, call: CallId) {
        self.consultations.remove(&call);
        if self.transfers_out.remove(&call) {
            self.events.push_back(Event::Transfer {
                call,
                state: TransferState::Failed {
                    reason: "the other side did not answer the transfer request".into(),
                },
            });
        }
    }

    /// A NOTIFY: a conference's state, or the progress of a transfer we asked for; anything
    /// else is not ours.
    pub(super) fn on_notify(&mut self, key: TxKey, request: Message) {
        if self.on_conference_notify(&key, &request) {
            return;
        }
        let Some(call) = self.find_dialog(&request) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        let tag = self.call_local_tag(call);
        let is_refer = request
            .headers
            .get("Event")
            .and_then(|e| e.split(';').next())
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("refer"));
        if !is_refer {
            self.respond(&key, &request, 489, tag.as_deref());
            return;
        }
        self.respond(&key, &request, 200, tag.as_deref());
        if !self.transfers_out.contains(&call) {
            return;
        }
        let terminated = request.headers.get("Subscription-State").is_some_and(|s| {
            s.trim_start()
                .to_ascii_lowercase()
                .starts_with("terminated")
        });
        let status = sipfrag_status(&request.body);
        let state = match status {
            Some((code, _)) if code < 200 && !terminated => {
                TransferState::Progress { status: code }
            }
            Some((code, _)) if (200..300).contains(&code) => TransferState::Succeeded,
            Some((code, text)) if code >= 300 => TransferState::Failed {
                reason: format!("the transfer target did not answer: {code} {text}"),
            },
            _ if terminated => TransferState::Failed {
                reason: "the other side ended the transfer without a result".into(),
            },
            _ => return,
        };
        let done = matches!(
            state,
            TransferState::Succeeded | TransferState::Failed { .. }
        );
        let consultation = if done {
            self.transfers_out.remove(&call);
            self.consultations.remove(&call)
        } else {
            None
        };
        let succeeded = state == TransferState::Succeeded;
        self.events.push_back(Event::Transfer { call, state });
        if succeeded {
            self.hang_up_transferred(call);
            // The target ends the consultation when the transferee's call replaces it; if
            // its BYE has not come, ours ends it.
            if let Some(consultation) = consultation {
                self.hang_up_transferred(consultation.call);
            }
        }
    }

    /// The far end asks us to call someone else (we are being transferred).
    pub(super) fn on_refer(&mut self, key: TxKey, request: Message) {
        let Some(call) = self.find_dialog(&request) else {
            self.respond(&key, &request, 481, None);
            return;
        };
        let tag = self.call_local_tag(call);
        let target = request
            .headers
            .get("Refer-To")
            .and_then(|value| NameAddr::parse(value).ok())
            .map(|name| name.uri);
        let Some(mut target) = target.filter(Uri::is_sip) else {
            let mut response = request.response(400, "Bad Refer-To", tag.as_deref());
            response
                .headers
                .push("Warning", "399 - \"Refer-To must be one SIP URI\"");
            self.send_response(&key, response);
            return;
        };
        if self.transfers_in.contains_key(&call) {
            // One transfer at a time on a call (RFC 3515 2.4.6 allows refusing).
            self.respond(&key, &request, 491, tag.as_deref());
            return;
        }
        // Of the URI's headers only Replaces (attended transfer) goes into our INVITE; the
        // target given to the front end is the bare URI. A Replaces that cannot be read must
        // not turn into a blind transfer: the target would ring while the consultation goes on.
        let headers = target.headers.take();
        let replaces = headers.as_deref().and_then(Replaces::from_uri_headers);
        let names_replaces = headers.as_deref().is_some_and(|h| {
            h.split('&').any(|header| {
                header
                    .split('=')
                    .next()
                    .is_some_and(|name| name.trim().eq_ignore_ascii_case("Replaces"))
            })
        });
        if names_replaces && replaces.is_none() {
            let mut response = request.response(400, "Bad Replaces In Refer-To", tag.as_deref());
            response.headers.push(
                "Warning",
                "399 - \"the Replaces in Refer-To cannot be read\"",
            );
            self.send_response(&key, response);
            return;
        }
        self.respond(&key, &request, 202, tag.as_deref());
        self.transfers_in.insert(
            call,
            Followed {
                new_call: None,
                reported: 100,
                replaces,
            },
        );
        // RFC 3515 2.4.4: a NOTIFY at once, saying the request is being tried.
        self.notify_transferor(call, 100, "Trying", false);
        let referred_by = request.headers.get("Referred-By").map(str::to_owned);
        self.events.push_back(Event::TransferRequested {
            call,
            target,
            referred_by,
        });
    }

    /// The front end places the call the transferor asked for; its progress is reported.
    pub(super) fn follow_transfer(&mut self, call: CallId, new_call: CallId, request: DialRequest) {
        match self.transfers_in.get_mut(&call) {
            Some(followed) if followed.new_call.is_none() => {
                followed.new_call = Some(new_call);
                if let Some(replaces) = followed.replaces.clone() {
                    self.replaces_out.insert(new_call, replaces);
                }
            }
            _ => return,
        }
        self.on_command(Command::Dial {
            call: new_call,
            request,
        });
    }

    /// The front end will not follow (or could not resolve the target).
    pub(super) fn decline_transfer(&mut self, call: CallId, status: u16) {
        if self.transfers_in.remove(&call).is_some() {
            self.notify_transferor(call, status, reason_phrase(status), true);
        }
    }

    /// Tells each transferor how the call placed for it goes (rang, answered, failed), once
    /// per change; runs after every input.
    pub(super) fn report_transfer_progress(&mut self) {
        if self.transfers_in.is_empty() {
            return;
        }
        let followed: Vec<(CallId, CallId, u16)> = self
            .transfers_in
            .iter()
            .filter_map(|(original, f)| f.new_call.map(|new| (*original, new, f.reported)))
            .collect();
        for (original, new_call, reported) in followed {
            let (status, text) = match self.call_progress(new_call) {
                Some(CallState::Ringing) => (180, "Ringing".to_owned()),
                Some(CallState::Connected { .. }) => (200, "OK".to_owned()),
                Some(_) => continue,
                None => self.ended_status(new_call),
            };
            if status <= reported {
                continue;
            }
            let final_answer = status >= 200;
            if final_answer {
                let attended = self
                    .transfers_in
                    .remove(&original)
                    .is_some_and(|f| f.replaces.is_some());
                // Handed over after both sides spoke first: our conversation goes on with
                // the target, and so does its recording.
                if attended && status == 200 {
                    self.recording_follows_replacement(original, new_call);
                }
            } else if let Some(f) = self.transfers_in.get_mut(&original) {
                f.reported = status;
            }
            self.notify_transferor(original, status, &text, final_answer);
        }
    }

    /// Why a call placed for a transfer ended, from its CallEnded event.
    fn ended_status(&self, call: CallId) -> (u16, String) {
        self.events
            .iter()
            .find_map(|event| match event {
                Event::CallEnded {
                    call: ended,
                    reason,
                } if *ended == call => Some((
                    reason.status.filter(|s| *s >= 300).unwrap_or(487),
                    reason.text.clone(),
                )),
                _ => None,
            })
            .unwrap_or_else(|| (487, "Request Terminated".to_owned()))
    }

    /// A call we were transferred from ended: nobody to tell any more.
    pub(super) fn forget_transfers(&mut self, call: CallId) {
        self.transfers_in.remove(&call);
        self.transfers_out.remove(&call);
        self.consultations.remove(&call);
        self.replaces_out.remove(&call);
        self.replacing_in.remove(&call);
    }

    fn notify_transferor(&mut self, call: CallId, status: u16, text: &str, terminated: bool) {
        let Some(dialog) = self.call_dialog_mut(call) else {
            return;
        };
        let mut notify = dialog.request(Method::Notify);
        notify.headers.push("Event", "refer");
        notify.headers.push(
            "Subscription-State",
            if terminated {
                "terminated;reason=noresource".to_owned()
            } else {
                "active;expires=60".to_owned()
            },
        );
        notify.set_body(
            "message/sipfrag;version=2.0",
            format!("SIP/2.0 {status} {text}\r\n").into_bytes(),
        );
        let destination = self.next_hop(call);
        self.start_client_tx(notify, destination, TxOwner::Stateless);
    }
}

/// The status line of a message/sipfrag body: (code, reason phrase).
fn sipfrag_status(body: &[u8]) -> Option<(u16, String)> {
    let text = core::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0")?.trim_start();
    let (code, phrase) = rest.split_once(' ').unwrap_or((rest, ""));
    let code: u16 = code.parse().ok()?;
    (100..700)
        .contains(&code)
        .then(|| (code, phrase.trim().to_owned()))
}

fn phrase(response: &Message) -> String {
    response.reason().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::sipfrag_status;

    #[test]
    fn reads_the_status_line_of_a_sipfrag() {
        assert_eq!(
            sipfrag_status(b"SIP/2.0 180 Ringing\r\n"),
            Some((180, "Ringing".into()))
        );
        assert_eq!(
            sipfrag_status(b"SIP/2.0 200 OK\r\nContact: <sip:x@y>\r\n"),
            Some((200, "OK".into()))
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 999 Nope"), None);
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(&[0xff, 0xfe]), None);
    }
}
