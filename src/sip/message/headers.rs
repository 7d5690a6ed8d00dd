//! The header fields of a SIP message as an ordered list of (canonical name, raw value)
//! pairs: lookups by name whatever its case or compact form, comma lists, and the edits a
//! UA makes. It is apart from the message because framing builds one before any message
//! exists.

use crate::sip::uri::split_unquoted;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Header fields in order. Names are compared case-insensitively; compact forms were expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a header, list-valued fields split at top-level commas
    /// (`Via: a, b` and two `Via` lines read the same).
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| split_unquoted(&h.value, b','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Each header line's whole value (for fields such as WWW-Authenticate whose values
    /// contain commas of their own).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
            .collect()
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push(Header {
            name: canonical_name(name).to_owned(),
            value: value.into(),
        });
    }

    /// Puts a header first, as a proxy or UAS prepends Via and Record-Route values.
    pub fn insert_first(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name: canonical_name(name).to_owned(),
                value: value.into(),
            },
        );
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
        {
            Some(pos) => {
                if let Some(h) = self.0.get_mut(pos) {
                    h.value = value;
                }
                let mut index = 0;
                self.0.retain(|h| {
                    let keep = index <= pos || !h.name.eq_ignore_ascii_case(name);
                    index += 1;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when a comma-list header (Supported, Require, Allow...) holds `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Maps compact forms (RFC 3261 7.3.3 and extensions) and common spellings to one name.
pub fn canonical_name(name: &str) -> &str {
    const COMPACT: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("u", "Allow-Events"),
        ("x", "Session-Expires"),
        ("a", "Accept-Contact"),
        ("j", "Reject-Contact"),
        ("d", "Request-Disposition"),
        ("y", "Identity"),
    ];
    const KNOWN: &[&str] = &[
        "Call-ID",
        "Contact",
        "Content-Length",
        "Content-Type",
        "From",
        "To",
        "Via",
        "CSeq",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "Require",
        "Supported",
        "Allow",
        "Expires",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "User-Agent",
        "Server",
        "Accept",
        "Unsupported",
        "Retry-After",
        "Min-Expires",
        "Content-Disposition",
        "Proxy-Require",
    ];
    if name.len() == 1
        && let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name))
    {
        return long;
    }
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or(name)
}
