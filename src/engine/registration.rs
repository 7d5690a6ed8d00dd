//! REGISTER (RFC 3261 10): binding, digest challenges, refresh before expiry, unregister.

use core::time::Duration;

use super::{AccountConfig, AccountId, Engine, Event, RegistrationState, Timer, TxOwner};
use crate::sip::auth::{
    AuthorizationHeader, ChallengeError, DigestSession, Retried, answer_challenge,
};
use crate::sip::message::{Message, Method};

#[derive(Debug)]
pub(super) struct Registration {
    config: AccountConfig,
    call_id: String,
    from_tag: String,
    cseq: u32,
    digest: Option<DigestSession>,
    /// The expiry we ask for next (raised by 423 Interval Too Brief).
    requested_expires: u32,
    unregistering: bool,
    /// Consecutive failures, for the retry backoff.
    failures: u32,
    /// The Contact of the binding before the registrar showed us our public address: each
    /// REGISTER removes it (expires=0) until one is accepted.
    stale_contact: Option<String>,
    /// The public address this registration's Contact names (None: our own).
    public: Option<core::net::SocketAddr>,
    /// Our REGISTER went out again for a new public address: a registrar that shows yet
    /// another one then (a NAT that changes ports) is taken as it is, not chased.
    chasing_nat: bool,
}

/// Refresh this long before the binding expires, or at half its life if that is shorter.
const REFRESH_MARGIN: u32 = 30;

impl Engine {
    pub(super) fn register(&mut self, account: AccountId, config: AccountConfig) {
        let call_id = format!("{}@verbatim", self.rng.token(20));
        let from_tag = self.rng.token(10);
        let digest = config.credentials.clone().map(DigestSession::new);
        let requested_expires = config.expires;
        self.registrations.insert(
            account,
            Registration {
                config,
                call_id,
                from_tag,
                cseq: 0,
                digest,
                requested_expires,
                unregistering: false,
                failures: 0,
                stale_contact: None,
                public: None,
                chasing_nat: false,
            },
        );
        self.events.push_back(Event::Registration {
            account,
            state: RegistrationState::Registering,
        });
        self.send_register(account);
    }

    pub(super) fn unregister(&mut self, account: AccountId) {
        self.cancel_timer(Timer::RegisterRefresh(account));
        self.cancel_timer(Timer::KeepAlive(account));
        let Some(reg) = self.registrations.get_mut(&account) else {
            return;
        };
        reg.unregistering = true;
        self.send_register(account);
    }

    pub(super) fn refresh_registration(&mut self, account: AccountId) {
        if self.registrations.contains_key(&account) {
            self.send_register(account);
        }
    }

    fn send_register(&mut self, account: AccountId) {
        self.send_register_with(account, None);
    }

    /// REGISTER with `answer` to a challenge, or else with credentials for the realm we
    /// already know (a refresh reuses the nonce, counting up).
    fn send_register_with(&mut self, account: AccountId, answer: Option<AuthorizationHeader>) {
        let Some(reg) = self.registrations.get_mut(&account) else {
            return;
        };
        reg.cseq += 1;
        let mut request = Message::request(Method::Register, reg.config.registrar.clone());
        request.headers.push("Max-Forwards", "70");
        let aor = reg.config.aor.clone();
        let mut to = aor.clone();
        to.params.clear();
        request
            .headers
            .push("From", to.clone().with_tag(&reg.from_tag).to_string());
        request.headers.push("To", to.to_string());
        request.headers.push("Call-ID", reg.call_id.clone());
        request
            .headers
            .push("CSeq", format!("{} REGISTER", reg.cseq));
        let expires = if reg.unregistering {
            0
        } else {
            reg.requested_expires
        };
        let destination = reg.config.destination;
        let registrar = reg.config.registrar.to_string();
        let route = reg.config.route.clone();
        let user = aor.uri.user.clone().unwrap_or_else(|| "verbatim".into());
        let authorization = answer.or_else(|| {
            let digest = reg.digest.as_mut()?;
            let realm = digest.realms().next()?.to_owned();
            let cnonce = self.rng.token(16);
            digest
                .authorize(&realm, "REGISTER", &registrar, &[], &cnonce)
                .ok()
        });
        let public = self.registrations.get(&account).and_then(|reg| reg.public);
        let contact = self.binding_contact(destination.transport, public, &user);
        request.headers.push("Contact", contact);
        if let Some(stale) = self
            .registrations
            .get(&account)
            .and_then(|reg| reg.stale_contact.clone())
        {
            // The binding that named our private address goes (RFC 3261 10.2.2).
            request
                .headers
                .push("Contact", format!("{stale};expires=0"));
        }
        if let Some(route) = &route {
            request.headers.push(
                "Route",
                format!("<{}>", route.clone().with_param("lr", None)),
            );
        }
        request.headers.push("Expires", expires.to_string());
        request.headers.push("Allow", super::ALLOW);
        if let Some(auth) = authorization {
            request.headers.push(auth.name(), auth.value());
        }
        if self
            .start_client_tx(request, destination, TxOwner::Register(account))
            .is_none()
        {
            self.registration_failed(account, format!("cannot send to {destination}"));
        }
    }

