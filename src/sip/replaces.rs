//! The Replaces header (RFC 3891): which dialog a new INVITE takes the place of, as the
//! recipient of that INVITE sees it (`to-tag` is its own tag, `from-tag` the other side's).
//! Attended transfer carries it inside a Refer-To URI's headers (RFC 5589 7), escaped.

use core::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    /// The tag of the side receiving the INVITE with Replaces.
    pub to_tag: String,
    /// The tag of the side whose dialog is replaced, as seen by the recipient.
    pub from_tag: String,
    /// Replace only a dialog not yet answered.
    pub early_only: bool,
}

impl Replaces {
    /// Reads a header value: `call-id;to-tag=A;from-tag=B[;early-only]`, parameters in any
    /// order and case; None without the Call-ID or either tag.
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';');
        let call_id = parts.next()?.trim();
        if call_id.is_empty() {
            return None;
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for parameter in parts {
            let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "to-tag" => to_tag = Some(value.trim().to_owned()),
                "from-tag" => from_tag = Some(value.trim().to_owned()),
                "early-only" => early_only = true,
                _ => {}
            }
        }
        Some(Replaces {
            call_id: call_id.to_owned(),
            to_tag: to_tag.filter(|t| !t.is_empty())?,
            from_tag: from_tag.filter(|t| !t.is_empty())?,
            early_only,
        })
    }

    /// The Replaces among a URI's `?` headers (`Replaces=...&...`), unescaped.
    pub fn from_uri_headers(headers: &str) -> Option<Replaces> {
        headers.split('&').find_map(|header| {
            let (name, value) = header.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("Replaces")
                .then(|| Replaces::parse(&unescape(value)?))
                .flatten()
        })
    }

    /// As a URI header: `Replaces=` and the value with everything but unreserved characters
    /// escaped (a Call-ID's `@`, the `;` and `=` of the parameters).
    pub fn as_uri_header(&self) -> String {
        let value = self.to_string();
        let mut escaped = String::with_capacity(value.len() * 2);
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                escaped.push(char::from(byte));
            } else {
                escaped.push_str(&format!("%{byte:02X}"));
            }
        }
        format!("Replaces={escaped}")
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// `%XX` escapes undone; None for a broken escape or bytes that are not UTF-8.
fn unescape(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((first, tail)) = rest.split_first() {
        if *first == b'%' {
            let hex = tail.get(..2)?;
            let text = core::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(text, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(*first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_value_reads_in_any_order_and_case() {
        let replaces =
            Replaces::parse("425928@bobster.example.org;TO-TAG=7743 ; from-tag=6472").unwrap();
        assert_eq!(replaces.call_id, "425928@bobster.example.org");
        assert_eq!(
            (replaces.to_tag.as_str(), replaces.from_tag.as_str()),
            ("7743", "6472")
        );
        assert!(!replaces.early_only);
        assert!(
            Replaces::parse("abc;from-tag=1;to-tag=2;early-only")
                .unwrap()
                .early_only
        );
        for broken in [
            "",
            ";to-tag=1;from-tag=2",
            "abc;to-tag=1",
            "abc;to-tag=;from-tag=2",
        ] {
            assert_eq!(Replaces::parse(broken), None, "{broken:?}");
        }
    }

    #[test]
    fn in_a_refer_to_uri_it_is_escaped_and_reads_back() {
        let replaces = Replaces {
            call_id: "a84b4c76e66710@pc33.atlanta.example".into(),
            to_tag: "314159".into(),
            from_tag: "1928301774".into(),
            early_only: false,
        };
        let header = replaces.as_uri_header();
        assert_eq!(
            header,
            "Replaces=a84b4c76e66710%40pc33.atlanta.example%3Bto-tag%3D314159%3Bfrom-tag%3D1928301774"
        );
        assert_eq!(Replaces::from_uri_headers(&header), Some(replaces.clone()));
        let among = format!("Referred-By=%3Csip:a@b%3E&{header}");
        assert_eq!(Replaces::from_uri_headers(&among), Some(replaces));
        assert_eq!(Replaces::from_uri_headers("Replaces=abc%3Bto-tag%3"), None);
        assert_eq!(Replaces::from_uri_headers("Subject=hello"), None);
    }
}
