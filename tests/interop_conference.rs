//! Conferences with real peers. Verbatim as the focus and mixer of its own conference: two
//! baresip parties, each playing its own tone, merged; each must hear the other's tone and
//! ours, never its own. Verbatim in someone else's conference, recorded: sipp plays the
//! focus (its Contact says `isfocus`, and a second sipp serves the conference state at that
//! URI: a full notification, then partial ones as two parties join and one leaves), `verbatim
//! srs` records; each metadata version the recorder kept must list the roster of its moment,
//! with the times.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{
    Audio, Baresip, Peer, Scenario, arrivals_at, baresip_recording, find_wav, free_port,
    read_recorded, recorded_call_args, recorder_ports, sipp_scenario, start_baresip,
    start_recorder, start_sipp_uas, start_verbatim, write_tone_wav,
};
use verbatim::recording::metadata::{self, Metadata};

const TIMEOUT: Duration = Duration::from_secs(40);

/// Who the metadata says is in the session, other than us and the focus: each participant's
/// address with its associate and disassociate times.
fn roster(metadata: &Metadata) -> Vec<(String, Option<String>, Option<String>)> {
    metadata
        .participants
        .iter()
        .filter(|p| p.aor.contains("@example.com"))
        .map(|p| {
            let assoc = metadata
                .participant_session_assocs
                .iter()
                .find(|a| a.participant_id == p.id);
            (
                p.aor.clone(),
                assoc.and_then(|a| a.associate_time.clone()),
                assoc.and_then(|a| a.disassociate_time.clone()),
            )
        })
        .collect()
}

fn unix_seconds(time: &str) -> u64 {
    metadata::parse_time(time)
        .unwrap_or_else(|| panic!("unreadable time {time}"))
        .as_secs()
}