    pub(super) fn on_register_response(&mut self, account: AccountId, response: Message) {
        let Some(status) = response.status() else {
            return;
        };
        if status < 200 {
            return;
        }
        match status {
            200..=299 => self.registration_succeeded(account, &response),
            401 | 407 => {
                let cnonce = self.rng.token(16);
                let Some(reg) = self.registrations.get_mut(&account) else {
                    return;
                };
                let registrar = reg.config.registrar.to_string();
                let retried = Retried {
                    method: "REGISTER",
                    uri: &registrar,
                    body: &[],
                    cnonce: &cnonce,
                };
                match answer_challenge(reg.digest.as_mut(), &response, retried) {
                    Ok(answer) => self.send_register_with(account, Some(answer)),
                    Err(ChallengeError::NoCredentials) => self.registration_failed(
                        account,
                        "authentication failed: the registrar asks for a password and none is configured".into(),
                    ),
                    Err(ChallengeError::NoUsableChallenge) => self.registration_failed(
                        account,
                        "authentication failed: no usable digest challenge".into(),
                    ),
                    Err(ChallengeError::Refused(error) | ChallengeError::CannotAnswer(error)) => {
                        self.registration_failed(account, error.to_string())
                    }
                }
            }
            423 => {
                let min = response
                    .headers
                    .get("Min-Expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match (min, self.registrations.get_mut(&account)) {
                    (Some(min), Some(reg)) if min > reg.requested_expires => {
                        reg.requested_expires = min;
                        self.send_register(account);
                    }
                    _ => self.registration_failed(account, "423 Interval Too Brief".into()),
                }
            }
            _ => {
                let reason = format!("{status} {}", response.reason().unwrap_or(""));
                self.registration_failed(account, reason.trim().to_owned());
            }
        }
    }

    pub(super) fn send_keepalive(&mut self, account: AccountId) {
        let Some(reg) = self.registrations.get(&account) else {
            return;
        };
        if reg.unregistering {
            return;
        }
        self.transmits
            .push_back((reg.config.destination, b"\r\n\r\n".to_vec()));
        let every = self.config.keepalive_interval;
        self.set_timer(self.now + every, Timer::KeepAlive(account));
    }

    pub(super) fn registration_error(&mut self, account: AccountId, reason: String) {
        self.registration_failed(account, reason);
    }

    pub(super) fn on_register_timeout(&mut self, account: AccountId) {
        self.registration_failed(account, "registrar did not answer".into());
    }

    fn registration_succeeded(&mut self, account: AccountId, response: &Message) {
        let Some(reg) = self.registrations.get_mut(&account) else {
            return;
        };
        if let Some(digest) = reg.digest.as_mut() {
            let realms: Vec<String> = digest.realms().map(str::to_owned).collect();
            for realm in realms {
                digest.accepted(&realm);
            }
        }
        reg.failures = 0;
        if reg.unregistering {
            self.unregistered(account);
            return;
        }
        // The binding's expiry: our Contact's expires parameter, else Expires, else what we
        // asked for (RFC 3261 10.2.4).
        let transport = reg.config.destination.transport;
        let destination = reg.config.destination;
        let requested = reg.requested_expires;
        let chased = core::mem::replace(&mut reg.chasing_nat, false);
        // The REGISTER this answers removed the old binding, if it named one.
        reg.stale_contact = None;
        if self.learn_public_address(account, response, chased) {
            return;
        }
        let ours = self
            .registrations
            .get(&account)
            .and_then(|reg| reg.public)
            .or_else(|| self.listener(transport));
        let from_contact = response.contacts().ok().and_then(|contacts| {
            contacts
                .into_iter()
                .find(|c| {
                    ours.is_some_and(|l| {
                        c.uri.port == Some(l.port()) && c.uri.host_ip() == Some(l.ip())
                    })
                })
                .and_then(|c| {
                    c.param("expires")
                        .flatten()
                        .and_then(|e| e.parse::<u32>().ok())
                })
        });
        let expires = from_contact
            .or_else(|| {
                response
                    .headers
                    .get("Expires")
                    .and_then(|e| e.trim().parse().ok())
            })
            .unwrap_or(requested);
        let refresh_in = if expires > 2 * REFRESH_MARGIN {
            expires - REFRESH_MARGIN
        } else {
            (expires / 2).max(1)
        };
        let at = self.now + Duration::from_secs(u64::from(refresh_in));
        self.set_timer(at, Timer::RegisterRefresh(account));
        // A flow over TCP or TLS, or a UDP binding in a NAT, closes when idle.
        if transport.is_reliable() || self.nat_public.contains_key(&destination) {
            let every = self.config.keepalive_interval;
            self.set_timer(self.now + every, Timer::KeepAlive(account));
        }
        self.events.push_back(Event::Registration {
            account,
            state: RegistrationState::Registered { expires },
        });
    }

