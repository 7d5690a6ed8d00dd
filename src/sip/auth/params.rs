//! The auth-param list syntax (`Digest name=value, name="value", ...`) that challenges and
//! `Authorization` headers share: reading it from hostile input without panicking, and
//! writing values back so that nothing received can inject a header line.

use super::AuthError;

pub(super) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn check_header_safe(param: &'static str, value: &str) -> Result<(), AuthError> {
    if value.chars().any(is_forbidden_control) {
        return Err(AuthError::InvalidParam {
            param,
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn is_forbidden_control(c: char) -> bool {
    c.is_control() && c != '\t'
}

#[derive(Debug)]
pub(super) struct Param {
    /// Lowercased, since parameter names are case-insensitive.
    name: String,
    pub(super) value: String,
    quoted: bool,
}

pub(super) fn find<'p>(params: &'p [Param], name: &str) -> Result<Option<&'p Param>, AuthError> {
    let mut matches = params.iter().filter(|p| p.name == name);
    let first = matches.next();
    // Two different values for one parameter leave the meaning to whoever parses last;
    // refusing is the only reading both sides agree on.
    if matches.next().is_some() {
        return Err(AuthError::DuplicateParam(name.to_owned()));
    }
    Ok(first)
}

pub(super) fn optional(params: &[Param], name: &str) -> Result<Option<String>, AuthError> {
    Ok(find(params, name)?.map(|p| p.value.clone()))
}

pub(super) fn required(
    params: &[Param],
    name: &'static str,
    header: &'static str,
) -> Result<String, AuthError> {
    optional(params, name)?.ok_or(AuthError::MissingParam {
        header,
        param: name,
    })
}

/// RFC 3261 token characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn malformed(what: impl Into<String>) -> AuthError {
    AuthError::Malformed(what.into())
}

/// A read position in a header value. All splitting happens at char boundaries found by
/// `char_indices`, and through `split_at_checked`, so hostile input cannot cause a panic.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next();
        self.rest = chars.as_str();
        c
    }

    fn skip_lws(&mut self) {
        self.rest = self.rest.trim_start_matches(is_lws);
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self
            .rest
            .char_indices()
            .find(|&(_, c)| !keep(c))
            .map_or(self.rest.len(), |(i, _)| i);
        match self.rest.split_at_checked(end) {
            Some((taken, rest)) => {
                self.rest = rest;
                taken
            }
            None => "",
        }
    }

    /// Reads a quoted-string whose opening quote is next, undoing backslash escapes.
    fn quoted_string(&mut self, name: &str) -> Result<String, AuthError> {
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return Err(malformed(format!("unterminated quoted value of {name}"))),
                Some('"') => return Ok(value),
                Some('\\') => match self.bump() {
                    Some(c) if !is_forbidden_control(c) => value.push(c),
                    Some(_) => return Err(malformed(format!("control character in {name}"))),
                    None => return Err(malformed(format!("unterminated quoted value of {name}"))),
                },
                Some(c) if is_forbidden_control(c) => {
                    return Err(malformed(format!("control character in {name}")));
                }
                Some(c) => value.push(c),
            }
        }
    }
}

/// Splits `Digest name=value, name="value", ...` into parameters.
pub(super) fn parse_digest_header(input: &str) -> Result<Vec<Param>, AuthError> {
    let mut cur = Cursor { rest: input };
    cur.skip_lws();
    if cur.peek().is_none() {
        return Err(AuthError::Empty);
    }
    let scheme = cur.take_while(is_token_char);
    if scheme.is_empty() {
        return Err(malformed("missing auth scheme"));
    }
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(AuthError::NotDigest(scheme.to_owned()));
    }
    if cur.peek().is_some_and(|c| !is_lws(c)) {
        return Err(malformed("expected whitespace after the auth scheme"));
    }

    let mut params: Vec<Param> = Vec::new();
    loop {
        cur.skip_lws();
        match cur.peek() {
            None => break,
            // Empty list elements are allowed by the HTTP list rule.
            Some(',') => {
                cur.bump();
                continue;
            }
            Some(_) => {}
        }
        let name = cur.take_while(is_token_char);
        if name.is_empty() {
            return Err(malformed("expected a parameter name"));
        }
        cur.skip_lws();
        if cur.peek() != Some('=') {
            // Some servers write `qop=auth,auth-int` unquoted, which tokenizes as a qop
            // parameter followed by a bare `auth-int`.
            if let Some(prev) = params.last_mut()
                && prev.name == "qop"
                && !prev.quoted
                && matches!(cur.peek(), None | Some(','))
            {
                prev.value.push(',');
                prev.value.push_str(name);
                continue;
            }
            return Err(malformed(format!("parameter {name:?} has no value")));
        }
        cur.bump();
        cur.skip_lws();
        let (value, quoted) = if cur.peek() == Some('"') {
            (cur.quoted_string(name)?, true)
        } else {
            let raw = cur.take_while(|c| !is_lws(c) && c != ',' && c != '"' && !c.is_control());
            if raw.is_empty() {
                return Err(malformed(format!("parameter {name:?} has an empty value")));
            }
            (raw.to_owned(), false)
        };
        cur.skip_lws();
        if !matches!(cur.peek(), None | Some(',')) {
            return Err(malformed(format!(
                "unexpected text after parameter {name:?}"
            )));
        }
        params.push(Param {
            name: name.to_ascii_lowercase(),
            value,
            quoted,
        });
    }
    Ok(params)
}
