//! The conference event package's state (RFC 4575): who is in a conference, as a focus tells
//! its subscribers in `application/conference-info+xml` notifications, full or partial, each
//! with a version one above the last.
//!
//! Only the users and their endpoints are kept: they are what a participant's recording
//! needs (who else is in the call and since when). Partial notifications merge users by
//! `entity` and their endpoints by `entity` (RFC 4575 4.6); a partial one that skips a version,
//! or arrives before any full one, cannot be applied and asks for the full state again.

use thiserror::Error;

use crate::xml_tree::{self, Element, TreeError};

pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";
pub const CONTENT_TYPE: &str = "application/conference-info+xml";
/// The event package's name, for Event and Allow-Events.
pub const EVENT: &str = "conference";

const LIMITS: xml_tree::Limits = xml_tree::Limits {
    max_bytes: 256 * 1024,
    max_elements: 8192,
    max_depth: 32,
};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConferenceInfoError {
    #[error("conference state: {0}")]
    Tree(#[from] TreeError),
    #[error("conference state's root is <{0}>, not <conference-info>")]
    NotConferenceInfo(String),
    #[error("conference state lacks a usable version (got {0:?})")]
    Version(Option<String>),
    #[error("conference state has a <{0}> without its entity")]
    NoEntity(&'static str),
    #[error("conference state has the unknown state {0:?}")]
    State(String),
}

/// RFC 4575 5.1: what an element of a notification says about what it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementState {
    /// All of it: replaces what was known.
    Full,
    /// Only what changed: merged into what was known.
    Partial,
    /// It is gone.
    Deleted,
}

fn element_state(element: &Element) -> Result<ElementState, ConferenceInfoError> {
    match element.attribute("state").as_deref() {
        None | Some("full") => Ok(ElementState::Full),
        Some("partial") => Ok(ElementState::Partial),
        Some("deleted") => Ok(ElementState::Deleted),
        Some(other) => Err(ConferenceInfoError::State(other.to_owned())),
    }
}

/// One notification's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub entity: String,
    pub version: u32,
    pub state: ElementState,
    /// The `<users>` element, when the notification has one.
    pub users: Option<(ElementState, Vec<User>)>,
}

/// A user of the conference, or (in a partial notification) what changed about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub entity: String,
    pub state: ElementState,
    pub display_text: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

/// One of a user's devices in the conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub entity: String,
    pub state: ElementState,
    /// connected, disconnected, on-hold, muted-via-focus, pending, alerting, dialing-in,
    /// dialing-out, disconnecting (RFC 4575 5.6.4).
    pub status: Option<String>,
    /// `<joining-info><when>` and `<disconnection-info><when>`, as sent.
    pub joined_when: Option<String>,
    pub left_when: Option<String>,
}

impl Endpoint {
    /// The device takes part in the conference's media now (or its status is not told).
    pub fn is_in(&self) -> bool {
        match self.status.as_deref() {
            None => true,
            Some(status) => matches!(status, "connected" | "on-hold" | "muted-via-focus"),
        }
    }
}

/// Reads one notification body.
pub fn parse(xml: &str) -> Result<Notification, ConferenceInfoError> {
    let root = xml_tree::read(xml, &[NAMESPACE], LIMITS)?;
    if root.name != "conference-info" {
        return Err(ConferenceInfoError::NotConferenceInfo(root.name));
    }
    let version_text = root.attribute("version");
    let version = version_text
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or(ConferenceInfoError::Version(version_text))?;
    let users = match root.child("users") {
        Some(users) => {
            let mut read = Vec::new();
            for user in users.children_named("user") {
                read.push(read_user(user)?);
            }
            Some((element_state(users)?, read))
        }
        None => None,
    };
    Ok(Notification {
        entity: root
            .attribute("entity")
            .ok_or(ConferenceInfoError::NoEntity("conference-info"))?,
        version,
        state: element_state(&root)?,
        users,
    })
}

fn read_user(user: &Element) -> Result<User, ConferenceInfoError> {
    let mut endpoints = Vec::new();
    for endpoint in user.children_named("endpoint") {
        endpoints.push(Endpoint {
            entity: endpoint
                .attribute("entity")
                .ok_or(ConferenceInfoError::NoEntity("endpoint"))?,
            state: element_state(endpoint)?,
            status: endpoint.child_text("status"),
            joined_when: endpoint
                .child("joining-info")
                .and_then(|info| info.child_text("when")),
            left_when: endpoint
                .child("disconnection-info")
                .and_then(|info| info.child_text("when")),
        });
    }
    Ok(User {
        entity: user
            .attribute("entity")
            .ok_or(ConferenceInfoError::NoEntity("user"))?,
        state: element_state(user)?,
        display_text: user.child_text("display-text").filter(|t| !t.is_empty()),
        endpoints,
    })
}

