//! Following a conference the far end hosts (RFC 4579, RFC 4575): when the far end's Contact
//! carries `isfocus`, we subscribe to its conference state (SUBSCRIBE, Event: conference, to
//! the Contact's URI, in a dialog of its own), read its full and partial notifications in
//! version order, and keep a roster of the other participants: who joined when, and who
//! left when. The front end hears the roster; the call's recording names them in its
//! metadata. The subscription is refreshed before it expires and ended with the call.
//!
//! A focus that refuses the subscription, never answers it or never notifies leaves the
//! recording a two-party one, and the user is told why.

use core::time::Duration;

use super::notes::CallNote;
use super::{CallId, Engine, Event, Timer, TxOwner};
use crate::recording::metadata;
use crate::sip::auth::{ChallengeError, DigestSession, Retried, answer_challenge};
use crate::sip::conference_info::{self, Applied, Conference};
use crate::sip::dialog::Dialog;
use crate::sip::message::{Message, Method};
use crate::sip::transaction::TxKey;
use crate::sip::transport::Destination;
use crate::sip::uri::{NameAddr, Uri};

/// How long we ask the subscription to last; refreshed well before.
const SUBSCRIPTION_SECONDS: u64 = 600;
/// How long a focus that accepted the subscription may take to send its first NOTIFY (RFC
/// 6665 Timer N, 64*T1) and to end it after we unsubscribe.
const NOTIFY_WAIT: Duration = Duration::from_secs(32);

/// Another participant of the conference, as the recording and the history keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceMember {
    /// The user's URI (its `entity`).
    pub aor: String,
    pub name: Option<String>,
    /// RFC 3339: when it joined (as the focus said, else when we heard), and left.
    pub joined: String,
    pub left: Option<String>,
}

impl ConferenceMember {
    pub fn is_in(&self) -> bool {
        self.left.is_none()
    }

    /// How the window and the history name the participant.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) if *name != self.aor => format!("{name} <{}>", self.aor),
            _ => self.aor.clone(),
        }
    }
}

#[derive(Debug)]
pub(super) struct ConferenceWatch {
    dialog: Dialog,
    /// The focus's URI (its Contact with isfocus): where a fresh subscription goes.
    focus: Uri,
    /// Where requests go when the dialog's route and target do not name an address.
    destination: Destination,
    /// When the focus last ended the subscription and we subscribed afresh.
    resubscribed_at: Option<std::time::Instant>,
    /// For a focus that challenges: the credentials the call was placed with.
    digest: Option<DigestSession>,
    /// The Expires of the SUBSCRIBE in flight, to send again with credentials.
    asked_expires: u64,
    /// Our SUBSCRIBE waiting for its answer.
    pending: Option<TxKey>,
    /// The first NOTIFY came.
    notified: bool,
    conference: Conference,
    /// Every participant heard of so far, in the order they joined; those who left keep
    /// their times.
    members: Vec<ConferenceMember>,
    /// Our own address of record (user@host), left out of the roster.
    ourselves: String,
    /// The call ended and we unsubscribed: only the focus's last answers are awaited.
    ending: bool,
    /// The subscription ended or failed: nothing more is asked of the focus.
    over: bool,
}

/// The far end's Contact carries `isfocus` (RFC 3840, RFC 4579 4.6).
fn contact_is_focus(message: &Message) -> Option<Uri> {
    let contact = message.contacts().ok()?.into_iter().next()?;
    let focus = contact.param("isfocus").is_some() || contact.uri.has_param("isfocus");
    focus.then_some(contact.uri)
}

/// How soon after the focus ended the subscription we may subscribe afresh again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(60);

/// A time the focus gave (RFC 3339), as the metadata writes times; None when it cannot be
/// read or is before `not_before` (a time from an earlier stay).
fn focus_time(text: &str, not_before: Option<&str>) -> Option<String> {
    let at = metadata::parse_time(text)?;
    if not_before
        .and_then(metadata::parse_time)
        .is_some_and(|floor| at < floor)
    {
        return None;
    }
    Some(metadata::format_time(at))
}

/// `user@host` of a URI, lower case, as participants are compared.
fn user_at_host(uri: &str) -> String {
    match Uri::parse(uri) {
        Ok(uri) => uri.address_of_record().to_ascii_lowercase(),
        Err(_) => uri.to_ascii_lowercase(),
    }
}

