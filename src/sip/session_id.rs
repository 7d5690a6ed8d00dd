//! The end-to-end session identifier (RFC 7989): each end of a session has a UUID of its own,
//! and every request and response carries `Session-ID: <sender's>;remote=<receiver's>` (the
//! null UUID until the other end's is known). A recorder ties a recording to its call, and
//! operators follow a call across proxies and B2BUAs, by these.

use super::message::Message;

/// The UUID of an end not known yet (RFC 7989 5).
pub const NULL_UUID: &str = "00000000000000000000000000000000";

/// A version 4 UUID (RFC 4122 4.4) in the form Session-ID uses (32 lowercase hex digits, no
/// hyphens) from 32 random hex digits: the version and variant bits are set.
pub fn uuid_from_random_hex(random: &str) -> String {
    random
        .chars()
        .chain(core::iter::repeat('0'))
        .take(32)
        .enumerate()
        .map(|(index, digit)| match index {
            12 => '4',
            16 => match digit.to_digit(16).unwrap_or(0) & 0x3 {
                0 => '8',
                1 => '9',
                2 => 'a',
                _ => 'b',
            },
            _ => digit.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether `text` is a UUID as Session-ID writes it.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The header value we send: our UUID, and the other end's when known.
pub fn header_value(ours: &str, theirs: Option<&str>) -> String {
    format!("{ours};remote={}", theirs.unwrap_or(NULL_UUID))
}

/// The sender's own UUID in a message's Session-ID (lowercased); None without the header,
/// with a malformed one, or with the null UUID (an end that has none yet).
pub fn sender_uuid(message: &Message) -> Option<String> {
    let value = message.headers.get("Session-ID")?;
    let uuid = value.split(';').next()?.trim().to_ascii_lowercase();
    (is_uuid(&uuid) && uuid != NULL_UUID).then_some(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_session_id(value: Option<&str>) -> Message {
        let mut message = Message::parse(
            b"BYE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKs\r\n\
              From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\n\
              Call-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        if let Some(value) = value {
            message.headers.push("Session-ID", value);
        }
        message
    }

    #[test]
    fn a_uuid_is_32_hex_digits_of_version_4() {
        let uuid = uuid_from_random_hex("0123456789ABCDEF0123456789abcdef");
        assert_eq!(uuid, "0123456789ab4def8123456789abcdef");
        assert!(is_uuid(&uuid));
        assert_eq!(uuid_from_random_hex("ff").len(), 32);
        assert!(!is_uuid("0123"));
        assert!(!is_uuid("0123456789ab-def8123456789abcde"));
    }

    #[test]
    fn the_header_names_both_ends_or_the_null_uuid() {
        let ours = "ab30317f1a784dc48ff824d0d3715d86";
        assert_eq!(
            header_value(ours, None),
            "ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000"
        );
        assert_eq!(
            header_value(ours, Some("47755a9de7794ba387653f2099600ef2")),
            "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2"
        );
    }

    #[test]
    fn the_senders_uuid_is_read_and_a_null_or_malformed_one_is_not() {
        assert_eq!(
            sender_uuid(&with_session_id(Some(
                "AB30317F1A784DC48FF824D0D3715D86 ; remote=00000000000000000000000000000000"
            ))),
            Some("ab30317f1a784dc48ff824d0d3715d86".to_owned())
        );
        assert_eq!(sender_uuid(&with_session_id(Some(NULL_UUID))), None);
        assert_eq!(sender_uuid(&with_session_id(Some("not-a-uuid"))), None);
        assert_eq!(sender_uuid(&with_session_id(None)), None);
    }
}
