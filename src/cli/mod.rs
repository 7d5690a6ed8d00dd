//! The headless command line. Its flags are a stable interface for automation and for our
//! acceptance tests; new features add flags, they do not change these.

mod bench;
mod media;
mod recordings;

use media::{CodecArg, MediaArgs, RecordArgs, SrtpArg};

use core::net::SocketAddr;
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::archive::sealed::Sealing;
use crate::driver::media::AudioFactory;
use crate::driver::tls::{TlsServerSettings, TlsSettings};
use crate::driver::{self, DriverConfig};
use crate::engine::{
    AccountConfig, AccountId, CallId, CallState, Command, EngineConfig, Event, RegistrationState,
    TransferState,
};
use crate::media::srtp::SrtpPolicy;
use crate::phone::{Outgoing, Phone, RecordFromStart, RecordingPolicy, builtin_recorder};
use crate::sdp::Codec;
use crate::settings::{Account, Settings};
use crate::sip::auth::Credentials;
use crate::sip::transport::{Destination, Transport};
use crate::sip::uri::{NameAddr, Uri};

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
        #[arg(long, value_name = "TARGET")]
        transfer_to: Option<String>,
        /// Seconds after connecting to transfer.
        #[arg(
            long,
            value_name = "SECS",
            default_value_t = 1,
            requires = "transfer_to"
        )]
        transfer_at: u64,
        #[arg(long)]
        config: Option<PathBuf>,
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
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct GuiArgs {
    /// Where SIP listens (UDP and TCP); the default is port 5060 on every interface.
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Opens the window with the phone behind it: the sound card when there is one, the built-in
/// recorder in the data directory unless `[recording] srs` names another.
fn gui(args: GuiArgs) -> ExitCode {
    let settings = match crate::settings::Settings::load_or_default(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let recording = match settings.recording.validate() {
        Ok(recording) => recording,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let notice = match recording.notice.load() {
        Ok(notice) => notice,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let mut problems = Vec::new();
    let volumes = std::sync::Arc::new(settings.audio.volumes());
    let audio = match media::device_audio(settings.audio.devices(), volumes) {
        Ok(setup) => setup,
        Err(error) => {
            problems.push(format!(
                "{}; calls will be silent",
                error.trim_end_matches('.')
            ));
            media::AudioSetup::default()
        }
    };
    let data = directories::ProjectDirs::from("org", "Verbatim", "verbatim")
        .map(|dirs| dirs.data_dir().to_owned());
    let recordings = recording.folder.clone();
    let account = match settings.account.as_ref().map(|a| a.validate()).transpose() {
        Ok(account) => account,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let media_srtp = settings.media.srtp().unwrap_or(SrtpPolicy::Optional);
    let config = crate::ui::BridgeConfig {
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5060))),
        recordings,
        recording: recording.clone(),
        engine: crate::phone::live_engine_config(EngineConfig {
            contact_user: account
                .as_ref()
                .and_then(|a| a.aor.uri.user.clone())
                .unwrap_or_else(|| "verbatim".into()),
            codecs: settings.media.codecs().unwrap_or_default(),
            srtp: account.as_ref().and_then(|a| a.srtp).unwrap_or(media_srtp),
            honour_recordpref: recording.honour_preference,
            notice,
            recorders_allowed: recording.allow_recorders,
            ..EngineConfig::default()
        }),
        audio: audio.factory,
        ringer: audio.ringer,
        problems,
        history: data,
        account,
        audio_control: audio.control,
    };
    let editable = args
        .config
        .clone()
        .or_else(crate::settings::Settings::default_path)
        .map(|path| (path, settings.clone()));
    match crate::ui::run(config, editable) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("verbatim: {error}");
            ExitCode::FAILURE
        }
    }
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

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Some(problem) = crate::logging::init(crate::logging::LogOptions {
        verbose: cli.verbose,
        sip_trace: cli.sip_trace,
        reveal: cli.log_reveal,
    }) {
        eprintln!("verbatim: no log file: {problem}");
    }
    let command = match cli.command {
        // The desktop app runs on the main thread, as windowing systems want.
        None => {
            return gui(GuiArgs {
                listen: None,
                config: None,
            });
        }
        Some(CliCommand::Gui(args)) => return gui(args),
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
        CliCommand::Gui(_) => Err(Failure::usage("the desktop app cannot run from here")),
        CliCommand::Call {
            target,
            from,
            listen,
            transport,
            duration,
            transfer_to,
            transfer_at,
            config,
            tls,
            media,
            record,
        } => {
            let mut loaded = load(config.as_deref())?;
            loaded.apply(&media)?;
            loaded.apply_recording(&record)?;
            let transfer = transfer_to
                .map(|target| {
                    parse_target(&target, loaded.account.as_ref())
                        .map(|uri| (uri, Duration::from_secs(transfer_at)))
                })
                .transpose()?;
            let options = CallOptions {
                from,
                listen,
                transport: transport.map(Into::into),
                duration,
                tls,
                transfer,
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
            let mut loaded = load(config.as_deref())?;
            loaded.apply(&media)?;
            loaded.apply_recording(&record)?;
            answer(listen, calls, loaded, tls).await
        }
        CliCommand::Bench {
            calls,
            duration,
            codec,
            srtp,
            play,
            record,
        } => {
            bench::run(
                calls,
                duration,
                codec.map(CodecArg::codec),
                srtp.policy(),
                play,
                record,
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
            let extra_recipients = recipient
                .iter()
                .map(|text| {
                    text.parse::<age::x25519::Recipient>().map_err(|_| {
                        Failure::usage(format!(
                            "srs: --recipient {text:?} is not an age public key"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
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
            match (transport, tls_cert, tls_key) {
                (SrsTransportArg::Tls, Some(certificate), Some(key)) => {
                    config.listen = SocketAddr::new(listen.ip(), 0);
                    config.tls = Some(crate::driver::tls::TlsServerSettings {
                        listen,
                        certificate,
                        key,
                        client_ca: tls_client_ca,
                    });
                }
                (SrsTransportArg::Tls, _, _) => {
                    return Err(Failure::usage(
                        "srs: --transport tls needs --tls-cert and --tls-key",
                    ));
                }
                (_, None, None) => {}
                _ => {
                    return Err(Failure::usage(
                        "srs: --tls-cert and --tls-key go with --transport tls",
                    ));
                }
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
        CliCommand::Register { config, listen } => {
            register_only(listen, load(config.as_deref())?).await
        }
    }
}

/// The configuration's account (checked) and call settings.
struct Loaded {
    account: Option<Account>,
    no_media_timeout: Option<Duration>,
    codecs: Vec<Codec>,
    srtp: SrtpPolicy,
    audio: Option<AudioFactory>,
    ringer: Option<crate::driver::media::Ringer>,
    dtmf: Option<String>,
    print_stats: bool,
    devices: crate::audio::DeviceConfig,
    record: Option<RecordPlan>,
    /// Recorders that may start recording a call themselves.
    recorders_allowed: Vec<core::net::IpAddr>,
    admission: crate::engine::AdmissionConfig,
    /// `[recording]` from the configuration file.
    recording: crate::settings::Recording,
}

/// Where and when to record, from the command line.
#[derive(Clone)]
struct RecordPlan {
    policy: RecordingPolicy,
    pause_at: Option<u64>,
    resume_at: Option<u64>,
}

/// The recording plan: the command line's flags over `[recording]` (and the account's
/// `record`), which also decide whether calls are recorded without `--record`.
fn recording_target(
    args: &RecordArgs,
    settings: &crate::settings::Recording,
    account_records: Option<bool>,
) -> Result<Option<RecordPlan>, Failure> {
    if !args.record && !account_records.unwrap_or(settings.auto) {
        return Ok(None);
    }
    let uri = |flag: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|s| Uri::parse(s).map_err(|e| Failure::usage(format!("{flag}: {e}"))))
            .transpose()
    };
    // Without any recorder the built-in one takes the recording (started when needed).
    let srs = uri("--srs", &args.srs)?.or_else(|| settings.srs.clone());
    let secondary =
        uri("--srs-secondary", &args.srs_secondary)?.or_else(|| settings.srs_secondary.clone());
    let credentials = match &args.srs_user {
        Some(user) => {
            let password = std::env::var("VERBATIM_SRS_PASSWORD").map_err(|_| {
                Failure::usage("--srs-user needs the password in VERBATIM_SRS_PASSWORD")
            })?;
            Some(Credentials::new(user.clone(), password))
        }
        None => settings.credentials.clone(),
    };
    Ok(Some(RecordPlan {
        policy: RecordingPolicy {
            // Every call this command places or answers is recorded.
            auto: true,
            srs,
            secondary,
            mandatory: args.record_policy.map_or(settings.mandatory, |p| {
                p == media::RecordPolicyArg::Mandatory
            }),
            mode: match args.record_mode {
                Some(media::RecordModeArg::Separate) => crate::engine::RecordingMode::Separate,
                Some(media::RecordModeArg::Mixed) => crate::engine::RecordingMode::Mixed,
                None => settings.mode,
            },
            srtp: args.srs_srtp || settings.srtp,
            credentials,
            builtin: None,
        },
        pause_at: args.pause_at,
        resume_at: args.resume_at,
    }))
}

impl Loaded {
    /// Recording from the command line over the configuration file.
    fn apply_recording(&mut self, args: &RecordArgs) -> Result<(), Failure> {
        let account_records = self.account.as_ref().and_then(|a| a.record);
        self.record = recording_target(args, &self.recording, account_records)?;
        self.recorders_allowed = args.allow_recorder.clone();
        self.recorders_allowed
            .extend(self.recording.allow_recorders.iter().copied());
        Ok(())
    }

    /// Command-line media flags override the configuration file.
    fn apply(&mut self, media: &MediaArgs) -> Result<(), Failure> {
        if let Some(codecs) = media.codecs() {
            self.codecs = codecs;
        }
        if let Some(srtp) = media.srtp() {
            self.srtp = srtp;
        }
        let setup = media.audio(&self.devices).map_err(Failure::usage)?;
        self.audio = setup.factory;
        self.ringer = setup.ringer;
        self.dtmf = media.dtmf().map(str::to_owned);
        if let Some(digits) = &self.dtmf
            && let Some(bad) = digits
                .chars()
                .find(|c| crate::media::dtmf::event_code(*c).is_none())
        {
            return Err(Failure::usage(format!(
                "--dtmf: {bad:?} is not a DTMF digit (0-9, *, #, A-D)"
            )));
        }
        self.print_stats = media.stats;
        Ok(())
    }
}

fn load(path: Option<&std::path::Path>) -> Result<Loaded, Failure> {
    let settings = Settings::load_or_default(path).map_err(|e| Failure::usage(e.to_string()))?;
    let mut account = settings
        .account
        .map(|a| a.validate())
        .transpose()
        .map_err(Failure::usage)?;
    if let Some(account) = account.as_mut().filter(|a| a.password.is_none()) {
        // Saved from the app: the password is in the keyring. Without a keyring the
        // account goes on without one and a challenge will say so.
        match crate::secrets::load(&account.secret_key()) {
            Ok(password) => account.password = password,
            Err(error) => tracing::info!(%error, "no password for the account"),
        }
    }
    let no_media_timeout = match settings.call.no_media_timeout {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    };
    let codecs = settings.media.codecs().map_err(Failure::usage)?;
    let srtp = account
        .as_ref()
        .and_then(|a| a.srtp)
        .map_or_else(|| settings.media.srtp().map_err(Failure::usage), Ok)?;
    Ok(Loaded {
        account,
        no_media_timeout,
        codecs,
        srtp,
        audio: None,
        ringer: None,
        dtmf: None,
        print_stats: false,
        devices: settings.audio.devices(),
        record: None,
        recorders_allowed: Vec::new(),
        admission: crate::engine::AdmissionConfig::default(),
        recording: settings.recording.validate().map_err(Failure::usage)?,
    })
}

struct CallOptions {
    from: Option<String>,
    listen: SocketAddr,
    transport: Option<Transport>,
    duration: u64,
    tls: TlsArgs,
    /// Transfer the other side to this target, this long after connecting.
    transfer: Option<(Uri, Duration)>,
}

async fn start_phone(
    listen: SocketAddr,
    loaded: &Loaded,
    server_name: Option<String>,
    tls: &TlsArgs,
    route_probe: Option<SocketAddr>,
) -> Result<Phone, Failure> {
    let account = loaded.account.as_ref();
    let client = TlsSettings {
        ca_file: tls
            .tls_ca
            .clone()
            .or_else(|| account.and_then(|a| a.tls_ca_file.clone())),
        client_certificate: tls
            .tls_client_cert
            .clone()
            .or_else(|| account.and_then(|a| a.tls_client_certificate.clone())),
        client_key: tls
            .tls_client_key
            .clone()
            .or_else(|| account.and_then(|a| a.tls_client_key.clone())),
        server_name,
        pinned_sha256: None,
        peer: crate::driver::tls::TlsPeer::Server,
    };
    let server = match (tls.tls_listen, &tls.tls_cert, &tls.tls_key) {
        (Some(listen), Some(certificate), Some(key)) => Some(TlsServerSettings {
            listen,
            certificate: certificate.clone(),
            key: key.clone(),
            client_ca: tls.tls_client_ca.clone(),
        }),
        _ => None,
    };
    let config = crate::phone::live_engine_config(EngineConfig {
        contact_user: account
            .and_then(|a| a.aor.uri.user.clone())
            .unwrap_or_else(|| "verbatim".into()),
        no_media_timeout: loaded.no_media_timeout,
        codecs: loaded.codecs.clone(),
        srtp: loaded.srtp,
        recorders_allowed: loaded.recorders_allowed.clone(),
        admission: loaded.admission,
        notice: loaded.recording.notice.load().map_err(Failure::usage)?,
        honour_recordpref: loaded.recording.honour_preference,
        ..EngineConfig::default()
    });
    let handle = driver::start(
        config,
        DriverConfig {
            listen: Some(listen),
            route_probe,
            tls: Some(client),
            recorder_tls: loaded.recording.tls.as_ref().map(|t| t.driver_settings()),
            tls_server: server,
            audio: loaded.audio.clone(),
            frame_latency: None,
            ringer: loaded.ringer.clone(),
            recording_latency: None,
        },
    )
    .await
    .map_err(|e| Failure::new(e.to_string()))?;
    let policy = loaded
        .record
        .as_ref()
        .map(|plan| plan.policy.clone())
        .unwrap_or_default();
    Ok(Phone::new(handle, policy))
}

/// Resolves a SIP URI to the first destination to try (RFC 3263).
async fn resolve(uri: &Uri, transport: Option<Transport>) -> Result<Destination, Failure> {
    driver::dns::first_hop(uri, transport)
        .await
        .map_err(Failure::new)
}

/// The account's registrar (or outbound proxy) as a resolved destination.
async fn account_hop(account: &Account) -> Result<Option<(Destination, Uri)>, Failure> {
    let Some(uri) = account
        .outbound_proxy
        .clone()
        .or_else(|| account.registrar.clone())
    else {
        return Ok(None);
    };
    let destination = resolve(&uri, account.transport).await?;
    Ok(Some((destination, uri)))
}

async fn register(phone: &mut Phone, account: &Account) -> Result<Option<AccountId>, Failure> {
    let Some(registrar) = account.registrar.clone() else {
        return Ok(None);
    };
    let destination = match account.outbound_proxy.as_ref() {
        Some(proxy) => resolve(proxy, account.transport).await?,
        None => resolve(&registrar, account.transport).await?,
    };
    let id = AccountId(1);
    let credentials = account
        .password
        .clone()
        .map(|p| Credentials::new(account.auth_user.clone(), p));
    send(
        phone,
        Command::Register {
            account: id,
            config: AccountConfig {
                aor: account.aor.clone(),
                registrar,
                destination,
                credentials,
                expires: account.expires,
                route: account.outbound_proxy.clone(),
            },
        },
    )?;
    loop {
        match next_event(phone, Duration::from_secs(40)).await? {
            Event::Registration {
                state: RegistrationState::Registered { expires },
                ..
            } => {
                println!("registered {} (expires in {expires} s)", account.aor.uri);
                return Ok(Some(id));
            }
            Event::Registration {
                state: RegistrationState::Failed { reason },
                ..
            } => return Err(Failure::new(format!("registration failed: {reason}"))),
            _ => {}
        }
    }
}

async fn register_only(listen: SocketAddr, loaded: Loaded) -> Result<(), Failure> {
    let account = loaded
        .account
        .as_ref()
        .ok_or_else(|| Failure::usage("register: the configuration has no [account]"))?;
    if account.registrar.is_none() {
        return Err(Failure::usage("register: the account has no registrar"));
    }
    let probe = account_hop(account).await?.map(|(d, _)| d.address);
    let mut phone = start_phone(listen, &loaded, None, &TlsArgs::default(), probe).await?;
    register(&mut phone, account).await?;
    phone.shut_down(SHUTDOWN_LIMIT).await;
    Ok(())
}

async fn call(target: String, options: CallOptions, mut loaded: Loaded) -> Result<(), Failure> {
    let recorder = start_builtin_recorder(&mut loaded).await?;
    let account = loaded.account.clone();
    let CallOptions {
        from,
        listen,
        transport,
        duration,
        tls,
        transfer,
    } = options;
    let target = parse_target(&target, account.as_ref())?;
    let server_name = target.host.trim_matches(['[', ']']).to_owned();
    // The echo test answers in this process; it lives as long as the call.
    let echo = if crate::phone::echo::is_echo(&target) {
        Some(
            crate::phone::echo::EchoPeer::start(loaded.codecs.clone())
                .await
                .map_err(Failure::new)?,
        )
    } else {
        None
    };
    let (destination, route) = match (account.as_ref(), echo.as_ref()) {
        (_, Some(echo)) => (echo.destination, None),
        (account, None) => match account {
            Some(a) => match account_hop(a).await? {
                Some((destination, hop)) => {
                    let route = a.outbound_proxy.as_ref().map(|_| hop);
                    (destination, route)
                }
                None => (resolve(&target, transport).await?, None),
            },
            None => (resolve(&target, transport).await?, None),
        },
    };
    let destination = match transport {
        Some(t) => Destination::new(t, destination.address),
        None => destination,
    };
    let mut phone = start_phone(
        listen,
        &loaded,
        Some(server_name),
        &tls,
        Some(destination.address),
    )
    .await?;
    if let Some(account) = &account {
        register(&mut phone, account).await?;
    }
    let from = match from {
        Some(f) => NameAddr::parse(&f).map_err(|e| Failure::usage(format!("--from: {e}")))?,
        None => match &account {
            Some(a) => a.aor.clone(),
            None => {
                let local = phone
                    .handle
                    .listeners
                    .first()
                    .map(|l| l.address.ip().to_string())
                    .unwrap_or_else(|| "127.0.0.1".into());
                NameAddr::new(Uri::sip(Some("verbatim"), &local, None))
            }
        },
    };
    let credentials = account.as_ref().and_then(|a| {
        a.password
            .clone()
            .map(|p| Credentials::new(a.auth_user.clone(), p))
    });
    let outgoing = Outgoing {
        target,
        from,
        destination,
        route,
        credentials,
    };
    let call = phone
        .dial(outgoing, RecordFromStart::AsPolicySays)
        .await
        .map_err(Failure::new)?;
    let outcome = run_call(&mut phone, call, duration, transfer, &loaded).await;
    phone.shut_down(SHUTDOWN_LIMIT).await;
    if let Some(recorder) = recorder {
        recorder.stop().await;
    }
    outcome
}

/// What the command line reports about a call besides its outcome.
#[derive(Default)]
struct CallReport {
    stats: Option<crate::media::session::MediaStats>,
}

impl CallReport {
    /// Notes media events of `call`; DTMF from the peer is shown as it arrives.
    fn observe(&mut self, call: CallId, event: &Event) {
        match event {
            Event::Dtmf { call: c, digit } if *c == call => eprintln!("dtmf received: {digit}"),
            Event::MediaStats { call: c, stats } if *c == call => self.stats = Some(stats.clone()),
            Event::Warning { message, .. } => eprintln!("warning: {message}"),
            Event::Transfer { call: c, state } if *c == call => match state {
                TransferState::Requested => eprintln!("transfer: asked"),
                TransferState::Accepted => eprintln!("transfer: accepted"),
                TransferState::Progress { status } => eprintln!("transfer: target says {status}"),
                TransferState::Succeeded => eprintln!("transfer: the target answered"),
                TransferState::Failed { reason } => eprintln!("transfer: failed: {reason}"),
            },
            Event::FarEndRecording { call: c, recording } if *c == call => {
                if *recording {
                    eprintln!("the other side records this call");
                } else {
                    eprintln!("the other side stopped recording");
                }
            }
            Event::RecordingPreference {
                call: c,
                preference,
            } if *c == call => {
                eprintln!("the other side's recording preference: {preference}")
            }
            Event::RecordingGaps { call: c, gaps } if *c == call => {
                for gap in gaps {
                    let to = gap.to.as_deref().unwrap_or("the end of the call");
                    eprintln!("recording gap: {} to {to}: {}", gap.from, gap.reason);
                }
            }
            Event::Recording { call: c, state, .. } if *c == call => match state {
                crate::engine::RecordingState::Failed { reason } => {
                    eprintln!("recording: failed: {reason}")
                }
                crate::engine::RecordingState::Retrying {
                    reason, in_seconds, ..
                } => eprintln!("recording: retrying in {in_seconds} s: {reason}"),
                crate::engine::RecordingState::Paused {
                    by: crate::engine::Party::Remote,
                } => eprintln!("recording: paused by the recorder"),
                other => eprintln!("recording: {}", recording_word(other)),
            },
            _ => {}
        }
    }

    fn print(&self, call: CallId, enabled: bool) {
        if !enabled {
            return;
        }
        let line = serde_json::json!({ "call": call.0, "rtp": self.stats });
        println!("{line}");
    }
}

async fn run_call(
    phone: &mut Phone,
    call: CallId,
    duration: u64,
    transfer: Option<(Uri, Duration)>,
    loaded: &Loaded,
) -> Result<(), Failure> {
    let mut report = CallReport::default();
    loop {
        let event = next_event(phone, Duration::from_secs(300)).await?;
        report.observe(call, &event);
        match event {
            Event::CallState {
                call: c,
                state: CallState::Connected { .. },
            } if c == call => break,
            Event::CallState {
                call: c,
                state: CallState::Ringing,
            } if c == call => eprintln!("ringing"),
            Event::CallEnded { call: c, reason } if c == call => {
                return Err(Failure::new(format!("call failed: {}", reason.text)));
            }
            _ => {}
        }
    }
    eprintln!("connected");
    if let Some(digits) = &loaded.dtmf {
        send(
            phone,
            Command::SendDtmf {
                call,
                digits: digits.clone(),
            },
        )?;
    }
    let connected_at = tokio::time::Instant::now();
    let far = connected_at + Duration::from_secs(u64::MAX / 4);
    let mut pause_at = loaded
        .record
        .as_ref()
        .and_then(|p| p.pause_at)
        .map_or(far, |s| connected_at + Duration::from_secs(s));
    let mut resume_at = loaded
        .record
        .as_ref()
        .and_then(|p| p.resume_at)
        .map_or(far, |s| connected_at + Duration::from_secs(s));
    let hang_up_at = connected_at + Duration::from_secs(duration);
    let mut transfer_at = transfer
        .as_ref()
        .map_or(far, |(_, after)| connected_at + *after);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(hang_up_at) => {
                send(phone, Command::Hangup { call })?;
                break;
            }
            () = tokio::time::sleep_until(transfer_at) => {
                transfer_at = far;
                if let Some((target, _)) = &transfer {
                    eprintln!("transferring to {target}");
                    send(phone, Command::Transfer { call, target: target.clone() })?;
                }
            }
            () = tokio::time::sleep_until(pause_at) => {
                pause_at = far;
                send(phone, Command::PauseRecording { call })?;
            }
            () = tokio::time::sleep_until(resume_at), if pause_at == far => {
                resume_at = far;
                send(phone, Command::ResumeRecording { call })?;
            }
            event = phone.handle.events.recv() => match event {
                Some(Event::CallEnded { call: c, reason }) if c == call => {
                    report.print(call, loaded.print_stats);
                    if reason.kind == crate::engine::EndKind::Transferred {
                        eprintln!("call transferred");
                        return Ok(());
                    }
                    return Err(Failure::new(format!("call ended early: {}", reason.text)));
                }
                Some(event) => {
                    accept_recorder(phone, &event).await?;
                    report.observe(call, &event);
                }
                None => return Err(Failure::new("the engine stopped")),
            }
        }
    }
    loop {
        let event = next_event(phone, Duration::from_secs(40)).await?;
        report.observe(call, &event);
        if let Event::CallEnded { call: c, .. } = event
            && c == call
        {
            eprintln!("call ended");
            report.print(call, loaded.print_stats);
            return Ok(());
        }
    }
}

/// Who we are on a call we place: the account's address, or this machine's.
fn transferee_identity(account: Option<&Account>, local_ip: Option<String>) -> NameAddr {
    match account {
        Some(account) => account.aor.clone(),
        None => {
            let host = local_ip.unwrap_or_else(|| "127.0.0.1".into());
            NameAddr::new(Uri::sip(Some("verbatim"), &host, None))
        }
    }
}

async fn answer(
    listen: SocketAddr,
    mut calls: u32,
    mut loaded: Loaded,
    tls: TlsArgs,
) -> Result<(), Failure> {
    let recorder = start_builtin_recorder(&mut loaded).await?;
    let probe = match loaded.account.as_ref() {
        Some(account) => account_hop(account).await?.map(|(d, _)| d.address),
        None => None,
    };
    if listen.ip().is_unspecified() && probe.is_none() {
        eprintln!(
            "warning: listening on all interfaces without a registrar to route towards; \
             peers will see {} in Contact and SDP: give --listen a specific address",
            listen.ip()
        );
    }
    // It answers every call at once, so as many may ring together as it is asked to take.
    let expected = usize::try_from(calls).unwrap_or(usize::MAX);
    loaded.admission.max_ringing_calls = loaded.admission.max_ringing_calls.max(expected);
    let mut phone = start_phone(listen, &loaded, None, &tls, probe).await?;
    let dtmf = loaded.dtmf.clone();
    let print_stats = loaded.print_stats;
    let account = loaded.account;
    if let Some(account) = &account {
        register(&mut phone, account).await?;
    }
    eprintln!(
        "answering {calls} call(s) on {}",
        phone
            .handle
            .listeners
            .first()
            .map(|l| l.address.to_string())
            .unwrap_or_default()
    );
    let mut finished = 0;
    let mut reports: std::collections::HashMap<CallId, CallReport> = Default::default();
    // Digits go once per call, on its first connection (a re-INVITE reconnects too).
    let mut dtmf_sent = std::collections::HashSet::new();
    while finished < calls {
        let Some(event) = phone.handle.events.recv().await else {
            return Err(Failure::new("the engine stopped"));
        };
        if let Some(call) = event_call(&event) {
            reports.entry(call).or_default().observe(call, &event);
        }
        accept_recorder(&mut phone, &event).await?;
        match event {
            Event::IncomingCall { call, from, .. } => {
                eprintln!("incoming call from {from}");
                phone.answer(call).await.map_err(Failure::new)?;
            }
            Event::CallState {
                call,
                state: CallState::Connected { .. },
            } if dtmf_sent.insert(call) => {
                if let Some(digits) = &dtmf {
                    send(
                        &mut phone,
                        Command::SendDtmf {
                            call,
                            digits: digits.clone(),
                        },
                    )?;
                }
            }
            Event::CallEnded { call, reason } => {
                eprintln!("call ended: {}", reason.text);
                if let Some(report) = reports.remove(&call) {
                    report.print(call, print_stats);
                }
                finished += 1;
            }
            Event::TransferRequested {
                call,
                target,
                referred_by,
            } => {
                let by = referred_by.unwrap_or_else(|| "the other side".into());
                eprintln!("transferred to {target} by {by}");
                let local = phone
                    .handle
                    .listeners
                    .first()
                    .map(|l| l.address.ip().to_string());
                let outgoing = resolve(&target, None)
                    .await
                    .map(|destination| Outgoing {
                        from: transferee_identity(account.as_ref(), local),
                        destination,
                        route: account.as_ref().and_then(|a| a.outbound_proxy.clone()),
                        credentials: account.as_ref().and_then(|a| {
                            a.password
                                .clone()
                                .map(|p| Credentials::new(a.auth_user.clone(), p))
                        }),
                        target,
                    })
                    .map_err(|failure| failure.message);
                match phone.follow_transfer(call, outgoing).await {
                    // The call to the target counts as one more call to see end.
                    Ok(_) => calls += 1,
                    Err(problem) => eprintln!("{problem}"),
                }
            }
            _ => {}
        }
    }
    phone.shut_down(SHUTDOWN_LIMIT).await;
    if let Some(recorder) = recorder {
        recorder.stop().await;
    }
    Ok(())
}

/// Starts the built-in recorder when recording is asked for without --srs, and points the
/// plan at it. Recordings go to the OS data directory.
async fn start_builtin_recorder(
    loaded: &mut Loaded,
) -> Result<Option<crate::srs::SrsHandle>, Failure> {
    let Some(plan) = loaded.record.as_mut() else {
        return Ok(None);
    };
    if !plan.policy.wants_builtin() {
        return Ok(None);
    }
    let dir = loaded
        .recording
        .folder
        .clone()
        .ok_or_else(|| Failure::new("no data directory for the built-in recorder"))?;
    let sealing = prepare_storage(loaded.recording.storage.clone()).await?;
    let recorder = builtin_recorder::start(dir.clone(), loaded.recording.keep, sealing)
        .await
        .map_err(Failure::new)?;
    plan.policy.builtin = Some(recorder.uri);
    eprintln!("recording to the built-in recorder: {}", dir.display());
    Ok(Some(recorder.handle))
}

/// The sealing for the built-in recorder: the recordings key found or made (the keyring
/// may block, so off the runtime's workers); failing that, no recording rather than plain
/// files nobody asked for.
async fn prepare_storage(storage: crate::archive::Storage) -> Result<Sealing, Failure> {
    let prepared = builtin_recorder::prepare_storage(storage)
        .await
        .map_err(Failure::new)?;
    if let Some(key) = &prepared.key {
        eprintln!(
            "recordings are encrypted to {} (key in {})",
            key.recipient(),
            key.place()
        );
    }
    if let Some(advice) = prepared.advice() {
        eprintln!("{advice}");
    }
    Ok(prepared.sealing)
}

fn recording_word(state: &crate::engine::RecordingState) -> &'static str {
    use crate::engine::RecordingState;
    match state {
        RecordingState::Off => "off",
        RecordingState::Starting => "starting",
        RecordingState::Recording => "recording",
        RecordingState::Paused { .. } => "paused",
        RecordingState::Retrying { .. } => "retrying",
        RecordingState::RecordingWithGaps => "recording with gaps",
        RecordingState::Failed { .. } => "failed",
    }
}

/// A recorder the policy (--allow-recorder) lets in asked to record: say yes.
async fn accept_recorder(phone: &mut Phone, event: &Event) -> Result<(), Failure> {
    let Event::RecorderAsks { call, recorder } = event else {
        return Ok(());
    };
    eprintln!("recording asked by {recorder}");
    phone
        .accept_recorder(*call)
        .await
        .map(|_| ())
        .map_err(Failure::new)
}

fn event_call(event: &Event) -> Option<CallId> {
    match event {
        Event::CallState { call, .. }
        | Event::Media { call, .. }
        | Event::Dtmf { call, .. }
        | Event::MediaStats { call, .. }
        | Event::Recording { call, .. }
        | Event::FarEndRecording { call, .. }
        | Event::RecordingPreference { call, .. }
        | Event::RecorderAsks { call, .. }
        | Event::RecordingGaps { call, .. }
        | Event::CallEnded { call, .. }
        | Event::IncomingCall { call, .. } => Some(*call),
        _ => None,
    }
}

fn parse_target(target: &str, account: Option<&Account>) -> Result<Uri, Failure> {
    let domain = account.map(Account::domain);
    crate::settings::dial_uri(target, domain.as_deref()).map_err(Failure::usage)
}

fn send(phone: &mut Phone, command: Command) -> Result<(), Failure> {
    phone
        .send(command)
        .map_err(|_| Failure::new("the engine stopped"))
}

async fn next_event(phone: &mut Phone, limit: Duration) -> Result<Event, Failure> {
    match tokio::time::timeout(limit, phone.handle.events.recv()).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => Err(Failure::new("the engine stopped")),
        Err(_) => Err(Failure::new("timed out waiting for the network")),
    }
}

/// How long ending calls and registrations may take when the command line is done.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(8);
