//! Interop with kamailio 5.6 as registrar and proxy with digest auth (Debian package
//! kamailio), all on 127.0.0.1. Each test starts its own kamailio with
//! `tests/data/kamailio.cfg` on its own port; the cfg knows alice/alicepw and bob/bobpw,
//! challenges REGISTER with 401 and INVITE with 407, and logs `interop:` lines on stderr.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::{
    Account, Peer, Proto, START_TIMEOUT, free_port, start_kamailio, start_recorder, start_verbatim,
    write_accounts_config,
};

const VERBATIM_TIMEOUT: Duration = Duration::from_secs(15);

fn registrar_uri(port: u16) -> String {
    format!("sip:127.0.0.1:{port}")
}

/// alice registers with the right password: exit 0, `registered ...` on stdout.
#[test]
fn register_with_digest_auth() {
    let kamailio_port = free_port();
    let mut kamailio = Peer::new("kamailio");
    start_kamailio(&mut kamailio, kamailio_port);

    let mut alice = Peer::new("verbatim-register");
    let config = Account::new("alice", "alicepw")
        .registrar(&registrar_uri(kamailio_port))
        .write_config(&alice, "alice.toml");
    start_verbatim(
        &mut alice,
        ["register", "--config", config.to_str().unwrap()],
    );
    alice.expect_success(VERBATIM_TIMEOUT);
    if !alice
        .stdout()
        .lines()
        .any(|line| line.starts_with("registered"))
    {
        alice.fail("no line starting with `registered` on stdout");
    }
    kamailio.wait_for_output(
        "interop: registered sip:alice@127.0.0.1",
        Duration::from_secs(5),
    );
}

/// Same over TCP (`transport = "tcp"` in the account).
#[test]
fn register_over_tcp() {
    let kamailio_port = free_port();
    let mut kamailio = Peer::new("kamailio");
    start_kamailio(&mut kamailio, kamailio_port);

    let mut alice = Peer::new("verbatim-register-tcp");
    let config = Account::new("alice", "alicepw")
        .registrar(&registrar_uri(kamailio_port))
        .transport("tcp")
        .write_config(&alice, "alice.toml");
    start_verbatim(
        &mut alice,
        ["register", "--config", config.to_str().unwrap()],
    );
    alice.expect_success(VERBATIM_TIMEOUT);
    if !alice
        .stdout()
        .lines()
        .any(|line| line.starts_with("registered"))
    {
        alice.fail("no line starting with `registered` on stdout");
    }
    let log = kamailio.wait_for_output(
        "interop: registered sip:alice@127.0.0.1",
        Duration::from_secs(5),
    );
    assert!(
        log.contains("interop: REGISTER sip:127.0.0.1") && log.contains("from tcp:127.0.0.1"),
        "kamailio did not get the REGISTER over TCP:\n{}",
        kamailio.report()
    );
}

/// A wrong password: kamailio challenges again; verbatim gives up, exits non-zero and
/// says `authentication failed` on stderr.
#[test]
fn register_with_wrong_password_fails() {
    let kamailio_port = free_port();
    let mut kamailio = Peer::new("kamailio");
    start_kamailio(&mut kamailio, kamailio_port);

    let mut alice = Peer::new("verbatim-register-wrong-password");
    let config = Account::new("alice", "not-alicepw")
        .registrar(&registrar_uri(kamailio_port))
        .write_config(&alice, "alice.toml");
    start_verbatim(
        &mut alice,
        ["register", "--config", config.to_str().unwrap()],
    );
    alice.expect_failure(VERBATIM_TIMEOUT);
    if !alice.stderr().contains("authentication failed") {
        alice.fail("stderr does not say `authentication failed`");
    }
    assert!(
        !kamailio.stderr().contains("interop: registered"),
        "kamailio saved a registration with a wrong password:\n{}",
        kamailio.report()
    );
}

/// bob registers and answers; alice registers and calls sip:bob@127.0.0.1 through
/// kamailio (407 on the INVITE, then relayed to bob's contact, record-routed).
#[test]
fn call_between_registered_users_through_kamailio() {
    let kamailio_port = free_port();
    let bob_port = free_port();
    let alice_port = free_port();
    let mut kamailio = Peer::new("kamailio");
    start_kamailio(&mut kamailio, kamailio_port);

    let mut bob = Peer::new("verbatim-bob-answer");
    let bob_config = Account::new("bob", "bobpw")
        .registrar(&registrar_uri(kamailio_port))
        .write_config(&bob, "bob.toml");
    start_verbatim(
        &mut bob,
        [
            "answer",
            "--config",
            bob_config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{bob_port}"),
            "--calls",
            "1",
        ],
    );
    // kamailio knows bob once it logged the saved contact; bob then still has to listen.
    kamailio.wait_for_output("interop: registered sip:bob@127.0.0.1", VERBATIM_TIMEOUT);
    bob.wait_until_listening(Proto::Udp, bob_port, START_TIMEOUT);
    assert!(
        bob.is_running(),
        "bob exited after registering:\n{}",
        bob.report()
    );

    let mut alice = Peer::new("verbatim-alice-call");
    let alice_config = Account::new("alice", "alicepw")
        .registrar(&registrar_uri(kamailio_port))
        .write_config(&alice, "alice.toml");
    start_verbatim(
        &mut alice,
        [
            "call",
            "sip:bob@127.0.0.1",
            "--config",
            alice_config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{alice_port}"),
            "--duration",
            "1",
        ],
    );
    alice.expect_success(VERBATIM_TIMEOUT);
    bob.expect_success(VERBATIM_TIMEOUT);
    // kamailio record-routes the INVITE: bob must copy Record-Route into his 2xx
    // (RFC 3261 12.1.1) and alice must send the ACK and the BYE through kamailio (Route).
    let log = kamailio.stderr();
    let through_kamailio = |method: &str| {
        log.lines().any(|line| {
            line.contains(&format!("interop: {method} "))
                && line.contains(&format!("127.0.0.1:{bob_port}"))
        })
    };
    assert!(
        log.contains("interop: relaying INVITE"),
        "kamailio did not relay the INVITE to bob:\n{}",
        kamailio.report()
    );
    assert!(
        through_kamailio("ACK") && through_kamailio("BYE"),
        "the ACK and the BYE did not go through kamailio although it record-routed the \
         INVITE: the 2xx must carry the Record-Route (answerer) and the caller must use it as \
         its route set:\n{}",
        kamailio.report()
    );
}

