//! Where logs go and what they may say. Everything goes to stderr (quiet unless -v) and to a
//! daily log file in the OS data directory (`logs/verbatim.log.YYYY-MM-DD`, a week kept).
//! SIP messages are logged only when asked (`--sip-trace`). Every line passes through
//! [`redact`] first: who called whom and the keys that protect calls stay out of logs
//! unless the user opts in (`--log-reveal`).

use std::io::Write;
use std::path::PathBuf;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

/// The target SIP message traces are logged under (enabled by `--sip-trace`).
pub const SIP_TRACE: &str = "verbatim_sip";

/// How many daily log files are kept.
const KEPT_FILES: usize = 7;

/// What the command line asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// -v (debug) or -vv (trace) on stderr and in the file.
    pub verbose: u8,
    /// Log every SIP message sent and received.
    pub sip_trace: bool,
    /// Leave addresses, numbers, names and keys in the logs.
    pub reveal: bool,
}

/// The folder of the log files.
pub fn log_folder() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Verbatim", "verbatim")
        .map(|dirs| dirs.data_dir().join("logs"))
}

/// Sets up stderr and the log file; returns why the file could not be opened, if not.
pub fn init(options: LogOptions) -> Option<String> {
    let level = match options.verbose {
        0 => None,
        1 => Some("debug"),
        _ => Some("trace"),
    };
    let sip = if options.sip_trace {
        format!(",{SIP_TRACE}=info")
    } else {
        format!(",{SIP_TRACE}=off")
    };
    let stderr_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("warn,verbatim={}{sip}", level.unwrap_or("warn")))
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(Redacting::new(std::io::stderr, options.reveal))
        .with_filter(stderr_filter);
    let (file, problem) = match file_writer() {
        Ok(writer) => {
            let filter = EnvFilter::new(format!("warn,verbatim={}{sip}", level.unwrap_or("info")));
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Redacting::new(writer, options.reveal))
                .with_filter(filter);
            (Some(layer), None)
        }
        Err(problem) => (None, Some(problem)),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    problem
}

/// The daily file. Written in place by the thread that logs (no writer thread whose
/// buffered lines an exit could lose); nothing logs from the audio callback.
fn file_writer() -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    let folder = log_folder().ok_or("no data directory for the log file")?;
    crate::private_fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("verbatim.log")
        .max_log_files(KEPT_FILES)
        .build(&folder)
        .map_err(|e| format!("cannot open the log file in {}: {e}", folder.display()))?;
    Ok(appender)
}

/// A writer that redacts each formatted log line before passing it on.
#[derive(Debug, Clone)]
struct Redacting<M> {
    inner: M,
    reveal: bool,
}

impl<M> Redacting<M> {
    fn new(inner: M, reveal: bool) -> Self {
        Redacting { inner, reveal }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.inner.make_writer(),
            reveal: self.reveal,
        }
    }
}

#[derive(Debug)]
pub struct RedactingWriter<W> {
    inner: W,
    reveal: bool,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.reveal {
            return self.inner.write(buf);
        }
        // The formatter hands over whole lines, so each is redacted in one piece.
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

const HIDDEN: &str = "***";

/// Hides who is calling whom and the secrets of a SIP or SDP text: the user part of
/// `sip:`/`sips:` URIs, `tel:` numbers, display names, SDES keys (`inline:`) and the user,
/// response and cnonce of digest credentials. Hosts, ports, methods and statuses stay, so
/// a log still shows what happened.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, kind)) = next_sensitive(rest) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let (kept, hidden_len) = match kind {
            Sensitive::SipUser(scheme_len) => {
                let after_scheme = from.get(scheme_len..).unwrap_or_default();
                match user_part(after_scheme) {
                    Some(user_len) => {
                        out.push_str(from.get(..scheme_len).unwrap_or_default());
                        out.push_str(HIDDEN);
                        (scheme_len, user_len)
                    }
                    None => {
                        out.push_str(from.get(..scheme_len).unwrap_or_default());
                        (scheme_len, 0)
                    }
                }
            }
            Sensitive::Token(prefix_len) => {
                out.push_str(from.get(..prefix_len).unwrap_or_default());
                out.push_str(HIDDEN);
                let value = from.get(prefix_len..).unwrap_or_default();
                (prefix_len, token_len(value))
            }
            Sensitive::Quoted => {
                let inner = from.get(1..).unwrap_or_default();
                let end = inner.find('"').unwrap_or(inner.len());
                let after = inner.get(end + 1..).unwrap_or_default();
                let display_name = after.trim_start().starts_with('<');
                let credential = ["username=", "response=", "cnonce="]
                    .iter()
                    .any(|key| before.to_ascii_lowercase().ends_with(key));
                out.push('"');
                if display_name || credential {
                    out.push_str(HIDDEN);
                    (1, end)
                } else {
                    // Any other quoted text (a reason, a realm) is not about a person.
                    (1, 0)
                }
            }
        };
        rest = from.get(kept + hidden_len..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Copy)]
