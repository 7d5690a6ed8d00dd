//! The built-in recorder against the recording INVITEs that deployed clients send (SBCs,
//! PBXs, BroadWorks): each file of `tests/data/srs_corpus` is sent over TCP on 127.0.0.1 to a
//! recorder running in this process, the responses and answer SDPs are checked, a distinct
//! tone is sent as PCMU on every stream the recorder takes, and the files it leaves must
//! hold each sender's tone under the name the metadata gives that sender.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{Audio, find_wav, read_recorded, tone_amplitude};
use verbatim::srs::{SrsConfig, SrsEvent, SrsHandle};

/// One m-line of an answer as the test expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Taken, with a port, answered `recvonly`.
    Recv(&'static str),
    /// Taken, with a port, answered `inactive`.
    Inactive(&'static str),
    /// Answered with port 0, label echoed.
    Refused(&'static str),
}

/// What one request of a case must get.
struct Step {
    status: u16,
    /// The answer's m-lines in order; None: no SDP expected.
    answer: Option<&'static [Line]>,
    /// Headers (name, part of the value) the response must carry.
    headers: &'static [(&'static str, &'static str)],
    /// Part of the reason phrase.
    reason: &'static str,
}

const fn ok(answer: &'static [Line]) -> Step {
    Step {
        status: 200,
        answer: Some(answer),
        headers: &[],
        reason: "",
    }
}

/// A sender: the stream's label, the participant the file must be named after, its tone.
type Voice = (&'static str, &'static str, f64);

struct Case {
    file: &'static str,
    steps: Vec<Step>,
    voices: &'static [Voice],
    /// Values the session's summary.json must hold: (JSON pointer, value).
    summary: &'static [(&'static str, &'static str)],
}

const SEND_SECONDS_PER_STEP: f64 = 1.0;

fn corpus(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/srs_corpus")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The requests of a corpus file, comments dropped, not yet filled in.
fn requests(text: &str) -> Vec<String> {
    text.split("\n%%\n")
        .map(|request| {
            request
                .lines()
                .skip_while(|line| line.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Fills in the placeholders and makes every line end in CRLF, with the Content-Length of the
/// body as sent.
fn fill(template: &str, values: &HashMap<&str, String>) -> Vec<u8> {
    let mut text = template.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    let text = text.replace('\n', "\r\n");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let head = head.replace("{length}", &body.len().to_string());
    format!("{head}\r\n\r\n{body}").into_bytes()
}

/// A SIP message read from the TCP stream: the start line, the headers, the body.
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!(
            "{} {}\n{}\n\n{}",
            self.status,
            self.reason,
            headers.join("\n"),
            self.body
        )
    }
}

fn read_message(reader: &mut BufReader<TcpStream>) -> Response {
    let mut start = String::new();
    // Keep-alive CRLFs between messages.
    while start.trim().is_empty() {
        start.clear();
        assert!(
            reader.read_line(&mut start).unwrap() > 0,
            "connection closed"
        );
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length") || n == "l")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let mut fields = start.trim().splitn(3, ' ');
    assert_eq!(fields.next(), Some("SIP/2.0"), "not a response: {start}");
    Response {
        status: fields.next().unwrap().parse().unwrap(),
        reason: fields.next().unwrap_or_default().to_owned(),
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// One m-line of an answer, read by hand (independent of the recorder's own SDP code).
#[derive(Debug)]
struct AnswerLine {
    kind: String,
    port: u16,
    payload_type: String,
    direction: String,
    label: Option<String>,
}

fn answer_lines(sdp: &str) -> Vec<AnswerLine> {
    let mut lines: Vec<AnswerLine> = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            let fields: Vec<&str> = m.split(' ').collect();
            lines.push(AnswerLine {
                kind: fields[0].to_owned(),
                port: fields[1].parse().unwrap(),
                payload_type: fields.get(3).copied().unwrap_or_default().to_owned(),
                direction: "sendrecv".to_owned(),
                label: None,
            });
        } else if let Some(current) = lines.last_mut() {
            match line.strip_prefix("a=") {
                Some(d @ ("sendrecv" | "sendonly" | "recvonly" | "inactive")) => {
                    current.direction = d.to_owned();
                }
                Some(attribute) => {
                    if let Some(label) = attribute.strip_prefix("label:") {
                        current.label = Some(label.to_owned());
                    }
                }
                None => {}
            }
        }
    }
    lines
}

/// One stream being sent: its socket, where to, its tone and RTP state.
struct Sender {
    socket: UdpSocket,
    port: u16,
    frequency: f64,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

/// G.711 µ-law of one 16-bit sample (ITU-T G.711: bias, segment, four mantissa bits).
fn mu_law(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let value = i32::from(sample);
    let sign: u8 = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.abs().min(CLIP) + BIAS;
    // The segment is where the highest set bit is, above bit 7.
    let mut exponent = 7;
    while exponent > 0 && magnitude & (0x80 << exponent) == 0 {
        exponent -= 1;
    }
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

impl Sender {
    fn packet(&mut self) -> Vec<u8> {
        let mut packet = vec![0x80, 0x00];
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&self.timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        for n in 0..160u32 {
            let t = f64::from(self.timestamp.wrapping_add(n)) / 8000.0;
            let sample =
                (0.3 * 32_767.0 * (2.0 * std::f64::consts::PI * self.frequency * t).sin()) as i16;
            packet.push(mu_law(sample));
        }
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        packet
    }
}

/// Sends every sender's tone for `seconds`, paced at 20 ms.
fn send_media(senders: &mut [Sender], seconds: f64) {
    let packets = (seconds / 0.02) as usize;
    for _ in 0..packets {
        for sender in senders.iter_mut() {
            let packet = sender.packet();
            sender
                .socket
                .send_to(&packet, ("127.0.0.1", sender.port))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn start_srs(dir: &Path) -> SrsHandle {
    verbatim::srs::run(SrsConfig::new("127.0.0.1:0".parse().unwrap(), dir))
        .await
        .unwrap()
}

fn next_event(rt: &tokio::runtime::Runtime, srs: &mut SrsHandle) -> Option<SrsEvent> {
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), srs.next_event())
            .await
            .ok()
            .flatten()
    })
}

/// What a case left behind.
struct Outcome {
    /// A session was recorded (its files checked).
    recorded: bool,
    rejected: Vec<(u16, String)>,
}

/// Runs a case against a fresh recorder; checks every response against its step.
fn run_case(case: &Case) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let mut srs = rt.block_on(start_srs(out.path()));
    let srs_address = srs.local_addr();
    let stream = TcpStream::connect(srs_address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let call_id = format!("{}-{}@127.0.0.1", case.file, std::process::id());
    let mut values: HashMap<&str, String> = HashMap::from([
        ("srs", srs_address.to_string()),
        ("local", local.to_string()),
        ("call_id", call_id.clone()),
    ]);
    let templates = requests(&corpus(case.file));
    assert_eq!(templates.len(), case.steps.len(), "one step per request");
    let mut senders: Vec<Sender> = Vec::new();
    let mut established = false;
    let mut cseq = 0;
    let mut from = String::new();
    for (index, (template, step)) in templates.iter().zip(&case.steps).enumerate() {
        values.insert("branch", format!("z9hG4bK-{}-{index}", case.file.len()));
        let request = fill(template, &values);
        writer.write_all(&request).unwrap();
        let response = loop {
            let response = read_message(&mut reader);
            if response.status >= 200 {
                break response;
            }
        };
        let context = format!(
            "{} request {}:\n{}",
            case.file,
            index + 1,
            response.describe()
        );
        assert_eq!(response.status, step.status, "{context}");
        assert!(response.reason.contains(step.reason), "{context}");
        for (name, part) in step.headers {
            let value = response
                .header(name)
                .unwrap_or_else(|| panic!("no {name}: {context}"));
            assert!(value.contains(part), "{name} lacks {part:?}: {context}");
        }
        if response.status >= 300 {
            assert!(
                response.header("Reason").is_some(),
                "a refusal says why: {context}"
            );
            continue;
        }
        let to = response.header("To").unwrap();
        let tag = to.split(";tag=").nth(1).unwrap().split(';').next().unwrap();
        values.insert("to_tag", tag.to_owned());
        let cseq_header = response.header("CSeq").unwrap().to_owned();
        let (number, method) = cseq_header.split_once(' ').unwrap();
        let number: u32 = number.parse().unwrap();
        cseq = cseq.max(number);
        from = response.header("From").unwrap().to_owned();
        if method == "INVITE" {
            let ack = format!(
                "ACK sip:srs@{srs_address};transport=tcp SIP/2.0\r\n\
                 Via: SIP/2.0/TCP {local};branch=z9hG4bK-ack-{index}\r\n\
                 Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {number} ACK\r\nContent-Length: 0\r\n\r\n",
            );
            writer.write_all(ack.as_bytes()).unwrap();
            established = true;
        }
        match step.answer {
            None => assert!(response.body.is_empty(), "no SDP expected: {context}"),
            Some(expected) => {
                let answer = answer_lines(&response.body);
                assert_eq!(answer.len(), expected.len(), "{context}");
                for (line, want) in answer.iter().zip(expected.iter()) {
                    let (label, open, direction) = match want {
                        Line::Recv(label) => (label, true, "recvonly"),
                        Line::Inactive(label) => (label, true, "inactive"),
                        Line::Refused(label) => (label, false, ""),
                    };
                    assert_eq!(line.label.as_deref(), Some(*label), "{context}");
                    assert_eq!(line.port != 0, open, "port of {label}: {context}");
                    if open {
                        assert_eq!(line.direction, direction, "{label}: {context}");
                        assert_eq!(line.kind, "audio");
                        assert_eq!(line.payload_type, "0", "PCMU taken: {context}");
                    }
                }
                // Send on every stream the recorder receives, each sender its own tone.
                for line in answer
                    .iter()
                    .filter(|l| l.port != 0 && l.direction == "recvonly")
                {
                    let label = line.label.clone().unwrap();
                    let Some((_, _, frequency)) = case.voices.iter().find(|v| v.0 == label) else {
                        continue;
                    };
                    if senders.iter().any(|s| s.port == line.port) {
                        continue;
                    }
                    senders.push(Sender {
                        socket: UdpSocket::bind("127.0.0.1:0").unwrap(),
                        port: line.port,
                        frequency: *frequency,
                        ssrc: 0x5eed_0000 + line.port as u32,
                        sequence: 1000,
                        timestamp: 0,
                    });
                }
                send_media(&mut senders, SEND_SECONDS_PER_STEP);
            }
        }
    }
    if established {
        let bye = format!(
            "BYE sip:srs@{srs_address};transport=tcp SIP/2.0\r\n\
             Via: SIP/2.0/TCP {local};branch=z9hG4bK-bye\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\n\
             To: <sip:srs@{srs_address}>;tag={tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {} BYE\r\nContent-Length: 0\r\n\r\n",
            cseq + 1,
            tag = values["to_tag"],
        );
        writer.write_all(bye.as_bytes()).unwrap();
        let response = read_message(&mut reader);
        assert_eq!(response.status, 200, "BYE: {}", response.describe());
    }
    let mut folder = None;
    let mut rejected = Vec::new();
    while let Some(event) = next_event(&rt, &mut srs) {
        match event {
            SrsEvent::SessionEnded { folder: ended, .. } => {
                folder = Some(ended);
                break;
            }
            SrsEvent::Rejected { status, reason } => {
                rejected.push((status, reason));
                if !established {
                    break;
                }
            }
            _ => {}
        }
    }
    rt.block_on(srs.stop());
    assert_eq!(
        folder.is_some(),
        established,
        "{}: a session recorded iff set up",
        case.file
    );
    if let Some(folder) = &folder {
        check_voices(case, folder);
    }
    Outcome {
        recorded: folder.is_some(),
        rejected,
    }
}

/// Each sender's tone is in the file named for it, and the other senders' tones are not;
/// no stream is left `unknown` once the metadata named its sender.
fn check_voices(case: &Case, folder: &Path) {
    let summary: serde_json::Value =
        serde_json::from_str(&read_recorded(folder, "summary.json")).unwrap();
    eprintln!("{}: {summary}", case.file);
    for (pointer, value) in case.summary {
        assert_eq!(
            summary.pointer(pointer).and_then(|v| v.as_str()),
            Some(*value),
            "{}: summary {pointer}",
            case.file
        );
    }
    for (label, participant, frequency) in case.voices {
        let file = find_wav(folder, &format!("label-{label}-{participant}."));
        let audio = Audio::read_wav(&file);
        let own = strongest(&audio, *frequency);
        assert!(
            own > 0.1,
            "{}: {participant}'s {frequency} Hz in {} at {own}",
            case.file,
            file.display()
        );
        for (_, other, other_frequency) in case.voices.iter().filter(|v| v.0 != *label) {
            let leaked = strongest(&audio, *other_frequency);
            assert!(
                leaked < own / 4.0,
                "{}: {other}'s {other_frequency} Hz at {leaked} in {participant}'s file",
                case.file
            );
        }
    }
    let files: Vec<&str> = summary["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert!(
        files.iter().all(|f| !f.contains("-unknown")),
        "{}: {files:?}",
        case.file
    );
}

/// The strongest amplitude of `frequency` over 0.2 s windows of the file.
fn strongest(audio: &Audio, frequency: f64) -> f64 {
    let window = (audio.sample_rate / 5) as usize;
    audio
        .samples
        .chunks(window)
        .filter(|chunk| chunk.len() == window)
        .map(|chunk| tone_amplitude(chunk, audio.sample_rate, frequency))
        .fold(0.0, f64::max)
}

fn refusal(
    status: u16,
    reason: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> Step {
    Step {
        status,
        answer: None,
        headers,
        reason,
    }
}

const ALICE_BOB: &[Line] = &[Line::Recv("20"), Line::Recv("10")];

#[test]
fn rfc7865_sbc_names_files_by_association_not_order() {
    run_case(&Case {
        file: "rfc7865_sbc.txt",
        steps: vec![ok(ALICE_BOB)],
        voices: &[("20", "bob", 440.0), ("10", "alice", 1000.0)],
        summary: &[("/participants/0/name", "Alice")],
    });
}

#[test]
fn draft_namespace_and_legacy_content_type() {
    run_case(&Case {
        file: "draft_namespace.txt",
        steps: vec![ok(&[Line::Recv("caller"), Line::Recv("callee")])],
        voices: &[("caller", "dana", 1000.0), ("callee", "eve", 440.0)],
        summary: &[],
    });
}

#[test]
fn broadworks_recording_metadata() {
    run_case(&Case {
        file: "broadworks.txt",
        steps: vec![ok(&[Line::Recv("1"), Line::Recv("2")])],
        voices: &[("1", "+15550002222", 440.0), ("2", "+15550001111", 1000.0)],
        summary: &[],
    });
}

#[test]
fn part_headers_without_space_after_colon() {
    run_case(&Case {
        file: "no_space_part_headers.txt",
        steps: vec![ok(&[Line::Recv("a"), Line::Recv("b")])],
        voices: &[("a", "grace", 700.0), ("b", "frank", 1300.0)],
        summary: &[],
    });
}

#[test]
fn times_with_utc_offset_are_kept_in_utc() {
    let outcome = run_case(&Case {
        file: "utc_offset_times.txt",
        steps: vec![
            ok(&[Line::Recv("1"), Line::Recv("2")]),
            ok(&[Line::Recv("1"), Line::Recv("2")]),
        ],
        voices: &[("1", "heidi", 1000.0), ("2", "ivan", 440.0)],
        // 10:05 at +01:00, from the partial update merged into the complete view.
        summary: &[("/call_end", "2026-12-07T09:05:00.000Z")],
    });
    assert!(outcome.recorded);
}

#[test]
fn invite_without_accept_header() {
    run_case(&Case {
        file: "no_accept_header.txt",
        steps: vec![ok(&[Line::Recv("1"), Line::Recv("2")])],
        voices: &[("1", "judy", 1000.0), ("2", "karl", 440.0)],
        summary: &[],
    });
}

const LEFT_RIGHT: &[Line] = &[Line::Recv("left"), Line::Recv("right")];
const LATE_VOICES: &[Voice] = &[("left", "mia", 1000.0), ("right", "liam", 440.0)];

#[test]
fn metadata_first_sent_in_a_reinvite() {
    run_case(&Case {
        file: "metadata_in_reinvite.txt",
        steps: vec![ok(LEFT_RIGHT), ok(LEFT_RIGHT)],
        voices: LATE_VOICES,
        summary: &[],
    });
}

#[test]
fn metadata_first_sent_in_an_update() {
    run_case(&Case {
        file: "metadata_in_update.txt",
        steps: vec![
            ok(LEFT_RIGHT),
            Step {
                status: 200,
                answer: None,
                headers: &[],
                reason: "",
            },
        ],
        voices: LATE_VOICES,
        summary: &[],
    });
}

#[test]
fn inactive_and_port_zero_streams_are_mirrored() {
    run_case(&Case {
        file: "inactive_and_port_zero.txt",
        steps: vec![ok(&[
            Line::Recv("1"),
            Line::Inactive("2"),
            Line::Refused("3"),
        ])],
        voices: &[("1", "nina", 1000.0)],
        summary: &[],
    });
}

#[test]
fn video_stream_is_answered_with_port_zero() {
    run_case(&Case {
        file: "video_stream.txt",
        steps: vec![ok(&[Line::Recv("1"), Line::Recv("2"), Line::Refused("3")])],
        voices: &[("1", "pia", 1000.0), ("2", "quinn", 440.0)],
        summary: &[],
    });
}

#[test]
fn stream_added_by_reinvite_gets_its_own_file() {
    run_case(&Case {
        file: "stream_added_by_reinvite.txt",
        steps: vec![
            ok(&[Line::Recv("10"), Line::Recv("20")]),
            ok(&[Line::Recv("10"), Line::Recv("20"), Line::Recv("30")]),
        ],
        voices: &[
            ("10", "rosa", 1000.0),
            ("20", "sam", 440.0),
            ("30", "tara", 700.0),
        ],
        summary: &[],
    });
}

#[test]
fn partial_metadata_is_merged_into_the_complete_view() {
    run_case(&Case {
        file: "partial_metadata.txt",
        steps: vec![
            ok(&[Line::Recv("A"), Line::Recv("B")]),
            ok(&[Line::Recv("A"), Line::Recv("B")]),
        ],
        voices: &[("A", "uma", 1000.0), ("B", "victor", 440.0)],
        summary: &[("/participants/1/name", "Victor")],
    });
}

#[test]
fn plain_call_is_refused_with_a_reason() {
    let outcome = run_case(&Case {
        file: "not_siprec.txt",
        steps: vec![refusal(
            488,
            "Not a recording session",
            &[("Reason", "SIP;cause=488")],
        )],
        voices: &[],
        summary: &[],
    });
    assert_eq!(outcome.rejected.len(), 1);
    assert!(!outcome.recorded);
}

#[test]
fn unknown_required_extension_gets_420() {
    let outcome = run_case(&Case {
        file: "unknown_require.txt",
        steps: vec![refusal(
            420,
            "Bad Extension",
            &[
                ("Unsupported", "x-acme-media-fork"),
                ("Reason", "cause=420"),
            ],
        )],
        voices: &[],
        summary: &[],
    });
    assert_eq!(outcome.rejected[0].0, 420);
}

#[test]
fn foreign_metadata_namespace_is_refused_naming_the_expected_one() {
    let outcome = run_case(&Case {
        file: "foreign_namespace.txt",
        steps: vec![refusal(
            488,
            "urn:ietf:params:xml:ns:recording:1",
            &[("Reason", "urn:x-acme:call-recording:3")],
        )],
        voices: &[],
        summary: &[],
    });
    assert!(!outcome.recorded);
}
