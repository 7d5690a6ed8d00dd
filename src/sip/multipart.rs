//! `multipart/mixed` bodies (RFC 2046 section 5.1) as SIPREC carries them: an SDP part next to
//! a recording-metadata part (RFC 7866 section 9).

use thiserror::Error;

/// The SDP part of a recording-session body.
pub const SDP_CONTENT_TYPE: &str = "application/sdp";
/// The metadata media type since RFC 9806 aligned RFC 7866 with RFC 7865.
pub const METADATA_CONTENT_TYPE: &str = "application/rs-metadata+xml";
/// The metadata media type used by RFC 7866's original examples; still sent by deployed SRCs.
pub const LEGACY_METADATA_CONTENT_TYPE: &str = "application/rs-metadata";
/// Body an SRS sends to ask the SRC for a complete metadata snapshot.
pub const METADATA_REQUEST_CONTENT_TYPE: &str = "application/rs-metadata-request";
/// `Content-Disposition` value that marks the metadata part.
pub const RECORDING_SESSION_DISPOSITION: &str = "recording-session";

/// A peer that sends more parts than this is not sending a recording-session body; the cap keeps
/// a hostile body from costing more than a handful of allocations.
pub const MAX_PARTS: usize = 16;
const MAX_HEADERS_PER_PART: usize = 32;
/// RFC 2046 allows 70 characters; some stacks exceed it, so parsing is a little more generous.
const MAX_BOUNDARY_LEN: usize = 200;

/// One body part. `headers` holds every part header except `Content-Type`, with names as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// Value of the first header called `name` (ASCII case-insensitive), `Content-Type` included.
    pub fn header(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("content-type") {
            return Some(&self.content_type);
        }
        self.headers
            .iter()
            .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    #[error("body is not multipart (Content-Type is {0:?})")]
    NotMultipart(String),
    #[error("multipart Content-Type has no boundary parameter")]
    MissingBoundary,
    #[error("multipart boundary is empty or longer than {MAX_BOUNDARY_LEN} characters")]
    InvalidBoundary,
    #[error("multipart body contains no boundary delimiter")]
    NoDelimiter,
    #[error("multipart body ends without its closing delimiter (truncated?)")]
    MissingCloseDelimiter,
    #[error("multipart body has more than {MAX_PARTS} parts")]
    TooManyParts,
    #[error("multipart part {part} has more than {MAX_HEADERS_PER_PART} headers")]
    TooManyHeaders { part: usize },
    #[error("multipart part {part} has a malformed header line")]
    MalformedHeader { part: usize },
}

/// The `Content-Type` header value announcing a body built by [`build`] with `boundary`.
pub fn content_type(boundary: &str) -> String {
    if !boundary.is_empty() && boundary.bytes().all(is_token_byte) {
        format!("multipart/mixed;boundary={boundary}")
    } else {
        format!(
            "multipart/mixed;boundary=\"{}\"",
            boundary.replace(['"', '\\'], "")
        )
    }
}

/// Serialises `parts` with CRLF line endings. The caller picks a boundary (1 to 70 characters,
/// random enough not to occur inside any part); CR and LF inside header names or values are
/// replaced by spaces so a part cannot smuggle extra headers.
pub fn build(parts: &[Part], boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        parts
            .iter()
            .map(|part| part.body.len() + part.content_type.len() + 64)
            .sum::<usize>()
            + boundary.len() * (parts.len() + 1),
    );
    for part in parts {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\n");
        push_header(&mut out, "Content-Type", &part.content_type);
        for (name, value) in &part.headers {
            push_header(&mut out, name, value);
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        // This CRLF belongs to the next delimiter, not to the body.
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");
    out
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend(name.bytes().map(without_line_break));
    out.extend_from_slice(b": ");
    out.extend(value.bytes().map(without_line_break));
    out.extend_from_slice(b"\r\n");
}

fn without_line_break(byte: u8) -> u8 {
    if byte == b'\r' || byte == b'\n' {
        b' '
    } else {
        byte
    }
}

/// The first part whose media type (parameters ignored, ASCII case-insensitive) is
/// `content_type`. Asking for either metadata media type finds a part of either type, because
/// deployed SRCs still send the pre-RFC 9806 `application/rs-metadata`.
pub fn find<'a>(parts: &'a [Part], content_type: &str) -> Option<&'a Part> {
    let wanted = media_type(content_type);
    let wants_metadata = is_metadata_type(wanted);
    parts.iter().find(|part| {
        let have = media_type(&part.content_type);
        have.eq_ignore_ascii_case(wanted) || (wants_metadata && is_metadata_type(have))
    })
}

