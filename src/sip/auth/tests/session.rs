//! The per-registration session: answering a 401 in one call, nonce counting, stale nonces,
//! and telling a rejected password from a nonce that merely expired.

use super::*;

/// A session for `credentials` that has taken in `challenge`, as from a 401 or 407.
fn challenged(credentials: Credentials, target: AuthTarget, challenge: Challenge) -> DigestSession {
    let mut session = DigestSession::new(credentials);
    session.handle_challenge(target, challenge).unwrap();
    session
}

/// A REGISTER to biloxi.com, answered from what the session remembers.
fn register(session: &mut DigestSession, cnonce: &str) -> Result<AuthorizationHeader, AuthError> {
    session.authorize("biloxi.com", "REGISTER", "sip:biloxi.com", b"", cnonce)
}

fn nc_of(header: &AuthorizationHeader) -> Option<u32> {
    Authorization::parse(&header.value()).unwrap().nc
}

#[test]
fn one_routine_answers_a_challenge_or_says_why_not() {
    let challenge = Challenge::new("biloxi.com", "n1", DigestAlgorithm::Md5).to_string();
    let response = unauthorized(&[&challenge]);
    let retried = Retried {
        method: "REGISTER",
        uri: "sip:biloxi.com",
        body: &[],
        cnonce: "c1",
    };
    assert_eq!(
        answer_challenge(None, &response, retried),
        Err(ChallengeError::NoCredentials)
    );
    let mut digest = DigestSession::new(bob());
    assert_eq!(
        answer_challenge(
            Some(&mut digest),
            &unauthorized(&["Basic realm=\"x\""]),
            retried
        ),
        Err(ChallengeError::NoUsableChallenge)
    );
    let answer = answer_challenge(Some(&mut digest), &response, retried).unwrap();
    assert_eq!(answer.name(), "Authorization");
    assert!(
        answer.authorization.verify("zanzibar", "REGISTER", &[]),
        "{}",
        answer.value()
    );
    // The same nonce again right after our answer: the password was wrong.
    assert!(matches!(
        answer_challenge(Some(&mut digest), &response, retried),
        Err(ChallengeError::Refused(AuthError::WrongCredentials(_)))
    ));
}

#[test]
fn session_counts_nc_per_nonce() {
    let ch = biloxi(", qop=auth", "MD5");
    let mut session = challenged(bob(), AuthTarget::Server, ch.clone());
    let first = register(&mut session, "c1").unwrap();
    assert_eq!(first.name(), "Authorization");
    assert!(first.value().contains("nc=00000001"));
    assert!(first.authorization.verify("zanzibar", "REGISTER", b""));
    session.accepted("biloxi.com");

    let second = session
        .authorize("biloxi.com", "INVITE", "sip:alice@biloxi.com", b"", "c2")
        .unwrap();
    assert!(second.value().contains("nc=00000002"));
    let third = session
        .authorize("biloxi.com", "BYE", "sip:alice@biloxi.com", b"", "c3")
        .unwrap();
    assert_eq!(nc_of(&third), Some(3));
    assert_eq!(session.nonce_count("biloxi.com"), Some(3));

    // Re-sending the same nonce keeps counting; a new nonce restarts at 1.
    session
        .handle_challenge(AuthTarget::Server, ch.clone())
        .unwrap();
    let fourth = register(&mut session, "c4").unwrap();
    assert_eq!(nc_of(&fourth), Some(4));
    session.accepted("biloxi.com");

    let mut renewed = ch;
    renewed.nonce = "fresh-nonce".into();
    renewed.stale = true;
    session
        .handle_challenge(AuthTarget::Server, renewed)
        .unwrap();
    let fifth = register(&mut session, "c5").unwrap();
    assert_eq!(nc_of(&fifth), Some(1));
    assert_eq!(fifth.authorization.nonce, "fresh-nonce");
}