#[test]
fn a_remote_conference_roster_reaches_the_recorder_as_parties_join_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("conference-srs", dir.path(), &[]);

    let notifier_port = free_port();
    let mut notifier = Peer::new("sipp-focus-notifier");
    start_sipp_uas(
        &mut notifier,
        &Scenario::File(sipp_scenario("focus_notifier.xml")),
        notifier_port,
        "u1",
        &[],
    );
    let call_port = free_port();
    let mut focus = Peer::new("sipp-focus-call");
    let notifier_port_text = notifier_port.to_string();
    start_sipp_uas(
        &mut focus,
        &Scenario::File(sipp_scenario("focus_call.xml")),
        call_port,
        "u1",
        &["-rtp_echo", "-key", "notifier_port", &notifier_port_text],
    );

    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut phone = Peer::new("verbatim-in-a-conference");
    let tone = phone.path("tone.wav");
    write_tone_wav(&tone, 8000, 12_000, 440.0);
    start_verbatim(
        &mut phone,
        recorded_call_args(
            &format!("sip:conf1@127.0.0.1:{call_port}"),
            &tone,
            10,
            &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
        ),
    );
    phone.expect_success(TIMEOUT);
    notifier.expect_success(TIMEOUT);
    focus.expect_success(TIMEOUT);
    srs.stop();
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let stderr = phone.stderr();
    let shown: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("conference: "))
        .collect();
    assert_eq!(
        shown,
        vec![
            "Bob <sip:bob@example.com>",
            "Bob <sip:bob@example.com>, Carol <sip:carol@example.com>",
            "Bob <sip:bob@example.com>, Carol <sip:carol@example.com>, Dave <sip:dave@example.com>",
            "Bob <sip:bob@example.com>, Dave <sip:dave@example.com>",
        ],
        "the phone itself and the focus are not listed\n{stderr}"
    );

    let folders = verbatim::archive::session::session_folders(dir.path());
    assert_eq!(folders.len(), 1, "{folders:?}\n{stderr}");
    let versions: Vec<Metadata> = (1..)
        .map_while(|k| {
            verbatim::archive::session::stored(&folders[0], &format!("metadata-{k}.xml"))?;
            Some(
                metadata::parse(&read_recorded(&folders[0], &format!("metadata-{k}.xml"))).unwrap(),
            )
        })
        .collect();
    let rosters: Vec<_> = versions.iter().map(roster).collect();
    // Each change of the roster is a new version; others (the end) may come between.
    let mut seen: Vec<Vec<String>> = Vec::new();
    // A recording that starts with the call knows nobody until the focus's first NOTIFY.
    for roster in rosters.iter().skip_while(|roster| roster.is_empty()) {
        let present: Vec<String> = roster
            .iter()
            .filter(|(_, _, left)| left.is_none())
            .map(|(aor, _, _)| aor.clone())
            .collect();
        if seen.last() != Some(&present) {
            seen.push(present);
        }
    }
    let bob = "sip:bob@example.com".to_owned();
    let carol = "sip:carol@example.com".to_owned();
    let dave = "sip:dave@example.com".to_owned();
    assert!(
        seen.starts_with(&[
            vec![bob.clone()],
            vec![bob.clone(), carol.clone()],
            vec![bob.clone(), carol.clone(), dave.clone()],
            vec![bob.clone(), dave.clone()],
        ]),
        "the roster at each moment: {rosters:#?}\n{stderr}"
    );

    // The times: Bob's is the focus's; the others' are when the phone heard, in order.
    let last = rosters.last().unwrap();
    let time_of = |who: &str| last.iter().find(|(aor, _, _)| aor == who).unwrap().clone();
    let (_, bob_joined, _) = time_of(&bob);
    assert_eq!(
        bob_joined.map(|t| unix_seconds(&t)),
        Some(unix_seconds("2026-12-07T09:00:00Z")),
        "the time the focus gave"
    );
    let (_, carol_joined, carol_left) = time_of(&carol);
    let (_, dave_joined, _) = time_of(&dave);
    let carol_joined = unix_seconds(&carol_joined.unwrap());
    let dave_joined = unix_seconds(&dave_joined.unwrap());
    let carol_left = unix_seconds(&carol_left.unwrap());
    assert!(
        started <= carol_joined && carol_joined < dave_joined && dave_joined < carol_left,
        "joins and leave 2 s apart, in order: {carol_joined} {dave_joined} {carol_left}"
    );
    assert!(carol_left <= ended, "{carol_left} {ended}");
}

const VERBATIM_TONE: f64 = 1000.0;
/// A tone counts as heard above this (a tone written at 0.3 of full scale reads about 0.3).
const HEARD: f64 = 0.08;

/// A baresip party that answers at once and plays `tone`; it records what it hears.
fn party(name: &str, tone: f64) -> (Peer, u16) {
    let port = free_port();
    let mut peer = Peer::new(name);
    let wav = peer.path("tone.wav");
    write_tone_wav(&wav, 8000, 20_000, tone);
    start_baresip(
        &mut peer,
        &Baresip {
            port,
            user: "party",
            auto_answer: true,
            wav: &wav,
            quit_after_secs: 30,
            commands: &[],
        },
    );
    (peer, port)
}

