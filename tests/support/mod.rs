//! Helpers shared by the interop tests (`tests/interop_*.rs`).
//!
//! The tests run real SIP peers that nobody on the team wrote (sipp, kamailio, baresip)
//! against the `verbatim` binary, all on 127.0.0.1, started and stopped by the test:
//!
//! - [`Peer`]: one child process with its own temp dir; stdout and stderr go to files in
//!   that dir; the whole process group is stopped on drop; when the test panics, every
//!   peer prints what it captured (its command line, exit status, stdout, stderr and any
//!   `*.log` file in its dir, e.g. sipp's traces), so a CI log shows why.
//! - [`free_port`]: a block of [`PORT_BLOCK`] consecutive free ports on 127.0.0.1.
//! - [`Tool`]: where sipp, kamailio and baresip are; a missing one fails the test (never
//!   skips it) with the Debian package to install.
//! - starters for each peer ([`start_sipp`], [`start_kamailio`], [`start_baresip`],
//!   [`start_verbatim`]) and the files they need ([`Account`], [`write_tone_wav`]);
//!   baresip with another codec, SRTP or a console to make it send DTMF
//!   ([`start_baresip_with`], [`baresip_send_dtmf`]).
//! - audio checks by frequency, never by bytes: [`Audio`] (a WAV read back, e.g.
//!   [`baresip_recording`]) and [`tone_amplitude`] (Goertzel).
//!
//! Each test file includes this with `mod support;` and uses only a part of it.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod desktop;
pub mod mouth_to_ear;
pub mod pulse;

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The only address the tests use.
pub const LOCALHOST: &str = "127.0.0.1";

/// How long a peer gets to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The `verbatim` binary built by cargo for these integration tests.
///
/// `CARGO_BIN_EXE_<name>` is set by cargo when it compiles integration tests, and this
/// module is compiled as a part of each of them (`mod support;`), so it works here; it
/// would not in a unit test of the library.
pub fn verbatim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_verbatim"))
}

/// `tests/data` of this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// A sipp scenario of ours, from `tests/data/sipp/`.
pub fn sipp_scenario(file: &str) -> PathBuf {
    let path = data_dir().join("sipp").join(file);
    assert!(path.is_file(), "missing sipp scenario {}", path.display());
    path
}

// ---------------------------------------------------------------------------------------
// Peer programs
// ---------------------------------------------------------------------------------------

/// A peer program the tests need, and the Debian package that installs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Sipp,
    Kamailio,
    Baresip,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Sipp => "sipp",
            Tool::Kamailio => "kamailio",
            Tool::Baresip => "baresip",
        }
    }

    pub fn package(self) -> &'static str {
        match self {
            Tool::Sipp => "sip-tester",
            Tool::Kamailio => "kamailio",
            Tool::Baresip => "baresip-core",
        }
    }

    /// The program's path. Panics (the test fails, it is not skipped) when it is missing.
    pub fn path(self) -> PathBuf {
        let program = self.program();
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        // kamailio is in /usr/sbin, which is not in every user's PATH.
        for extra in [
            "/usr/sbin",
            "/sbin",
            "/usr/local/sbin",
            "/usr/bin",
            "/usr/local/bin",
        ] {
            dirs.push(PathBuf::from(extra));
        }
        dirs.into_iter()
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "{program} is not installed (not in PATH nor in /usr/sbin): these interop \
                     tests need it; install the Debian package {package} \
                     (apt-get install {package})",
                    package = self.package()
                )
            })
    }
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

/// Ports handed out by [`free_port`] come in blocks of this many consecutive ports, all
/// free on 127.0.0.1 for UDP and TCP when handed out. A peer gets one block and may use
/// the ports after its SIP port: baresip listens for TLS on PORT+1 and gets its RTP ports
/// from the block, sipp gets its media and control ports from it (see [`start_sipp`]).
pub const PORT_BLOCK: u16 = 10;

/// Blocks are taken from here: below the kernel's ephemeral range (32768-60999 by
/// default), so that outgoing TCP connections and port-0 sockets of the peers do not land
/// in a block between the check and its use.
const PORT_RANGE: (u16, u16) = (20000, 32000);

/// The first port of a block of [`PORT_BLOCK`] ports free on 127.0.0.1 (UDP and TCP).
///
/// Blocks are never handed out twice in one test process, and start at a random place, so
/// that tests running in parallel (threads or processes) do not collide. The ports are
/// checked by binding them, then released: the peer binds them a moment later.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<RandomState> = OnceLock::new();
    let seed = SEED.get_or_init(RandomState::new);
    let blocks = u64::from((PORT_RANGE.1 - PORT_RANGE.0) / PORT_BLOCK);
    let mut given = GIVEN
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap();
    for _ in 0..1000 {
        let draw = seed.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
        let block = u16::try_from(draw % blocks).unwrap();
        let base = PORT_RANGE.0 + block * PORT_BLOCK;
        if given.contains(&base) {
            continue;
        }
        if (base..base + PORT_BLOCK).all(port_is_free) {
            given.insert(base);
            return base;
        }
    }
    panic!("no block of {PORT_BLOCK} free ports found in {PORT_RANGE:?} on 127.0.0.1");
}

fn port_is_free(port: u16) -> bool {
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
    udp && tcp
}

/// UDP or TCP, for [`wait_until_listening`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

