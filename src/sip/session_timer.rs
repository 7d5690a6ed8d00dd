//! Session timers (RFC 4028): the Session-Expires a refresh carries, the smallest interval we
//! take, and when a session whose peer stopped refreshing it is to be taken as gone.

use core::time::Duration;

use super::message::Message;

/// The smallest Session-Expires we take (RFC 4028 4: 90 s, the recommended Min-SE).
pub const MIN_SE: u32 = 90;

/// Which side refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The side that sent the request carrying the header.
    Uac,
    /// The side that answers it.
    Uas,
}

/// A Session-Expires header: the interval and, when named, who refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub seconds: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// `1800;refresher=uac`; None when the interval is not a number.
    pub fn parse(value: &str) -> Option<SessionExpires> {
        let mut parts = value.split(';').map(str::trim);
        let seconds = parts.next()?.parse().ok()?;
        let refresher = parts.find_map(|param| {
            let (name, value) = param.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("refresher") {
                return None;
            }
            match value.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => None,
            }
        });
        Some(SessionExpires { seconds, refresher })
    }

    /// The Session-Expires (or its compact form `x`) of a message.
    pub fn of(message: &Message) -> Option<SessionExpires> {
        message
            .headers
            .get("Session-Expires")
            .or_else(|| message.headers.get("x"))
            .and_then(SessionExpires::parse)
    }

    /// How long the side that does not refresh waits before it takes the session as gone:
    /// the interval less a third of it, or less 32 s when that is smaller (RFC 4028 10).
    pub fn give_up_after(&self) -> Duration {
        let seconds = u64::from(self.seconds);
        Duration::from_secs(seconds - (seconds / 3).min(32))
    }

    /// The header value for our 2xx to a refresh: the same interval, and the refresher the
    /// request asked for, or else its sender (RFC 4028 9: the UAS may pick either).
    pub fn answer(&self) -> String {
        let refresher = match self.refresher {
            Some(Refresher::Uas) => "uas",
            _ => "uac",
        };
        format!("{};refresher={refresher}", self.seconds)
    }
}

/// A session timer both sides agreed on: its interval, and whether we are the refresher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    pub interval: SessionExpires,
    pub we_refresh: bool,
}

impl Agreed {
    /// When we send our next refresh (half the interval, RFC 4028 7.4 and 9).
    pub fn refresh_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.interval.seconds) / 2)
    }

    /// The Session-Expires of a request we send in this session (a refresh, a pause...): a
    /// re-INVITE or UPDATE without one would turn the timer off (RFC 4028 7.4).
    pub fn in_our_request(&self) -> String {
        let refresher = if self.we_refresh { "uac" } else { "uas" };
        format!("{};refresher={refresher}", self.interval.seconds)
    }
}

/// What we answer to a request that may carry a session timer (RFC 4028 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerTimer {
    /// The request asks for no timer.
    None,
    /// Its interval is under [`MIN_SE`]: answer 422 with `Min-SE`.
    TooSmall,
    /// Put `header` in our 2xx (and `Require: timer` when the peer supports it); `agreed`
    /// says who refreshes from now on.
    Agreed {
        header: String,
        require_timer: bool,
        agreed: Agreed,
    },
}

/// Reads a request's Session-Expires as its UAS: the refresher is the one it names, or else
/// the requester when it supports timers, or else us (a requester without timer support
/// cannot refresh).
pub fn as_uas(request: &Message) -> PeerTimer {
    let Some(asked) = SessionExpires::of(request) else {
        return PeerTimer::None;
    };
    if asked.seconds < MIN_SE {
        return PeerTimer::TooSmall;
    }
    let supports_timer = request.headers.has_token("Supported", "timer")
        || request.headers.has_token("Require", "timer")
        || request.headers.has_token("k", "timer");
    let refresher = match asked.refresher {
        Some(refresher) => refresher,
        None if supports_timer => Refresher::Uac,
        None => Refresher::Uas,
    };
    let interval = SessionExpires {
        seconds: asked.seconds,
        refresher: Some(refresher),
    };
    PeerTimer::Agreed {
        header: interval.answer(),
        require_timer: supports_timer,
        agreed: Agreed {
            interval,
            we_refresh: refresher == Refresher::Uas,
        },
    }
}

