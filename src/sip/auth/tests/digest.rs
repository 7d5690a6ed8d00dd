//! The response digest against the RFC example vectors and independent computations, for
//! every algorithm and qop a challenge can ask for.

use super::*;

#[test]
fn rfc2617_example_response() {
    let ch = Challenge::parse(RFC2617_CHALLENGE).unwrap();
    assert_eq!(ch.realm, "testrealm@host.com");
    assert_eq!(ch.nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
    assert_eq!(
        ch.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(ch.algorithm, DigestAlgorithm::Md5);

    let value =
        authorization_value(&ch, &mufasa(), "GET", "/dir/index.html", b"", CNONCE, 1).unwrap();
    assert_eq!(
        value,
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
         response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
         qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
    );
}

#[test]
fn rfc7616_sha256_example_response() {
    let auth = answer_rfc7616("SHA-256", &rfc7616_mufasa());
    assert_eq!(
        auth.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(auth.qop, Some(Qop::Auth));
    let value = auth.to_string();
    assert!(value.contains(", algorithm=SHA-256, "), "{value}");
    assert!(
        value.contains(&format!("opaque=\"{RFC7616_OPAQUE}\"")),
        "{value}"
    );
    assert!(value.contains("qop=auth, nc=00000001"), "{value}");
}

#[test]
fn rfc7616_md5_example_response() {
    let auth = answer_rfc7616("MD5", &rfc7616_mufasa());
    assert_eq!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn rfc7616_vectors_differ_with_rfc2617_password_spelling() {
    let auth = answer_rfc7616("MD5", &mufasa());
    assert_ne!(auth.response, "8ca523f5e9506fed4657c9700eebdbec");
}

#[test]
fn auth_int_hashes_the_body() {
    let body = b"v=0\r\no=bob 2890844527 2890844527 IN IP4 host.biloxi.com\r\n";
    let md5 = biloxi(", qop=\"auth-int\"", "MD5");
    let auth = bob_answers(&md5, "INVITE", "sip:bob@biloxi.com", body, 1);
    assert_eq!(auth.qop, Some(Qop::AuthInt));
    assert_eq!(auth.response, "45535967a547a1d3a453160e34083c7d");
    assert!(auth.to_string().contains("qop=auth-int, nc=00000001"));

    let other_body = bob_answers(&md5, "INVITE", "sip:bob@biloxi.com", b"v=1", 1);
    assert_ne!(other_body.response, auth.response);

    let sha = biloxi(", qop=auth-int", "SHA-256");
    let auth = bob_answers(&sha, "INVITE", "sip:bob@biloxi.com", body, 1);
    assert_eq!(
        auth.response,
        "42e1486182fb81a00fbc662d7c04654c8379acc3080c6ad5e283e61403f8a90f"
    );
}

#[test]
fn auth_preferred_over_auth_int() {
    let ch = biloxi(", qop=\"auth-int,auth\"", "MD5");
    assert_eq!(ch.preferred_qop(), Some(Qop::Auth));
    let auth =
        Authorization::answer(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"body", "c", 1).unwrap();
    assert_eq!(auth.qop, Some(Qop::Auth));
    // The body must not matter under qop=auth.
    assert!(auth.verify("zanzibar", "REGISTER", b"another body"));
}

#[test]
fn session_algorithms_match_independent_computation() {
    let md5 = biloxi(", qop=auth", "MD5-sess");
    let auth = bob_answers(&md5, "REGISTER", "sip:biloxi.com", b"", 42);
    assert_eq!(auth.response, "23ffb10e2c725c17583e96d259605cf4");
    assert!(
        auth.to_string()
            .contains("algorithm=MD5-sess, cnonce=\"0a4f113b\", qop=auth, nc=0000002a")
    );

    let sha = biloxi(", qop=auth", "sha-256-SESS");
    assert_eq!(sha.algorithm, DigestAlgorithm::Sha256Sess);
    let auth = bob_answers(&sha, "REGISTER", "sip:biloxi.com", b"", 42);
    assert_eq!(
        auth.response,
        "5e1258d12ce38130263fb085d348b144b745e16429d44a21d8fca748b5807551"
    );
}

#[test]
fn rfc2069_mode_without_qop_sends_no_cnonce_or_nc() {
    let ch = biloxi("", "MD5");
    assert!(ch.qop.is_empty());
    let value =
        authorization_value(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"", "ignored", 7).unwrap();
    assert_eq!(
        value,
        "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"84a4cc6f3082121f32b42a2187831a9e\", \
         uri=\"sip:biloxi.com\", response=\"133e2c13b8f066b4569b3adbdf67ebd1\", algorithm=MD5"
    );
}

#[test]
fn missing_cnonce_is_refused_when_needed() {
    let ch = biloxi(", qop=auth", "MD5");
    let err =
        Authorization::answer(&ch, &bob(), "REGISTER", "sip:biloxi.com", b"", "", 1).unwrap_err();
    assert!(matches!(
        err,
        AuthError::InvalidParam {
            param: "cnonce",
            ..
        }
    ));
    // Without qop or -sess there is nothing to put the cnonce in.
    let plain = biloxi("", "MD5");
    assert!(
        Authorization::answer(&plain, &bob(), "REGISTER", "sip:biloxi.com", b"", "", 1).is_ok()
    );
}
