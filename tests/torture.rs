//! RFC 4475 torture tests: every message is fed to a real engine as a UDP datagram, and what
//! comes back must be what the RFC asks of a user agent (tests/data/torture/manifest.toml).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::Instant;

use serde::Deserialize;
use verbatim::engine::{Engine, EngineConfig, Input, Output};
use verbatim::sip::{Destination, Message, Transport};

#[derive(Debug, Deserialize)]
struct Manifest {
    message: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    section: String,
    expect: String,
    #[serde(default)]
    reject: String,
    #[serde(default)]
    response: String,
    #[serde(default)]
    also_ok: String,
    #[serde(default)]
    lenient: bool,
    #[serde(default)]
    role: String,
}

/// The status line of every response the engine sent after one datagram.
fn responses_to(data: &[u8]) -> Vec<u16> {
    let now = Instant::now();
    let mut engine = Engine::new(
        EngineConfig {
            listeners: vec![Destination::new(
                Transport::Udp,
                "127.0.0.1:5060".parse().unwrap(),
            )],
            ..EngineConfig::default()
        },
        now,
    );
    let source = Destination::new(Transport::Udp, "127.0.0.1:5070".parse().unwrap());
    engine.handle_input(
        now,
        Input::Datagram {
            source,
            data: data.to_vec(),
        },
    );
    let mut statuses = Vec::new();
    loop {
        match engine.poll_output() {
            Output::Transmit { data, .. } => {
                let text = String::from_utf8_lossy(&data).into_owned();
                let status = text
                    .strip_prefix("SIP/2.0 ")
                    .and_then(|rest| rest.get(..3))
                    .and_then(|code| code.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("engine sent something that is not a response:\n{text}")
                    });
                statuses.push(status);
            }
            Output::Event(_)
            | Output::Media { .. }
            | Output::Playback { .. }
            | Output::BindMedia { .. } => {}
            Output::Timeout(_) => return statuses,
        }
    }
}

#[test]
fn every_rfc4475_message_gets_what_the_rfc_asks_for() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torture");
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).unwrap()).unwrap();
    assert_eq!(manifest.message.len(), 49);
    let mut failures = Vec::new();
    for entry in &manifest.message {
        let data = std::fs::read(dir.join(&entry.file)).unwrap();
        let statuses = responses_to(&data);
        // The final response (a UAS sends 100/180 before it on an INVITE).
        let last = statuses.iter().rev().find(|s| **s >= 200).copied();
        let wanted: Vec<u16> = [
            entry.response.as_str(),
            entry.reject.as_str(),
            entry.also_ok.as_str(),
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
        let ok = match entry.expect.as_str() {
            "valid" if entry.role == "registrar" => {
                // We are not a registrar: a UA refuses REGISTER with 405, and must not choke.
                last == Some(405) || wanted.contains(&last.unwrap_or(0))
            }
            "valid" if !wanted.is_empty() => {
                wanted.contains(&last.unwrap_or(0))
                    || (entry.reject == "drop" && statuses.is_empty())
                    // RFC 4475 allows a liberal element to process these normally.
                    || (entry.lenient && last.is_some_and(|s| s < 300))
            }
            "valid" => {
                let parsed = Message::parse(&data).and_then(|m| m.validate().map(|()| m));
                parsed.is_ok() && last != Some(400)
            }
            _ if entry.reject == "drop" => statuses.is_empty(),
            _ => wanted.contains(&last.unwrap_or(0)) || (entry.lenient && last != Some(500)),
        };
        if !ok {
            failures.push(format!(
                "{} ({}): expect {} {}{}, engine sent {:?}",
                entry.file, entry.section, entry.expect, entry.reject, entry.response, statuses
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 49 wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