/// One phone with two accounts, alice and bob, registered with kamailio at once; a call to
/// each (from a caller whose config holds both, choosing its identity with `--account`) is
/// answered on the account it was for. A third account, switched off, never registers.
#[test]
fn two_accounts_of_one_phone_register_and_each_takes_its_own_calls() {
    let kamailio_port = free_port();
    let phone_port = free_port();
    let mut kamailio = Peer::new("kamailio");
    start_kamailio(&mut kamailio, kamailio_port);
    let registrar = registrar_uri(kamailio_port);

    // Home's calls are recorded, by a recorder of its own; work's are not.
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("two-accounts-srs", recordings.path(), &[]);
    let builtin_folder = tempfile::tempdir().unwrap();
    let mut phone = Peer::new("verbatim-two-accounts");
    let alice = Account::new("alice", "alicepw").registrar(&registrar);
    let bob = Account::new("bob", "bobpw").registrar(&registrar);
    let carol = Account::new("carol", "carolpw").registrar(&registrar);
    let config = phone.write_file(
        "phone.toml",
        format!(
            "[recording]\nfolder = \"{}\"\n\n{}record = true\n\
             srs = \"sip:srs@127.0.0.1:{srs_port};transport=tcp\"\n\n{}record = false\n\n\
             {}enabled = false\n",
            builtin_folder.path().display(),
            alice.to_toml_named("home"),
            bob.to_toml_named("work"),
            carol.to_toml_named("old")
        ),
    );
    start_verbatim(
        &mut phone,
        [
            "answer",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{phone_port}"),
            "--calls",
            "2",
        ],
    );
    kamailio.wait_for_output("interop: registered sip:alice@127.0.0.1", VERBATIM_TIMEOUT);
    kamailio.wait_for_output("interop: registered sip:bob@127.0.0.1", VERBATIM_TIMEOUT);
    phone.wait_for_output("answering 2 call(s)", VERBATIM_TIMEOUT);
    let registered = |phone: &Peer| {
        phone
            .stdout()
            .lines()
            .filter(|line| line.starts_with("registered"))
            .count()
    };
    let deadline = std::time::Instant::now() + VERBATIM_TIMEOUT;
    while registered(&phone) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        registered(&phone),
        2,
        "each enabled account registers, the switched-off one does not:\n{}",
        phone.report()
    );

    // The callers reach kamailio as an outbound proxy and do not register (that would add
    // their own contact to alice's or bob's).
    let mut caller_config = Peer::new("verbatim-two-accounts-callers");
    let outbound = format!("127.0.0.1:{kamailio_port}");
    let as_alice = Account::new("alice", "alicepw").outbound_proxy(&outbound);
    let as_bob = Account::new("bob", "bobpw").outbound_proxy(&outbound);
    let callers = write_accounts_config(
        &caller_config,
        "callers.toml",
        &[("as-alice", &as_alice), ("as-bob", &as_bob)],
    );
    for (target, account) in [
        ("sip:bob@127.0.0.1", None),
        ("sip:alice@127.0.0.1", Some("as-bob")),
    ] {
        let mut caller = Peer::new("verbatim-two-accounts-caller");
        let mut args = vec![
            "call".to_owned(),
            target.to_owned(),
            "--config".to_owned(),
            callers.to_str().unwrap().to_owned(),
            "--listen".to_owned(),
            format!("127.0.0.1:{}", free_port()),
            "--duration".to_owned(),
            "1".to_owned(),
        ];
        if let Some(account) = account {
            args.extend(["--account".to_owned(), account.to_owned()]);
        }
        start_verbatim(&mut caller, args);
        caller.expect_success(VERBATIM_TIMEOUT);
    }
    phone.expect_success(VERBATIM_TIMEOUT);
    let said = phone.stderr();
    let line_for = |account: &str| {
        said.lines()
            .find(|line| {
                line.starts_with("incoming call")
                    && line.ends_with(&format!("for account {account}"))
            })
            .map(str::to_owned)
    };
    let work = line_for("work").unwrap_or_else(|| phone.fail("no call for account work (bob)"));
    let home = line_for("home").unwrap_or_else(|| phone.fail("no call for account home (alice)"));
    assert!(
        work.contains("alice"),
        "the call to bob came from alice (the default account): {work}"
    );
    assert!(
        home.contains("bob"),
        "the call to alice came from bob (--account as-bob): {home}"
    );
    assert!(
        !kamailio.stderr().contains("carol"),
        "the switched-off account registered:\n{}",
        kamailio.report()
    );
    srs.stop();
    let recorded = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(
        recorded.len(),
        1,
        "home's call went to home's recorder, work's was not recorded:\n{}",
        phone.report()
    );
    assert!(
        verbatim::archive::session::session_folders(builtin_folder.path()).is_empty(),
        "nothing went to the built-in recorder"
    );
    caller_config.stop();
}
