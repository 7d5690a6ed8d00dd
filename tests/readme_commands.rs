//! Every command line the README shows is one the CLI accepts, so a new user can type it.
//!
//! Taken from README.md: each line of a fenced code block that starts with `verbatim ` (or
//! `target/release/verbatim `), and each inline code span that does; from packaging/: the
//! desktop entry's `Exec=` and the shell scripts' runs of the built binary. The manual page
//! has no examples to check: `verbatim manpage` renders it from the same clap command.
//!
//! A usage line is expanded into the command lines it stands for: `[...]` optional, `a|b`
//! and `A | B` alternatives, `X...` repeated (twice), placeholders (`URI`, `IP:PORT`, `FILE`,
//! ...) replaced by values, `MEDIA` and `RECORD` by the flags their README paragraphs list.
//! Not every combination is tried: around two baselines (every optional part left out, and
//! every one given with its first alternative), each choice is varied on its own. Each line is
//! parsed by `verbatim::cli::parse_from`, the binary's own parser with its usage checks, and
//! runs nothing.
//!
//! Special cases, kept to these:
//! - an inline span of two words (`verbatim call` in a sentence) names a command rather than
//!   showing a line to type: it is checked with `--help` appended;
//! - `RECORD` stands for each prefix of its paragraph's flags in order, since each needs the
//!   ones before it (`--srs` needs `--record`, `--resume-at` needs `--pause-at`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

/// A usage line's structure: what may be typed.
#[derive(Debug, Clone)]
enum Node {
    /// These words as they are.
    Words(Vec<String>),
    /// One after the other.
    Seq(Vec<Node>),
    /// One of these.
    Alt(Vec<Node>),
    /// This or nothing.
    Opt(Box<Node>),
}

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Bar,
    Word(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        if word == "|" {
            tokens.push(Token::Bar);
            continue;
        }
        let opens = word.len() - word.trim_start_matches('[').len();
        let rest = word.trim_start_matches('[');
        let core = rest.trim_end_matches(']');
        let closes = rest.len() - core.len();
        tokens.extend((0..opens).map(|_| Token::Open));
        if !core.is_empty() {
            tokens.push(Token::Word(core.to_owned()));
        }
        tokens.extend((0..closes).map(|_| Token::Close));
    }
    tokens
}

/// What placeholders stand for, and the MEDIA and RECORD flags read from the README.
struct Values {
    age_key: String,
    media: Option<Node>,
    record: Option<Node>,
}

impl Values {
    fn placeholder(&self, name: &str) -> Option<Node> {
        let word = |w: &str| Some(Node::Words(vec![w.to_owned()]));
        match name {
            "URI" => word("sip:bob@127.0.0.1:5070"),
            "TARGET" => word("sip:carol@127.0.0.1:5071"),
            "LINK" => word("tel:+1-555-0100"),
            "IP:PORT" => word("127.0.0.1:5070"),
            "IP" => word("127.0.0.1"),
            "FILE" | "F" => word("readme-test/file.pem"),
            "FILE.wav" => word("readme-test/audio.wav"),
            "DIR" => word("readme-test/recordings"),
            "SECS" => word("3"),
            "N" => word("2"),
            "DIGITS" => word("1#"),
            "USER" => word("alice"),
            "NAME" => word("work"),
            "LIST" => word("pcma,opus"),
            "SESSION" => word("2025-01-02_10-00-00"),
            "AGE1..." | "age1..." => word(&self.age_key),
            "MEDIA" => self.media.clone(),
            "RECORD" => self.record.clone(),
            _ => None,
        }
    }

    /// One word of a usage line: a literal, a placeholder, alternatives or a repetition.
    fn word(&self, word: &str, line: &str) -> Node {
        if word.contains('|') {
            return Node::Alt(word.split('|').map(|part| self.word(part, line)).collect());
        }
        let word = word.trim_start_matches('<').trim_end_matches('>');
        if let Some(node) = self.placeholder(word) {
            return node;
        }
        if let Some(repeated) = word.strip_suffix("...") {
            let one = self.word(repeated, line);
            return Node::Seq(vec![one.clone(), one]);
        }
        assert!(
            !word.starts_with(|c: char| c.is_ascii_uppercase()),
            "{word:?} in {line:?} looks like a placeholder this test has no value for: \
             add one to Values::placeholder"
        );
        Node::Words(vec![word.to_owned()])
    }

    fn parse(&self, line: &str) -> Node {
        let tokens = tokenize(line);
        let mut at = 0;
        let node = self.sequence(&tokens, &mut at, line);
        assert!(at == tokens.len(), "unbalanced ] in {line:?}");
        node
    }

