//! Reading and writing challenges, and choosing which one of several to answer.

use super::*;

/// Parses a challenge of realm "r" and nonce "n" with `rest` appended after a comma.
fn r_n_challenge(rest: &str) -> Result<Challenge, AuthError> {
    Challenge::parse(&format!("Digest realm=\"r\", nonce=\"n\", {rest}"))
}

#[test]
fn algorithm_tokens_parse_case_insensitively() {
    assert_eq!(DigestAlgorithm::parse("md5").unwrap(), DigestAlgorithm::Md5);
    assert_eq!(
        DigestAlgorithm::parse("MD5-SESS").unwrap(),
        DigestAlgorithm::Md5Sess
    );
    assert_eq!(
        DigestAlgorithm::parse("Sha-256").unwrap(),
        DigestAlgorithm::Sha256
    );
    assert_eq!(
        "SHA-256-sess".parse::<DigestAlgorithm>().unwrap(),
        DigestAlgorithm::Sha256Sess
    );
    for alg in [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Md5Sess,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha256Sess,
    ] {
        assert_eq!(DigestAlgorithm::parse(&alg.to_string()).unwrap(), alg);
    }
}

#[test]
fn unknown_algorithm_is_a_typed_error() {
    let err = r_n_challenge("algorithm=SHA-512-256").unwrap_err();
    assert_eq!(err, AuthError::UnsupportedAlgorithm("SHA-512-256".into()));
    let err = r_n_challenge("algorithm=\"FOO\"").unwrap_err();
    assert_eq!(err.to_string(), "unsupported digest algorithm \"FOO\"");
    assert!(r_n_challenge("algorithm=AKAv1-MD5").is_err());
}

#[test]
fn algorithm_quoted_or_unquoted() {
    let quoted = r_n_challenge("algorithm=\"SHA-256\"").unwrap();
    let bare = r_n_challenge("algorithm=sha-256").unwrap();
    assert_eq!(quoted.algorithm, DigestAlgorithm::Sha256);
    assert_eq!(quoted, bare);
    let absent = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
    assert_eq!(absent.algorithm, DigestAlgorithm::Md5);
}

#[test]
fn qop_lists_quoted_unquoted_and_unknown() {
    let cases: &[(&str, &[Qop])] = &[
        ("qop=\"auth,auth-int\"", &[Qop::Auth, Qop::AuthInt]),
        ("qop=\" auth-int , auth \"", &[Qop::AuthInt, Qop::Auth]),
        ("qop=auth", &[Qop::Auth]),
        ("qop=AUTH", &[Qop::Auth]),
        ("qop=auth,auth-int", &[Qop::Auth, Qop::AuthInt]),
        ("qop=auth-int, auth", &[Qop::AuthInt, Qop::Auth]),
        ("qop=\"auth,token-we-do-not-know\"", &[Qop::Auth]),
        ("qop=\"\"", &[]),
    ];
    for (qop, expected) in cases {
        let ch = Challenge::parse(&format!("Digest realm=\"r\", {qop}, nonce=\"n\"")).unwrap();
        assert_eq!(ch.qop, *expected, "{qop}");
        assert_eq!(ch.nonce, "n");
    }
    let err = r_n_challenge("qop=\"auth-conf\"").unwrap_err();
    assert_eq!(err, AuthError::UnsupportedQop("auth-conf".into()));
}

#[test]
fn tolerant_whitespace_and_case() {
    let ch = Challenge::parse(
        "  dIgEsT   REALM = \"atlanta.com\" ,NONCE=\"abc\",,\topaque = \"\" , STALE=True, \
         domain=\"sip:a.com sip:b.com\",",
    )
    .unwrap();
    assert_eq!(ch.realm, "atlanta.com");
    assert_eq!(ch.nonce, "abc");
    assert_eq!(ch.opaque.as_deref(), Some(""));
    assert!(ch.stale);
    assert_eq!(
        ch.domain_uris().collect::<Vec<_>>(),
        vec!["sip:a.com", "sip:b.com"]
    );

    let folded = Challenge::parse("Digest realm=\"a\",\r\n nonce=\"b\"").unwrap();
    assert_eq!(folded.nonce, "b");
}

