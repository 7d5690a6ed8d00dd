//! Behind a NAT, for real: three network namespaces the test makes (the phone's home
//! network, a router that masquerades with nftables as home routers do, and the outside
//! with kamailio as the provider). The phone inside registers through the NAT, learns its
//! public address from kamailio's `received`/`rport`, binds that, and a call from outside
//! reaches it through kamailio with audio both ways (symmetric RTP through the NAT). With
//! coturn outside as its STUN server, the phone's SDP names its public media address, and
//! baresip outside (which sends where the SDP says) is heard.
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

use support::{
    Audio, Baresip, BaresipMedia, Peer, Tool, baresip_args, baresip_recording, data_dir,
    verbatim_bin, write_baresip_config, write_tone_wav,
};

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
        // Tests run side by side in one process: each NAT gets names of its own (interface
        // names stay under Linux's 15 characters).
        static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        let id = std::process::id() % 10_000 * 10 + made;
        let nat = Nat {
            inside: format!("vbin{id}"),
            router: format!("vbnat{id}"),
            outside: format!("vbout{id}"),
        };
        for ns in [&nat.inside, &nat.router, &nat.outside] {
            // One left by a run that was killed would be in the way.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
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
        // The router masquerades what leaves for the outside and, as home routers do, lets
        // nothing new in from there: an unsolicited datagram is dropped before conntrack
        // keeps it, so it cannot take the port a mapping made later wants (Linux would then
        // pick another).
        let ruleset = format!(
            "add table ip home_router {{ \
               chain post {{ type nat hook postrouting priority 100 ; \
                 oifname \"{wan_peer}\" masquerade ; }} ; \
               chain firewall {{ type filter hook input priority 0 ; \
                 iifname \"{wan_peer}\" ct state new drop ; }} ; }}"
        );
        in_ns(&nat.router, "nft", &[&ruleset]);
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
    let (inside, outside) = (received(&alice), received(&bob));
    assert!(
        inside >= 100 && outside >= 100,
        "audio both ways through the NAT: the phone inside got {inside} packets, outside {outside}\n{}\n{}",
        alice.stderr(),
        bob.stderr()
    );
}

/// What [`call_out_through_the_nat`] measured.
struct OutgoingCall {
    /// RTP packets the phone inside got from baresip.
    received_inside: u64,
    /// The phone's log.
    log: String,
}

