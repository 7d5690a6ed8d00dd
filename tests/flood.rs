//! A SIP flood against a phone in a recorded call, with real processes on 127.0.0.1: sipp
//! sends INVITEs and OPTIONS at 200 a second each and the test adds junk datagrams, for 15 s.
//! The call's audio both ways and its recording must go on without a gap, the phone's memory
//! must stay bounded, and the flood must be refused (486/503) rather than served.
//!
//! The figures (rates, responses, memory) are printed; `cargo test --test flood --
//! --nocapture` shows them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::{
    Audio, Peer, Proto, START_TIMEOUT, Scenario, find_wav, free_port, recorded_call_args,
    sipp_scenario, start_recorder, start_sipp, start_verbatim, tone_amplitude, write_tone_wav,
};

const FLOOD: Duration = Duration::from_secs(15);
const RATE_PER_SCENARIO: u32 = 200;
const JUNK_PER_SECOND: u32 = 100;
const CALL_SECONDS: u32 = 22;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The last number on the first line of sipp's final screen that starts with `label`.
fn sipp_count(screen: &str, label: &str) -> u64 {
    screen
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .and_then(|line| {
            line.split(|c: char| !c.is_ascii_digit())
                .rfind(|s| !s.is_empty())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Every 100 ms window of `audio` between `from` and `to` seconds carries `frequency`.
fn windows_without(audio: &Audio, from: f64, to: f64, frequency: f64) -> Vec<f64> {
    let rate = f64::from(audio.sample_rate);
    let mut missing = Vec::new();
    let mut at = from;
    while at + 0.1 <= to {
        let start = (at * rate) as usize;
        let end = (((at + 0.1) * rate) as usize).min(audio.samples.len());
        let window = audio.samples.get(start..end).unwrap_or(&[]);
        if window.is_empty() || tone_amplitude(window, audio.sample_rate, frequency) < 0.05 {
            missing.push((at * 10.0).round() / 10.0);
        }
        at += 0.1;
    }
    missing
}

fn junk(sequence: u32) -> Vec<u8> {
    match sequence % 3 {
        // A request head that cannot be parsed but has a Via: it would earn a 400.
        0 => format!(
            "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKj{sequence}\r\n\
             CSeq: one INVITE\r\n\r\n"
        )
        .into_bytes(),
        1 => (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(sequence) >> 13) as u8)
            .collect(),
        _ => b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n".to_vec(),
    }
}

fn options_probe(port: u16, sequence: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKprobe{sequence}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1:{port}>;tag=p{sequence}\r\n\
         To: <sip:x@127.0.0.1>\r\nCall-ID: probe-{sequence}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_sip_flood_is_refused_while_the_recorded_call_and_its_recording_go_on() {
    let recordings = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("flood-srs", recordings.path(), &[]);

    let far_port = free_port();
    let mut far_end = Peer::new("flood-far-end");
    let far_tone = far_end.path("tone440.wav");
    write_tone_wav(&far_tone, 8000, (CALL_SECONDS + 5) * 1000, 440.0);
    start_verbatim(
        &mut far_end,
        [
            "answer",
            "--listen",
            &format!("127.0.0.1:{far_port}"),
            "--play",
            far_tone.to_str().unwrap(),
        ],
    );
    far_end.wait_until_listening(Proto::Udp, far_port, START_TIMEOUT);

    let phone_port = free_port();
    let mut phone = Peer::new("flood-phone");
    let tone = phone.path("tone1000.wav");
    write_tone_wav(&tone, 8000, (CALL_SECONDS + 5) * 1000, 1000.0);
    let heard = phone.path("heard.wav");
    let mut args = recorded_call_args(
        &format!("sip:far@127.0.0.1:{far_port}"),
        &tone,
        CALL_SECONDS,
        &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
    );
    args.extend(
        [
            "--listen",
            &format!("127.0.0.1:{phone_port}"),
            "--save-received",
            heard.to_str().unwrap(),
        ]
        .map(str::to_owned),
    );
    start_verbatim(&mut phone, args);
    phone.wait_for_output("recording: recording", Duration::from_secs(10));
    let phone_pid = phone.pid().unwrap();
    let rss_before = rss_kib(phone_pid).unwrap();

    let target = format!("127.0.0.1:{phone_port}");
    let calls = (RATE_PER_SCENARIO * FLOOD.as_secs() as u32).to_string();
    let rate = RATE_PER_SCENARIO.to_string();
    let mut floods = Vec::new();
    for (name, scenario) in [
        ("flood-sipp-invite", "flood_invite.xml"),
        ("flood-sipp-options", "flood_options.xml"),
    ] {
        let mut sipp = Peer::new(name);
        start_sipp(
            &mut sipp,
            &Scenario::File(sipp_scenario(scenario)),
            free_port(),
            "u1",
            &[
                "-r",
                &rate,
                "-rp",
                "1000",
                "-m",
                &calls,
                "-l",
                "5000",
                // A request that is never answered fails after 5 s instead of holding sipp.
                "-recv_timeout",
                "5000",
            ],
            Some(&target),
        );
        floods.push(sipp);
    }

    // Junk from the test itself, while sampling the phone's memory and timing how soon a
    // probe OPTIONS of ours is answered (200 or 503, either settles it).
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let probe_port = probe.local_addr().unwrap().port();
    let started = Instant::now();
    let mut rss_max = rss_before;
    let mut junk_sent = 0u32;
    let mut answer_times = Vec::new();
    let mut unanswered = 0;
    while started.elapsed() < FLOOD {
        for _ in 0..JUNK_PER_SECOND / 10 {
            socket.send_to(&junk(junk_sent), &target).unwrap();
            junk_sent += 1;
        }
        if let Some(rss) = rss_kib(phone_pid) {
            rss_max = rss_max.max(rss);
        }
        let sent_at = Instant::now();
        probe
            .send_to(&options_probe(probe_port, junk_sent), &target)
            .unwrap();
        let mut buffer = [0u8; 2048];
        match probe.recv(&mut buffer) {
            Ok(_) => answer_times.push(sent_at.elapsed()),
            Err(_) => unanswered += 1,
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(sent_at.elapsed()));
    }
    answer_times.sort();
    let mut screens = Vec::new();
    for mut sipp in floods {
        sipp.wait_with_timeout(Duration::from_secs(40));
        // Its final screens: message counts, call outcomes, response times.
        screens.push((sipp.name().to_owned(), sipp.stdout()));
    }
    phone.expect_success(Duration::from_secs(60));
    far_end.stop();
    srs.stop();

    println!(
        "flood: {} s of INVITE and OPTIONS at {RATE_PER_SCENARIO}/s each plus {JUNK_PER_SECOND} junk/s",
        FLOOD.as_secs()
    );
    println!(
        "phone memory: RSS {} KiB before, {} KiB at most during the flood",
        rss_before, rss_max
    );
    let percentile = |p: usize| {
        answer_times
            .get((answer_times.len() * p / 100).min(answer_times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "probe OPTIONS during the flood: {} answered (p50 {:?}, p99 {:?}, max {:?}), {unanswered} unanswered within 100 ms",
        answer_times.len(),
        percentile(50),
        percentile(99),
        answer_times.last().copied().unwrap_or_default(),
    );
    for (name, screen) in &screens {
        println!(
            "{name}: {} calls, {} successful (settled by a response), {} failed (no answer)",
            sipp_count(screen, "Total Calls created"),
            sipp_count(screen, "Successful call"),
            sipp_count(screen, "Failed call"),
        );
        for line in screen.lines().filter(|l| l.contains("<----------")) {
            println!("{name}: {}", line.trim_end());
        }
    }

    // The flood was met: most of each scenario's calls settled by a response.
    for (name, screen) in &screens {
        let settled = sipp_count(screen, "Successful call");
        assert!(settled > 1000, "{name}: only {settled} answered\n{screen}");
    }
    // Memory stayed bounded: well under what keeping every flood request would take.
    assert!(
        rss_max < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_max} KiB"
    );
    // The call's audio never stopped, either way, and neither did its recording.
    let flood_from = 3.0;
    let flood_to = flood_from + FLOOD.as_secs_f64();
    let received = Audio::read_wav(&heard);
    let gaps = windows_without(&received, flood_from, flood_to, 440.0);
    assert!(gaps.is_empty(), "the phone heard nothing at {gaps:?}");
    let folders = verbatim::archive::session::session_folders(recordings.path());
    assert_eq!(folders.len(), 1, "one recording, never interrupted");
    for (label, frequency) in [("1", 1000.0), ("2", 440.0)] {
        let audio = Audio::read_wav(&find_wav(&folders[0], &format!("label-{label}-")));
        let gaps = windows_without(&audio, flood_from, flood_to, frequency);
        assert!(gaps.is_empty(), "label {label} has gaps at {gaps:?}");
    }
}
