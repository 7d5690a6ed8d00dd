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

#[cfg(test)]
mod tests {
    use super::*;

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
}