    fn sequence(&self, tokens: &[Token], at: &mut usize, line: &str) -> Node {
        let mut alternatives = Vec::new();
        let mut items = Vec::new();
        while let Some(token) = tokens.get(*at) {
            match token {
                Token::Close => break,
                Token::Open => {
                    *at += 1;
                    let inner = self.sequence(tokens, at, line);
                    assert!(
                        tokens.get(*at) == Some(&Token::Close),
                        "unclosed [ in {line:?}"
                    );
                    *at += 1;
                    items.push(Node::Opt(Box::new(inner)));
                    continue;
                }
                Token::Bar => alternatives.push(Node::Seq(std::mem::take(&mut items))),
                Token::Word(word) => items.push(self.word(word, line)),
            }
            *at += 1;
        }
        if alternatives.is_empty() {
            Node::Seq(items)
        } else {
            alternatives.push(Node::Seq(items));
            Node::Alt(alternatives)
        }
    }
}

/// The command lines a node stands for; the first is the baseline (optional parts given
/// when `given`, left out otherwise), the others vary one choice from it.
fn lines(node: &Node, given: bool) -> Vec<Vec<String>> {
    match node {
        Node::Words(words) => vec![words.clone()],
        Node::Alt(nodes) => nodes.iter().flat_map(|n| lines(n, given)).collect(),
        Node::Opt(inner) => {
            let mut out = lines(inner, given);
            if given {
                out.push(Vec::new());
            } else {
                out.insert(0, Vec::new());
            }
            out
        }
        Node::Seq(nodes) => {
            let each: Vec<Vec<Vec<String>>> = nodes.iter().map(|n| lines(n, given)).collect();
            let baseline = |skip: usize, with: &[String]| {
                let mut line = Vec::new();
                for (i, choices) in each.iter().enumerate() {
                    if i == skip {
                        line.extend_from_slice(with);
                    } else {
                        line.extend_from_slice(&choices[0]);
                    }
                }
                line
            };
            let mut out = vec![baseline(usize::MAX, &[])];
            for (i, choices) in each.iter().enumerate() {
                for choice in &choices[1..] {
                    out.push(baseline(i, choice));
                }
            }
            out
        }
    }
}