    /// The registrar's answer says where our REGISTER came from (RFC 3581 `received` and
    /// `rport` on our Via). When that is not our own address a NAT is in between: requests
    /// through that hop give that address as our Contact from now on, and the binding is
    /// made again with it (the old one removed), so calls reach us. True when a new
    /// REGISTER went out for it.
    fn learn_public_address(
        &mut self,
        account: AccountId,
        response: &Message,
        chased: bool,
    ) -> bool {
        let Some(reg) = self.registrations.get(&account) else {
            return false;
        };
        let destination = reg.config.destination;
        let user = reg
            .config
            .aor
            .uri
            .user
            .clone()
            .unwrap_or_else(|| "verbatim".into());
        let Some(own) = self.listener(destination.transport) else {
            return false;
        };
        let Some(seen) = response
            .headers
            .get("Via")
            .and_then(|via| seen_from(via, own))
        else {
            return false;
        };
        // What this registration's Contact named: its own public address, or ours.
        let bound = reg.public;
        if seen == bound.unwrap_or(own) {
            return false;
        }
        let stale = self.binding_contact(destination.transport, bound, &user);
        tracing::info!(%seen, %own, "the registrar sees us at another address: a NAT");
        self.nat_public.insert(destination, seen);
        if let Some(reg) = self.registrations.get_mut(&account) {
            reg.public = Some(seen);
            // The binding just made goes with the next REGISTER.
            reg.stale_contact = Some(stale);
            reg.chasing_nat = !chased;
        }
        if chased {
            // Yet another address right after the last: it is taken, the refresh binds it
            // (and removes the last), no loop.
            return false;
        }
        self.send_register(account);
        true
    }

    /// The binding is gone (or never came) as we asked: the account is forgotten.
    fn unregistered(&mut self, account: AccountId) {
        self.registrations.remove(&account);
        self.events.push_back(Event::Registration {
            account,
            state: RegistrationState::Unregistered,
        });
        self.check_shutdown_complete();
    }

    fn registration_failed(&mut self, account: AccountId, reason: String) {
        let Some(reg) = self.registrations.get_mut(&account) else {
            return;
        };
        reg.chasing_nat = false;
        if reg.unregistering {
            self.unregistered(account);
            return;
        }
        reg.failures += 1;
        // Retry with backoff (30 s doubling to 30 min), except when the password is wrong: that
        // needs the user, and retrying would only risk a lock-out.
        let wrong_credentials = reason.starts_with("authentication failed");
        if !wrong_credentials {
            let backoff = 30u64 << reg.failures.min(6).saturating_sub(1);
            let at = self.now + Duration::from_secs(backoff.min(1800));
            if let Some(digest) = reg.digest.as_mut() {
                let realms: Vec<String> = digest.realms().map(str::to_owned).collect();
                for realm in realms {
                    digest.forget(&realm);
                }
            }
            self.cancel_timer(Timer::RegisterRefresh(account));
            self.set_timer(at, Timer::RegisterRefresh(account));
        }
        self.events.push_back(Event::Registration {
            account,
            state: RegistrationState::Failed { reason },
        });
    }
}

/// Where the top Via's `rport` and `received` (RFC 3581) say the request came from. Only a
/// registrar that fills in `rport` says where a NAT maps us (with `received` alone our own
/// port is a guess); a `received` that is no usable address is left out.
fn seen_from(via: &str, own: core::net::SocketAddr) -> Option<core::net::SocketAddr> {
    let top = via.split(',').next()?;
    let mut seen = own;
    let mut port = None;
    for param in top.split(';').skip(1) {
        let (name, value) = param.split_once('=').unwrap_or((param, ""));
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "received" => {
                if let Ok(ip) = value.trim_matches(['[', ']']).parse::<core::net::IpAddr>()
                    && !ip.is_unspecified()
                    && !ip.is_multicast()
                {
                    seen.set_ip(ip);
                }
            }
            "rport" => port = value.parse::<u16>().ok().filter(|p| *p != 0),
            _ => {}
        }
    }
    seen.set_port(port?);
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::seen_from;

    #[test]
    fn only_an_rport_the_registrar_filled_in_says_where_a_nat_maps_us() {
        let own = "192.168.1.20:5060".parse().unwrap();
        let seen = |via: &str| seen_from(via, own).map(|a| a.to_string());
        assert_eq!(
            seen("SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;received=203.0.113.7;rport=40123"),
            Some("203.0.113.7:40123".into())
        );
        assert_eq!(
            seen("SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK1;received=203.0.113.7"),
            None,
            "without rport our port would be a guess"
        );
        assert_eq!(
            seen("SIP/2.0/UDP 192.168.1.20:5060;rport;branch=z9hG4bK1"),
            None,
            "rport asked, never filled in"
        );
        assert_eq!(
            seen("SIP/2.0/UDP 192.168.1.20:5060;received=nat.example;rport=40123"),
            Some("192.168.1.20:40123".into()),
            "a received that is no address is left out, its rport kept"
        );
        assert_eq!(
            seen("SIP/2.0/UDP 192.168.1.20:5060;received=0.0.0.0;rport=0"),
            None
        );
        assert_eq!(
            seen("SIP/2.0/UDP [fd00::20]:5060;received=[2001:db8::7];rport=40123"),
            Some("[2001:db8::7]:40123".into())
        );
    }
}