/// What became of a notification given to [`Conference::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state is the notification's now.
    Applied,
    /// Not newer than what is known (a retransmission, or out of order): ignored.
    Stale,
    /// A partial notification that cannot be applied (a version was missed, or no full
    /// state came before it): ask for the full state again (RFC 4575 4.6).
    NeedsFullState,
}

/// The conference as the notifications so far describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conference {
    pub entity: String,
    pub version: Option<u32>,
    pub users: Vec<User>,
    /// The focus deleted the conference.
    pub ended: bool,
}

impl Conference {
    pub fn apply(&mut self, notification: Notification) -> Applied {
        let newer = self
            .version
            .is_none_or(|known| notification.version > known);
        if !newer {
            return Applied::Stale;
        }
        match notification.state {
            ElementState::Full => {
                *self = Conference {
                    entity: notification.entity,
                    version: Some(notification.version),
                    ..Conference::default()
                };
                if let Some((_, users)) = notification.users {
                    self.users = users
                        .into_iter()
                        .filter(|user| user.state != ElementState::Deleted)
                        .collect();
                }
            }
            ElementState::Partial => {
                let next = self.version.map(|known| known.saturating_add(1));
                if next != Some(notification.version) {
                    return Applied::NeedsFullState;
                }
                self.version = Some(notification.version);
                if let Some((state, users)) = notification.users {
                    merge_users(&mut self.users, state, users);
                }
            }
            ElementState::Deleted => {
                self.version = Some(notification.version);
                self.users.clear();
                self.ended = true;
            }
        }
        Applied::Applied
    }
}

fn merge_users(known: &mut Vec<User>, state: ElementState, changes: Vec<User>) {
    match state {
        ElementState::Full => {
            *known = changes
                .into_iter()
                .filter(|user| user.state != ElementState::Deleted)
                .collect();
        }
        ElementState::Deleted => known.clear(),
        ElementState::Partial => {
            for change in changes {
                let at = known.iter().position(|user| user.entity == change.entity);
                match (change.state, at) {
                    (ElementState::Deleted, Some(at)) => {
                        known.remove(at);
                    }
                    (ElementState::Deleted, None) => {}
                    (ElementState::Full, Some(at)) => {
                        if let Some(user) = known.get_mut(at) {
                            *user = change;
                        }
                    }
                    (ElementState::Partial, Some(at)) => {
                        if let Some(user) = known.get_mut(at) {
                            merge_user(user, change);
                        }
                    }
                    // A user first heard of in a partial notification is all we know of it.
                    (_, None) => {
                        let mut user = change;
                        user.endpoints.retain(|e| e.state != ElementState::Deleted);
                        known.push(user);
                    }
                }
            }
        }
    }
}

fn merge_user(user: &mut User, change: User) {
    if change.display_text.is_some() {
        user.display_text = change.display_text;
    }
    for endpoint in change.endpoints {
        let at = user
            .endpoints
            .iter()
            .position(|known| known.entity == endpoint.entity);
        match (endpoint.state, at) {
            (ElementState::Deleted, Some(at)) => {
                user.endpoints.remove(at);
            }
            (ElementState::Deleted, None) => {}
            (ElementState::Full, Some(at)) => {
                if let Some(known) = user.endpoints.get_mut(at) {
                    *known = endpoint;
                }
            }
            (ElementState::Partial, Some(at)) => {
                if let Some(known) = user.endpoints.get_mut(at) {
                    known.status = endpoint.status.or(known.status.take());
                    known.joined_when = endpoint.joined_when.or(known.joined_when.take());
                    known.left_when = endpoint.left_when.or(known.left_when.take());
                }
            }
            (_, None) => user.endpoints.push(endpoint),
        }
    }
}

