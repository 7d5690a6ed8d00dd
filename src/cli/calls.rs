//! `verbatim call`, `answer` and `register`: a phone on the command line, its calls and what
//! it reports about them.

use core::net::SocketAddr;
use core::time::Duration;

use super::config::Loaded;
use super::{Failure, TlsArgs};
use crate::archive::sealed::Sealing;
use crate::driver::tls::{TlsServerSettings, TlsSettings};
use crate::driver::{self, DriverConfig};
use crate::engine::{
    AccountConfig, AccountId, CallId, CallState, Command, EngineConfig, Event, RegistrationState,
    TransferState,
};
use crate::phone::{Outgoing, Phone, RecordFromStart, builtin_recorder};
use crate::settings::Account;
use crate::sip::auth::Credentials;
use crate::sip::transport::{Destination, Transport};
use crate::sip::uri::{NameAddr, Uri};

/// Where `verbatim call` hands the other side over.
pub(super) enum TransferTo {
    /// Straight to this target (blind transfer).
    Blind(Uri),
    /// To this target, called first while the other side waits on hold (attended).
    Consult(Uri),
}

pub(super) struct CallOptions {
    pub(super) from: Option<String>,
    pub(super) listen: SocketAddr,
    pub(super) transport: Option<Transport>,
    pub(super) duration: u64,
    pub(super) tls: TlsArgs,
    /// Transfer the other side, this long after connecting.
    pub(super) transfer: Option<(TransferTo, Duration)>,
    /// Also call this target and merge both calls into a conference, this long after the
    /// first connects.
    pub(super) conference: Option<(Uri, Duration)>,
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
        keepalive_interval: loaded.keepalive_interval,
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
            card_clock: loaded.card_clock.clone(),
            recording_latency: None,
            stun_server: loaded.stun_server.clone(),
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

async fn register(
    phone: &mut Phone,
    id: AccountId,
    account: &Account,
) -> Result<Option<AccountId>, Failure> {
    if !start_registration(phone, id, account).await? {
        return Ok(None);
    }
    loop {
        match next_event(phone, Duration::from_secs(40)).await? {
            Event::Registration {
                account: registered,
                state,
            } if registered == id && registration_settled(account, &state)? => {
                return Ok(Some(id));
            }
            _ => {}
        }
    }
}

/// Asks the engine to register `account` under `id`; false when it has no registrar.
async fn start_registration(
    phone: &mut Phone,
    id: AccountId,
    account: &Account,
) -> Result<bool, Failure> {
    let Some(registrar) = account.registrar.clone() else {
        return Ok(false);
    };
    let destination = match account.outbound_proxy.as_ref() {
        Some(proxy) => resolve(proxy, account.transport).await?,
        None => resolve(&registrar, account.transport).await?,
    };
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
    Ok(true)
}

/// Prints a registration that went through; true once it did, an error when it failed.
fn registration_settled(account: &Account, state: &RegistrationState) -> Result<bool, Failure> {
    match state {
        RegistrationState::Registered { expires } => {
            println!("registered {} (expires in {expires} s)", account.aor.uri);
            Ok(true)
        }
        RegistrationState::Failed { reason } => Err(Failure::new(format!(
            "registration of {} failed: {reason}",
            account.name
        ))),
        _ => Ok(false),
    }
}

pub(super) async fn register_only(listen: SocketAddr, loaded: Loaded) -> Result<(), Failure> {
    let account = loaded
        .account
        .as_ref()
        .ok_or_else(|| Failure::usage("register: the configuration has no [account]"))?;
    if account.registrar.is_none() {
        return Err(Failure::usage(format!(
            "register: the account {:?} has no registrar",
            account.name
        )));
    }
    let probe = account_hop(account).await?.map(|(d, _)| d.address);
    let mut phone = start_phone(listen, &loaded, None, &TlsArgs::default(), probe).await?;
    register(&mut phone, AccountId(1), account).await?;
    phone.shut_down(SHUTDOWN_LIMIT).await;
    Ok(())
}

pub(super) async fn call(
    target: String,
    options: CallOptions,
    mut loaded: Loaded,
) -> Result<(), Failure> {
    let recorder = start_builtin_recorder(&mut loaded).await?;
    let account = loaded.account.clone();
    let CallOptions {
        from,
        listen,
        transport,
        duration,
        tls,
        transfer,
        conference,
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
        register(&mut phone, AccountId(1), account).await?;
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
    // A second party is reached as the first is: through the account's hop, or where its
    // own URI says.
    let reach = async |other: &Uri| -> Result<Outgoing, Failure> {
        let other_destination = match account.as_ref() {
            Some(a) if route.is_some() || a.registrar.is_some() => destination,
            _ => resolve(other, transport).await?,
        };
        Ok(Outgoing {
            target: other.clone(),
            from: from.clone(),
            destination: other_destination,
            route: route.clone(),
            credentials: credentials.clone(),
            recording: own_notice(account.as_ref()),
            srtp: None,
        })
    };
    let second = match &conference {
        Some((other, after)) => Some((reach(other).await?, *after)),
        None => None,
    };
    let transfer = match transfer {
        Some((TransferTo::Blind(target), after)) => Some((Handover::Blind(target), after)),
        Some((TransferTo::Consult(target), after)) => {
            Some((Handover::Consult(Box::new(reach(&target).await?)), after))
        }
        None => None,
    };
    let outgoing = Outgoing {
        target,
        from,
        destination,
        route,
        credentials,
        recording: own_notice(account.as_ref()),
        srtp: None,
    };
    let call = phone
        .dial(outgoing, RecordFromStart::AsPolicySays)
        .await
        .map_err(Failure::new)?;
    let second = match second {
        Some((outgoing, after)) => {
            let other = phone
                .dial(outgoing, RecordFromStart::AsPolicySays)
                .await
                .map_err(Failure::new)?;
            Some(Conference {
                call: other,
                merge_after: after,
                connected: false,
            })
        }
        None => None,
    };
    let outcome = run_call(&mut phone, call, duration, transfer, second, &loaded).await;
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
            Event::ConferenceRoster { call: c, members } if *c == call => {
                let present: Vec<String> = members
                    .iter()
                    .filter(|m| m.is_in())
                    .map(|m| m.label())
                    .collect();
                eprintln!("conference: {}", present.join(", "));
            }
            Event::ConferenceUnknown { call: c, reason } if *c == call => {
                eprintln!("conference: participants unknown: {reason}")
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

/// The second call of `--conference-with`, and when to merge it with the first.
struct Conference {
    call: CallId,
    merge_after: Duration,
    connected: bool,
}

impl Conference {
    /// Follows the second call; false once it has ended.
    fn observe(&mut self, event: &Event) -> bool {
        match event {
            Event::CallState {
                call,
                state: CallState::Connected { .. },
            } if *call == self.call && !self.connected => {
                self.connected = true;
                eprintln!("conference: the second call connected");
            }
            Event::CallEnded { call, reason } if *call == self.call => {
                eprintln!("conference: the second call ended: {}", reason.text);
                return false;
            }
            Event::LocalConference { members } if members.is_empty() => {
                eprintln!("conference: ended");
            }
            Event::LocalConference { members } => {
                eprintln!("conference: {} calls merged", members.len());
            }
            _ => {}
        }
        true
    }
}

/// A transfer `run_call` carries out.
enum Handover {
    Blind(Uri),
    /// The consultation call to place once the first is connected.
    Consult(Box<Outgoing>),
}

/// The consultation of an attended transfer, once placed.
struct Consultation {
    call: CallId,
    connected: bool,
    /// The transfer is due and waits for the consultation to be answered.
    transfer_when_up: bool,
}

async fn run_call(
    phone: &mut Phone,
    call: CallId,
    duration: u64,
    transfer: Option<(Handover, Duration)>,
    mut second: Option<Conference>,
    loaded: &Loaded,
) -> Result<(), Failure> {
    let mut report = CallReport::default();
    loop {
        let event = next_event(phone, Duration::from_secs(300)).await?;
        report.observe(call, &event);
        if let Some(conference) = second.as_mut()
            && !conference.observe(&event)
        {
            second = None;
        }
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
    let mut consultation = None;
    if let Some((Handover::Consult(outgoing), _)) = &transfer {
        eprintln!("consulting {}: the call waits on hold", outgoing.target);
        send(phone, Command::Hold { call })?;
        let consult = phone
            .dial((**outgoing).clone(), RecordFromStart::AsPolicySays)
            .await
            .map_err(Failure::new)?;
        consultation = Some(Consultation {
            call: consult,
            connected: false,
            transfer_when_up: false,
        });
    }
    let mut merge_at = second
        .as_ref()
        .map_or(far, |c| connected_at + c.merge_after);
    // The merge is due but the second call is not up yet: merge when it is.
    let mut merge_when_up = false;
    // The transfer asked for failed: the call went on, but the command did not do its job.
    let mut transfer_failed = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(hang_up_at) => {
                send(phone, Command::Hangup { call })?;
                if let Some(conference) = &second {
                    send(phone, Command::Hangup { call: conference.call })?;
                }
                if let Some(consultation) = &consultation {
                    send(phone, Command::Hangup { call: consultation.call })?;
                }
                break;
            }
            () = tokio::time::sleep_until(merge_at) => {
                merge_at = far;
                match &second {
                    Some(conference) if conference.connected => {
                        send(phone, Command::Merge { call, with: conference.call })?;
                    }
                    Some(_) => merge_when_up = true,
                    None => {}
                }
            }
            () = tokio::time::sleep_until(transfer_at) => {
                transfer_at = far;
                match (&transfer, consultation.as_mut()) {
                    (Some((Handover::Blind(target), _)), _) => {
                        eprintln!("transferring to {target}");
                        send(phone, Command::Transfer { call, target: target.clone() })?;
                    }
                    (Some((Handover::Consult(_), _)), Some(consult)) if consult.connected => {
                        eprintln!("transferring to the consultation");
                        let transfer = Command::TransferToCall { call, consultation: consult.call };
                        send(phone, transfer)?;
                    }
                    (_, Some(consult)) => consult.transfer_when_up = true,
                    _ => {}
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
                    if let Event::Transfer { call: c, state: TransferState::Failed { reason } } =
                        &event
                        && *c == call
                    {
                        transfer_failed = Some(reason.clone());
                        if let Some(consult) = consultation.take() {
                            // Back to the caller who was waiting; the consultation is over.
                            send(phone, Command::Resume { call })?;
                            send(phone, Command::Hangup { call: consult.call })?;
                        }
                    }
                    if let Some(consult) = consultation.as_mut() {
                        match &event {
                            Event::CallState { call: c, state: CallState::Connected { .. } }
                                if *c == consult.call && !consult.connected =>
                            {
                                consult.connected = true;
                                eprintln!("consultation: connected");
                                if consult.transfer_when_up {
                                    eprintln!("transferring to the consultation");
                                    let transfer = Command::TransferToCall {
                                        call,
                                        consultation: consult.call,
                                    };
                                    send(phone, transfer)?;
                                }
                            }
                            Event::CallEnded { call: c, reason } if *c == consult.call => {
                                eprintln!("consultation: ended: {}", reason.text);
                                if reason.kind != crate::engine::EndKind::Transferred {
                                    // Back to the waiting call.
                                    send(phone, Command::Resume { call })?;
                                }
                                consultation = None;
                            }
                            _ => {}
                        }
                    }
                    if let Some(conference) = second.as_mut() {
                        if !conference.observe(&event) {
                            second = None;
                        } else if merge_when_up && conference.connected {
                            merge_when_up = false;
                            send(phone, Command::Merge { call, with: conference.call })?;
                        }
                    }
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
            return match transfer_failed {
                Some(reason) => Err(Failure::new(format!("the transfer failed: {reason}"))),
                None => Ok(()),
            };
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

/// The account called `name`, among those in use.
fn named<'a>(accounts: &'a [Account], name: Option<&str>) -> Option<&'a Account> {
    let name = name?;
    accounts.iter().find(|account| account.name == name)
}

/// What a call placed on `account` takes from its account's recording settings beyond the
/// plan's (which has its recorder and policy in it already): its notice.
fn own_notice(account: Option<&Account>) -> crate::settings::AccountRecording {
    crate::settings::AccountRecording {
        notice: account.and_then(|a| a.recording.notice.clone()),
        ..Default::default()
    }
}

pub(super) async fn answer(
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
    let accounts = loaded.accounts;
    let record_flags = loaded.record_flags.clone();
    // Each enabled account registers with its own registrar, under its own ID; the answers
    // come in with the calls, so a call that arrives while another account still
    // registers is taken.
    phone
        .set_called_accounts(&accounts)
        .map_err(Failure::usage)?;
    let mut registering = std::collections::HashMap::new();
    for (id, each) in (1..).map(AccountId).zip(&accounts) {
        if start_registration(&mut phone, id, each).await? {
            registering.insert(id, each);
        }
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
    // The account each call is on, when it came for one: a transfer follows it.
    let mut call_accounts: std::collections::HashMap<CallId, Account> = Default::default();
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
            Event::Registration { account: id, state } => {
                if let Some(account) = registering.get(&id).copied()
                    && registration_settled(account, &state)?
                {
                    registering.remove(&id);
                }
            }
            Event::IncomingCall {
                call,
                from,
                account,
                ..
            } => {
                let called = named(&accounts, account.as_deref());
                match called {
                    Some(called) => {
                        eprintln!("incoming call from {from} for account {}", called.name);
                    }
                    None => eprintln!("incoming call from {from}"),
                }
                // Its account's recorder and policy, unless the command line named them.
                let own = called
                    .map(|account| record_flags.leave_to_account(&account.recording))
                    .unwrap_or_default();
                if let Some(called) = called {
                    call_accounts.insert(call, called.clone());
                }
                phone.answer_on(call, &own).await.map_err(Failure::new)?;
            }
            Event::ReplacingCall {
                call,
                from,
                account,
                ..
            } => {
                eprintln!("call from {from} replaces ours (attended transfer)");
                // It takes the replaced call's place, on its account and under its rules.
                let own = match named(&accounts, account.as_deref()).cloned() {
                    Some(on) => {
                        let own = record_flags.leave_to_account(&on.recording);
                        call_accounts.insert(call, on);
                        own
                    }
                    None => Default::default(),
                };
                phone.answer_on(call, &own).await.map_err(Failure::new)?;
                // The replacing call counts as one more call to see end.
                calls += 1;
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
                phone.forget_call(call);
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
                // As the account the call came for, else the one calls go out on.
                let on = call_accounts
                    .get(&call)
                    .cloned()
                    .or_else(|| account.clone());
                let outgoing = resolve(&target, None)
                    .await
                    .map(|destination| Outgoing {
                        from: transferee_identity(on.as_ref(), local),
                        destination,
                        route: on.as_ref().and_then(|a| a.outbound_proxy.clone()),
                        credentials: on.as_ref().and_then(|a| {
                            a.password
                                .clone()
                                .map(|p| Credentials::new(a.auth_user.clone(), p))
                        }),
                        target,
                        recording: on
                            .as_ref()
                            .map(|a| record_flags.leave_to_account(&a.recording))
                            .unwrap_or_default(),
                        srtp: on.as_ref().and_then(|a| a.srtp),
                    })
                    .map_err(|failure| failure.message);
                match phone.follow_transfer(call, outgoing).await {
                    // The call to the target counts as one more call to see end.
                    Ok(new_call) => {
                        calls += 1;
                        if let Some(on) = on {
                            call_accounts.insert(new_call, on);
                        }
                    }
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
pub(super) async fn prepare_storage(storage: crate::archive::Storage) -> Result<Sealing, Failure> {
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
        RecordingState::Unencrypted => "recording unencrypted (the recorder refused SRTP)",
        RecordingState::OneSide {
            missing: crate::engine::Party::Local,
        } => "recording the other side only",
        RecordingState::OneSide {
            missing: crate::engine::Party::Remote,
        } => "recording our side only",
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
        | Event::ConferenceRoster { call, .. }
        | Event::ConferenceUnknown { call, .. }
        | Event::CallEnded { call, .. }
        | Event::IncomingCall { call, .. }
        | Event::ReplacingCall { call, .. } => Some(*call),
        _ => None,
    }
}

pub(super) fn parse_target(target: &str, account: Option<&Account>) -> Result<Uri, Failure> {
    let domain = account.map(Account::domain);
    crate::settings::dial_uri(target, domain.as_deref()).map_err(Failure::usage)
}

pub(super) fn send(phone: &mut Phone, command: Command) -> Result<(), Failure> {
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
pub(super) const SHUTDOWN_LIMIT: Duration = Duration::from_secs(8);
