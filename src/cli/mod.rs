//! The headless command line. Its flags are a stable interface for automation and for our
//! acceptance tests; new features add flags, they do not change these.

mod bench;
mod calls;
mod config;
mod gui;
mod media;
mod recordings;

use calls::{CallOptions, TransferTo, answer, call, parse_target, prepare_storage, register_only};
use config::load;
use media::{CodecArg, MediaArgs, RecordArgs, SrtpArg};

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::sip::transport::Transport;

#[derive(Debug, Parser)]
#[command(
    name = "verbatim",
    version,
    about = "A SIP softphone that is its own call recorder"
)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log every SIP message sent and received (stderr and the log file).
    #[arg(long, global = true)]
    sip_trace: bool,
    /// Keep addresses, numbers, names and keys in the logs (they are hidden otherwise).
    #[arg(long, global = true)]
    log_reveal: bool,
    /// The desktop app's options, for `verbatim` without a command (as `verbatim gui`).
    #[command(flatten)]
    gui: GuiArgs,
    #[command(subcommand)]
    command: Option<CliCommand>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Transport {
        match t {
            TransportArg::Udp => Transport::Udp,
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Tls => Transport::Tls,
        }
    }
}

/// TLS options; the account's settings fill in what is not given here.
#[derive(Debug, Clone, Default, clap::Args)]
struct TlsArgs {
    /// Trust this CA (PEM) for the server's certificate instead of the system's roots.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Our certificate (PEM) for servers that demand mutual TLS.
    #[arg(long, requires = "tls_client_key")]
    tls_client_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
    /// Also accept SIP over TLS on this address (needs --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// Our server certificate chain (PEM) for --tls-listen.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// With --tls-listen: require clients to present a certificate from this CA.
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Place one call, keep it up for --duration seconds after the answer, hang up.
    Call {
        /// Whom to call: a SIP URI, or a user name completed with the account's domain.
        target: String,
        /// Our identity (From); defaults to the account's address.
        #[arg(long)]
        from: Option<String>,
        /// Local address for SIP over UDP and TCP.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        #[arg(long, value_enum)]
        transport: Option<TransportArg>,
        /// Seconds to stay connected before hanging up.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Blind-transfer the other side to this SIP URI (or number) once connected (REFER);
        /// our call ends when the target answers.
        #[arg(long, value_name = "TARGET", group = "transfer_kind")]
        transfer_to: Option<String>,
        /// Attended transfer: once connected, put the call on hold and call this SIP URI (or
        /// number); at --transfer-at (once it answers) hand the other side over to it (REFER
        /// with Replaces), and both our calls end.
        #[arg(
            long,
            value_name = "TARGET",
            group = "transfer_kind",
            conflicts_with = "conference_with"
        )]
        consult: Option<String>,
        /// Seconds after connecting to transfer.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 1,
            requires = "transfer_kind"
        )]
        transfer_at: u64,
        /// Also call this SIP URI (or number) and merge both calls into a conference, with
        /// this phone as its focus and mixer: each party hears the other and us.
        #[arg(long, value_name = "TARGET")]
        conference_with: Option<String>,
        /// Seconds after the first call connects to merge (once both are up).
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 0,
            requires = "conference_with"
        )]
        conference_at: u64,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Place the call on this account (its `name` in the configuration, else user@host);
        /// default: the first enabled one.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        media: MediaArgs,
        #[command(flatten)]
        record: RecordArgs,
    },
    /// Answer incoming calls automatically (following transfers the caller asks for); exit after --calls of them have ended.
    Answer {
        #[arg(long, default_value = "127.0.0.1:5060")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        calls: u32,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        media: MediaArgs,
        #[command(flatten)]
        record: RecordArgs,
    },
    /// Run N concurrent calls between two engines in this process over loopback, with file
    /// audio, and print one JSON line of figures.
    Bench {
        #[arg(long, default_value_t = 10)]
        calls: u32,
        /// Seconds of measured talk time after every call is up.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, value_enum)]
        codec: Option<CodecArg>,
        #[arg(long, value_enum, default_value = "off")]
        srtp: SrtpArg,
        /// Send this WAV in every call (looped); a 1 kHz tone otherwise.
        #[arg(long, value_name = "FILE.wav")]
        play: Option<PathBuf>,
        /// Record every call to a built-in recorder running as a separate process.
        #[arg(long)]
        record: bool,
        /// Merge the calling side's calls into one conference (it mixes them all).
        #[arg(long)]
        conference: bool,
    },
    /// List the sound devices; their names go in the configuration's [audio] section.
    Devices,
    /// Print the shell completion script for SHELL (packages install it).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) for `man`.
    Manpage,
    /// Open the desktop app (also what `verbatim` alone does).
    Gui(GuiArgs),
    /// Dial a sip:, sips:, tel: or callto: link in the running window, or open the window
    /// and dial it (the desktop's handler for those links); without a link, the window.
    Open {
        /// The link, e.g. tel:+1-555-0100 or sip:bob@example.com.
        link: Option<String>,
        #[command(flatten)]
        gui: GuiArgs,
    },
    /// Run the built-in recorder (a SIPREC Session Recording Server) until Ctrl+C.
    Srs {
        #[arg(long, default_value = "127.0.0.1:5080")]
        listen: SocketAddr,
        /// Where recordings go: one folder per recording session.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// udp and tcp listen together on --listen; tls moves --listen to SIP over TLS
        /// (needs --tls-cert and --tls-key) and leaves UDP and TCP on a free port.
        #[arg(long, value_enum, default_value = "tcp")]
        transport: SrsTransportArg,
        /// The recorder's certificate chain (PEM) for --transport tls.
        #[arg(long, value_name = "FILE.pem")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, value_name = "FILE.pem")]
        tls_key: Option<PathBuf>,
        /// Demand client certificates issued by this CA (mutual TLS).
        #[arg(long, value_name = "FILE.pem")]
        tls_client_ca: Option<PathBuf>,
        /// Codecs to pick first when a client offers them, best first (e.g. pcma,opus);
        /// by default the client's first choice.
        #[arg(long, value_enum, value_delimiter = ',')]
        codec: Vec<CodecArg>,
        /// Delete recordings older than this many days (at start and every hour; logged).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        keep_days: Option<u32>,
        /// Store plain files instead of encrypting them (anyone who can read the folder can
        /// play them).
        #[arg(long, conflicts_with_all = ["key_file", "recipient"])]
        plain: bool,
        /// Encrypt to the key in this file (made if missing) instead of the keyring's.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// Also encrypt every recording to this public key (age1…); repeatable.
        #[arg(long, value_name = "AGE1…")]
        recipient: Vec<String>,
    },
    /// The recordings the built-in recorder keeps: list, export, verify, and their key.
    Recordings {
        #[command(subcommand)]
        command: recordings::RecordingsCommand,
    },
    /// Register the configured account, print the result, unregister and exit.
    Register {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Which account (its `name`, else user@host); default: the first enabled one.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct GuiArgs {
    /// The desktop app: where SIP listens (UDP and TCP); the default is port 5060 on every
    /// interface.
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<SocketAddr>,
    /// The desktop app: the settings file (default: config.toml in the OS config dir).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SrsTransportArg {
    Udp,
    Tcp,
    Tls,
}

/// How a command failed: the message goes to stderr, the code to the shell.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

/// Parses a command line as the binary does, with every usage check that needs no file,
/// network or settings, and runs nothing: tests/readme_commands.rs checks each command line
/// README.md shows through it. Errors (and `--help`, `--version`) come as clap's, which
/// `clap::Error::exit` prints with exit code 2 (0 for help).
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    cli.check().map_err(|message| {
        <Cli as clap::CommandFactory>::command()
            .error(clap::error::ErrorKind::ArgumentConflict, message)
    })?;
    Ok(cli)
}

