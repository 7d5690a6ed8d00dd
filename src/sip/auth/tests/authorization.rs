//! The server's side of an `Authorization` header: parsing it, rejecting incomplete ones,
//! and verifying the digest; and credentials that keep their password out of logs.

use super::*;

/// The password the RFC 2617 example header was computed with.
const RFC2617_PASSWORD: &str = "Circle Of Life";

#[test]
fn authorization_parse_and_verify_rfc2617() {
    let header = "Digest username=\"Mufasa\",\n realm=\"testrealm@host.com\",\n \
                  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\n uri=\"/dir/index.html\",\n \
                  qop=auth,\n nc=00000001,\n cnonce=\"0a4f113b\",\n \
                  response=\"6629fae49393a05397450978507c4ef1\",\n \
                  opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let auth = Authorization::parse(header).unwrap();
    assert_eq!(auth.username, "Mufasa");
    assert_eq!(auth.uri, "/dir/index.html");
    assert_eq!(auth.nc, Some(1));
    assert_eq!(auth.qop, Some(Qop::Auth));
    assert_eq!(auth.cnonce.as_deref(), Some("0a4f113b"));
    assert_eq!(auth.algorithm, DigestAlgorithm::Md5);
    assert!(auth.verify(RFC2617_PASSWORD, "GET", b""));
    assert!(!auth.verify("Circle of Life", "GET", b""));
    assert!(!auth.verify(RFC2617_PASSWORD, "POST", b""));

    // Uppercase hex from a peer is still the same digest.
    let mut upper = auth.clone();
    upper.response = upper.response.to_ascii_uppercase();
    assert!(upper.verify(RFC2617_PASSWORD, "GET", b""));

    let mut wrong_nc = auth.clone();
    wrong_nc.nc = Some(2);
    assert!(!wrong_nc.verify(RFC2617_PASSWORD, "GET", b""));

    let mut truncated = auth;
    truncated.response.pop();
    assert!(!truncated.verify(RFC2617_PASSWORD, "GET", b""));
}

#[test]
fn verify_round_trips_every_algorithm_and_qop() {
    let body = b"hello";
    for alg in ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"] {
        for qop in ["", ", qop=auth", ", qop=auth-int"] {
            let ch = biloxi(qop, alg);
            let value =
                authorization_value(&ch, &bob(), "INVITE", "sip:bob@biloxi.com", body, "xyz", 3)
                    .unwrap();
            let parsed = Authorization::parse(&value).unwrap();
            assert!(parsed.verify("zanzibar", "INVITE", body), "{alg}{qop}");
            assert!(!parsed.verify("zanzibar!", "INVITE", body), "{alg}{qop}");
            assert_eq!(
                parsed.verify("zanzibar", "INVITE", b"tampered"),
                !qop.ends_with("auth-int")
            );
        }
    }
}

#[test]
fn authorization_parse_errors() {
    let ok = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"";
    let parse_ok_with = |rest: &str| Authorization::parse(&format!("{ok}, {rest}"));
    assert!(Authorization::parse(ok).is_ok());
    let err =
        Authorization::parse("Digest realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"00\"")
            .unwrap_err();
    assert_eq!(err.to_string(), "authorization has no username");
    let err = parse_ok_with("qop=auth, nc=00000001").unwrap_err();
    assert!(matches!(
        err,
        AuthError::MissingParam {
            param: "cnonce",
            ..
        }
    ));
    let err = parse_ok_with("qop=auth, cnonce=\"c\"").unwrap_err();
    assert!(matches!(err, AuthError::MissingParam { param: "nc", .. }));
    for nc in ["+1", "xyz", "123456789", "\"\""] {
        let err = parse_ok_with(&format!("qop=auth, cnonce=\"c\", nc={nc}")).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidParam { param: "nc", .. })
                || matches!(err, AuthError::Malformed(_)),
            "{nc}: {err}"
        );
    }
    let err = parse_ok_with("qop=auth-conf, cnonce=\"c\", nc=1").unwrap_err();
    assert_eq!(err, AuthError::UnsupportedQop("auth-conf".into()));
    // -sess without a cnonce cannot be checked, so it must not pass.
    let sess = parse_ok_with("algorithm=MD5-sess").unwrap();
    assert!(!sess.verify("pw", "REGISTER", b""));
}

#[test]
fn credentials_debug_hides_password() {
    let text = format!("{:?}", Credentials::new("alice", "s3cret"));
    assert!(text.contains("alice"));
    assert!(!text.contains("s3cret"));
    let session = DigestSession::new(Credentials::new("alice", "s3cret"));
    assert!(!format!("{session:?}").contains("s3cret"));
}