impl Engine {
    /// The far end's Contact was just learned (its INVITE or our 2xx's, a re-INVITE or
    /// UPDATE): when it is a conference focus, subscribe to the conference's state.
    pub(super) fn follow_focus_of(&mut self, call: CallId, message: &Message) {
        if self.conference_watches.contains_key(&call) || !self.call_is_connected(call) {
            return;
        }
        let Some(focus) = contact_is_focus(message) else {
            return;
        };
        let Some(call_dialog) = self.call_dialog_mut(call).map(|d| d.clone()) else {
            return;
        };
        let mut local_uri = call_dialog.local_uri.clone();
        local_uri.params.clear();
        let dialog = Dialog {
            call_id: format!("{}@verbatim", self.rng.token(20)),
            local_tag: self.rng.token(10),
            remote_tag: None,
            local_uri: local_uri.clone(),
            remote_uri: NameAddr::new(focus.clone()),
            local_cseq: 0,
            remote_cseq: None,
            remote_target: focus.clone(),
            // A new dialog: it is not routed by the call's Record-Route.
            route_set: Vec::new(),
            local_contact: call_dialog.local_contact.clone(),
            security: call_dialog.security,
        };
        // A focus named by address is reached there; one named by a domain name through
        // the hop that carries the call.
        let transport = self.next_hop(call).transport;
        let destination = dialog
            .next_hop(transport)
            .unwrap_or_else(|| self.next_hop(call));
        tracing::info!(focus = %dialog.remote_target, "the far end is a conference focus: subscribing");
        let digest = self.call_credentials(call).map(DigestSession::new);
        self.conference_watches.insert(
            call,
            ConferenceWatch {
                dialog,
                focus,
                destination,
                resubscribed_at: None,
                digest,
                asked_expires: SUBSCRIPTION_SECONDS,
                pending: None,
                notified: false,
                conference: Conference::default(),
                members: Vec::new(),
                ourselves: user_at_host(&local_uri.uri.to_string()),
                ending: false,
                over: false,
            },
        );
        self.send_subscribe(call, SUBSCRIPTION_SECONDS);
    }

    fn send_subscribe(&mut self, call: CallId, expires: u64) {
        self.send_subscribe_with(call, expires, None);
    }

