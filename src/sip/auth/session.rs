//! The per-registration digest session: remembers each realm's challenge and nonce count,
//! tells a fresh challenge from a rejected password, and the one routine every request type
//! uses to answer a 401 or 407.

use std::collections::HashMap;

use thiserror::Error;

use super::{
    AuthError, AuthTarget, Authorization, AuthorizationHeader, Challenge, Credentials, challenge_in,
};

/// Why a 401 or 407 could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChallengeError {
    #[error("no password is configured")]
    NoCredentials,
    #[error("no usable digest challenge")]
    NoUsableChallenge,
    /// The challenge says our last answer was wrong (or cannot be taken).
    #[error("{0}")]
    Refused(AuthError),
    /// The challenge was taken but no answer could be computed for it.
    #[error("{0}")]
    CannotAnswer(AuthError),
}

/// The request to send again with credentials: what the digest covers.
#[derive(Debug, Clone, Copy)]
pub struct Retried<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub cnonce: &'a str,
}

/// The one routine that answers a challenge, whatever the request (REGISTER, INVITE,
/// OPTIONS, ...): takes in the best digest challenge of `response` (RFC 3261 22.2, 22.3) and
/// builds the header for `retried`.
pub fn answer_challenge(
    digest: Option<&mut DigestSession>,
    response: &crate::sip::message::Message,
    retried: Retried<'_>,
) -> Result<AuthorizationHeader, ChallengeError> {
    let digest = digest.ok_or(ChallengeError::NoCredentials)?;
    let (target, challenge) = challenge_in(response).ok_or(ChallengeError::NoUsableChallenge)?;
    let realm = challenge.realm.clone();
    digest
        .handle_challenge(target, challenge)
        .map_err(ChallengeError::Refused)?;
    digest
        .authorize(
            &realm,
            retried.method,
            retried.uri,
            retried.body,
            retried.cnonce,
        )
        .map_err(ChallengeError::CannotAnswer)
}

/// Where a realm stands, which decides whether a new challenge means "wrong password".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A challenge arrived and has not been answered yet.
    Challenged,
    /// We answered a challenge and have not heard that it worked.
    Answered,
    /// The server accepted our credentials; later answers reuse the nonce.
    Accepted,
}

#[derive(Debug, Clone)]
struct RealmState {
    target: AuthTarget,
    challenge: Challenge,
    /// Last nonce count sent on `challenge.nonce`; 0 before the first answer.
    nc: u32,
    phase: Phase,
}

/// Per-registration digest state: the last challenge of each realm and the nonce count
/// sent on its nonce, so that requests reusing a nonce count up and a rejected password
/// is reported instead of retried forever.
///
/// Call [`handle_challenge`](Self::handle_challenge) for each challenge of a 401/407,
/// [`authorize`](Self::authorize) to build the header of the retried (or a later)
/// request, and [`accepted`](Self::accepted) once a request carrying our credentials got
/// a final response other than 401/407. Without `accepted`, a server that lets a nonce
/// expire without setting `stale` looks exactly like a rejected password.
#[derive(Debug, Clone)]
pub struct DigestSession {
    credentials: Credentials,
    realms: HashMap<String, RealmState>,
}

impl DigestSession {
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            realms: HashMap::new(),
        }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Whether answering `challenge` is worth a retry. False means the server rejected
    /// the credentials we just sent for that realm: the UA should report "wrong
    /// credentials" rather than loop.
    pub fn should_retry(&self, challenge: &Challenge) -> bool {
        let Some(state) = self.realms.get(&challenge.realm) else {
            return true;
        };
        if challenge.stale {
            // A stale verdict on the very nonce it hands back again would loop forever.
            return state.phase == Phase::Challenged || challenge.nonce != state.challenge.nonce;
        }
        state.phase != Phase::Answered
    }

    /// Remembers `challenge` for its realm, or fails with
    /// [`AuthError::WrongCredentials`] when [`should_retry`](Self::should_retry) says no.
    /// A new nonce restarts the nonce count at 1.
    pub fn handle_challenge(
        &mut self,
        target: AuthTarget,
        challenge: Challenge,
    ) -> Result<(), AuthError> {
        if !self.should_retry(&challenge) {
            return Err(AuthError::WrongCredentials(challenge.realm));
        }
        let nc = match self.realms.get(&challenge.realm) {
            Some(old) if old.challenge.nonce == challenge.nonce => old.nc,
            _ => 0,
        };
        self.realms.insert(
            challenge.realm.clone(),
            RealmState {
                target,
                challenge,
                nc,
                phase: Phase::Challenged,
            },
        );
        Ok(())
    }

    /// Builds the header for a request in `realm`, counting `nc` up on the remembered
    /// nonce.
    pub fn authorize(
        &mut self,
        realm: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> Result<AuthorizationHeader, AuthError> {
        let state = self
            .realms
            .get_mut(realm)
            .ok_or_else(|| AuthError::UnknownRealm(realm.to_owned()))?;
        let nc = state
            .nc
            .checked_add(1)
            .ok_or_else(|| AuthError::NonceCountExhausted(realm.to_owned()))?;
        let authorization = Authorization::answer(
            &state.challenge,
            &self.credentials,
            method,
            uri,
            body,
            cnonce,
            nc,
        )?;
        state.nc = nc;
        if state.phase == Phase::Challenged {
            state.phase = Phase::Answered;
        }
        Ok(AuthorizationHeader {
            target: state.target,
            authorization,
        })
    }

    /// Records that the server accepted our credentials for `realm`.
    pub fn accepted(&mut self, realm: &str) {
        if let Some(state) = self.realms.get_mut(realm) {
            state.phase = Phase::Accepted;
        }
    }

    /// The remembered challenge of `realm`.
    pub fn challenge(&self, realm: &str) -> Option<&Challenge> {
        self.realms.get(realm).map(|s| &s.challenge)
    }

    /// The last nonce count sent in `realm` (0 if none yet on the current nonce).
    pub fn nonce_count(&self, realm: &str) -> Option<u32> {
        self.realms.get(realm).map(|s| s.nc)
    }

    /// Realms with a remembered challenge.
    pub fn realms(&self) -> impl Iterator<Item = &str> {
        self.realms.keys().map(String::as_str)
    }

    /// Drops what is known about `realm`, e.g. after the user changed the password.
    pub fn forget(&mut self, realm: &str) {
        self.realms.remove(realm);
    }
}

#[cfg(test)]
impl DigestSession {
    /// Lets a test start near the end of the nonce count, which real use takes four billion
    /// requests to reach.
    pub(super) fn nonce_count_mut(&mut self, realm: &str) -> Option<&mut u32> {
        self.realms.get_mut(realm).map(|state| &mut state.nc)
    }
}