impl Cli {
    /// What clap's attributes cannot say.
    fn check(&self) -> Result<(), String> {
        if self.command.is_some() && (self.gui.listen.is_some() || self.gui.config.is_some()) {
            return Err(
                "--listen and --config before a command are the desktop app's; \
                        give a command's own after it (verbatim call URI --listen IP:PORT)"
                    .into(),
            );
        }
        if let Some(CliCommand::Srs {
            listen,
            transport,
            tls_cert,
            tls_key,
            tls_client_ca,
            recipient,
            ..
        }) = &self.command
        {
            srs_recipients(recipient)?;
            srs_tls(
                *transport,
                *listen,
                tls_cert.clone(),
                tls_key.clone(),
                tls_client_ca.clone(),
            )?;
        }
        Ok(())
    }
}

/// `srs --recipient`: age public keys.
fn srs_recipients(texts: &[String]) -> Result<Vec<age::x25519::Recipient>, String> {
    texts
        .iter()
        .map(|text| {
            text.parse::<age::x25519::Recipient>()
                .map_err(|_| format!("srs: --recipient {text:?} is not an age public key"))
        })
        .collect()
}

/// `srs --transport tls` with its certificate and key (SIP over TLS on --listen), or no TLS.
fn srs_tls(
    transport: SrsTransportArg,
    listen: SocketAddr,
    certificate: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Result<Option<crate::driver::tls::TlsServerSettings>, String> {
    match (transport, certificate, key) {
        (SrsTransportArg::Tls, Some(certificate), Some(key)) => {
            Ok(Some(crate::driver::tls::TlsServerSettings {
                listen,
                certificate,
                key,
                client_ca,
            }))
        }
        (SrsTransportArg::Tls, _, _) => {
            Err("srs: --transport tls needs --tls-cert and --tls-key".into())
        }
        (_, None, None) if client_ca.is_none() => Ok(None),
        _ => Err("srs: --tls-cert, --tls-key and --tls-client-ca go with --transport tls".into()),
    }
}

pub fn run() -> ExitCode {
    let cli = match parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Some(problem) = crate::logging::init(crate::logging::LogOptions {
        verbose: cli.verbose,
        sip_trace: cli.sip_trace,
        reveal: cli.log_reveal,
    }) {
        eprintln!("verbatim: no log file: {problem}");
    }
    let command = match cli.command {
        // The desktop app runs on the main thread, as windowing systems want.
        None => return gui::gui(cli.gui),
        Some(CliCommand::Gui(args)) => return gui::gui(args),
        Some(CliCommand::Open {
            link: Some(link),
            gui,
        }) => return gui::open(&link, gui),
        Some(CliCommand::Open { link: None, gui }) => return gui::gui(gui),
        Some(command) => command,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("verbatim: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn execute(command: CliCommand) -> Result<(), Failure> {
    match command {
        // `run` opens the window on the main thread before any runtime exists.
        CliCommand::Gui(_) | CliCommand::Open { .. } => {
            Err(Failure::usage("the desktop app cannot run from here"))
        }
        CliCommand::Call {
            target,
            from,
            listen,
            transport,
            duration,
            transfer_to,
            consult,
            transfer_at,
            conference_with,
            conference_at,
            config,
            account,
            tls,
            media,
            record,
        } => {
            let mut loaded = load(config.as_deref(), account.as_deref())?;
            loaded.apply(&media)?;
            loaded.apply_recording(&record, false)?;
            let transfer = match (transfer_to, consult) {
                (Some(target), _) => Some(TransferTo::Blind(parse_target(
                    &target,
                    loaded.account.as_ref(),
                )?)),
                (None, Some(target)) => Some(TransferTo::Consult(parse_target(
                    &target,
                    loaded.account.as_ref(),
                )?)),
                (None, None) => None,
            }
            .map(|to| (to, Duration::from_secs(transfer_at)));
            let conference = conference_with
                .map(|target| {
                    parse_target(&target, loaded.account.as_ref())
                        .map(|uri| (uri, Duration::from_secs(conference_at)))
                })
                .transpose()?;
            let options = CallOptions {
                from,
                listen,
                transport: transport.map(Into::into),
                duration,
                tls,
                transfer,
                conference,
            };
            call(target, options, loaded).await
        }
        CliCommand::Answer {
            listen,
            calls,
            config,
            tls,
            media,
            record,
        } => {
            let mut loaded = load(config.as_deref(), None)?;
            loaded.apply(&media)?;
            loaded.apply_recording(&record, true)?;
            answer(listen, calls, loaded, tls).await
        }
        CliCommand::Bench {
            calls,
            duration,
            codec,
            srtp,
            play,
            record,
            conference,
        } => {
            bench::run(
                calls,
                duration,
                codec.map(CodecArg::codec),
                srtp.policy(),
                play,
                record,
                conference,
            )
            .await
        }
        CliCommand::Srs {
            listen,
            dir,
            transport,
            tls_cert,
            tls_key,
            tls_client_ca,
            codec,
            keep_days,
            plain,
            key_file,
            recipient,
        } => {
            let extra_recipients = srs_recipients(&recipient).map_err(Failure::usage)?;
            let tls = srs_tls(transport, listen, tls_cert, tls_key, tls_client_ca)
                .map_err(Failure::usage)?;
            let storage = crate::archive::Storage {
                encrypt: !plain,
                key_file,
                extra_recipients,
            };
            let dir = match dir {
                Some(dir) => dir,
                None => crate::settings::default_recordings_folder()
                    .ok_or_else(|| Failure::usage("srs: no --dir and no data directory"))?,
            };
            let mut config = crate::srs::SrsConfig::new(listen, dir);
            config.codecs = codec.into_iter().map(CodecArg::kind).collect();
            config.keep = keep_days.map(crate::archive::retention::days);
            config.sealing = prepare_storage(storage)
                .await
                .map_err(|f| Failure::new(format!("srs: {}", f.message)))?;
            if let Some(tls) = tls {
                // TLS takes --listen; UDP and TCP go to a free port beside it.
                config.listen = SocketAddr::new(listen.ip(), 0);
                config.tls = Some(tls);
            }
            crate::srs::serve(config)
                .await
                .map_err(|e| Failure::new(format!("srs: {e}")))
        }
        CliCommand::Recordings { command } => recordings::run(command).await,
        CliCommand::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "verbatim", &mut std::io::stdout());
            Ok(())
        }
        CliCommand::Manpage => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .map_err(|e| Failure::new(format!("manpage: {e}")))
        }
        CliCommand::Devices => {
            let devices = crate::audio::list_devices()
                .map_err(|e| Failure::new(format!("cannot list sound devices: {e}")))?;
            for device in devices {
                let roles = match (device.is_input, device.is_output) {
                    (true, true) => "input+output",
                    (true, false) => "input",
                    (false, true) => "output",
                    (false, false) => "-",
                };
                let default = if device.is_default { " (default)" } else { "" };
                println!("{}\t{roles}{default}\t{}", device.name, device.description);
            }
            Ok(())
        }
        CliCommand::Register {
            config,
            account,
            listen,
        } => register_only(listen, load(config.as_deref(), account.as_deref())?).await,
    }
}