/// Whether a socket is bound to `port` (UDP) or listening on it (TCP), on 127.0.0.1 or
/// any address. Read from /proc/net, so the check itself sends nothing and binds nothing
/// (binding to probe would race with the peer that is about to bind).
pub fn is_listening(proto: Proto, port: u16) -> bool {
    let (files, listen_state) = match proto {
        Proto::Udp => (["/proc/net/udp", "/proc/net/udp6"], None),
        Proto::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], Some("0A")),
    };
    files.iter().any(|file| {
        let Ok(table) = fs::read_to_string(file) else {
            return false;
        };
        table.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or("");
            let state = fields.nth(1).unwrap_or("");
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok());
            local_port == Some(port) && listen_state.is_none_or(|wanted| state == wanted)
        })
    })
}

/// Waits until [`is_listening`]; panics after `timeout`.
pub fn wait_until_listening(proto: Proto, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !is_listening(proto, port) {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {proto:?} 127.0.0.1:{port} after {timeout:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// Peer: one child process
// ---------------------------------------------------------------------------------------

/// One child process of a test, with its own temp dir (its cwd), its stdout and stderr
/// captured to `stdout.log` and `stderr.log` there.
///
/// Create it with [`Peer::new`], put its files in [`Peer::dir`], then [`Peer::start`] it.
/// The child runs in its own process group; on drop the whole group gets SIGTERM, then
/// SIGKILL if it is still there after a grace time. When the thread is panicking (a failed
/// assertion), drop prints everything the peer captured to stderr, which the test harness
/// shows with the failure. With `VERBATIM_INTEROP_VERBOSE` set in the environment it
/// always does (run with `--nocapture` to see it for passing tests).
#[derive(Debug)]
pub struct Peer {
    name: String,
    dir: tempfile::TempDir,
    command_line: String,
    child: Option<Child>,
    status: Option<ExitStatus>,
    reported: bool,
}

const STDOUT_FILE: &str = "stdout.log";
const STDERR_FILE: &str = "stderr.log";
/// How much of each captured file a report shows (its end).
const REPORT_TAIL: usize = 48 * 1024;

impl Peer {
    /// A peer that is not started yet, with a fresh temp dir.
    pub fn new(name: &str) -> Peer {
        let dir = tempfile::Builder::new()
            .prefix(&format!("verbatim-interop-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        Peer {
            name: name.to_owned(),
            dir,
            command_line: String::new(),
            child: None,
            status: None,
            reported: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer's temp dir (its working directory once started).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside [`Peer::dir`].
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes a file inside [`Peer::dir`] (creating parent dirs) and returns its path.
    pub fn write_file(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, contents).unwrap();
        path
    }

    /// A command for `program` that runs in [`Peer::dir`]; finish it and [`Peer::start`] it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(self.dir.path());
        command
    }

    /// Starts `command` (from [`Peer::command`]) with stdin from /dev/null, stdout and
    /// stderr to files in [`Peer::dir`], in a process group of its own.
    pub fn start(&mut self, mut command: Command) -> &mut Peer {
        assert!(self.child.is_none(), "peer {} already started", self.name);
        let stdout = fs::File::create(self.path(STDOUT_FILE)).unwrap();
        let stderr = fs::File::create(self.path(STDERR_FILE)).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        self.command_line = format!("{command:?}");
        match command.spawn() {
            Ok(child) => self.child = Some(child),
            Err(error) => panic!("cannot start {}: {}: {error}", self.name, self.command_line),
        }
        self
    }

    /// [`Peer::command`] + args + [`Peer::start`].
    pub fn run<I, S>(&mut self, program: impl AsRef<OsStr>, args: I) -> &mut Peer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.command(program);
        command.args(args);
        self.start(command)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.path(STDOUT_FILE))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.path(STDERR_FILE))
    }

    /// Its exit status, if it has exited (without waiting).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.status = child.try_wait().expect("try_wait");
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_status().is_none()
    }

    /// Waits for the process to exit. After `timeout` it is killed and the test panics
    /// with everything the process captured.
    pub fn wait_with_timeout(&mut self, timeout: Duration) -> ExitStatus {
        assert!(self.child.is_some(), "peer {} was never started", self.name);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            if Instant::now() >= deadline {
                self.stop();
                self.fail(&format!(
                    "{} did not exit within {timeout:?}: killed",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit (see [`Peer::wait_with_timeout`]) and panics with the captured
    /// output unless the exit status is 0.
    pub fn expect_success(&mut self, timeout: Duration) {
        let status = self.wait_with_timeout(timeout);
        if !status.success() {
            self.fail(&format!("{} failed: {status}", self.name));
        }
    }

    /// Waits for the exit (see [`Peer::wait_with_timeout`]) and panics with the captured
    /// output if the exit status is 0; returns the status.
    pub fn expect_failure(&mut self, timeout: Duration) -> ExitStatus {
        let status = self.wait_with_timeout(timeout);
        if status.success() {
            self.fail(&format!("{} exited 0 but was expected to fail", self.name));
        }
        status
    }

    /// Waits until this peer listens on `port`. Panics with its output when it exits
    /// first or after `timeout`.
    pub fn wait_until_listening(&mut self, proto: Proto, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if is_listening(proto, port) {
                return;
            }
            if let Some(status) = self.try_status() {
                self.fail(&format!(
                    "{} exited ({status}) before listening on {proto:?} 127.0.0.1:{port}",
                    self.name
                ));
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{} does not listen on {proto:?} 127.0.0.1:{port} after {timeout:?}",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stdout or stderr contains `needle`; returns that output. Panics with the
    /// captured output when the process exits without printing it, or after `timeout`.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = self.try_status();
            let output = format!("{}{}", self.stdout(), self.stderr());
            if output.contains(needle) {
                return output;
            }
            if let Some(status) = exited {
                self.fail(&format!(
                    "{} exited ({status}) without printing {needle:?}",
                    self.name
                ));
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{} did not print {needle:?} within {timeout:?}",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process group: SIGTERM, then SIGKILL after a grace time; waits for the
    /// child. Does nothing if it was never started.
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        let pid = child.id();
        if self.status.is_none() {
            signal_group(pid, "TERM");
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.status.is_none() && Instant::now() < deadline {
                self.status = child.try_wait().ok().flatten();
                if self.status.is_none() {
                    thread::sleep(Duration::from_millis(20));
                }
            }
            if self.status.is_none() {
                signal_group(pid, "KILL");
                let _ = child.kill();
                self.status = child.wait().ok();
            }
        }
        // Whatever the leader left behind in its group (kamailio's children, ...).
        signal_group(pid, "KILL");
    }

    /// Everything this peer captured, for a failure message.
    pub fn report(&mut self) -> String {
        let status = match self.try_status() {
            Some(status) => status.to_string(),
            None if self.child.is_some() => "still running".to_owned(),
            None => "never started".to_owned(),
        };
        let mut report = String::new();
        let _ = writeln!(report, "======== {} ({status})", self.name);
        let _ = writeln!(report, "command: {}", self.command_line);
        let _ = writeln!(report, "dir: {}", self.dir().display());
        let mut files = vec![self.path(STDOUT_FILE), self.path(STDERR_FILE)];
        let mut others: Vec<PathBuf> = fs::read_dir(self.dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| {
                        path.extension().is_some_and(|ext| ext == "log") && !files.contains(path)
                    })
                    .collect()
            })
            .unwrap_or_default();
        others.sort();
        files.extend(others);
        for file in files {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let text = read_lossy(&file);
            let _ = writeln!(report, "-------- {} / {name}", self.name);
            report.push_str(tail(&text, REPORT_TAIL));
            if !text.ends_with('\n') {
                report.push('\n');
            }
        }
        report
    }

    /// Panics with `message` and this peer's report (which drop then does not repeat).
    pub fn fail(&mut self, message: &str) -> ! {
        let report = self.report();
        self.reported = true;
        panic!("{message}\n{report}");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
        let verbose = std::env::var_os("VERBATIM_INTEROP_VERBOSE").is_some();
        if (thread::panicking() && !self.reported) || verbose {
            eprintln!("{}", self.report());
        }
    }
}

/// Reports of several peers, for an assertion message.
pub fn reports(peers: &mut [&mut Peer]) -> String {
    peers.iter_mut().map(|peer| peer.report()).collect()
}

fn signal_group(pid: u32, signal: &str) {
    // The shell's `kill` (no libc: the crate forbids unsafe code; /bin/sh is always there,
    // a `kill` binary is not in minimal images). A negative pid names the process group.
    let _ = Command::new("sh")
        .args([
            "-c",
            r#"kill -s "$0" -- "-$1" 2>/dev/null"#,
            signal,
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

// ---------------------------------------------------------------------------------------
// verbatim
// ---------------------------------------------------------------------------------------

/// Starts the `verbatim` binary with `args` in `peer`. Its logs go to stderr; RUST_LOG is
/// set to a useful level unless the environment already has one.
pub fn start_verbatim<I, S>(peer: &mut Peer, args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    start_verbatim_with_env(peer, args, &[]);
}

/// Like [`start_verbatim`], with extra environment variables (secrets stay out of argv).
pub fn start_verbatim_with_env<I, S>(peer: &mut Peer, args: I, env: &[(&str, &str)])
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = peer.command(verbatim_bin());
    command.args(args);
    // The recordings key a test's phone or recorder makes stays in the test's folder, never
    // in the user's keyring or settings.
    command.env_remove("DBUS_SESSION_BUS_ADDRESS");
    command.env("XDG_CONFIG_HOME", peer.path("config"));
    command.envs(env.iter().copied());
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info,verbatim=debug");
    }
    peer.start(command);
}

/// An `[account]` of verbatim's config file (TOML), see the CLI contract.
#[derive(Clone, Debug)]
pub struct Account {
    pub display_name: String,
    /// The AOR, e.g. `sip:alice@127.0.0.1`.
    pub uri: String,
    pub registrar: Option<String>,
    pub auth_user: Option<String>,
    pub password: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    pub outbound_proxy: Option<String>,
    pub expires: u32,
}

impl Account {
    /// An account for `user@127.0.0.1` over UDP, without a registrar.
    pub fn new(user: &str, password: &str) -> Account {
        let mut display_name = user.to_owned();
        if let Some(first) = display_name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Account {
            display_name,
            uri: format!("sip:{user}@{LOCALHOST}"),
            registrar: None,
            auth_user: None,
            password: password.to_owned(),
            transport: "udp".to_owned(),
            outbound_proxy: None,
            expires: 300,
        }
    }

    pub fn registrar(mut self, uri: &str) -> Account {
        self.registrar = Some(uri.to_owned());
        self
    }

    pub fn transport(mut self, transport: &str) -> Account {
        self.transport = transport.to_owned();
        self
    }

    pub fn outbound_proxy(mut self, uri: &str) -> Account {
        self.outbound_proxy = Some(uri.to_owned());
        self
    }

    /// The account as the single `[account]` table (the form before several accounts).
    pub fn to_toml(&self) -> String {
        self.toml_table("[account]\n")
    }

    /// The account as one of several `[[account]]` tables, called `name`.
    pub fn to_toml_named(&self, name: &str) -> String {
        self.toml_table(&format!("[[account]]\nname = {}\n", toml_string(name)))
    }

    fn toml_table(&self, header: &str) -> String {
        let mut toml = String::from(header);
        let mut field = |key: &str, value: &str| {
            let _ = writeln!(toml, "{key} = {}", toml_string(value));
        };
        field("display_name", &self.display_name);
        field("uri", &self.uri);
        if let Some(registrar) = &self.registrar {
            field("registrar", registrar);
        }
        if let Some(auth_user) = &self.auth_user {
            field("auth_user", auth_user);
        }
        field("password", &self.password);
        field("transport", &self.transport);
        if let Some(proxy) = &self.outbound_proxy {
            field("outbound_proxy", proxy);
        }
        let _ = writeln!(toml, "expires = {}", self.expires);
        toml
    }

    /// Writes the config file into the peer's dir and returns its path.
    pub fn write_config(&self, peer: &Peer, file: &str) -> PathBuf {
        peer.write_file(file, self.to_toml())
    }
}

/// Writes a config file of several `[[account]]` tables, each with its name, into the
/// peer's dir and returns its path.
pub fn write_accounts_config(peer: &Peer, file: &str, accounts: &[(&str, &Account)]) -> PathBuf {
    let text: Vec<String> = accounts
        .iter()
        .map(|(name, account)| account.to_toml_named(name))
        .collect();
    peer.write_file(file, text.join("\n"))
}

fn toml_string(value: &str) -> String {
    let mut quoted = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

// ---------------------------------------------------------------------------------------
// sipp
// ---------------------------------------------------------------------------------------

/// What sipp plays: one of its built-in scenarios (`uas`, `uac`) or one of ours.
#[derive(Clone, Debug)]
pub enum Scenario {
    Builtin(&'static str),
    File(PathBuf),
}

/// Starts sipp in `peer`: SIP on 127.0.0.1:`port` with `transport` (`u1` or `t1`), one
/// call (`-m 1`), media port `port`+2 (sipp also takes +4), control port `port`+6, and a
/// global timeout so that it never outlives the test. Its traces go to `sipp_*.log` in the
/// peer's dir (shown on failure). `extra` comes before `target` (`IP:PORT`, for a UAC).
///
/// sipp exits 0 when all its calls succeeded, 1 when one failed.
pub fn start_sipp(
    peer: &mut Peer,
    scenario: &Scenario,
    port: u16,
    transport: &str,
    extra: &[&str],
    target: Option<&str>,
) {
    let mut command = peer.command(Tool::Sipp.path());
    match scenario {
        Scenario::Builtin(name) => command.args(["-sn", name]),
        Scenario::File(path) => command.arg("-sf").arg(path),
    };
    command
        .args(["-i", LOCALHOST, "-bind_local", "-p", &port.to_string()])
        .args(["-mi", LOCALHOST, "-mp", &(port + 2).to_string()])
        .args(["-ci", LOCALHOST, "-cp", &(port + 6).to_string()])
        .args(["-t", transport, "-m", "1", "-nostdin"])
        .args(["-timeout", "30s", "-timeout_error"])
        .arg("-trace_err")
        .arg("-error_file")
        .arg(peer.path("sipp_errors.log"))
        .arg("-trace_msg")
        .arg("-message_file")
        .arg(peer.path("sipp_messages.log"))
        .arg("-trace_logs")
        .arg("-log_file")
        .arg(peer.path("sipp_actions.log"))
        .args(extra);
    if let Some(target) = target {
        command.arg(target);
    }
    peer.start(command);
}

/// The RTP packets a socket receives (when each came, and its payload type) until `stop`
/// is set.
pub fn rtp_arrivals(
    socket: std::net::UdpSocket,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<(std::time::Instant, u8)>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut arrivals = Vec::new();
        let mut buffer = [0u8; 2048];
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(len) = socket.recv(&mut buffer) {
                // RTP version 2; RTCP (payload types 72 to 76 with the marker bit) is not audio.
                let payload_type = buffer[1] & 0x7f;
                if len > 12 && buffer[0] >> 6 == 2 && !(72..=76).contains(&payload_type) {
                    arrivals.push((std::time::Instant::now(), payload_type));
                }
            }
        }
        arrivals
    })
}

/// `count` sockets on 127.0.0.1 for a recorder played by sipp, their ports, and the threads
/// that log what reaches them until the returned flag is set.
#[allow(clippy::type_complexity)]
pub fn recorder_ports(
    count: usize,
) -> (
    Vec<String>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<Vec<(std::time::Instant, u8)>>>,
) {
    let sockets: Vec<std::net::UdpSocket> = (0..count)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports = sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port().to_string())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listeners = sockets
        .into_iter()
        .map(|socket| rtp_arrivals(socket, stop.clone()))
        .collect();
    (ports, stop, listeners)
}

/// Stops the threads `recorder_ports` started and returns what each socket received.
pub fn arrivals_at(
    stop: &std::sync::atomic::AtomicBool,
    listeners: Vec<std::thread::JoinHandle<Vec<(std::time::Instant, u8)>>>,
) -> Vec<Vec<(std::time::Instant, u8)>> {
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    listeners.into_iter().map(|l| l.join().unwrap()).collect()
}

/// [`start_sipp`] for a UAS, then waits until it listens on `port`.
pub fn start_sipp_uas(
    peer: &mut Peer,
    scenario: &Scenario,
    port: u16,
    transport: &str,
    extra: &[&str],
) {
    start_sipp(peer, scenario, port, transport, extra, None);
    let proto = if transport.starts_with('t') {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    peer.wait_until_listening(proto, port, START_TIMEOUT);
}

// ---------------------------------------------------------------------------------------
// kamailio
// ---------------------------------------------------------------------------------------

/// Starts kamailio with `tests/data/kamailio.cfg` (users alice/alicepw, bob/bobpw) in
/// `peer`, in the foreground (`-DD -E`), runtime dir in the peer's dir (`-Y`), on UDP and
/// TCP 127.0.0.1:`port` (`-l`), and waits until it listens on both.
///
/// The cfg logs lines starting with `interop:` (each request, each saved registration:
/// `interop: registered sip:bob@127.0.0.1 contact ...`) on stderr.
pub fn start_kamailio(peer: &mut Peer, port: u16) {
    let cfg = data_dir().join("kamailio.cfg");
    let run_dir = peer.path("run");
    fs::create_dir_all(&run_dir).unwrap();
    let mut command = peer.command(Tool::Kamailio.path());
    command
        .arg("-f")
        .arg(&cfg)
        .args(["-DD", "-E"])
        .arg("-Y")
        .arg(&run_dir)
        .arg("-w")
        .arg(peer.dir())
        .args(["-l", &format!("udp:{LOCALHOST}:{port}")])
        .args(["-l", &format!("tcp:{LOCALHOST}:{port}")])
        .args(["-m", "32", "-M", "8"]);
    peer.start(command);
    peer.wait_until_listening(Proto::Udp, port, START_TIMEOUT);
    peer.wait_until_listening(Proto::Tcp, port, START_TIMEOUT);
}

// ---------------------------------------------------------------------------------------
// baresip
// ---------------------------------------------------------------------------------------

/// Writes a 16-bit PCM mono WAV of a sine tone.
pub fn write_tone_wav(path: &Path, sample_rate: u32, millis: u32, frequency: f64) {
    write_tone_wav_channels(path, sample_rate, 1, millis, frequency);
}

/// Writes a 16-bit PCM WAV of a sine tone at 0.3 of full scale, the same in each of
/// `channels` channels (baresip's aufile wants 48 kHz stereo for opus/48000/2).
pub fn write_tone_wav_channels(
    path: &Path,
    sample_rate: u32,
    channels: u16,
    millis: u32,
    frequency: f64,
) {
    let samples = u64::from(sample_rate) * u64::from(millis) / 1000;
    let block_align = 2 * channels;
    let data_len = u32::try_from(samples * u64::from(block_align)).unwrap();
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVE");
    wav.extend_from_slice(b"fmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&sample_rate.to_le_bytes());
    wav.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes()); // byte rate
    wav.extend_from_slice(&block_align.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for n in 0..samples {
        let sample = {
            let t = n as f64 / f64::from(sample_rate);
            (0.3 * f64::from(i16::MAX) * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
        };
        for _ in 0..channels {
            wav.extend_from_slice(&sample.to_le_bytes());
        }
    }
    fs::write(path, wav).unwrap();
}

/// How baresip is set up by [`start_baresip`].
#[derive(Clone, Debug)]
pub struct Baresip<'a> {
    /// SIP port; baresip also listens for TLS on `port`+1 and takes RTP ports from
    /// `port`+2..=`port`+8 (a [`free_port`] block).
    pub port: u16,
    /// The account's user: baresip only takes calls whose request URI has this user.
    pub user: &'a str,
    /// `answermode=auto` on the account.
    pub auto_answer: bool,
    /// What it plays (8 kHz mono for PCMU). The call ends when the file ends.
    pub wav: &'a Path,
    /// `-t`: it quits after this many seconds whatever happens.
    pub quit_after_secs: u32,
    /// `-e` commands, run at start (e.g. `/dial sip:x@127.0.0.1:PORT`).
    pub commands: &'a [&'a str],
}

/// What [`start_baresip_with`] sets up beyond [`Baresip`]: codec, SRTP and a console.
#[derive(Clone, Debug)]
pub struct BaresipMedia<'a> {
    /// The account's `audio_codecs`: `pcmu`, `pcma`, `g722` or `opus/48000/2`. aufile
    /// refuses a [`Baresip::wav`] that does not match the codec (8 kHz mono for G.711, 16 kHz
    /// mono for G.722, 48 kHz stereo for Opus) and the call then fails.
    pub audio_codecs: &'a str,
    /// The account's `mediaenc`, e.g. `srtp-mand` (SDES, RTP/SAVP only); `None`: plain RTP.
    pub mediaenc: Option<&'a str>,
    /// With a port (take a [`free_port`] block of its own): the cons module listens there
    /// on 127.0.0.1 (UDP and TCP) and what it gets is typed on baresip's menu, see
    /// [`baresip_send_dtmf`].
    pub console_port: Option<u16>,
    /// Play and capture through ALSA's `default` device (its alsa module) instead of
    /// [`Baresip::wav`] and the `rec/` folder; PULSE_SINK and PULSE_SOURCE in its
    /// environment pick a [`pulse::PulseSession`]'s sink and source.
    pub sound_card: bool,
}

impl Default for BaresipMedia<'_> {
    /// PCMU, no SRTP, no console: what [`start_baresip`] uses.
    fn default() -> Self {
        BaresipMedia {
            audio_codecs: "pcmu",
            mediaenc: None,
            console_port: None,
            sound_card: false,
        }
    }
}

/// Writes baresip's `config` and `accounts` into `peer`'s dir and starts it
/// (`baresip -f DIR -n 127.0.0.1 -t SECS`), then waits until it listens.
/// What it receives is recorded by sndfile into `rec/` in the peer's dir.
pub fn start_baresip(peer: &mut Peer, setup: &Baresip<'_>) {
    start_baresip_with(peer, setup, &BaresipMedia::default());
}

/// [`start_baresip`] with another codec, SRTP or a console ([`BaresipMedia`]); also waits
/// until the console listens.
pub fn start_baresip_with(peer: &mut Peer, setup: &Baresip<'_>, media: &BaresipMedia<'_>) {
    write_baresip_config(peer, setup, media, LOCALHOST);
    let mut command = peer.command(Tool::Baresip.path());
    command.args(baresip_args(peer, setup, LOCALHOST));
    peer.start(command);
    peer.wait_until_listening(Proto::Udp, setup.port, START_TIMEOUT);
    if let Some(console) = media.console_port {
        peer.wait_until_listening(Proto::Udp, console, START_TIMEOUT);
    }
}

/// baresip's command line for [`write_baresip_config`]'s files: `-f DIR -n IP -t SECS` and
/// the `-e` commands.
pub fn baresip_args(peer: &Peer, setup: &Baresip<'_>, ip: &str) -> Vec<String> {
    let mut args = vec![
        "-f".to_owned(),
        peer.dir().display().to_string(),
        "-n".to_owned(),
        ip.to_owned(),
        "-t".to_owned(),
        setup.quit_after_secs.to_string(),
    ];
    for line in setup.commands {
        args.extend(["-e".to_owned(), (*line).to_owned()]);
    }
    args
}

/// Writes baresip's `config` and `accounts` into `peer`'s dir, listening on `ip` (SIP and
/// RTP), for [`start_baresip_with`] or a start of one's own (in a network namespace).
pub fn write_baresip_config(
    peer: &mut Peer,
    setup: &Baresip<'_>,
    media: &BaresipMedia<'_>,
    ip: &str,
) {
    let port = setup.port;
    let rec = peer.path("rec");
    fs::create_dir_all(&rec).unwrap();
    let mut modules = String::from("module g711.so\n");
    if media.audio_codecs.contains("opus") {
        modules.push_str("module opus.so\n");
    }
    if media.audio_codecs.contains("g722") {
        modules.push_str("module g722.so\n");
    }
    if media.mediaenc.is_some_and(|enc| enc.starts_with("srtp")) {
        modules.push_str("module srtp.so\n");
    }
    let audio = if media.sound_card {
        modules.push_str("module alsa.so\n");
        "audio_player alsa,default\n\
         audio_source alsa,default\n\
         audio_alert alsa,default\n"
            .to_owned()
    } else {
        modules.push_str(
            "module aufile.so\n\
             module aubridge.so\n\
             module sndfile.so\n",
        );
        format!(
            "audio_player aubridge,a_out\n\
             audio_source aufile,{}\n\
             audio_alert aubridge,a_alert\n\
             snd_path {}\n",
            setup.wav.display(),
            rec.display(),
        )
    };
    if media.console_port.is_some() {
        modules.push_str("module cons.so\n");
    }
    let mut config = format!(
        "sip_listen {ip}:{port}\n\
         rtp_ports {}-{}\n\
         dns_server {LOCALHOST}:{}\n\
         {audio}\
         module_path /usr/lib/baresip/modules\n\
         {modules}\
         module_app account.so\n\
         module_app menu.so\n",
        port + 2,
        port + 8,
        port + 9,
    );
    if let Some(console) = media.console_port {
        let _ = writeln!(config, "cons_listen {LOCALHOST}:{console}");
    }
    peer.write_file("config", config);
    let answer = if setup.auto_answer {
        ";answermode=auto"
    } else {
        ""
    };
    let mediaenc = media
        .mediaenc
        .map(|enc| format!(";mediaenc={enc}"))
        .unwrap_or_default();
    peer.write_file(
        "accounts",
        format!(
            "<sip:{}@{ip}:{port}>;regint=0{answer};audio_codecs={}{mediaenc}\n",
            setup.user, media.audio_codecs
        ),
    );
}

/// The key code that baresip's UI reads as "key released" (`KEYCODE_REL`).
pub const BARESIP_KEY_RELEASE: char = '\u{4}';

/// Makes baresip send `digits` as RFC 4733 telephone-events in its current call, through
/// its console ([`BaresipMedia::console_port`]): one UDP datagram with each digit followed
/// by [`BARESIP_KEY_RELEASE`]. During a call, the menu module sends a digit key (0-9, *, #,
/// A-D) as an event; the release ends it (without one, the last event lasts until the
/// call ends). Events queue up in baresip, so all the digits can go at once.
pub fn baresip_send_dtmf(console_port: u16, digits: &str) {
    let keys: String = digits
        .chars()
        .flat_map(|digit| [digit, BARESIP_KEY_RELEASE])
        .collect();
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .send_to(keys.as_bytes(), (Ipv4Addr::LOCALHOST, console_port))
        .unwrap();
}

/// What baresip recorded with sndfile in `rec/` of its dir: `kind` is `dec` (what it
/// heard) or `enc` (what it sent). sndfile completes the WAV header only when the call's
/// audio is destroyed, just after baresip prints "terminated", so this waits up to
/// `timeout` for a `dump-*-KIND.wav` that reads with samples in it; then it fails with
/// baresip's report.
pub fn baresip_recording(peer: &mut Peer, kind: &str, timeout: Duration) -> Audio {
    let suffix = format!("-{kind}.wav");
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("no recording yet");
    loop {
        let found: Vec<PathBuf> = fs::read_dir(peer.path("rec"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| {
                        path.file_name()
                            .and_then(OsStr::to_str)
                            .is_some_and(|name| {
                                name.starts_with("dump-") && name.ends_with(&suffix)
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let [path] = found.as_slice() {
            match Audio::try_read_wav(path) {
                Ok(audio) if !audio.samples.is_empty() => return audio,
                Ok(_) => last_error = format!("{} has no samples (yet)", path.display()),
                Err(error) => last_error = error,
            }
        } else if found.len() > 1 {
            peer.fail(&format!("several baresip recordings: {found:?}"));
        }
        if Instant::now() >= deadline {
            peer.fail(&format!(
                "no complete baresip recording *{suffix} after {timeout:?}: {last_error}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// Checking audio
// ---------------------------------------------------------------------------------------

/// A WAV file's audio: mono (channels averaged), samples in [-1, 1].
#[derive(Clone, Debug)]
pub struct Audio {
    pub sample_rate: u32,
    pub samples: Vec<f64>,
}

impl Audio {
    /// Reads a PCM (integer or float) WAV of any rate and channel count; panics on errors.
    pub fn read_wav(path: &Path) -> Audio {
        Audio::try_read_wav(path).unwrap_or_else(|error| panic!("{error}"))
    }

    pub fn try_read_wav(path: &Path) -> Result<Audio, String> {
        if path.extension().is_some_and(|e| e == "age") {
            return Audio::try_read_recording(path);
        }
        let error = |e: hound::Error| format!("cannot read WAV {}: {e}", path.display());
        let mut reader = hound::WavReader::open(path).map_err(error)?;
        let spec = reader.spec();
        let interleaved: Vec<f64> = match spec.sample_format {
            hound::SampleFormat::Int => {
                let full_scale = f64::from(1u32 << (spec.bits_per_sample.clamp(1, 32) - 1));
                reader
                    .samples::<i32>()
                    .map(|sample| sample.map(|s| f64::from(s) / full_scale))
                    .collect::<Result<_, _>>()
                    .map_err(error)?
            }
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .map(|sample| sample.map(f64::from))
                .collect::<Result<_, _>>()
                .map_err(error)?,
        };
        let channels = usize::from(spec.channels.max(1));
        let samples = interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f64>() / channels as f64)
            .collect();
        Ok(Audio {
            sample_rate: spec.sample_rate,
            samples,
        })
    }

    /// A label file the recorder encrypted, read with the test key up to its end or its
    /// first damaged byte.
    fn try_read_recording(path: &Path) -> Result<Audio, String> {
        let mut label = verbatim::archive::session::LabelAudio::open(path, &test_keys())
            .map_err(|e| e.to_string())?;
        let mut samples = Vec::new();
        let mut block = vec![0.0f32; 4800];
        loop {
            let n = label.read(&mut block);
            if n == 0 {
                break;
            }
            samples.extend(block[..n].iter().map(|s| f64::from(*s)));
        }
        Ok(Audio {
            sample_rate: 48_000,
            samples,
        })
    }

    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The middle half (a quarter off each end, where calls start and stop).
    pub fn middle(&self) -> &[f64] {
        let quarter = self.samples.len() / 4;
        &self.samples[quarter..self.samples.len() - quarter]
    }

    /// [`tone_amplitude`] of `frequency` over [`Audio::middle`].
    pub fn tone(&self, frequency: f64) -> f64 {
        tone_amplitude(self.middle(), self.sample_rate, frequency)
    }
}

/// The amplitude of the `frequency` component of `samples` (Goertzel over all of them,
/// with a Hann window), normalised so that a full-scale sine of that frequency reads ≈1.0
/// (a sine at 0.3 of full scale, as [`write_tone_wav`] writes, ≈0.3). Other frequencies
/// more than a few bins away (the bin is `sample_rate / len` Hz) read ≈0.
pub fn tone_amplitude(samples: &[f64], sample_rate: u32, frequency: f64) -> f64 {
    let len = samples.len();
    if len < 2 {
        return 0.0;
    }
    let omega = 2.0 * std::f64::consts::PI * frequency / f64::from(sample_rate);
    let coefficient = 2.0 * omega.cos();
    let span = (len - 1) as f64;
    let (mut s1, mut s2, mut window_sum) = (0.0, 0.0, 0.0);
    for (n, sample) in samples.iter().enumerate() {
        let window = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / span).cos();
        window_sum += window;
        let s0 = sample * window + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let real = s1 - s2 * omega.cos();
    let imaginary = s2 * omega.sin();
    // A windowed sine of amplitude A gives |X| = A * sum(window) / 2.
    2.0 * real.hypot(imaginary) / window_sum
}

/// A throwaway PKI for TLS tests: `ca.pem`, `server.pem`/`server.key` and
/// `client.pem`/`client.key` in a temporary directory.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for `server_names`, and a client certificate.
    pub fn new(server_names: &[&str]) -> Pki {
        Pki::issue(server_names, false)
    }

    /// As [`Pki::new`], but the server certificate expired in 2021.
    pub fn with_expired_server(server_names: &[&str]) -> Pki {
        Pki::issue(server_names, true)
    }

    fn issue(server_names: &[&str], server_expired: bool) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        for (name, sans) in [
            (
                "server",
                server_names
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            ),
            ("client", vec!["alice.client".to_string()]),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(sans).unwrap();
            if server_expired && name == "server" {
                params.not_before = rcgen::date_time_ymd(2020, 1, 1);
                params.not_after = rcgen::date_time_ymd(2021, 1, 1);
            }
            let cert = params.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `verbatim call` arguments for a recorded PCMU call without SRTP to `target`, playing
/// `tone` for `seconds`, recorded by `srs` (a SIP URI).
pub fn recorded_call_args(target: &str, tone: &Path, seconds: u32, srs: &str) -> Vec<String> {
    [
        "call",
        target,
        "--codec",
        "pcmu",
        "--srtp",
        "off",
        "--play",
        tone.to_str().unwrap_or_default(),
        "--duration",
        &seconds.to_string(),
        "--record",
        "--srs",
        srs,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Starts `verbatim srs` (the built-in recorder as a process of its own) on a free port,
/// writing into `dir`, with `extra` arguments; returns it and its port once it listens.
pub fn start_recorder(name: &str, dir: &Path, extra: &[&str]) -> (Peer, u16) {
    let port = free_port();
    let mut srs = Peer::new(name);
    let listen = format!("127.0.0.1:{port}");
    let key_file = test_key_file();
    let mut args = vec![
        "srs",
        "--listen",
        &listen,
        "--dir",
        dir.to_str().unwrap_or_default(),
    ];
    if !extra.contains(&"--plain") && !extra.contains(&"--key-file") {
        args.extend(["--key-file", key_file.to_str().unwrap_or_default()]);
    }
    args.extend_from_slice(extra);
    start_verbatim(&mut srs, args);
    srs.wait_until_listening(Proto::Tcp, port, START_TIMEOUT);
    (srs, port)
}

/// The WAV in a recording folder whose name starts with `prefix` (`label-1-`, say),
/// encrypted (`.wav.age`) or plain.
pub fn find_wav(folder: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(prefix) && (n.ends_with(".wav") || n.ends_with(".wav.age"))
            })
        })
        .unwrap_or_else(|| panic!("no {prefix}*.wav in {}", folder.display()))
}

/// The recordings key every recorder a test starts encrypts to (made once per test run,
/// in a folder of its own): tests read what recorders wrote with it.
pub fn test_key_file() -> PathBuf {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("verbatim-test-key-{}", std::process::id()));
        let path = dir.join("recordings.key");
        let source = verbatim::archive::key::KeySource::File(path.clone());
        verbatim::archive::key::RecordingsKey::load_or_create(&source).unwrap();
        path
    })
    .clone()
}

/// An empty configuration folder for commands that would otherwise read the user's.
pub fn temp_config_home() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verbatim-test-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The identity in [`test_key_file`].
pub fn test_keys() -> Vec<age::x25519::Identity> {
    let source = verbatim::archive::key::KeySource::File(test_key_file());
    vec![
        verbatim::archive::key::RecordingsKey::require(&source)
            .unwrap()
            .identity()
            .clone(),
    ]
}

/// A text file the recorder wrote in `folder` (`summary.json`, `metadata-1.xml`),
/// decrypted with the test key when it is encrypted.
pub fn read_recorded(folder: &Path, name: &str) -> String {
    let path = verbatim::archive::session::stored(folder, name)
        .unwrap_or_else(|| panic!("no {name} in {}", folder.display()));
    let bytes =
        verbatim::archive::sealed::read_all(&path, &test_keys()).unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8(bytes).unwrap()
}

/// sipp's built-in `uas` on a free port over UDP: the far end of a call that only needs to
/// answer. Returns the peer and its port.
pub fn start_sipp_far_end(name: &str) -> (Peer, u16) {
    let port = free_port();
    let mut peer = Peer::new(name);
    start_sipp_uas(&mut peer, &Scenario::Builtin("uas"), port, "u1", &[]);
    (peer, port)
}

/// A tokio runtime for a test that drives a recorder or phone in process.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .unwrap()
}