    fn send_subscribe_with(
        &mut self,
        call: CallId,
        expires: u64,
        authorization: Option<(&'static str, String)>,
    ) {
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        watch.asked_expires = expires;
        let mut subscribe = watch.dialog.request(Method::Subscribe);
        if let Some((name, value)) = authorization {
            subscribe.headers.push(name, value);
        }
        subscribe.headers.push("Event", conference_info::EVENT);
        subscribe
            .headers
            .push("Accept", conference_info::CONTENT_TYPE);
        subscribe.headers.push("Expires", expires.to_string());
        // The dialog's route and target as they are now (RFC 3261 12.2.1.1).
        let destination = watch
            .dialog
            .next_hop(watch.destination.transport)
            .unwrap_or(watch.destination);
        let key = self.start_client_tx(subscribe, destination, TxOwner::ConferenceSubscribe(call));
        if let Some(watch) = self.conference_watches.get_mut(&call) {
            watch.pending = key;
        }
    }

    pub(super) fn on_subscribe_response(&mut self, call: CallId, response: &Message) {
        let Some(status) = response.status() else {
            return;
        };
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        if status < 200 {
            return;
        }
        watch.pending = None;
        if watch.ending {
            if status >= 300 {
                self.conference_watches.remove(&call);
            }
            return;
        }
        if matches!(status, 401 | 407) {
            self.answer_subscribe_challenge(call, status, response);
            return;
        }
        if status >= 300 {
            let reason = response.reason().unwrap_or("refused").to_owned();
            let what = format!("the conference focus refused our subscription ({status} {reason})");
            self.conference_lost(call, what);
            return;
        }
        if watch.dialog.remote_tag.is_none() {
            let _ = watch.dialog.establish_as_uac(response);
        }
        let granted = response
            .headers
            .get("Expires")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(SUBSCRIPTION_SECONDS);
        let notified = watch.notified;
        if granted == 0 {
            // Accepted and ended at once: its one NOTIFY is all there is to hear.
            return;
        }
        self.refresh_before(call, granted);
        if !notified {
            self.set_timer(self.now + NOTIFY_WAIT, Timer::ConferenceNotifyWait(call));
        }
    }

    /// A focus that asks who we are gets the SUBSCRIBE again with the call's credentials
    /// (RFC 3261 22); a second challenge for the same realm means they were refused.
    fn answer_subscribe_challenge(&mut self, call: CallId, status: u16, response: &Message) {
        let cnonce = self.rng.token(16);
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        let uri = watch.dialog.remote_target.to_string();
        let retried = Retried {
            method: "SUBSCRIBE",
            uri: &uri,
            body: &[],
            cnonce: &cnonce,
        };
        let expires = watch.asked_expires;
        match answer_challenge(watch.digest.as_mut(), response, retried) {
            Ok(header) => {
                let authorization = Some((header.name(), header.value()));
                self.send_subscribe_with(call, expires, authorization);
            }
            Err(error) => {
                let why = match error {
                    ChallengeError::NoCredentials => {
                        "asks for a password and the call has none".to_owned()
                    }
                    other => format!("refused our credentials ({other})"),
                };
                if watch.ending {
                    self.conference_watches.remove(&call);
                    return;
                }
                let what = format!("the conference focus {why} ({status})");
                self.conference_lost(call, what);
            }
        }
    }

    pub(super) fn on_subscribe_timeout(&mut self, call: CallId) {
        let Some(watch) = self.conference_watches.get(&call) else {
            return;
        };
        if watch.ending {
            self.conference_watches.remove(&call);
            return;
        }
        self.conference_lost(
            call,
            "the conference focus did not answer our subscription".into(),
        );
    }

    /// Time to refresh the subscription.
    pub(super) fn refresh_conference_subscription(&mut self, call: CallId) {
        let live = self
            .conference_watches
            .get(&call)
            .is_some_and(|w| !w.over && !w.ending && w.pending.is_none());
        if live && self.calls.contains_key(&call) {
            self.send_subscribe(call, SUBSCRIPTION_SECONDS);
        }
    }

    /// The first NOTIFY is late, or the focus never ended a subscription we ended.
    pub(super) fn conference_notify_overdue(&mut self, call: CallId) {
        let Some(watch) = self.conference_watches.get(&call) else {
            return;
        };
        if watch.ending {
            self.conference_watches.remove(&call);
        } else if !watch.notified && !watch.over {
            self.conference_lost(
                call,
                "the conference focus accepted our subscription but never said who takes part"
                    .into(),
            );
        }
    }

    /// A NOTIFY in one of our conference subscriptions: answered and applied; false when
    /// it belongs to none of them.
    pub(super) fn on_conference_notify(&mut self, key: &TxKey, request: &Message) -> bool {
        let Some(call) = self.conference_watch_for(request) else {
            return false;
        };
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return false;
        };
        let in_order = request
            .cseq()
            .is_ok_and(|cseq| watch.dialog.accept_remote_cseq(cseq.number));
        let tag = watch.dialog.local_tag.clone();
        if !in_order {
            self.respond(key, request, 500, Some(&tag));
            return true;
        }
        if watch.over && !watch.ending {
            // We gave the subscription up (and told the user so): it is gone for us.
            self.respond(key, request, 481, Some(&tag));
            return true;
        }
        if watch.dialog.remote_tag.is_none() {
            // The NOTIFY may overtake the 2xx (RFC 6665 4.1.2.4): it sets up the dialog,
            // its Record-Route the route set (as a UAS reads it, RFC 3261 12.1.1).
            watch.dialog.remote_tag = request
                .from_header()
                .ok()
                .and_then(|from| from.tag().map(str::to_owned));
            watch.dialog.route_set = request
                .headers
                .list("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
        let _ = watch.dialog.refresh_target(request);
        let is_conference = request
            .headers
            .get("Event")
            .and_then(|e| e.split(';').next())
            .is_some_and(|e| e.trim().eq_ignore_ascii_case(conference_info::EVENT));
        if !is_conference {
            self.respond(key, request, 489, Some(&tag));
            return true;
        }
        watch.notified = true;
        let ending = watch.ending;
        self.respond(key, request, 200, Some(&tag));
        let state = request
            .headers
            .get("Subscription-State")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !ending {
            // Once we unsubscribed, the wait for the focus's last NOTIFY stands.
            self.cancel_timer(Timer::ConferenceNotifyWait(call));
        }
        if !request.body.is_empty() && !ending {
            self.apply_conference_state(call, &request.body);
        }
        if state.trim_start().starts_with("terminated") {
            self.conference_subscription_terminated(call, &state);
        } else if let Some(expires) = state
            .split(';')
            .find_map(|p| p.trim().strip_prefix("expires="))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|_| !ending)
        {
            // The focus may cut the subscription short (RFC 6665 4.1.2.2): its word counts.
            self.refresh_before(call, expires);
        }
        true
    }

    /// Arms the refresh `expires` seconds from now less a margin: a tenth of the time, at
    /// least five seconds.
    fn refresh_before(&mut self, call: CallId, expires: u64) {
        let margin = (expires / 10).max(5);
        let refresh_in = Duration::from_secs(expires.saturating_sub(margin).max(1));
        self.set_timer(self.now + refresh_in, Timer::ConferenceRefresh(call));
    }

    fn conference_watch_for(&self, request: &Message) -> Option<CallId> {
        let call_id = request.call_id()?;
        let to_tag = request.to_header().ok()?.tag().map(str::to_owned)?;
        self.conference_watches
            .iter()
            .find(|(_, w)| w.dialog.call_id == call_id && w.dialog.local_tag == to_tag)
            .map(|(call, _)| *call)
    }

    fn apply_conference_state(&mut self, call: CallId, body: &[u8]) {
        let notification = match conference_info::parse(&String::from_utf8_lossy(body)) {
            Ok(notification) => notification,
            Err(error) => {
                tracing::warn!(%error, "the conference focus sent state we cannot read");
                return;
            }
        };
        let now = metadata::format_time(self.wall_clock());
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        match watch.conference.apply(notification) {
            Applied::Stale => return,
            Applied::NeedsFullState => {
                // A version was missed: a refresh brings the full state (RFC 4575 4.6).
                tracing::info!("a conference notification was missed: asking for the full state");
                if watch.pending.is_none() {
                    self.send_subscribe(call, SUBSCRIPTION_SECONDS);
                }
                return;
            }
            Applied::Applied => {}
        }
        let focus = user_at_host(&watch.conference.entity);
        let target = user_at_host(&watch.dialog.remote_target.to_string());
        let contact = NameAddr::parse(&watch.dialog.local_contact)
            .map(|c| user_at_host(&c.uri.to_string()))
            .unwrap_or_default();
        let mut changed = false;
        let present: Vec<&conference_info::User> = watch
            .conference
            .users
            .iter()
            .filter(|user| {
                let who = user_at_host(&user.entity);
                let is_us = who == watch.ourselves
                    || user
                        .endpoints
                        .iter()
                        .any(|e| user_at_host(&e.entity) == contact);
                !is_us && who != focus && who != target && user.is_in()
            })
            .collect();
        // Who left: gone from the list, or no longer in.
        for member in watch.members.iter_mut().filter(|m| m.is_in()) {
            let still = present.iter().any(|u| u.entity == member.aor);
            if !still {
                let said = watch
                    .conference
                    .users
                    .iter()
                    .find(|u| u.entity == member.aor)
                    .and_then(|u| u.left_when())
                    .and_then(|t| focus_time(t, Some(&member.joined)));
                member.left = Some(said.unwrap_or_else(|| now.clone()));
                changed = true;
            }
        }
        // Who joined, and names that changed.
        for user in present {
            match watch
                .members
                .iter_mut()
                .find(|m| m.aor == user.entity && m.is_in())
            {
                Some(member) => {
                    if member.name != user.display_text {
                        member.name = user.display_text.clone();
                        changed = true;
                    }
                }
                None => {
                    // A time the focus gives from before this user last left is left over
                    // from the earlier stay.
                    let last_left = watch
                        .members
                        .iter()
                        .filter(|m| m.aor == user.entity)
                        .filter_map(|m| m.left.clone())
                        .max();
                    let joined = user
                        .joined_when()
                        .and_then(|t| focus_time(t, last_left.as_deref()))
                        .unwrap_or_else(|| now.clone());
                    watch.members.push(ConferenceMember {
                        aor: user.entity.clone(),
                        name: user.display_text.clone(),
                        joined,
                        left: None,
                    });
                    changed = true;
                }
            }
        }
        if changed {
            self.roster_changed(call);
        }
    }

    fn roster_changed(&mut self, call: CallId) {
        let Some(members) = self
            .conference_watches
            .get(&call)
            .map(|w| w.members.clone())
        else {
            return;
        };
        self.events.push_back(Event::ConferenceRoster {
            call,
            members: members.clone(),
        });
        self.tell_recordings(call, CallNote::Roster(members));
    }

    /// The focus ended the subscription. It may end it to have us subscribe afresh
    /// (deactivated, timeout: RFC 6665 4.1.3); otherwise what we know stays as it was.
    fn conference_subscription_terminated(&mut self, call: CallId, state: &str) {
        let ending = match self.conference_watches.get(&call) {
            Some(watch) => watch.ending,
            None => return,
        };
        if ending {
            self.conference_watches.remove(&call);
            return;
        }
        self.cancel_timer(Timer::ConferenceRefresh(call));
        let reason = state
            .split(';')
            .find_map(|p| p.trim().strip_prefix("reason="))
            .unwrap_or("none")
            .to_owned();
        let recently = self
            .conference_watches
            .get(&call)
            .and_then(|w| w.resubscribed_at)
            .is_some_and(|at| self.now.saturating_duration_since(at) < RESUBSCRIBE_AFTER);
        // Once a minute at most: a focus that keeps ending it is not asked in a loop.
        let again = matches!(reason.as_str(), "deactivated" | "timeout")
            && self.call_is_connected(call)
            && !recently;
        let now = self.now;
        let call_id = format!("{}@verbatim", self.rng.token(20));
        let local_tag = self.rng.token(10);
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        if again {
            tracing::info!(%reason, "the conference focus ended our subscription: subscribing again");
            watch.dialog.call_id = call_id;
            watch.dialog.local_tag = local_tag;
            watch.dialog.remote_tag = None;
            watch.dialog.remote_cseq = None;
            watch.dialog.remote_target = watch.focus.clone();
            watch.dialog.route_set.clear();
            watch.conference = Conference::default();
            watch.notified = false;
            watch.resubscribed_at = Some(now);
            self.send_subscribe(call, SUBSCRIPTION_SECONDS);
            return;
        }
        watch.over = true;
        self.events.push_back(Event::Warning {
            call: Some(call),
            message: format!(
                "the conference focus stopped telling us who takes part ({reason}); the \
                 recording keeps the participants as last known"
            ),
        });
    }

    /// The subscription failed. Before the focus said anything the roster cannot be had:
    /// the recording stays a two-party one and the user is told. After, what was heard
    /// stands, and the user is told it may be out of date.
    fn conference_lost(&mut self, call: CallId, what: String) {
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        watch.over = true;
        let known = watch.notified;
        self.cancel_timer(Timer::ConferenceRefresh(call));
        self.cancel_timer(Timer::ConferenceNotifyWait(call));
        if known {
            self.events.push_back(Event::Warning {
                call: Some(call),
                message: format!(
                    "{what}; the recording keeps the conference's participants as last known"
                ),
            });
        } else {
            self.events.push_back(Event::ConferenceUnknown {
                call,
                reason: format!(
                    "{what}: the recording names only the conference focus, not who else is \
                     in the conference"
                ),
            });
        }
    }

    /// A request in one of our conference subscriptions (never held back under load).
    pub(super) fn is_conference_subscription(&self, call_id: &str) -> bool {
        self.conference_watches
            .values()
            .any(|w| w.dialog.call_id == call_id)
    }

    /// The call ended: unsubscribe (Expires: 0), and wait a little for the focus's last
    /// NOTIFY so it is answered, not refused.
    pub(super) fn stop_following_focus(&mut self, call: CallId) {
        self.cancel_timer(Timer::ConferenceRefresh(call));
        self.cancel_timer(Timer::ConferenceNotifyWait(call));
        let Some(watch) = self.conference_watches.get_mut(&call) else {
            return;
        };
        if watch.ending {
            return;
        }
        watch.ending = true;
        let established = watch.dialog.remote_tag.is_some() && !watch.over;
        if !established {
            self.conference_watches.remove(&call);
            return;
        }
        self.send_subscribe(call, 0);
        self.set_timer(self.now + NOTIFY_WAIT, Timer::ConferenceNotifyWait(call));
    }

    /// The roster so far (for a recording that starts after people joined).
    pub(super) fn conference_members(&self, call: CallId) -> Vec<ConferenceMember> {
        self.conference_watches
            .get(&call)
            .map(|w| w.members.clone())
            .unwrap_or_default()
    }
}