#[test]
fn session_stale_challenge_is_retried() {
    let mut session = challenged(bob(), AuthTarget::Proxy, biloxi(", qop=auth", "SHA-256"));
    let answer = session
        .authorize("biloxi.com", "INVITE", "sip:carol@chicago.com", b"", "c")
        .unwrap();
    assert_eq!(answer.name(), "Proxy-Authorization");

    let mut stale = biloxi(", qop=auth", "SHA-256");
    stale.nonce = "newer".into();
    stale.stale = true;
    assert!(session.should_retry(&stale));
    session
        .handle_challenge(AuthTarget::Proxy, stale.clone())
        .unwrap();
    let retry = session
        .authorize("biloxi.com", "INVITE", "sip:carol@chicago.com", b"", "c")
        .unwrap();
    assert_eq!(nc_of(&retry), Some(1));

    // "Stale" while handing back the nonce we just used would loop forever.
    assert!(!session.should_retry(&stale));
}

#[test]
fn session_detects_wrong_password() {
    let mut session = DigestSession::new(Credentials::new("bob", "wrong"));
    let ch = biloxi(", qop=auth", "MD5");
    assert!(session.should_retry(&ch));
    session
        .handle_challenge(AuthTarget::Server, ch.clone())
        .unwrap();
    register(&mut session, "c").unwrap();

    // Same realm, not stale, whether or not the server minted a new nonce.
    let mut again = ch.clone();
    again.nonce = "another".into();
    assert!(!session.should_retry(&ch));
    assert!(!session.should_retry(&again));
    let err = session
        .handle_challenge(AuthTarget::Server, again)
        .unwrap_err();
    assert_eq!(err, AuthError::WrongCredentials("biloxi.com".into()));
    assert_eq!(
        err.to_string(),
        "authentication failed: wrong credentials for realm \"biloxi.com\""
    );

    // Another realm is still worth answering.
    let other = Challenge::new("atlanta.com", "n", DigestAlgorithm::Md5);
    assert!(session.should_retry(&other));
}

#[test]
fn session_retries_once_after_nonce_expiry() {
    let mut session = challenged(bob(), AuthTarget::Server, biloxi(", qop=auth", "MD5"));
    register(&mut session, "c").unwrap();
    session.accepted("biloxi.com");
    register(&mut session, "c").unwrap();

    // The server forgot the nonce but did not say stale: one retry is fair...
    let mut expired = biloxi(", qop=auth", "MD5");
    expired.nonce = "second".into();
    assert!(session.should_retry(&expired));
    session
        .handle_challenge(AuthTarget::Server, expired.clone())
        .unwrap();
    register(&mut session, "c").unwrap();

    // ...but rejecting that fresh answer means the password no longer works.
    expired.nonce = "third".into();
    assert!(!session.should_retry(&expired));
}

#[test]
fn session_unknown_realm_and_forget() {
    let mut session = DigestSession::new(bob());
    let err = session
        .authorize("nowhere", "REGISTER", "sip:x", b"", "c")
        .unwrap_err();
    assert_eq!(err, AuthError::UnknownRealm("nowhere".into()));
    session
        .handle_challenge(AuthTarget::Server, biloxi("", "MD5"))
        .unwrap();
    assert_eq!(session.realms().collect::<Vec<_>>(), vec!["biloxi.com"]);
    assert_eq!(
        session.challenge("biloxi.com").unwrap().nonce,
        "84a4cc6f3082121f32b42a2187831a9e"
    );
    session.forget("biloxi.com");
    assert!(session.challenge("biloxi.com").is_none());
}

#[test]
fn session_nonce_count_exhaustion_is_an_error() {
    let mut session = challenged(bob(), AuthTarget::Server, biloxi(", qop=auth", "MD5"));
    *session.nonce_count_mut("biloxi.com").unwrap() = u32::MAX - 1;
    let last = register(&mut session, "c").unwrap();
    assert!(last.value().contains("nc=ffffffff"));
    let err = register(&mut session, "c").unwrap_err();
    assert_eq!(err, AuthError::NonceCountExhausted("biloxi.com".into()));
}
