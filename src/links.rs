//! Links that dial: `sip:`, `sips:`, `tel:` and `callto:` (the desktop entry registers
//! Verbatim as their handler, and runs `verbatim open LINK`). A link goes to the window
//! already running, over a Unix socket in the user's runtime directory, so one phone keeps
//! the account and the calls; without one, the window opens and dials it.
//!
//! A link is checked and reduced to what the dial field takes: a SIP URI as it is, a
//! telephone number without its visual separators (RFC 3966 5.1.1), `+` kept.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest link taken: more is not a phone number or an address anyone types.
const MAX_LINK: usize = 1024;

/// What the dial field gets for `link`, or why it is no link we dial.
pub fn normalise(link: &str) -> Result<String, String> {
    let link = link.trim();
    if link.len() > MAX_LINK || link.chars().any(char::is_control) {
        return Err("the link is too long or has control characters".into());
    }
    let (scheme, rest) = link
        .split_once(':')
        .ok_or_else(|| format!("{link:?} is no sip:, sips:, tel: or callto: link"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "sip" | "sips" => {
            let uri = crate::sip::uri::Uri::parse(link).map_err(|e| format!("{link:?}: {e}"))?;
            // A link names whom to call, nothing more: headers (Replaces, Route...) and a
            // method or maddr would have it do something else.
            let steering = uri.params.iter().any(|(name, _)| {
                name.eq_ignore_ascii_case("method") || name.eq_ignore_ascii_case("maddr")
            });
            if uri.headers.is_some() || steering {
                return Err(format!(
                    "{link:?} carries headers or a method: only an address is dialled"
                ));
            }
            Ok(link.to_owned())
        }
        "tel" => number(rest.split(';').next().unwrap_or_default()),
        "callto" => {
            let target = rest.trim_start_matches("//");
            let target = target.split(['?', ';']).next().unwrap_or_default();
            // callto: carries a number or a name (Skype-style); a number is cleaned as tel:.
            match number(target) {
                Ok(number) => Ok(number),
                Err(_) if is_plain_name(target) => Ok(target.to_owned()),
                Err(error) => Err(error),
            }
        }
        other => Err(format!(
            "{other}: links are not dialled (only sip:, sips:, tel: and callto:)"
        )),
    }
}

/// A telephone number without visual separators (`-`, `.`, `(`, `)`, spaces; RFC 3966),
/// with its leading `+`.
fn number(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (plus, digits) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    let mut cleaned = String::from(plus);
    for c in digits.chars() {
        match c {
            '0'..='9' | '*' | '#' => cleaned.push(c),
            'A'..='D' | 'a'..='d' => cleaned.push(c.to_ascii_uppercase()),
            '-' | '.' | '(' | ')' | ' ' => {}
            // %20 and friends from a browser
            '%' => return number(&percent_decoded(text)?),
            other => return Err(format!("{text:?} is not a telephone number ({other:?})")),
        }
    }
    if cleaned.trim_start_matches('+').is_empty() {
        return Err(format!("{text:?} has no digits to dial"));
    }
    Ok(cleaned)
}

fn percent_decoded(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{text:?} has a broken %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| format!("{text:?} is not text"))?;
    if decoded.contains('%') {
        return Err(format!("{text:?} is escaped twice"));
    }
    Ok(decoded)
}

fn is_plain_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Where the running window listens for links: `verbatim/links.sock` in the user's runtime
/// directory (`XDG_RUNTIME_DIR`, private to the user); None without one, or with one that
/// is not an absolute path.
pub fn socket_path() -> Option<PathBuf> {
    let runtime = PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    runtime
        .is_absolute()
        .then(|| runtime.join("verbatim").join("links.sock"))
}

/// The socket's folder is a real folder of the runtime directory's owner that no one else
/// may enter: otherwise another account could sit in the middle and hear what is dialled.
fn check_private_folder(folder: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta =
        std::fs::symlink_metadata(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let owner = folder
        .parent()
        .and_then(|runtime| std::fs::metadata(runtime).ok())
        .map(|runtime| runtime.uid());
    if !meta.is_dir() || Some(meta.uid()) != owner || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a folder of yours alone: links are not taken",
            folder.display()
        ));
    }
    Ok(())
}

/// Hands `dial` to the window running for this user. Ok(false): none runs.
pub fn hand_to_running(socket: &Path, dial: &str) -> Result<bool, String> {
    if let Some(folder) = socket.parent()
        && folder.exists()
    {
        check_private_folder(folder)?;
    }
    let mut stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(_) => return Ok(false),
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    stream
        .write_all(format!("{dial}\n").as_bytes())
        .map_err(|e| format!("the running Verbatim did not take the link: {e}"))?;
    // It says "ok" once it has the link, so a window that is closing is not trusted.
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| format!("the running Verbatim did not take the link: {e}"))?;
    if reply.trim() == "ok" {
        Ok(true)
    } else {
        Err(format!(
            "the running Verbatim did not take the link: {}",
            reply.trim()
        ))
    }
}