/// Where a command line was shown, and the line itself.
#[derive(Debug)]
struct Shown {
    place: String,
    line: String,
    /// An inline span of two words: it names a command.
    names_a_command: bool,
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `verbatim ...` with the built binary's path taken as the installed name.
fn as_command(text: &str) -> Option<String> {
    let text = collapse(text);
    ["verbatim ", "target/release/verbatim "]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .map(|rest| format!("verbatim {rest}"))
}

fn readme_commands(readme: &str) -> Vec<Shown> {
    let mut shown = Vec::new();
    // Code blocks: whole lines. Outside them: inline spans, which may wrap.
    let mut prose = String::new();
    let mut in_block = false;
    for (number, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            prose.push('\n');
            continue;
        }
        if in_block {
            let command = line.split(" #").next().unwrap_or_default();
            if let Some(command) = as_command(command) {
                shown.push(Shown {
                    place: format!("README.md:{}", number + 1),
                    line: command,
                    names_a_command: false,
                });
            }
            prose.push('\n');
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut rest = prose.as_str();
    let mut offset = 0;
    while let Some(open) = rest.find('`') {
        let Some(length) = rest[open + 1..].find('`') else {
            break;
        };
        let span = &rest[open + 1..open + 1 + length];
        if let Some(command) = as_command(span) {
            let number = prose[..offset + open].matches('\n').count() + 1;
            shown.push(Shown {
                place: format!("README.md:{number}"),
                names_a_command: command.split(' ').count() == 2,
                line: command,
            });
        }
        let consumed = open + 1 + length + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    shown
}

/// The desktop entry's `Exec=` and the binary's runs in packaging/'s shell scripts.
fn packaging_commands(root: &Path) -> Vec<Shown> {
    let mut shown = Vec::new();
    let mut files = vec![root.join("packaging/org.verbatim.Verbatim.desktop")];
    files.push(root.join("packaging/run-from-source.sh"));
    files.push(root.join("packaging/deb/build.sh"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(root).unwrap().display().to_string();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            let command = if let Some(exec) = line.strip_prefix("Exec=") {
                // Field codes (%U, %f, ...) are the launcher's to fill.
                exec.split_whitespace()
                    .filter(|w| !w.starts_with('%'))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else if let Some(run) = ["exec target/release/verbatim ", "\"$binary\" "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))
            {
                // What the shell does with the output, and the script's own arguments.
                let run = run.split(['>', '|']).next().unwrap_or_default();
                format!("verbatim {}", run.replace("\"$@\"", ""))
            } else {
                continue;
            };
            shown.push(Shown {
                place: format!("{name}:{}", number + 1),
                line: collapse(&command),
                names_a_command: false,
            });
        }
    }
    shown
}

/// The inline spans starting with `--` in the paragraph that starts with `heading`.
fn paragraph_flags(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no paragraph starting {heading:?}"));
    let paragraph = readme[start..].split("\n\n").next().unwrap_or_default();
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .map(collapse)
        .filter(|span| span.starts_with("--"))
        .collect()
}

fn values(readme: &str) -> Values {
    let mut values = Values {
        age_key: age::x25519::Identity::generate().to_public().to_string(),
        media: None,
        record: None,
    };
    let media = paragraph_flags(readme, "MEDIA flags:");
    let record = paragraph_flags(readme, "RECORD flags");
    assert!(
        media.len() >= 5 && record.len() >= 5,
        "{media:?} {record:?}"
    );
    let media = Node::Alt(media.iter().map(|flag| values.parse(flag)).collect());
    let record = Node::Alt(
        (1..=record.len())
            .map(|n| values.parse(&record[..n].join(" ")))
            .collect(),
    );
    values.media = Some(media);
    values.record = Some(record);
    values
}

/// Every line the shown usage stands for that the CLI refuses, with clap's reason.
fn refused(shown: &Shown, values: &Values) -> Vec<String> {
    let mut refusals = Vec::new();
    if shown.names_a_command {
        let mut argv: Vec<&str> = shown.line.split(' ').collect();
        argv.push("--help");
        match verbatim::cli::parse_from(&argv) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
            other => refusals.push(format!(
                "{}: {:?} has no --help: {other:?}",
                shown.place, argv
            )),
        }
        return refusals;
    }
    let node = values.parse(&shown.line);
    let expanded: BTreeSet<Vec<String>> = lines(&node, false)
        .into_iter()
        .chain(lines(&node, true))
        .collect();
    for argv in expanded {
        if let Err(error) = verbatim::cli::parse_from(&argv) {
            refusals.push(format!(
                "{}: {:?} (from {:?}) is refused:\n{}",
                shown.place,
                argv.join(" "),
                shown.line,
                error.render()
            ));
        }
    }
    refusals
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_command_line_in_the_readme_is_accepted() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let values = values(&readme);
    let shown = readme_commands(&readme);
    // The usage summary, the examples and the prose all have some.
    assert!(shown.len() >= 20, "found only {shown:#?}");
    let refusals: Vec<String> = shown.iter().flat_map(|s| refused(s, &values)).collect();
    assert!(refusals.is_empty(), "{}", refusals.join("\n"));
}

#[test]
fn every_command_line_in_packaging_is_accepted() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let values = values(&readme);
    let shown = packaging_commands(root());
    let lines: Vec<&str> = shown.iter().map(|s| s.line.as_str()).collect();
    for expected in [
        "verbatim gui",
        "verbatim manpage",
        "verbatim completions bash",
    ] {
        assert!(
            lines.contains(&expected),
            "{expected:?} not among {lines:?}"
        );
    }
    let refusals: Vec<String> = shown.iter().flat_map(|s| refused(s, &values)).collect();
    assert!(refusals.is_empty(), "{}", refusals.join("\n"));
}

#[test]
fn the_window_takes_its_options_with_or_without_gui() {
    for argv in [
        &["verbatim", "--listen", "127.0.0.1:5070"][..],
        &[
            "verbatim",
            "--config",
            "settings.toml",
            "--listen",
            "127.0.0.1:5070",
        ],
        &["verbatim", "gui", "--listen", "127.0.0.1:5070"],
        &["verbatim", "-v", "--listen", "127.0.0.1:5070"],
        &["verbatim", "-v", "call", "sip:bob@127.0.0.1:5070"],
    ] {
        verbatim::cli::parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    // Before a command they would be the window's, which the command does not open.
    let error = verbatim::cli::parse_from([
        "verbatim",
        "--listen",
        "127.0.0.1:5070",
        "call",
        "sip:bob@127.0.0.1:5070",
    ])
    .unwrap_err();
    assert!(error.to_string().contains("after it"), "{error}");
}

/// The expander itself: a line the CLI refuses is caught, with where it was shown.
#[test]
fn a_refused_line_is_reported() {
    let readme = "Use `verbatim call <URI> [--duration SECS | --bogus]` or\n\n```sh\n\
                  verbatim recordings list [SESSION...]  # comment\n```\n";
    let values = values(&std::fs::read_to_string(root().join("README.md")).unwrap());
    let shown = readme_commands(readme);
    assert_eq!(shown.len(), 2, "{shown:?}");
    let refusals: Vec<String> = shown.iter().flat_map(|s| refused(s, &values)).collect();
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    for expected in [
        "README.md:1: \"verbatim call sip:bob@127.0.0.1:5070 --bogus\"",
        "README.md:4: \"verbatim recordings list 2025",
    ] {
        assert!(
            refusals.iter().any(|r| r.starts_with(expected)),
            "{expected} in {refusals:#?}"
        );
    }
}