/// The phone inside calls baresip outside (no registrar: straight to it), each playing a
/// tone, with `[call] stun_server` set to coturn outside when `stun` is true. baresip sends
/// its RTP where the SDP says and does not follow where ours comes from.
fn call_out_through_the_nat(nat: &Nat, stun: bool) -> OutgoingCall {
    const STUN_PORT: u16 = 3478;
    const BARESIP_PORT: u16 = 5080;
    let mut coturn = Peer::new("coturn-outside");
    start_in(
        &mut coturn,
        &nat.outside,
        std::path::Path::new("turnserver"),
        &[
            "-n".into(),
            // Verbose: only then does it say when its listener is open.
            "-v".into(),
            "--stun-only".into(),
            "--no-cli".into(),
            "--no-tls".into(),
            "--no-dtls".into(),
            "--simple-log".into(),
            "--log-file".into(),
            "stdout".into(),
            "-L".into(),
            OUTSIDE.into(),
            "-p".into(),
            STUN_PORT.to_string(),
        ],
    );
    coturn.wait_for_output("UDP listener opened on", Duration::from_secs(10));

    let mut baresip = Peer::new("baresip-outside");
    let far_tone = baresip.path("tone440.wav");
    write_tone_wav(&far_tone, 8000, 10_000, 440.0);
    let setup = Baresip {
        port: BARESIP_PORT,
        user: "peer",
        auto_answer: true,
        wav: &far_tone,
        quit_after_secs: 25,
        commands: &[],
    };
    write_baresip_config(&mut baresip, &setup, &BaresipMedia::default(), OUTSIDE);
    let args = baresip_args(&baresip, &setup, OUTSIDE);
    start_in(&mut baresip, &nat.outside, &Tool::Baresip.path(), &args);
    baresip.wait_for_output("baresip is ready", Duration::from_secs(10));

    let mut phone = Peer::new(if stun {
        "verbatim-stun-inside"
    } else {
        "verbatim-no-stun-inside"
    });
    let config = if stun {
        format!("[call]\nstun_server = \"{OUTSIDE}:{STUN_PORT}\"\n")
    } else {
        String::new()
    };
    let config = phone.write_file("phone.toml", config);
    let tone = phone.path("tone.wav");
    write_tone_wav(&tone, 8000, 8000, 1000.0);
    let heard = phone.path("heard.wav");
    start_in(
        &mut phone,
        &nat.inside,
        &verbatim_bin(),
        &[
            "call".into(),
            format!("sip:peer@{OUTSIDE}:{BARESIP_PORT}"),
            "--listen".into(),
            format!("{INSIDE}:5060"),
            "--config".into(),
            config.display().to_string(),
            "--duration".into(),
            "3".into(),
            "--codec".into(),
            "pcmu".into(),
            "--srtp".into(),
            "off".into(),
            "--play".into(),
            tone.display().to_string(),
            "--save-received".into(),
            heard.display().to_string(),
            "--stats".into(),
        ],
    );
    phone.expect_success(Duration::from_secs(30));
    baresip.wait_for_output("terminated", Duration::from_secs(5));
    let received_inside = received(&phone);
    if stun {
        // Each side hears the other's tone.
        let heard = Audio::read_wav(&heard);
        let (far, own) = (heard.tone(440.0), heard.tone(1000.0));
        assert!(
            far > 0.1 && own < far / 4.0,
            "the phone inside hears baresip's 440 Hz: {far:.3} (its own 1 kHz {own:.3})"
        );
        let sent = baresip_recording(&mut baresip, "dec", Duration::from_secs(5));
        let (near, echo) = (sent.tone(1000.0), sent.tone(440.0));
        assert!(
            near > 0.1 && echo < near / 4.0,
            "baresip hears the phone's 1 kHz: {near:.3} (its own 440 Hz {echo:.3})"
        );
    }
    coturn.stop();
    baresip.stop();
    OutgoingCall {
        received_inside,
        log: phone.stderr(),
    }
}

/// The log without its terminal colours (ANSI SGR sequences).
fn without_colours(log: &str) -> String {
    let mut plain = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The RTP packets a `--stats` peer reports having received.
fn received(peer: &Peer) -> u64 {
    let stats = peer
        .stdout()
        .lines()
        .find(|l| l.contains("packets_received"))
        .map(str::to_owned)
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&stats).unwrap_or_default();
    value["rtp"]["packets_received"].as_u64().unwrap_or(0)
}

/// With a STUN server (coturn, outside), the phone's SDP names the address the NAT maps its
/// RTP socket to, so a peer that sends where the SDP says (baresip) reaches it: audio both
/// ways. Without one, the same call's SDP names the home address, which the outside cannot
/// route to, and the phone hears nothing: what STUN is for.
#[test]
fn behind_a_nat_stun_puts_the_public_media_address_in_the_sdp_and_the_far_end_is_heard() {
    let nat = Nat::new();

    let with_stun = call_out_through_the_nat(&nat, true);
    let log = without_colours(&with_stun.log);
    let mapped = log
        .lines()
        .find(|l| l.contains("media mapped by a NAT"))
        .unwrap_or_else(|| panic!("no STUN mapping in the log:\n{log}"));
    assert!(
        mapped.contains(&format!("rtp={ROUTER_OUTSIDE}:")),
        "the mapping names the router's outside address: {mapped}"
    );
    assert!(
        with_stun.received_inside >= 100,
        "with STUN the phone inside got {} packets from baresip\n{}",
        with_stun.received_inside,
        with_stun.log
    );

    let without = call_out_through_the_nat(&nat, false);
    assert!(
        !without.log.contains("media mapped by a NAT"),
        "no STUN server, no mapping"
    );
    assert!(
        without.received_inside < 10,
        "without STUN baresip sends to the home address, which does not route: the phone \
         got {} packets",
        without.received_inside
    );
}