fn is_metadata_type(media_type: &str) -> bool {
    media_type.eq_ignore_ascii_case(METADATA_CONTENT_TYPE)
        || media_type.eq_ignore_ascii_case(LEGACY_METADATA_CONTENT_TYPE)
}

fn media_type(content_type: &str) -> &str {
    content_type
        .split(';')
        .next()
        .unwrap_or(content_type)
        .trim()
}

/// Splits a multipart body. `content_type_header` is the value of the message's Content-Type
/// header. Preamble and epilogue are dropped; each part's body is returned byte for byte, without
/// the line break that belongs to the following delimiter. Lines may end in CRLF or bare LF.
/// A part without Content-Type gets RFC 2046's default, `text/plain`.
pub fn parse(content_type_header: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    let boundary = boundary_parameter(content_type_header)?;
    let mut parts = Vec::new();
    // Start of the part currently being read (just after its opening delimiter line).
    let mut open_part: Option<usize> = None;
    for line in Lines::new(body) {
        let Some(delimiter) = classify_delimiter(line.content(body), boundary.as_bytes()) else {
            continue;
        };
        if let Some(start) = open_part.take() {
            if parts.len() == MAX_PARTS {
                return Err(MultipartError::TooManyParts);
            }
            let end = line.start - preceding_line_break_len(body, line.start);
            let region = body.get(start..end.max(start)).unwrap_or_default();
            parts.push(parse_part(region, parts.len())?);
        }
        match delimiter {
            Delimiter::Close => return Ok(parts),
            Delimiter::Open => open_part = Some(line.next),
        }
    }
    if open_part.is_some() {
        Err(MultipartError::MissingCloseDelimiter)
    } else {
        Err(MultipartError::NoDelimiter)
    }
}

fn preceding_line_break_len(body: &[u8], line_start: usize) -> usize {
    let before = body.get(..line_start).unwrap_or_default();
    match before {
        [.., b'\r', b'\n'] => 2,
        [.., b'\n'] => 1,
        _ => 0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    Open,
    Close,
}

fn classify_delimiter(line: &[u8], boundary: &[u8]) -> Option<Delimiter> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    // Whatever follows a close delimiter on its line can only be padding or epilogue.
    if rest.starts_with(b"--") {
        return Some(Delimiter::Close);
    }
    // A line that merely starts with the boundary (e.g. "--abcdef" for boundary "abc") is content.
    // A lone CR is accepted as padding so a body cut right after it still reads as delimited.
    rest.iter()
        .all(|&byte| matches!(byte, b' ' | b'\t' | b'\r'))
        .then_some(Delimiter::Open)
}

fn parse_part(region: &[u8], index: usize) -> Result<Part, MultipartError> {
    let mut unfolded: Vec<(String, String)> = Vec::new();
    let mut body_start = region.len();
    for line in Lines::new(region) {
        let content = line.content(region);
        if content.is_empty() {
            body_start = line.next;
            break;
        }
        let text = String::from_utf8_lossy(content);
        if text.starts_with([' ', '\t']) {
            let (_, value) = unfolded
                .last_mut()
                .ok_or(MultipartError::MalformedHeader { part: index })?;
            let continuation = text.trim();
            if !continuation.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(continuation);
            }
            continue;
        }
        let (name, value) = text
            .split_once(':')
            .ok_or(MultipartError::MalformedHeader { part: index })?;
        let name = name.trim();
        if name.is_empty() {
            return Err(MultipartError::MalformedHeader { part: index });
        }
        if unfolded.len() == MAX_HEADERS_PER_PART {
            return Err(MultipartError::TooManyHeaders { part: index });
        }
        unfolded.push((name.to_owned(), value.trim().to_owned()));
    }

    let mut content_type = None;
    let mut headers = Vec::with_capacity(unfolded.len());
    for (name, value) in unfolded {
        if name.eq_ignore_ascii_case("content-type") {
            content_type.get_or_insert(value);
        } else {
            headers.push((name, value));
        }
    }
    Ok(Part {
        content_type: content_type.unwrap_or_else(|| "text/plain".to_owned()),
        headers,
        body: region.get(body_start..).unwrap_or_default().to_vec(),
    })
}

