//! SIP URIs (RFC 3261 19.1) and name-addr values (`"Alice" <sip:alice@host>;tag=x`).
//!
//! rsip 0.4's URI parser was measured to reject IPv6 references, to fold `?headers` into the host
//! and to rewrite `tel:` URIs, so URIs are parsed here. Escapes in the user part are kept as
//! received so a URI always prints back the way it arrived.

use core::fmt;
use core::net::IpAddr;

use super::transport::Transport;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("URI has no scheme: {0:?}")]
    NoScheme(String),
    #[error("URI has no host: {0:?}")]
    NoHost(String),
    #[error("URI has a bad port: {0:?}")]
    BadPort(String),
    #[error("URI contains characters not allowed in a URI: {0:?}")]
    BadCharacter(String),
    #[error("name-addr is missing its closing '>': {0:?}")]
    Unterminated(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

impl Scheme {
    fn parse(s: &str) -> Scheme {
        if s.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if s.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if s.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(s.to_ascii_lowercase())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// A parsed URI. For `tel:` and unknown schemes only `scheme` and `opaque` are meaningful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host as written, IPv6 references keep their brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// The `?` header part, unparsed.
    pub headers: Option<String>,
    /// Everything after `scheme:` for schemes that are not sip/sips.
    pub opaque: Option<String>,
}

impl Uri {
    pub fn parse(input: &str) -> Result<Uri, UriError> {
        let text = input.trim();
        if text
            .bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
        {
            return Err(UriError::BadCharacter(input.to_owned()));
        }
        let (scheme, rest) = text
            .split_once(':')
            .filter(|(s, _)| !s.is_empty() && s.bytes().all(is_scheme_char))
            .ok_or_else(|| UriError::NoScheme(input.to_owned()))?;
        let scheme = Scheme::parse(scheme);
        if !matches!(scheme, Scheme::Sip | Scheme::Sips) {
            return Ok(Uri {
                scheme,
                user: None,
                password: None,
                host: String::new(),
                port: None,
                params: Vec::new(),
                headers: None,
                opaque: Some(rest.to_owned()),
            });
        }
        let (before_headers, headers) = match rest.split_once('?') {
            Some((a, h)) => (a, Some(h.to_owned())),
            None => (rest, None),
        };
        // The user part may itself contain ';' (user=phone style numbers), so split it off at
        // the last '@' before looking for URI parameters.
        let (userinfo, hostpart) = match before_headers.rfind('@') {
            Some(at) => (
                before_headers.get(..at),
                before_headers.get(at + 1..).unwrap_or(""),
            ),
            None => (None, before_headers),
        };
        let (user, password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (Some(info.to_owned()), None),
            },
            None => (None, None),
        };
        let mut pieces = hostpart.split(';');
        let hostport = pieces.next().unwrap_or("");
        let (host, port) = split_host_port(hostport).map_err(|e| match e {
            HostPortError::NoHost => UriError::NoHost(input.to_owned()),
            HostPortError::BadPort => UriError::BadPort(input.to_owned()),
        })?;
        let params = pieces
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (p.to_owned(), None),
            })
            .collect();
        Ok(Uri {
            scheme,
            user: user.filter(|u| !u.is_empty()),
            password,
            host: host.to_owned(),
            port,
            params,
            headers,
            opaque: None,
        })
    }

    /// A `sip:` URI for a user at a host and port (used for Contact and test targets).
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port,
            params: Vec::new(),
            headers: None,
            opaque: None,
        }
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.param(name).is_some()
    }

    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Uri {
        self.params.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.params
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }

    pub fn transport_param(&self) -> Option<Transport> {
        self.param("transport")
            .flatten()
            .and_then(Transport::from_token)
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The host as an IP address when it is a literal (IPv6 brackets removed).
    pub fn host_ip(&self) -> Option<IpAddr> {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        bare.parse().ok()
    }

    /// `user@host` without scheme or parameters, for display and for matching AORs.
    pub fn address_of_record(&self) -> String {
        match (&self.user, self.opaque.as_ref()) {
            (_, Some(opaque)) => opaque.clone(),
            (Some(user), None) => format!("{user}@{}", self.host),
            (None, None) => self.host.clone(),
        }
    }
}

