//! The auth-param syntax both header kinds share: quoting and escaping, garbage, hostile
//! bytes, and values that would inject a header line.

use super::*;

#[test]
fn quoted_strings_unescape_and_output_escapes() {
    let ch =
        Challenge::parse(r#"Digest realm="a \"quoted\" \\ realm", nonce="n\,1", opaque="x,y""#)
            .unwrap();
    assert_eq!(ch.realm, r#"a "quoted" \ realm"#);
    assert_eq!(ch.nonce, "n,1");
    assert_eq!(ch.opaque.as_deref(), Some("x,y"));

    let creds = Credentials::new(r#"us"er\x"#, "pw");
    let auth = Authorization::answer(&ch, &creds, "REGISTER", "sip:r", b"", "c", 1).unwrap();
    let value = auth.to_string();
    assert!(
        value.starts_with(r#"Digest username="us\"er\\x", realm="a \"quoted\" \\ realm""#),
        "{value}"
    );
    assert_eq!(Authorization::parse(&value).unwrap(), auth);
}

#[test]
fn garbage_gives_errors() {
    let garbage = [
        "Digest",
        "Digest ",
        "Digestrealm=\"r\"",
        "Digest realm",
        "Digest realm=",
        "Digest realm=\"unterminated",
        "Digest realm=\"r\\",
        "Digest realm=\"r\" nonce=\"n\"",
        "Digest realm=\"r\"x, nonce=\"n\"",
        "Digest =\"r\"",
        "Digest realm=\"r\", nonce=\"n\", Digest realm=\"s\"",
        "Digest realm=\"r\", nonce=\"n\", realm=\"s\"",
        "Digest realm=\"r\u{0}\", nonce=\"n\"",
        "Digest realm=\"r\\\r\", nonce=\"n\"",
        "\"Digest\" realm=\"r\"",
        "Digest réalm=\"r\", nonce=\"n\"",
        "Digest realm=r\"x\", nonce=\"n\"",
    ];
    for input in garbage {
        assert!(
            Challenge::parse(input).is_err(),
            "{input:?} should not parse"
        );
        assert!(
            Authorization::parse(input).is_err(),
            "{input:?} should not parse"
        );
    }
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", realm=\"s\"").unwrap_err(),
        AuthError::DuplicateParam("realm".into())
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A small deterministic generator stands in for a fuzzer: it mixes the
    // characters that drive the parser's state changes with arbitrary ones.
    let alphabet: Vec<char> =
        "Digest realm=\"\\, \t\r\nqop=auth-int nonce=algorithm=SHA-256 é\u{0}€"
            .chars()
            .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..5000 {
        let mut input = String::new();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 60) as usize;
        for _ in 0..len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            input.push(alphabet[(state % alphabet.len() as u64) as usize]);
        }
        let _ = Challenge::parse(&input);
        let _ = Authorization::parse(&input);
        let _ = Challenge::parse(&format!("Digest {input}"));
        let _ = Authorization::parse(&format!("Digest realm=\"r\", {input}"));
    }
}

#[test]
fn control_characters_cannot_reach_the_header() {
    let ch = biloxi(", qop=auth", "MD5");
    let creds = Credentials::new("bob\r\nVia: evil", "pw");
    let err =
        Authorization::answer(&ch, &creds, "REGISTER", "sip:biloxi.com", b"", "c", 1).unwrap_err();
    assert!(matches!(
        err,
        AuthError::InvalidParam {
            param: "username",
            ..
        }
    ));
    let err = Authorization::answer(&ch, &bob(), "REGISTER", "sip:b\niloxi.com", b"", "c", 1)
        .unwrap_err();
    assert!(matches!(err, AuthError::InvalidParam { param: "uri", .. }));
}