#[test]
fn stale_flag_values() {
    for (stale, expected) in [
        ("true", true),
        ("TRUE", true),
        ("\"true\"", true),
        ("false", false),
        ("FALSE", false),
        ("maybe", false),
    ] {
        let ch = r_n_challenge(&format!("stale={stale}")).unwrap();
        assert_eq!(ch.stale, expected, "{stale}");
    }
}

#[test]
fn unknown_params_are_ignored() {
    let ch = Challenge::parse(
        "Digest realm=\"r\", charset=UTF-8, userhash=false, nonce=\"n\", x-vendor=\"a, b\"",
    )
    .unwrap();
    assert_eq!(ch.realm, "r");
    assert_eq!(ch.nonce, "n");
}

#[test]
fn missing_realm_or_nonce_is_an_error() {
    let err = Challenge::parse("Digest realm=\"r\", qop=auth").unwrap_err();
    assert_eq!(err.to_string(), "challenge has no nonce");
    let err = Challenge::parse("Digest nonce=\"n\"").unwrap_err();
    assert_eq!(err.to_string(), "challenge has no realm");
}

#[test]
fn non_digest_schemes_are_rejected() {
    let err = Challenge::parse("Basic realm=\"r\"").unwrap_err();
    assert_eq!(err, AuthError::NotDigest("Basic".into()));
    assert!(err.to_string().starts_with("not a Digest challenge"));
    assert_eq!(Challenge::parse("").unwrap_err(), AuthError::Empty);
    assert_eq!(Challenge::parse(" \t ").unwrap_err(), AuthError::Empty);
}

#[test]
fn choose_prefers_sha256_over_md5() {
    let md5 = Challenge::parse(&rfc7616_challenge("MD5")).unwrap();
    let sha = Challenge::parse(&rfc7616_challenge("SHA-256")).unwrap();
    let candidates = [md5.clone(), sha.clone()];
    assert_eq!(Challenge::choose(&candidates), Some(&sha));
    let candidates = [sha.clone(), md5.clone()];
    assert_eq!(Challenge::choose(&candidates), Some(&sha));
    assert_eq!(Challenge::choose(&[]), None);

    // Equal strength: the server's first preference stands.
    let sess = Challenge::parse(&rfc7616_challenge("SHA-256-sess")).unwrap();
    let candidates = [sess.clone(), sha.clone(), md5.clone()];
    assert_eq!(Challenge::choose(&candidates), Some(&sess));
}

#[test]
fn choose_skips_unsupported_challenges() {
    let headers = [
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
        "Digest realm=\"r\", nonce=\"n\", algorithm=MD5",
        "Basic realm=\"r\"",
    ];
    let parsed: Vec<Challenge> = headers
        .iter()
        .filter_map(|h| Challenge::parse(h).ok())
        .collect();
    assert_eq!(
        Challenge::choose(&parsed).unwrap().algorithm,
        DigestAlgorithm::Md5
    );
}

#[test]
fn choose_per_realm_keeps_one_per_realm() {
    let a_md5 = Challenge::new("a", "n1", DigestAlgorithm::Md5);
    let b_md5 = Challenge::new("b", "n2", DigestAlgorithm::Md5);
    let a_sha = Challenge::new("a", "n3", DigestAlgorithm::Sha256);
    let candidates = [a_md5, b_md5.clone(), a_sha.clone()];
    assert_eq!(
        Challenge::choose_per_realm(&candidates),
        vec![&a_sha, &b_md5]
    );
}

#[test]
fn challenge_display_round_trips() {
    let mut ch = Challenge::new("sip \"recorder\"", "abc/def+=", DigestAlgorithm::Sha256);
    ch.opaque = Some("op".into());
    ch.qop = vec![Qop::Auth, Qop::AuthInt];
    ch.stale = true;
    ch.domain = Some("sip:a.example".into());
    let text = ch.to_string();
    assert_eq!(
        text,
        "Digest realm=\"sip \\\"recorder\\\"\", nonce=\"abc/def+=\", opaque=\"op\", algorithm=SHA-256, \
         qop=\"auth,auth-int\", stale=TRUE, domain=\"sip:a.example\""
    );
    assert_eq!(Challenge::parse(&text).unwrap(), ch);
}