/// What `audio` holds of each tone, for the message.
fn levels(audio: &Audio, tones: &[f64]) -> String {
    tones
        .iter()
        .map(|t| format!("{t} Hz: {:.3}", audio.tone(*t)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn a_local_conference_lets_each_party_hear_the_others_and_not_itself() {
    let (alice_tone, bob_tone) = (440.0, 620.0);
    let (mut alice, alice_port) = party("baresip-conference-alice", alice_tone);
    let (mut bob, bob_port) = party("baresip-conference-bob", bob_tone);
    let mut verbatim = Peer::new("verbatim-conference-focus");
    let play = verbatim.path("tone.wav");
    write_tone_wav(&play, 48000, 20_000, VERBATIM_TONE);
    start_verbatim(
        &mut verbatim,
        [
            "call",
            &format!("sip:party@127.0.0.1:{alice_port}"),
            "--conference-with",
            &format!("sip:party@127.0.0.1:{bob_port}"),
            "--conference-at",
            "0",
            "--codec",
            "pcmu",
            "--srtp",
            "off",
            "--play",
            &play.display().to_string(),
            "--duration",
            "8",
        ],
    );
    verbatim.expect_success(TIMEOUT);
    let stderr = verbatim.stderr();
    assert!(stderr.contains("conference: 2 calls merged"), "{stderr}");
    let tones = [alice_tone, bob_tone, VERBATIM_TONE];
    for (peer, own, other) in [
        (&mut alice, alice_tone, bob_tone),
        (&mut bob, bob_tone, alice_tone),
    ] {
        peer.wait_for_output("terminated", Duration::from_secs(10));
        let heard = baresip_recording(peer, "dec", Duration::from_secs(5));
        let what = format!("{}: {}", peer.name(), levels(&heard, &tones));
        // Shown with --nocapture: how far the levels are from the bounds.
        eprintln!("{what}");
        assert!(heard.tone(VERBATIM_TONE) > HEARD, "hears us: {what}");
        assert!(heard.tone(other) > HEARD, "hears the other party: {what}");
        assert!(
            heard.tone(own) < heard.tone(other) / 4.0,
            "does not hear itself: {what}"
        );
    }
}

const ALICE_TONE: f64 = 440.0;
const BOB_TONE: f64 = 620.0;

/// Verbatim, playing its own tone, calls two baresip parties (Alice at 440 Hz, Bob at
/// 620 Hz), records both calls from their start to the recorder at `srs_port` (TCP) and
/// merges them `merge_at` seconds after the first connects, for `seconds`: the parties and
/// Verbatim, which has exited successfully.
fn recorded_conference(
    name: &str,
    srs_port: u16,
    merge_at: u32,
    seconds: u32,
) -> (Peer, Peer, Peer) {
    let (alice, alice_port) = party(&format!("baresip-{name}-alice"), ALICE_TONE);
    let (bob, bob_port) = party(&format!("baresip-{name}-bob"), BOB_TONE);
    let mut verbatim = Peer::new(&format!("verbatim-{name}-conference"));
    let play = verbatim.path("tone.wav");
    write_tone_wav(&play, 48000, 20_000, VERBATIM_TONE);
    let mut args = recorded_call_args(
        &format!("sip:party@127.0.0.1:{alice_port}"),
        &play,
        seconds,
        &format!("sip:srs@127.0.0.1:{srs_port};transport=tcp"),
    );
    args.extend([
        "--conference-with".to_owned(),
        format!("sip:party@127.0.0.1:{bob_port}"),
        "--conference-at".to_owned(),
        merge_at.to_string(),
    ]);
    start_verbatim(&mut verbatim, args);
    verbatim.expect_success(TIMEOUT);
    (alice, bob, verbatim)
}

#[test]
fn a_recorded_local_conference_gives_each_party_a_stream_with_its_own_voice() {
    let dir = tempfile::tempdir().unwrap();
    let (mut srs, srs_port) = start_recorder("conference-own-srs", dir.path(), &[]);
    let (alice_tone, bob_tone) = (ALICE_TONE, BOB_TONE);
    let (mut alice, mut bob, verbatim) = recorded_conference("own", srs_port, 0, 8);
    alice.wait_for_output("terminated", Duration::from_secs(10));
    bob.wait_for_output("terminated", Duration::from_secs(10));
    srs.stop();
    let stderr = verbatim.stderr();

    // Each call was recorded from its start; at the merge the second call's own recording
    // ended and the first's took every party.
    let folders = verbatim::archive::session::session_folders(dir.path());
    let conference = folders
        .iter()
        .find(|f| {
            std::fs::read_dir(f).unwrap().any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("label-3-")
            })
        })
        .unwrap_or_else(|| panic!("no recording with a third stream in {folders:?}\n{stderr}"));
    let tones = [alice_tone, bob_tone, VERBATIM_TONE];
    for (label, own) in [("1", VERBATIM_TONE), ("2", alice_tone), ("3", bob_tone)] {
        let stream = Audio::read_wav(&find_wav(conference, &format!("label-{label}-")));
        let what = format!("stream {label}: {}", levels(&stream, &tones));
        eprintln!("{what}");
        assert!(
            stream.tone(own) > HEARD,
            "carries its party's voice: {what}"
        );
        for other in tones.iter().filter(|t| **t != own) {
            assert!(
                stream.tone(*other) < stream.tone(own) / 4.0,
                "and no one else's: {what}"
            );
        }
    }

    // Some version of the metadata (before the calls ended) has each party sending its
    // own stream.
    let versions: Vec<Metadata> = (1..)
        .map_while(|k| {
            verbatim::archive::session::stored(conference, &format!("metadata-{k}.xml"))?;
            Some(metadata::parse(&read_recorded(conference, &format!("metadata-{k}.xml"))).unwrap())
        })
        .collect();
    let each_sends_its_own = |version: &Metadata| {
        let stream_of = |label: &str| {
            version
                .streams
                .iter()
                .find(|s| s.label == label)
                .map(|s| s.id.clone())
        };
        let sends: Vec<Vec<String>> = version
            .participants
            .iter()
            .filter(|p| p.aor.contains("party@127.0.0.1"))
            .map(|p| {
                version
                    .participant_stream_assocs
                    .iter()
                    .filter(|a| a.participant_id == p.id)
                    .flat_map(|a| a.send.clone())
                    .collect()
            })
            .collect();
        [stream_of("2"), stream_of("3")]
            .into_iter()
            .all(|id| id.is_some_and(|id| sends.contains(&vec![id])))
    };
    assert!(
        versions.iter().any(each_sends_its_own),
        "no metadata version has each party sending its own stream: {versions:?}"
    );
    // Both calls were hung up at once: the first's far end left, the session passed to the
    // second call, which ended too; the recorder still heard the end.
    let last = versions.last().unwrap();
    assert!(
        last.sessions.iter().all(|s| s.end_time.is_some())
            && last
                .participant_session_assocs
                .iter()
                .all(|a| a.disassociate_time.is_some()),
        "the last metadata says everyone left and the session ended: {last:?}"
    );
}

/// The wire rules at a recorder nobody here wrote: sipp takes both calls' recording
/// sessions; the second call's own ends at the merge, and the first call's session adds the
/// second party's labelled stream by re-INVITE in its own dialog, whose RTP then reaches the
/// port sipp answered for it.
#[test]
fn a_sipp_recorder_gets_the_joining_partys_stream_added_in_the_same_session() {
    let (ports, stop, listeners) = recorder_ports(3);
    let srs_port = free_port();
    let mut srs = Peer::new("sipp-srs-conference");
    start_sipp_uas(
        &mut srs,
        &Scenario::File(sipp_scenario("srs_conference.xml")),
        srs_port,
        "t1",
        &[
            // Probes answered; two sessions (each call's) before it is done.
            "-aa", "-m", "2", "-key", "k1", &ports[0], "-key", "k2", &ports[1], "-key", "k3",
            &ports[2],
        ],
    );
    let (mut alice, mut bob, _verbatim) = recorded_conference("sipp", srs_port, 1, 6);
    srs.expect_success(TIMEOUT);
    alice.stop();
    bob.stop();
    let arrivals = arrivals_at(&stop, listeners);

    let log = std::fs::read_to_string(srs.path("sipp_actions.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("stream 3 offered: label a=label:3 metadata <label>3</label>")),
        "the third stream and its metadata came in a re-INVITE of a session\n{log}"
    );
    let counts: Vec<usize> = arrivals.iter().map(Vec::len).collect();
    assert!(
        counts[0] >= 100 && counts[1] >= 100,
        "the local user's and the first party's streams: {counts:?}"
    );
    assert!(
        counts[2] >= 100,
        "the second party's stream reaches the port answered for it: {counts:?}"
    );
}