/// The window's end: listens at `socket` (its folder made private to the user; a socket
/// left by a window that is gone is replaced) and hands each link it gets, checked, to
/// `take`, in a thread of its own.
pub fn listen(
    socket: &Path,
    take: impl Fn(String) -> bool + Send + Sync + 'static,
) -> Result<std::thread::JoinHandle<()>, String> {
    if let Some(folder) = socket.parent() {
        crate::private_fs::create_dir_all(folder)
            .map_err(|e| format!("{}: {e}", folder.display()))?;
        check_private_folder(folder)?;
    }
    if UnixStream::connect(socket).is_ok() {
        return Err("another Verbatim window takes the links already".into());
    }
    // Nothing answers there: a socket left behind.
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    let take = std::sync::Arc::new(take);
    Ok(std::thread::spawn(move || {
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    // Each link on its own: a slow sender holds up no other.
                    let take = take.clone();
                    std::thread::spawn(move || answer(stream, &*take));
                }
                // Out of descriptors, say: wait rather than spin.
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }))
}

/// Reads one link (within two seconds in all), hands it on, and says whether it was taken.
fn answer(stream: UnixStream, take: &(impl Fn(String) -> bool + ?Sized)) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut line = String::new();
    let mut reader = BufReader::new(stream.take_limit());
    let mut reply = loop {
        match reader.read_line(&mut line) {
            Ok(_) => break None,
            Err(_) if std::time::Instant::now() < deadline && !line.ends_with('\n') => continue,
            Err(error) => break Some(error.to_string()),
        }
    };
    if reply.is_none() {
        reply = Some(match normalise(line.trim_end()) {
            Ok(dial) => {
                if take(dial) {
                    "ok".to_owned()
                } else {
                    "the window is closing".to_owned()
                }
            }
            Err(problem) => problem,
        });
    }
    let mut stream = reader.into_inner().into_inner();
    let _ = stream.write_all(format!("{}\n", reply.unwrap_or_default()).as_bytes());
}

/// A stream read at most [`MAX_LINK`] bytes and a newline far.
trait TakeLimit {
    fn take_limit(self) -> std::io::Take<UnixStream>;
}

impl TakeLimit for UnixStream {
    fn take_limit(self) -> std::io::Take<UnixStream> {
        std::io::Read::take(self, MAX_LINK as u64 + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_what_the_dial_field_takes() {
        for (link, dial) in [
            ("tel:+1 (555) 123-4567", "+15551234567"),
            (
                "tel:+44.20.7946.0958;phone-context=example.com",
                "+442079460958",
            ),
            ("tel:%2B1%20555%20123", "+1555123"),
            ("callto://+49-30-1234567", "+49301234567"),
            ("callto:alice.smith", "alice.smith"),
            ("sip:bob@example.com", "sip:bob@example.com"),
            (
                "sip:bob@example.com;transport=tcp",
                "sip:bob@example.com;transport=tcp",
            ),
            (
                "SIPS:bob@example.com;transport=tls",
                "SIPS:bob@example.com;transport=tls",
            ),
        ] {
            assert_eq!(normalise(link).as_deref(), Ok(dial), "{link}");
        }
    }

    #[test]
    fn what_is_no_dialling_link_is_refused_with_the_reason() {
        for link in [
            "https://example.com",
            "javascript:alert(1)",
            "tel:",
            "tel:+",
            "tel:555;\u{7}",
            "callto://bob@evil",
            "sip:bob@example.com?Replaces=abc%3Bto-tag%3D1",
            "sip:bob@example.com;maddr=198.51.100.1",
            "sip:bob@example.com;method=REFER",
            "sip:",
            "bob",
        ] {
            assert!(normalise(link).is_err(), "{link}");
        }
        assert!(normalise(&format!("tel:{}", "1".repeat(2000))).is_err());
    }

    #[test]
    fn a_link_reaches_the_running_window_and_a_missing_one_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("verbatim").join("links.sock");
        assert_eq!(hand_to_running(&socket, "+1555"), Ok(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let _listener = listen(&socket, move |dial| tx.send(dial).is_ok()).unwrap();
        assert_eq!(hand_to_running(&socket, "tel:+1 555 0100"), Ok(true));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).as_deref(),
            Ok("+15550100")
        );
        let refused = hand_to_running(&socket, "https://example.com").unwrap_err();
        assert!(refused.contains("not dialled"), "{refused}");
        assert!(
            listen(&socket, |_| true).is_err(),
            "a second window does not take the links from the first"
        );
    }
}