enum Sensitive {
    /// A SIP URI; the scheme (with its colon) is this long.
    SipUser(usize),
    /// A value after a prefix of this length, up to the next delimiter.
    Token(usize),
    /// A quoted string: hidden when it is a display name or a digest user or response.
    Quoted,
}

/// The earliest sensitive item in `text`: where it starts and what it is.
fn next_sensitive(text: &str) -> Option<(usize, Sensitive)> {
    let lower = text.to_ascii_lowercase();
    let candidates = [
        ("sips:", Sensitive::SipUser(5)),
        ("sip:", Sensitive::SipUser(4)),
        ("tel:", Sensitive::Token(4)),
        ("inline:", Sensitive::Token(7)),
        ("\"", Sensitive::Quoted),
    ];
    candidates
        .iter()
        .filter_map(|(needle, kind)| lower.find(needle).map(|at| (at, *kind)))
        // At one place "sips:" wins over "sip:" (listed first, and min_by_key keeps the first).
        .min_by_key(|(at, _)| *at)
}

/// The length of a URI's user part (before its `@`), if it has one.
fn user_part(uri: &str) -> Option<usize> {
    let end = uri
        .find(|c: char| c.is_whitespace() || matches!(c, '>' | ';' | ',' | '"' | '?'))
        .unwrap_or(uri.len());
    uri.get(..end)?.find('@').filter(|at| *at > 0)
}

fn token_len(value: &str) -> usize {
    value
        .find(|c: char| c.is_whitespace() || matches!(c, '>' | ';' | ',' | '"' | '|'))
        .unwrap_or(value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_calls_whom_and_keys_are_hidden_but_the_shape_stays() {
        let message = "INVITE sip:+15551234567@pbx.example.com;user=phone SIP/2.0\r\n\
                       From: \"Alice Smith\" <sips:alice@example.com>;tag=1\r\n\
                       To: <tel:+44207946000>\r\n\
                       Contact: <sip:192.0.2.1:5060;transport=tcp>\r\n\
                       Authorization: Digest username=\"alice\", realm=\"x\", response=\"abc\"\r\n\
                       a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\n";
        let redacted = redact(message);
        for secret in [
            "15551234567",
            "Alice Smith",
            "alice@",
            "44207946000",
            "WVNfX19z",
            "\"abc\"",
        ] {
            assert!(!redacted.contains(secret), "{secret} in {redacted}");
        }
        for kept in [
            "INVITE sip:***@pbx.example.com;user=phone SIP/2.0",
            "<sips:***@example.com>",
            "<tel:***>",
            "<sip:192.0.2.1:5060;transport=tcp>",
            "inline:***|2^20",
        ] {
            assert!(redacted.contains(kept), "{kept} missing from {redacted}");
        }
    }

    #[test]
    fn plain_text_passes_unchanged() {
        let line = "call ended: hung up (200) after 12 s; sip: nothing here";
        assert_eq!(redact(line), line);
        assert_eq!(redact(""), "");
        let quoted = "refused: \"Busy Here\" realm=\"pbx\"";
        assert_eq!(redact(quoted), quoted);
    }
}