fn is_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

enum HostPortError {
    NoHost,
    BadPort,
}

fn split_host_port(hostport: &str) -> Result<(&str, Option<u16>), HostPortError> {
    let (host, port) = if hostport.starts_with('[') {
        let end = hostport.find(']').ok_or(HostPortError::NoHost)?;
        let host = hostport.get(..=end).ok_or(HostPortError::NoHost)?;
        let after = hostport.get(end + 1..).unwrap_or("");
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(HostPortError::BadPort),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(HostPortError::NoHost);
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| HostPortError::BadPort)?),
        None => None,
    };
    Ok((host, port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(opaque) = &self.opaque {
            return f.write_str(opaque);
        }
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(password) = &self.password {
                write!(f, ":{password}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        if let Some(headers) = &self.headers {
            write!(f, "?{headers}")?;
        }
        Ok(())
    }
}

/// `display-name <uri>;params` as found in From, To, Contact, Route and Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    pub uri: Uri,
    /// Header parameters (after the `>`), values kept as written, quotes included.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display_name: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn parse(input: &str) -> Result<NameAddr, UriError> {
        let text = input.trim();
        let (display_name, uri_text, rest) = if let Some(lt) = find_unquoted(text, b'<') {
            let display = text.get(..lt).unwrap_or("").trim();
            let after = text.get(lt + 1..).unwrap_or("");
            let gt = after
                .find('>')
                .ok_or_else(|| UriError::Unterminated(input.to_owned()))?;
            let uri_text = after.get(..gt).unwrap_or("");
            let rest = after.get(gt + 1..).unwrap_or("");
            let display = if display.is_empty() {
                None
            } else {
                Some(unquote(display))
            };
            (display, uri_text, rest)
        } else {
            // addr-spec form: URI parameters cannot be told from header parameters, so RFC
            // 3261 20 says everything after the first ';' is a header parameter.
            match text.find(';') {
                Some(semi) => (
                    None,
                    text.get(..semi).unwrap_or(""),
                    text.get(semi..).unwrap_or(""),
                ),
                None => (None, text, ""),
            }
        };
        let uri = Uri::parse(uri_text)?;
        let params = parse_params(rest);
        Ok(NameAddr {
            display_name,
            uri,
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name)
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        self.params.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.params
            .push((name.to_owned(), value.map(str::to_owned)));
    }

    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.set_param("tag", Some(tag));
        self
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.display_name {
            write!(
                f,
                "\"{}\" ",
                name.replace('\\', "\\\\").replace('"', "\\\"")
            )?;
        }
        write!(f, "<{}>", self.uri)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Which of these addresses of record an INVITE is for: the one its To names (user and
/// host, the host in any case); else, for a call forwarded to us with someone else's To, the
/// one whose user the Request-URI has (each registration binds a Contact with its own
/// user), when only one has it.
pub fn which_is_called(aors: &[&Uri], to: &str, request_uri: &str) -> Option<usize> {
    if let Some(at) = aors.iter().position(|aor| is_addressed_to(aor, to)) {
        return Some(at);
    }
    let target = Uri::parse(request_uri).ok()?;
    let user = target.user.as_ref()?;
    let mut same_user = aors
        .iter()
        .enumerate()
        .filter(|(_, aor)| aor.user.as_ref() == Some(user));
    match (same_user.next(), same_user.next()) {
        (Some((at, _)), None) => Some(at),
        _ => None,
    }
}

/// Whether `to` (a name-addr or a bare URI) names the address of record `aor`: its user and
/// its host, the host in any case.
pub fn is_addressed_to(aor: &Uri, to: &str) -> bool {
    let Ok(uri) = NameAddr::parse(to)
        .map(|name_addr| name_addr.uri)
        .or_else(|_| Uri::parse(to))
    else {
        return false;
    };
    aor.user == uri.user && aor.host.eq_ignore_ascii_case(&uri.host)
}

/// A parameter by case-insensitive name: `None` when absent, `Some(None)` when it has no value.
pub fn find_param<'a>(
    params: &'a [(String, Option<String>)],
    name: &str,
) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_deref())
}

