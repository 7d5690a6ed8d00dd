//! Behind a NAT, for real: three network namespaces the test makes (the phone's home
//! network, a router that masquerades with nftables as home routers do, and the outside
//! with kamailio as the provider). The phone inside registers through the NAT, learns its
//! public address from kamailio's `received`/`rport`, binds that, and a call from outside
//! reaches it through kamailio with audio both ways (symmetric RTP through the NAT).
//! Needs root (network namespaces) and nftables; everything stays in the namespaces.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Peer, Tool, data_dir, verbatim_bin, write_tone_wav};

const INSIDE: &str = "10.77.1.2";
const ROUTER_INSIDE: &str = "10.77.1.1";
const ROUTER_OUTSIDE: &str = "10.77.2.1";
const OUTSIDE: &str = "10.77.2.2";
const KAMAILIO_PORT: u16 = 5060;

/// The three namespaces and their links; removed (with everything in them) on drop.
struct Nat {
    inside: String,
    router: String,
    outside: String,
}

fn run(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn in_ns(ns: &str, program: &str, args: &[&str]) {
    let output = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{ns}: {program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Nat {
    fn new() -> Nat {
        let id = std::process::id() % 100_000;
        let nat = Nat {
            inside: format!("vbin{id}"),
            router: format!("vbnat{id}"),
            outside: format!("vbout{id}"),
        };
        for ns in [&nat.inside, &nat.router, &nat.outside] {
            run(&["netns", "add", ns]);
            in_ns(ns, "ip", &["link", "set", "lo", "up"]);
        }
        let (home, home_peer) = (format!("vh{id}a"), format!("vh{id}b"));
        let (wan, wan_peer) = (format!("vw{id}a"), format!("vw{id}b"));
        run(&[
            "link", "add", &home, "type", "veth", "peer", "name", &home_peer,
        ]);
        run(&["link", "set", &home, "netns", &nat.inside]);
        run(&["link", "set", &home_peer, "netns", &nat.router]);
        run(&[
            "link", "add", &wan, "type", "veth", "peer", "name", &wan_peer,
        ]);
        run(&["link", "set", &wan, "netns", &nat.outside]);
        run(&["link", "set", &wan_peer, "netns", &nat.router]);
        for (ns, dev, address) in [
            (&nat.inside, &home, INSIDE),
            (&nat.router, &home_peer, ROUTER_INSIDE),
            (&nat.router, &wan_peer, ROUTER_OUTSIDE),
            (&nat.outside, &wan, OUTSIDE),
        ] {
            in_ns(
                ns,
                "ip",
                &["addr", "add", &format!("{address}/24"), "dev", dev],
            );
            in_ns(ns, "ip", &["link", "set", dev, "up"]);
        }
        // Home reaches out through the router; outside has no route home: only the NAT's
        // mappings lead in.
        in_ns(
            &nat.inside,
            "ip",
            &["route", "add", "default", "via", ROUTER_INSIDE],
        );
        in_ns(&nat.router, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
        in_ns(&nat.router, "nft", &["add", "table", "ip", "home_router"]);
        in_ns(
            &nat.router,
            "nft",
            &[
                "add",
                "chain",
                "ip",
                "home_router",
                "post",
                "{ type nat hook postrouting priority 100 ; }",
            ],
        );
        in_ns(
            &nat.router,
            "nft",
            &[
                "add",
                "rule",
                "ip",
                "home_router",
                "post",
                "oifname",
                &wan_peer,
                "masquerade",
            ],
        );
        nat
    }
}

impl Drop for Nat {
    fn drop(&mut self) {
        for ns in [&self.inside, &self.router, &self.outside] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// `program args` in `ns`, as a peer.
fn start_in(peer: &mut Peer, ns: &str, program: &std::path::Path, args: &[String]) {
    let mut command = peer.command("ip");
    command
        .args(["netns", "exec", ns])
        .arg(program)
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_CONFIG_HOME", peer.path("config"))
        .env("RUST_LOG", "info,verbatim=debug");
    peer.start(command);
}

fn account(user: &str, password: &str) -> String {
    format!(
        "[account]\nuri = \"sip:{user}@{OUTSIDE}\"\nregistrar = \"sip:{OUTSIDE}:{KAMAILIO_PORT}\"\n\
         password = \"{password}\"\ntransport = \"udp\"\nexpires = 300\n"
    )
}

#[test]
fn a_phone_behind_a_nat_registers_its_public_address_and_takes_a_call_with_audio_both_ways() {
    let nat = Nat::new();

    let mut kamailio = Peer::new("kamailio-outside");
    let run_dir = kamailio.path("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let cfg = data_dir().join("kamailio.cfg");
    let work_dir = kamailio.dir().display().to_string();
    start_in(
        &mut kamailio,
        &nat.outside,
        &Tool::Kamailio.path(),
        &[
            "-f".into(),
            cfg.display().to_string(),
            "-DD".into(),
            "-E".into(),
            "-Y".into(),
            run_dir.display().to_string(),
            "-w".into(),
            work_dir,
            "-l".into(),
            format!("udp:{OUTSIDE}:{KAMAILIO_PORT}"),
            "-m".into(),
            "32".into(),
            "-M".into(),
            "8".into(),
        ],
    );
    kamailio.wait_for_output("Listening on", Duration::from_secs(10));

    let mut alice = Peer::new("verbatim-behind-nat");
    let alice_config = alice.write_file("alice.toml", account("alice", "alicepw"));
    let alice_tone = alice.path("tone.wav");
    write_tone_wav(&alice_tone, 8000, 8000, 440.0);
    start_in(
        &mut alice,
        &nat.inside,
        &verbatim_bin(),
        &[
            "answer".into(),
            "--listen".into(),
            format!("{INSIDE}:5060"),
            "--config".into(),
            alice_config.display().to_string(),
            "--calls".into(),
            "1".into(),
            "--codec".into(),
            "pcmu".into(),
            "--srtp".into(),
            "off".into(),
            "--play".into(),
            alice_tone.display().to_string(),
            "--stats".into(),
        ],
    );
    // kamailio binds what the NAT shows (its outside address), not the home one.
    kamailio.wait_for_output(
        &format!("contact <sip:alice@{ROUTER_OUTSIDE}:"),
        Duration::from_secs(15),
    );

    let mut bob = Peer::new("verbatim-outside");
    let bob_config = bob.write_file("bob.toml", account("bob", "bobpw"));
    let bob_tone = bob.path("tone.wav");
    write_tone_wav(&bob_tone, 8000, 8000, 1000.0);
    start_in(
        &mut bob,
        &nat.outside,
        &verbatim_bin(),
        &[
            "call".into(),
            format!("sip:alice@{OUTSIDE}"),
            "--listen".into(),
            format!("{OUTSIDE}:5070"),
            "--config".into(),
            bob_config.display().to_string(),
            "--duration".into(),
            "3".into(),
            "--codec".into(),
            "pcmu".into(),
            "--srtp".into(),
            "off".into(),
            "--play".into(),
            bob_tone.display().to_string(),
            "--stats".into(),
        ],
    );
    bob.expect_success(Duration::from_secs(30));
    alice.expect_success(Duration::from_secs(30));

    // Each side's final statistics: packets came in both ways through the NAT.
    let received = |peer: &Peer| -> u64 {
        let stats = peer
            .stdout()
            .lines()
            .find(|l| l.contains("packets_received"))
            .map(str::to_owned)
            .unwrap_or_default();
        let value: serde_json::Value = serde_json::from_str(&stats).unwrap_or_default();
        value["rtp"]["packets_received"].as_u64().unwrap_or(0)
    };
    let (inside, outside) = (received(&alice), received(&bob));
    assert!(
        inside >= 100 && outside >= 100,
        "audio both ways through the NAT: the phone inside got {inside} packets, outside {outside}\n{}\n{}",
        alice.stderr(),
        bob.stderr()
    );
}