impl User {
    /// In the conference now: some endpoint takes part, or the focus lists no endpoints.
    pub fn is_in(&self) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(Endpoint::is_in)
    }

    /// When it joined, as the focus says (its earliest endpoint still in).
    pub fn joined_when(&self) -> Option<&str> {
        self.endpoints
            .iter()
            .filter(|e| e.is_in())
            .filter_map(|e| e.joined_when.as_deref())
            .min()
    }

    /// When it left, as the focus says (its last endpoint's disconnection).
    pub fn left_when(&self) -> Option<&str> {
        self.endpoints
            .iter()
            .filter_map(|e| e.left_when.as_deref())
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u32, state: &str, users: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n\
             <conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" \
             entity=\"sip:conf1@focus.example\" state=\"{state}\" version=\"{version}\">\n\
             {users}</conference-info>\n"
        )
    }

    fn user(entity: &str, status: &str) -> String {
        format!(
            "<user entity=\"{entity}\"><display-text>{entity}</display-text>\
             <endpoint entity=\"{entity};dev\"><status>{status}</status>\
             <joining-info><when>2026-12-07T10:00:00Z</when></joining-info>\
             </endpoint></user>"
        )
    }

    fn apply(conference: &mut Conference, xml: &str) -> Applied {
        conference.apply(parse(xml).unwrap())
    }

    fn present(conference: &Conference) -> Vec<&str> {
        conference
            .users
            .iter()
            .filter(|u| u.is_in())
            .map(|u| u.entity.as_str())
            .collect()
    }

    #[test]
    fn a_full_notification_then_partial_ones_in_order_build_the_roster() {
        let mut conference = Conference::default();
        let full = doc(
            1,
            "full",
            &format!(
                "<users>{}{}</users>",
                user("sip:alice@x", "connected"),
                user("sip:bob@x", "connected")
            ),
        );
        assert_eq!(apply(&mut conference, &full), Applied::Applied);
        assert_eq!(present(&conference), ["sip:alice@x", "sip:bob@x"]);
        assert_eq!(
            conference.users[0].joined_when(),
            Some("2026-12-07T10:00:00Z")
        );

        let carol_joins = doc(
            2,
            "partial",
            &format!(
                "<users state=\"partial\">{}</users>",
                user("sip:carol@x", "connected").replace("<user ", "<user state=\"full\" ")
            ),
        );
        assert_eq!(apply(&mut conference, &carol_joins), Applied::Applied);
        assert_eq!(
            present(&conference),
            ["sip:alice@x", "sip:bob@x", "sip:carol@x"]
        );

        let bob_leaves = doc(
            3,
            "partial",
            "<users state=\"partial\"><user entity=\"sip:bob@x\" state=\"partial\">\
             <endpoint entity=\"sip:bob@x;dev\" state=\"partial\"><status>disconnected</status>\
             <disconnection-info><when>2026-12-07T10:05:00Z</when></disconnection-info>\
             </endpoint></user></users>",
        );
        assert_eq!(apply(&mut conference, &bob_leaves), Applied::Applied);
        assert_eq!(present(&conference), ["sip:alice@x", "sip:carol@x"]);
        let bob = &conference.users[1];
        assert_eq!(bob.left_when(), Some("2026-12-07T10:05:00Z"));
        assert_eq!(bob.display_text.as_deref(), Some("sip:bob@x"), "kept");

        let carol_deleted = doc(
            4,
            "partial",
            "<users state=\"partial\"><user entity=\"sip:carol@x\" state=\"deleted\"/></users>",
        );
        assert_eq!(apply(&mut conference, &carol_deleted), Applied::Applied);
        assert_eq!(present(&conference), ["sip:alice@x"]);
    }

    #[test]
    fn old_versions_are_ignored_and_a_missed_one_asks_for_the_full_state() {
        let mut conference = Conference::default();
        let partial = doc(5, "partial", "<users state=\"partial\"/>");
        assert_eq!(
            apply(&mut conference, &partial),
            Applied::NeedsFullState,
            "no full state to merge into"
        );
        apply(&mut conference, &doc(5, "full", "<users/>"));
        assert_eq!(apply(&mut conference, &doc(5, "full", "")), Applied::Stale);
        assert_eq!(
            apply(&mut conference, &doc(4, "partial", "")),
            Applied::Stale
        );
        assert_eq!(
            apply(&mut conference, &doc(7, "partial", "")),
            Applied::NeedsFullState
        );
        assert_eq!(conference.version, Some(5), "nothing applied");
        assert_eq!(
            apply(&mut conference, &doc(8, "deleted", "")),
            Applied::Applied
        );
        assert!(conference.ended);
    }

    #[test]
    fn endpoints_say_whether_a_user_is_in() {
        let mut conference = Conference::default();
        let full = doc(
            1,
            "full",
            &format!(
                "<users>{}{}<user entity=\"sip:quiet@x\"/></users>",
                user("sip:ringing@x", "alerting"),
                user("sip:held@x", "on-hold")
            ),
        );
        apply(&mut conference, &full);
        assert_eq!(
            present(&conference),
            ["sip:held@x", "sip:quiet@x"],
            "alerting is not in yet; a user with no endpoint listed is"
        );
    }

    #[test]
    fn documents_that_are_not_conference_state_are_errors() {
        assert!(matches!(
            parse("<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\"/>"),
            Err(ConferenceInfoError::Tree(TreeError::ForeignRoot { .. }))
        ));
        assert!(matches!(
            parse("<conference-info entity=\"sip:c@x\" state=\"full\"/>"),
            Err(ConferenceInfoError::Version(None))
        ));
        assert!(matches!(
            parse("<conference-info entity=\"sip:c@x\" version=\"1\" state=\"odd\"/>"),
            Err(ConferenceInfoError::State(_))
        ));
        assert!(matches!(
            parse("<conference-info version=\"1\"><users><user/></users></conference-info>"),
            Err(ConferenceInfoError::NoEntity("user"))
        ));
        assert!(parse("<conference-info").is_err());
    }
}