/// Splits `;a=b;c;d="x;y"` into pairs, honouring quoted strings.
pub fn parse_params(text: &str) -> Vec<(String, Option<String>)> {
    split_unquoted(text, b';')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
            None => (p.to_owned(), None),
        })
        .collect()
}

/// Removes surrounding quotes and backslash escapes from a quoted-string; plain tokens are
/// returned trimmed.
pub fn unquote(text: &str) -> String {
    let t = text.trim();
    match t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => t.to_owned(),
    }
}

/// Position of the first `needle` outside a quoted string.
fn find_unquoted(text: &str, needle: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if !quoted && b == needle {
            return Some(i);
        }
    }
    None
}

/// Splits on `sep` outside quoted strings and outside `<...>`.
pub fn split_unquoted(text: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut angle = false;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if quoted => escaped = true,
            b'"' if !angle => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            _ if b == sep && !quoted && !angle => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sip_uri_with_params_and_prints_it_back() {
        let text = "sip:alice@127.0.0.1:5070;transport=tcp;lr";
        let uri = Uri::parse(text).unwrap();
        assert_eq!(uri.user.as_deref(), Some("alice"));
        assert_eq!(uri.host, "127.0.0.1");
        assert_eq!(uri.port, Some(5070));
        assert_eq!(uri.transport_param(), Some(Transport::Tcp));
        assert!(uri.has_param("lr"));
        assert_eq!(uri.to_string(), text);
    }

    #[test]
    fn parses_ipv6_reference_and_headers() {
        let uri = Uri::parse("sips:bob@[2001:db8::10]:5071;maddr=x?Subject=hi").unwrap();
        assert_eq!(uri.scheme, Scheme::Sips);
        assert_eq!(uri.host, "[2001:db8::10]");
        assert_eq!(uri.port, Some(5071));
        assert_eq!(uri.headers.as_deref(), Some("Subject=hi"));
        assert_eq!(uri.host_ip(), "2001:db8::10".parse().ok());
    }

    #[test]
    fn user_part_may_hold_semicolons() {
        let uri = Uri::parse("sip:+1-212-555-1212:1234;isub=1@gateway.com;user=phone").unwrap();
        assert_eq!(uri.user.as_deref(), Some("+1-212-555-1212"));
        assert_eq!(uri.password.as_deref(), Some("1234;isub=1"));
        assert_eq!(uri.host, "gateway.com");
        assert_eq!(uri.param("user"), Some(Some("phone")));
    }

    #[test]
    fn tel_and_unknown_schemes_are_kept_opaque() {
        let uri = Uri::parse("tel:+12125551212").unwrap();
        assert_eq!(uri.scheme, Scheme::Tel);
        assert_eq!(uri.to_string(), "tel:+12125551212");
        let other = Uri::parse("name:John_Doe").unwrap();
        assert_eq!(other.scheme, Scheme::Other("name".into()));
    }

    #[test]
    fn rejects_bad_uris() {
        assert!(Uri::parse("alice@example.com").is_err());
        assert!(Uri::parse("sip:alice@example.com:99999").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:a b@c").is_err());
        assert!(Uri::parse("sip:[::1").is_err());
    }

    #[test]
    fn name_addr_with_quoted_params_parses() {
        let na = NameAddr::parse(
            "\"Alice \\\"A\\\" Smith\" <sip:alice@host;transport=tcp>;tag=1928;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";expires=60",
        )
        .unwrap();
        assert_eq!(na.display_name.as_deref(), Some("Alice \"A\" Smith"));
        assert_eq!(na.uri.transport_param(), Some(Transport::Tcp));
        assert_eq!(na.tag(), Some("1928"));
        assert_eq!(
            na.param("+sip.instance"),
            Some(Some("\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\""))
        );
        assert_eq!(na.param("expires"), Some(Some("60")));
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let na = NameAddr::parse("sip:bob@biloxi.com;tag=abc").unwrap();
        assert_eq!(na.tag(), Some("abc"));
        assert!(na.uri.params.is_empty());
    }

    #[test]
    fn splits_lists_outside_quotes_and_brackets() {
        let parts = split_unquoted("<sip:a@b;x=1,2>, \"x,y\" <sip:c@d>;q=0.5", b',');
        assert_eq!(parts.len(), 2);
        assert!(parts[1].contains("x,y"));
    }
}
