//! `verbatim [gui]`: the desktop app, its phone set up from the settings file.

use core::net::SocketAddr;
use std::process::ExitCode;

use super::GuiArgs;
use super::media;
use crate::engine::EngineConfig;
use crate::media::srtp::SrtpPolicy;

/// Opens the window with the phone behind it: the sound card when there is one, the built-in
/// recorder in the data directory unless `[recording] srs` names another.
pub(super) fn gui(args: GuiArgs) -> ExitCode {
    window(args, None)
}

/// `verbatim open LINK` (what the desktop runs for a sip:, sips:, tel: or callto: link):
/// the running window dials it, or, with none running, a new window opens and dials it.
pub(super) fn open(link: &str, args: GuiArgs) -> ExitCode {
    let dial = match crate::links::normalise(link) {
        Ok(dial) => dial,
        Err(problem) => {
            eprintln!("verbatim: {problem}");
            return ExitCode::from(2);
        }
    };
    if let Some(socket) = crate::links::socket_path() {
        match crate::links::hand_to_running(&socket, link) {
            Ok(true) => {
                eprintln!("verbatim: the running Verbatim dials {dial}");
                return ExitCode::SUCCESS;
            }
            Ok(false) => {}
            Err(problem) => {
                eprintln!("verbatim: {problem}");
                return ExitCode::FAILURE;
            }
        }
    }
    window(args, Some(dial))
}

fn window(args: GuiArgs, dial_first: Option<String>) -> ExitCode {
    let users = match crate::settings::Settings::load_or_default(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let admin = match crate::settings::AdminPolicy::load_system() {
        Ok(admin) => admin,
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    let mut settings = users.clone();
    admin.apply(&mut settings.recording);
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
    let accounts: Vec<crate::settings::Account> = match settings.accounts_for_calls(&admin) {
        Ok(accounts) => accounts.into_iter().filter(|a| a.enabled).collect(),
        Err(error) => {
            eprintln!("verbatim: {error}");
            return ExitCode::from(2);
        }
    };
    // The engine's SRTP default and Contact user are the first account's; each call's own
    // account is not consulted for them yet.
    let account = accounts.first();
    let media_srtp = settings.media.srtp().unwrap_or(SrtpPolicy::Optional);
    let config = crate::ui::BridgeConfig {
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 5060))),
        recordings,
        recording: recording.clone(),
        engine: crate::phone::live_engine_config(EngineConfig {
            contact_user: account
                .and_then(|a| a.aor.uri.user.clone())
                .unwrap_or_else(|| "verbatim".into()),
            codecs: settings.media.codecs().unwrap_or_default(),
            srtp: account.and_then(|a| a.srtp).unwrap_or(media_srtp),
            honour_recordpref: recording.honour_preference,
            keepalive_interval: match settings.call.keepalive() {
                Ok(every) => every,
                Err(error) => {
                    eprintln!("verbatim: {error}");
                    return ExitCode::from(2);
                }
            },
            notice,
            recorders_allowed: recording.allow_recorders,
            ..EngineConfig::default()
        }),
        audio: audio.factory,
        ringer: audio.ringer,
        card_clock: audio.clock,
        problems,
        history: data,
        accounts: accounts.clone(),
        audio_control: audio.control,
        admin,
        stun_server: settings.call.stun_server.clone(),
        notifications: crate::ui::call_notifications::NotificationBus::Session,
        tray: None,
        autostart: crate::ui::autostart::Autostart::for_this_program(
            args.config
                .iter()
                .flat_map(|file| ["--config".to_owned(), file.display().to_string()])
                .collect(),
            settings.window.start_at_login,
        ),
    };
    let editable = args
        .config
        .clone()
        .or_else(crate::settings::Settings::default_path)
        .map(|path| (path, users));
    let links = crate::ui::LinkSetup {
        dial_first,
        socket: crate::links::socket_path(),
    };
    match crate::ui::run(config, editable, links) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("verbatim: {error}");
            ExitCode::FAILURE
        }
    }
}