fn boundary_parameter(content_type_header: &str) -> Result<String, MultipartError> {
    let mut fields = ParameterFields::new(content_type_header);
    let media = fields.next().unwrap_or_default();
    let is_multipart = media
        .trim()
        .get(..10)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("multipart/"));
    if !is_multipart {
        return Err(MultipartError::NotMultipart(media.trim().to_owned()));
    }
    for field in fields {
        let Some((name, value)) = field.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let boundary = unquote(value.trim());
        if boundary.is_empty() || boundary.len() > MAX_BOUNDARY_LEN {
            return Err(MultipartError::InvalidBoundary);
        }
        return Ok(boundary);
    }
    Err(MultipartError::MissingBoundary)
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => out.extend(chars.next()),
            _ => out.push(c),
        }
    }
    out
}

/// Splits a header value on `;` outside quoted strings.
struct ParameterFields<'a> {
    rest: Option<&'a str>,
}

impl<'a> ParameterFields<'a> {
    fn new(value: &'a str) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for ParameterFields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        let mut in_quotes = false;
        let mut escaped = false;
        for (at, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                ';' if !in_quotes => {
                    self.rest = rest.get(at + 1..);
                    return rest.get(..at);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(rest)
    }
}

/// RFC 2045 token characters: anything printable except tspecials and space.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&byte)
}

/// A line of `data`: `start..end` is its content, `next` is where the following line begins.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl Line {
    fn content(self, data: &[u8]) -> &[u8] {
        data.get(self.start..self.end).unwrap_or_default()
    }
}