/// Reads the session timer a 2xx to our INVITE or re-INVITE sets, as its UAC (RFC 4028
/// 7.2): none without Session-Expires; else the refresher it names, or us when it names
/// none (we said `Supported: timer`, so we can).
pub fn as_uac(response: &Message) -> Option<Agreed> {
    let set = SessionExpires::of(response)?;
    if set.seconds == 0 {
        return None;
    }
    let refresher = set.refresher.unwrap_or(Refresher::Uac);
    Some(Agreed {
        interval: SessionExpires {
            seconds: set.seconds,
            refresher: Some(refresher),
        },
        we_refresh: refresher == Refresher::Uac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_with(session_expires: Option<&str>) -> Message {
        let mut ok = Message::parse(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa\r\n\
              From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n\
              Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        if let Some(value) = session_expires {
            ok.headers.push("Session-Expires", value);
        }
        ok
    }

    #[test]
    fn a_2xx_to_our_invite_says_who_refreshes() {
        assert_eq!(as_uac(&ok_with(None)), None);
        assert_eq!(as_uac(&ok_with(Some("0"))), None);
        let ours = as_uac(&ok_with(Some("1800;refresher=uac"))).unwrap();
        assert!(ours.we_refresh);
        assert_eq!(ours.refresh_after(), Duration::from_secs(900));
        let theirs = as_uac(&ok_with(Some("600;refresher=uas"))).unwrap();
        assert!(!theirs.we_refresh);
        assert_eq!(theirs.interval.give_up_after(), Duration::from_secs(568));
        assert!(as_uac(&ok_with(Some("300"))).unwrap().we_refresh);
    }

    #[test]
    fn reads_the_interval_and_the_refresher() {
        assert_eq!(
            SessionExpires::parse("1800;refresher=uac"),
            Some(SessionExpires {
                seconds: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            SessionExpires::parse(" 600 ; Refresher = UAS ").map(|s| s.refresher),
            Some(Some(Refresher::Uas))
        );
        assert_eq!(SessionExpires::parse("90").map(|s| s.refresher), Some(None));
        assert_eq!(SessionExpires::parse("soon;refresher=uac"), None);
    }

    #[test]
    fn the_non_refresher_waits_the_interval_less_min_32_s_or_a_third() {
        let after = |seconds| {
            SessionExpires {
                seconds,
                refresher: None,
            }
            .give_up_after()
        };
        assert_eq!(after(1800), Duration::from_secs(1768));
        assert_eq!(after(90), Duration::from_secs(60));
    }

    #[test]
    fn the_answer_keeps_the_asked_refresher_or_names_the_sender() {
        let asked = SessionExpires::parse("300;refresher=uas").unwrap();
        assert_eq!(asked.answer(), "300;refresher=uas");
        assert_eq!(
            SessionExpires::parse("300").unwrap().answer(),
            "300;refresher=uac"
        );
    }

    fn request(headers: &str) -> Message {
        let text = format!(
            "UPDATE sip:a@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 2 UPDATE\r\n{headers}Content-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn as_uas_we_refresh_when_asked_or_when_the_requester_cannot() {
        assert_eq!(as_uas(&request("")), PeerTimer::None);
        assert_eq!(
            as_uas(&request("Session-Expires: 60\r\n")),
            PeerTimer::TooSmall
        );
        let agreed = |headers| match as_uas(&request(headers)) {
            PeerTimer::Agreed {
                header,
                require_timer,
                agreed,
            } => (header, require_timer, agreed.we_refresh),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            agreed("Session-Expires: 600\r\nSupported: timer\r\n"),
            ("600;refresher=uac".to_owned(), true, false)
        );
        assert_eq!(
            agreed("Session-Expires: 600;refresher=uas\r\nSupported: timer\r\n"),
            ("600;refresher=uas".to_owned(), true, true)
        );
        // A requester without timer support cannot refresh: we do, and require nothing.
        assert_eq!(
            agreed("Session-Expires: 600\r\n"),
            ("600;refresher=uas".to_owned(), false, true)
        );
    }
}