/// Lines ending in CRLF or bare LF; the last line may have no ending.
struct Lines<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Lines<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        let start = self.position;
        let rest = self.data.get(start..).filter(|rest| !rest.is_empty())?;
        let line = match rest.iter().position(|&byte| byte == b'\n') {
            Some(newline) => {
                let with_cr = rest.get(..newline).is_some_and(|c| c.ends_with(b"\r"));
                Line {
                    start,
                    end: start + newline - usize::from(with_cr),
                    next: start + newline + 1,
                }
            }
            None => Line {
                start,
                end: self.data.len(),
                next: self.data.len(),
            },
        };
        self.position = line.next;
        Some(line)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n\
        m=audio 40002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n";
    const METADATA: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
        <recording xmlns='urn:ietf:params:xml:ns:recording:1'>\r\n\
        <datamode>complete</datamode>\r\n</recording>";

    fn siprec_parts() -> Vec<Part> {
        vec![
            Part {
                content_type: SDP_CONTENT_TYPE.to_owned(),
                headers: vec![],
                body: SDP.as_bytes().to_vec(),
            },
            Part {
                content_type: METADATA_CONTENT_TYPE.to_owned(),
                headers: vec![(
                    "Content-Disposition".to_owned(),
                    RECORDING_SESSION_DISPOSITION.to_owned(),
                )],
                body: METADATA.as_bytes().to_vec(),
            },
        ]
    }

    #[test]
    fn build_then_parse_returns_the_same_parts() {
        let parts = siprec_parts();
        let body = build(&parts, "foobar");
        let parsed = parse(&content_type("foobar"), &body).unwrap();
        assert_eq!(parsed, parts);
    }

    #[test]
    fn build_writes_crlf_delimiters_and_closing_boundary() {
        let parts = vec![Part {
            content_type: "text/plain".to_owned(),
            headers: vec![("X-A".to_owned(), "1".to_owned())],
            body: b"hi".to_vec(),
        }];
        let body = build(&parts, "b1");
        assert_eq!(
            body,
            b"--b1\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nhi\r\n--b1--\r\n".to_vec()
        );
    }

    #[test]
    fn build_cannot_be_tricked_into_extra_headers() {
        let parts = vec![Part {
            content_type: "text/plain\r\nX-Evil: 1".to_owned(),
            headers: vec![],
            body: vec![],
        }];
        let parsed = parse(&content_type("b"), &build(&parts, "b")).unwrap();
        assert_eq!(parsed[0].content_type, "text/plain  X-Evil: 1");
        assert!(parsed[0].headers.is_empty());
    }

    #[test]
    fn content_type_quotes_boundaries_that_are_not_tokens() {
        assert_eq!(content_type("abc123"), "multipart/mixed;boundary=abc123");
        assert_eq!(content_type("a b:c"), "multipart/mixed;boundary=\"a b:c\"");
        let parts = siprec_parts();
        let body = build(&parts, "a b:c");
        assert_eq!(parse(&content_type("a b:c"), &body).unwrap(), parts);
    }

    #[test]
    fn parses_an_rfc7866_style_invite_body_with_preamble_and_epilogue() {
        let body = format!(
            "This is a preamble that must be ignored.\r\n\
             --OSQWERTY\r\n\
             Content-Type: application/SDP\r\n\
             \r\n\
             {SDP}\r\n\
             --OSQWERTY   \r\n\
             content-type: application/rs-metadata+xml\r\n\
             CONTENT-DISPOSITION: recording-session\r\n\
             \r\n\
             {METADATA}\r\n\
             --OSQWERTY--\r\n\
             an epilogue\r\n"
        );
        let parts = parse("Multipart/Mixed; boundary=OSQWERTY", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        let sdp = find(&parts, "application/sdp").unwrap();
        assert_eq!(sdp.body, SDP.as_bytes());
        let metadata = find(&parts, METADATA_CONTENT_TYPE).unwrap();
        assert_eq!(metadata.body, METADATA.as_bytes());
        assert_eq!(
            metadata.header("Content-Disposition"),
            Some(RECORDING_SESSION_DISPOSITION)
        );
        assert_eq!(metadata.headers[0].0, "CONTENT-DISPOSITION");
    }

    #[test]
    fn find_accepts_either_metadata_media_type_and_ignores_parameters() {
        let parts = vec![Part {
            content_type: "Application/RS-Metadata ; charset=UTF-8".to_owned(),
            headers: vec![],
            body: vec![],
        }];
        assert!(find(&parts, METADATA_CONTENT_TYPE).is_some());
        assert!(find(&parts, LEGACY_METADATA_CONTENT_TYPE).is_some());
        assert!(find(&parts, SDP_CONTENT_TYPE).is_none());
        assert!(find(&parts, METADATA_REQUEST_CONTENT_TYPE).is_none());
    }

    #[test]
    fn quoted_boundary_with_other_parameters() {
        let body = b"--\"odd\" b\r\n\r\nnot this\r\n--odd b\r\nContent-Type: text/plain\r\n\r\nx\r\n--odd b--";
        let parts = parse("multipart/mixed; charset=\"a;b\"; BOUNDARY=\"odd b\"", body).unwrap();
        // The first line is not a delimiter (it merely contains a quote), so it is preamble.
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_type, "text/plain");
        assert_eq!(parts[0].body, b"x");
    }

    #[test]
    fn lf_only_line_endings() {
        let body = "--b\nContent-Type: application/sdp\n\nv=0\ns=-\n\n--b\n\
                    Content-Type: application/rs-metadata\nContent-Disposition:\n recording-session\n\n<r/>\n--b--\n";
        let parts = parse("multipart/mixed;boundary=b", body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        // The blank line before the delimiter is part of the SDP body; only the last LF is not.
        assert_eq!(parts[0].body, b"v=0\ns=-\n");
        assert_eq!(parts[1].body, b"<r/>");
        assert_eq!(
            parts[1].header("content-disposition"),
            Some("recording-session")
        );
    }

    #[test]
    fn folded_headers_are_unfolded() {
        let body = b"--b\r\nContent-Type: application/rs-metadata+xml;\r\n\tcharset=UTF-8\r\n\r\n<x/>\r\n--b--\r\n";
        let parts = parse("multipart/mixed;boundary=b", body).unwrap();
        assert_eq!(
            parts[0].content_type,
            "application/rs-metadata+xml; charset=UTF-8"
        );
    }

    #[test]
    fn empty_parts_and_parts_without_headers() {
        let body = b"--b\r\n\r\n\r\n--b\r\nContent-Type: a/b\r\n--b\r\n\r\nplain\r\n--b--";
        let parts = parse("multipart/mixed;boundary=b", body).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].body, b"");
        assert_eq!(parts[0].content_type, "text/plain");
        assert_eq!(parts[1].content_type, "a/b");
        assert_eq!(parts[1].body, b"");
        assert_eq!(parts[2].body, b"plain");
    }

    #[test]
    fn line_that_only_starts_with_the_boundary_is_content() {
        let body = b"--b\r\n\r\n--bc\r\n--b --\r\n--b--\r\n";
        let parts = parse("multipart/mixed;boundary=b", body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"--bc\r\n--b --");
    }

    #[test]
    fn binary_body_bytes_survive() {
        let payload: Vec<u8> = (0..=255u8).chain([b'\r', b'\n', b'\r']).collect();
        let parts = vec![Part {
            content_type: "application/octet-stream".to_owned(),
            headers: vec![],
            body: payload.clone(),
        }];
        let parsed = parse(&content_type("zz9"), &build(&parts, "zz9")).unwrap();
        assert_eq!(parsed[0].body, payload);
    }

    #[test]
    fn errors_on_bad_headers_and_bodies() {
        let good = build(&siprec_parts(), "b");
        assert_eq!(
            parse("application/sdp", &good),
            Err(MultipartError::NotMultipart("application/sdp".to_owned()))
        );
        assert_eq!(
            parse("multipart/mixed", &good),
            Err(MultipartError::MissingBoundary)
        );
        assert_eq!(
            parse("multipart/mixed;boundary=\"\"", &good),
            Err(MultipartError::InvalidBoundary)
        );
        assert_eq!(
            parse("multipart/mixed;boundary=zz", &good),
            Err(MultipartError::NoDelimiter)
        );
        assert_eq!(
            parse("multipart/mixed;boundary=b", b""),
            Err(MultipartError::NoDelimiter)
        );
        assert_eq!(
            parse(
                "multipart/mixed;boundary=b",
                b"--b\r\nno colon here\r\n\r\nx\r\n--b--"
            ),
            Err(MultipartError::MalformedHeader { part: 0 })
        );
        assert_eq!(
            parse(
                "multipart/mixed;boundary=b",
                b"--b\r\n folded first\r\n\r\n--b--"
            ),
            Err(MultipartError::MalformedHeader { part: 0 })
        );
    }

    #[test]
    fn every_truncation_is_missing_its_close_delimiter() {
        let body = build(&siprec_parts(), "boundary42");
        let header = content_type("boundary42");
        // "--boundary42--" is the last complete token; any cut before it loses the close.
        let close_at = body.len() - "--boundary42--\r\n".len();
        for cut in 0..body.len() {
            let result = parse(&header, &body[..cut]);
            if cut < "--boundary42".len() {
                assert_eq!(result, Err(MultipartError::NoDelimiter), "cut {cut}");
            } else if cut < close_at + "--boundary42--".len() {
                assert_eq!(
                    result,
                    Err(MultipartError::MissingCloseDelimiter),
                    "cut {cut}"
                );
            } else {
                assert_eq!(result.unwrap(), siprec_parts(), "cut {cut}");
            }
        }
    }

    #[test]
    fn part_and_header_counts_are_bounded() {
        let many: Vec<Part> = (0..=MAX_PARTS)
            .map(|_| Part {
                content_type: "text/plain".to_owned(),
                headers: vec![],
                body: b"x".to_vec(),
            })
            .collect();
        let header = content_type("b");
        assert_eq!(
            parse(&header, &build(&many, "b")),
            Err(MultipartError::TooManyParts)
        );
        assert_eq!(
            parse(&header, &build(&many[..MAX_PARTS], "b"))
                .unwrap()
                .len(),
            MAX_PARTS
        );

        let noisy = Part {
            content_type: "text/plain".to_owned(),
            headers: (0..MAX_HEADERS_PER_PART)
                .map(|i| (format!("X-{i}"), "v".to_owned()))
                .collect(),
            body: vec![],
        };
        assert_eq!(
            parse(&header, &build(&[noisy], "b")),
            Err(MultipartError::TooManyHeaders { part: 0 })
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut state: u32 = 0x1234_5678;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let alphabet = b"-b\r\n: \t\"x;=\xff";
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() as usize) % alphabet.len()])
                .collect();
            let header = String::from_utf8_lossy(&data[..len.min(20)]).into_owned();
            let _ = parse(&header, &data);
            let _ = parse("multipart/mixed;boundary=b", &data);
            let _ = parse("multipart/mixed;boundary=\"-\"", &data);
        }
    }

    /// Some SBCs write part headers with no space after the colon (and in another case).
    #[test]
    fn part_headers_without_a_space_after_the_colon() {
        let body = b"--xyz\r\ncontent-type:application/sdp\r\n\r\nv=0\r\n\
            --xyz\r\nContent-Type:application/rs-metadata\r\n\
            Content-Disposition:recording-session\r\n\r\n<recording/>\r\n--xyz--\r\n";
        let parts = parse("multipart/mixed;boundary=xyz", body).unwrap();
        assert_eq!(parts[0].content_type, "application/sdp");
        assert_eq!(parts[0].body, b"v=0");
        let metadata = find(&parts, METADATA_CONTENT_TYPE).unwrap();
        assert_eq!(metadata.content_type, "application/rs-metadata");
        assert_eq!(
            metadata.header("content-disposition"),
            Some("recording-session")
        );
        assert_eq!(metadata.body, b"<recording/>");
    }
}
