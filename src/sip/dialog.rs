//! Dialog state (RFC 3261 12): identifiers, CSeq spaces, remote target, route set, and the
//! construction of requests inside the dialog.

use super::message::{Message, Method};
use super::transport::{Destination, Transport};
use super::uri::{NameAddr, Scheme, Uri};

/// How the dialog's later requests must travel. A dialog set up over TLS keeps TLS for its
/// whole life (RFC 3261 12.1.1 and 12.1.2, RFC 5630): were a later hop plain, a re-INVITE
/// would carry SRTP keys (SDES) in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialogSecurity {
    /// Set up over UDP or TCP: hops follow the URIs.
    #[default]
    Open,
    /// Set up over TLS to a `sip:` URI: every hop is TLS; a URI that names another transport
    /// is refused.
    Tls,
    /// Set up to a `sips:` URI (RFC 3261's secure flag): every target and route must be
    /// `sips:` too.
    Sips,
}

impl DialogSecurity {
    /// The security of a dialog whose first request went to `uri` over `transport`.
    pub fn of(uri: &Uri, transport: Transport) -> DialogSecurity {
        match (&uri.scheme, transport) {
            (Scheme::Sips, _) => DialogSecurity::Sips,
            (_, Transport::Tls) => DialogSecurity::Tls,
            _ => DialogSecurity::Open,
        }
    }

    pub fn is_secure(self) -> bool {
        self != DialogSecurity::Open
    }

    /// Refuses a remote target or route set that would leave TLS, naming the first URI that
    /// would. A route that does not parse is named too: its hop cannot be known to be TLS.
    fn check(self, target: &Uri, routes: &[String]) -> Result<(), LeavesTls> {
        if !self.is_secure() {
            return Ok(());
        }
        if !self.admits(target) {
            return Err(LeavesTls {
                uri: target.to_string(),
            });
        }
        for route in routes {
            match NameAddr::parse(route) {
                Ok(hop) if self.admits(&hop.uri) => {}
                _ => {
                    return Err(LeavesTls {
                        uri: route.trim_matches(['<', '>']).to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether a remote target or route may serve this dialog.
    fn admits(self, uri: &Uri) -> bool {
        let transport = uri.param("transport").flatten();
        let names_tls = transport.is_some_and(|t| t.eq_ignore_ascii_case("tls"));
        match (self, &uri.scheme) {
            (DialogSecurity::Open, _) => true,
            // `sips:...;transport=tcp` is TLS over TCP (RFC 5630 3.1.3); UDP cannot carry it.
            (_, Scheme::Sips) => !transport.is_some_and(|t| t.eq_ignore_ascii_case("udp")),
            (DialogSecurity::Tls, Scheme::Sip) => transport.is_none() || names_tls,
            _ => false,
        }
    }
}

/// The reason phrase for refusing a request whose Contact or Record-Route would take a
/// secure dialog off TLS.
pub const LEAVES_TLS_PHRASE: &str = "Contact Would Leave TLS";

/// A response or request would move a secure dialog off TLS: the URI it named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{uri} would take the dialog off TLS")]
pub struct LeavesTls {
    pub uri: String,
}

/// Why a UAS cannot set up a dialog for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UasDialogError {
    #[error("missing From, To or Call-ID")]
    Malformed,
    #[error(transparent)]
    LeavesTls(#[from] LeavesTls),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    /// Absent until the peer's first response with a To tag (UAC side).
    pub remote_tag: Option<String>,
    /// Our From (UAC) or To (UAS) value without tag.
    pub local_uri: NameAddr,
    pub remote_uri: NameAddr,
    pub local_cseq: u32,
    pub remote_cseq: Option<u32>,
    /// Where in-dialog requests go: the peer's Contact, refreshed by target refresh requests.
    pub remote_target: Uri,
    /// Record-Route values in the order our requests must carry them as Route.
    pub route_set: Vec<String>,
    /// Our Contact header value.
    pub local_contact: String,
    pub security: DialogSecurity,
}

impl Dialog {
    /// The dialog a UAS sets up for an initial request (RFC 3261 12.1.1): the peer's tag and
    /// identity from From, ours from To, its Contact (or, lacking one, its From URI) as the
    /// remote target, its Record-Route as the route set. A request that came over TLS sets up
    /// a secure dialog, and is refused when its Contact or Record-Route would leave TLS.
    pub fn from_request_as_uas(
        request: &Message,
        local_tag: String,
        local_contact: String,
        arrived_over: Transport,
    ) -> Result<Dialog, UasDialogError> {
        let without_tag = |mut name: NameAddr| {
            name.params
                .retain(|(key, _)| !key.eq_ignore_ascii_case("tag"));
            name
        };
        let from = request
            .from_header()
            .map_err(|_| UasDialogError::Malformed)?;
        let to = request.to_header().map_err(|_| UasDialogError::Malformed)?;
        let call_id = request.call_id().ok_or(UasDialogError::Malformed)?;
        let remote_target = request
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map_or_else(|| from.uri.clone(), |c| c.uri);
        let security = match (request.request_uri(), arrived_over) {
            (Some(uri), Transport::Tls) => DialogSecurity::of(uri, Transport::Tls),
            _ => DialogSecurity::Open,
        };
        let route_set: Vec<String> = request
            .headers
            .list("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        security.check(&remote_target, &route_set)?;
        Ok(Dialog {
            call_id: call_id.to_owned(),
            local_tag,
            remote_tag: from.tag().map(str::to_owned),
            local_uri: without_tag(to),
            remote_uri: without_tag(from),
            local_cseq: 0,
            remote_cseq: request.cseq().ok().map(|c| c.number),
            remote_target,
            route_set,
            local_contact,
            security,
        })
    }

    /// Dialog identity check for an incoming in-dialog request: its To tag is ours and its
    /// From tag is the peer's.
    pub fn matches_request(&self, request: &Message) -> bool {
        let (Ok(from), Ok(to)) = (request.from_header(), request.to_header()) else {
            return false;
        };
        request.call_id() == Some(self.call_id.as_str())
            && to.tag() == Some(self.local_tag.as_str())
            && from.tag() == self.remote_tag.as_deref()
    }

    /// Fills in what the UAC learns from a 1xx/2xx with a To tag (RFC 3261 12.1.2). A secure
    /// dialog takes the tag but keeps its target and routes when the response would move it
    /// off TLS; the caller then ends the session, still over TLS.
    pub fn establish_as_uac(&mut self, response: &Message) -> Result<(), LeavesTls> {
        if let Ok(to) = response.to_header()
            && let Some(tag) = to.tag()
        {
            self.remote_tag = Some(tag.to_owned());
        }
        let target = response
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri);
        let mut routes: Vec<String> = response
            .headers
            .list("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        routes.reverse();
        self.security
            .check(target.as_ref().unwrap_or(&self.remote_target), &routes)?;
        if let Some(target) = target {
            self.remote_target = target;
        }
        self.route_set = routes;
        Ok(())
    }

    /// A remote target refresh (re-INVITE, UPDATE or their 2xx) replaces the remote target,
    /// unless the new one would leave TLS.
    pub fn refresh_target(&mut self, message: &Message) -> Result<(), LeavesTls> {
        if let Some(contact) = message.contacts().ok().and_then(|c| c.into_iter().next()) {
            self.security.check(&contact.uri, &[])?;
            self.remote_target = contact.uri;
        }
        Ok(())
    }

    /// Builds a request inside the dialog with a fresh CSeq (RFC 3261 12.2.1.1). The caller
    /// adds the Via.
    pub fn request(&mut self, method: Method) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.request_with_cseq(method, self.local_cseq)
    }

    /// ACK and CANCEL reuse the CSeq number of the INVITE they belong to.
    pub fn request_with_cseq(&self, method: Method, cseq: u32) -> Message {
        let strict_first_route = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok().filter(|na| !na.uri.has_param("lr")));
        let (uri, routes): (Uri, Vec<String>) = match strict_first_route {
            // A strict router takes the Request-URI slot and our target goes last (12.2.1.1).
            Some(first) => {
                let mut rest: Vec<String> = self.route_set.iter().skip(1).cloned().collect();
                rest.push(format!("<{}>", self.remote_target));
                (first.uri, rest)
            }
            None => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut msg = Message::request(method.clone(), uri);
        msg.headers.push("Max-Forwards", "70");
        msg.headers.push(
            "From",
            self.local_uri.clone().with_tag(&self.local_tag).to_string(),
        );
        let to = match &self.remote_tag {
            Some(tag) => self.remote_uri.clone().with_tag(tag),
            None => self.remote_uri.clone(),
        };
        msg.headers.push("To", to.to_string());
        msg.headers.push("Call-ID", self.call_id.clone());
        msg.headers.push("CSeq", format!("{cseq} {method}"));
        for route in routes {
            msg.headers.push("Route", route);
        }
        if method != Method::Ack && method != Method::Cancel && method != Method::Bye {
            msg.headers.push("Contact", self.local_contact.clone());
        }
        msg
    }

    /// Where an in-dialog request goes when the next hop is a literal address; `None` when it
    /// needs a DNS lookup, in which case the caller keeps using the dialog's first hop. A
    /// secure dialog's hop is always TLS, whatever a URI says.
    pub fn next_hop(&self, default_transport: Transport) -> Option<Destination> {
        let uri = match self.route_set.first() {
            Some(route) => NameAddr::parse(route).ok()?.uri,
            None => self.remote_target.clone(),
        };
        let ip = uri.host_ip()?;
        let transport = if self.security.is_secure() || matches!(uri.scheme, Scheme::Sips) {
            Transport::Tls
        } else {
            uri.transport_param().unwrap_or(default_transport)
        };
        let port = uri.port.unwrap_or(transport.default_port());
        Some(Destination::new(
            transport,
            core::net::SocketAddr::new(ip, port),
        ))
    }

    /// Checks an in-dialog request's CSeq against the last one (RFC 3261 12.2.2): lower
    /// numbers are out of order and get a 500.
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if self.remote_cseq.is_some_and(|last| cseq < last) {
            return false;
        }
        self.remote_cseq = Some(cseq);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog() -> Dialog {
        Dialog {
            call_id: "c1".into(),
            local_tag: "l1".into(),
            remote_tag: Some("r1".into()),
            local_uri: NameAddr::parse("<sip:alice@a.example>").unwrap(),
            remote_uri: NameAddr::parse("<sip:bob@b.example>").unwrap(),
            local_cseq: 1,
            remote_cseq: None,
            remote_target: Uri::parse("sip:bob@192.0.2.4:5070").unwrap(),
            route_set: Vec::new(),
            local_contact: "<sip:alice@192.0.2.1:5060>".into(),
            security: DialogSecurity::Open,
        }
    }

    fn ok_with(contact: &str, record_routes: &str) -> Message {
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sips:alice@a.example>;tag=l1\r\nTo: <sips:bob@b.example>;tag=xyz\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{record_routes}Contact: {contact}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn secure(security: DialogSecurity) -> Dialog {
        Dialog {
            remote_tag: None,
            remote_target: Uri::parse("sips:bob@192.0.2.4:5061").unwrap(),
            security,
            ..dialog()
        }
    }

    #[test]
    fn security_follows_the_first_request() {
        let sips = Uri::parse("sips:srs@192.0.2.4").unwrap();
        let sip = Uri::parse("sip:srs@192.0.2.4;transport=tls").unwrap();
        assert_eq!(
            DialogSecurity::of(&sips, Transport::Tls),
            DialogSecurity::Sips
        );
        assert_eq!(
            DialogSecurity::of(&sip, Transport::Tls),
            DialogSecurity::Tls
        );
        assert_eq!(
            DialogSecurity::of(&sip, Transport::Tcp),
            DialogSecurity::Open
        );
    }

    #[test]
    fn a_sips_dialog_refuses_a_plain_contact_and_keeps_its_target() {
        for contact in [
            "<sip:srs@192.0.2.9:5060;transport=tcp>",
            "<sip:srs@192.0.2.9:5060>",
            "<sips:srs@192.0.2.9:5060;transport=udp>",
        ] {
            let mut d = secure(DialogSecurity::Sips);
            let err = d.establish_as_uac(&ok_with(contact, "")).unwrap_err();
            assert_eq!(format!("<{}>", err.uri), contact);
            assert_eq!(
                d.remote_tag.as_deref(),
                Some("xyz"),
                "the tag is still learnt"
            );
            assert_eq!(d.remote_target.to_string(), "sips:bob@192.0.2.4:5061");
            let hop = d.next_hop(Transport::Tls).unwrap();
            assert_eq!(hop.transport, Transport::Tls);
            assert_eq!(hop.address.to_string(), "192.0.2.4:5061");
        }
    }

    #[test]
    fn a_sips_dialog_refuses_a_plain_record_route() {
        let mut d = secure(DialogSecurity::Sips);
        let err = d
            .establish_as_uac(&ok_with(
                "<sips:srs@192.0.2.9:5061>",
                "Record-Route: <sip:192.0.2.7;lr>\r\n",
            ))
            .unwrap_err();
        assert_eq!(err.uri, "sip:192.0.2.7;lr");
        assert!(d.route_set.is_empty());
    }

    #[test]
    fn a_secure_dialog_takes_tls_targets_and_always_sends_over_tls() {
        let mut d = secure(DialogSecurity::Sips);
        d.establish_as_uac(&ok_with(
            "<sips:srs@192.0.2.9:5071;transport=tcp>",
            "Record-Route: <sips:192.0.2.7;lr>\r\n",
        ))
        .unwrap();
        let hop = d.next_hop(Transport::Tls).unwrap();
        assert_eq!(
            hop,
            Destination::new(Transport::Tls, "192.0.2.7:5061".parse().unwrap())
        );
        let mut d = secure(DialogSecurity::Tls);
        d.establish_as_uac(&ok_with("<sip:srs@192.0.2.9:5071;transport=tls>", ""))
            .unwrap();
        d.establish_as_uac(&ok_with("<sip:srs@192.0.2.9:5072>", ""))
            .unwrap();
        let hop = d.next_hop(Transport::Udp).unwrap();
        assert_eq!(
            hop,
            Destination::new(Transport::Tls, "192.0.2.9:5072".parse().unwrap())
        );
        let err = d
            .establish_as_uac(&ok_with("<sip:srs@192.0.2.9:5060;transport=tcp>", ""))
            .unwrap_err();
        assert!(err.uri.contains("transport=tcp"), "{err}");
    }

    #[test]
    fn a_target_refresh_cannot_leave_tls() {
        let mut d = secure(DialogSecurity::Tls);
        let refresh = ok_with("<sip:srs@192.0.2.9:5060;transport=udp>", "");
        assert!(d.refresh_target(&refresh).is_err());
        assert_eq!(d.remote_target.to_string(), "sips:bob@192.0.2.4:5061");
        let mut open = dialog();
        open.refresh_target(&refresh).unwrap();
        assert_eq!(
            open.next_hop(Transport::Tcp).unwrap().transport,
            Transport::Udp
        );
    }

    #[test]
    fn a_request_over_tls_sets_up_a_secure_dialog_or_is_refused() {
        let invite = |contact: &str| {
            let text = format!(
                "INVITE sips:alice@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK1\r\nFrom: <sips:srs@b.example>;tag=r1\r\nTo: <sips:alice@a.example>\r\nCall-ID: c9\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
            );
            Message::parse(text.as_bytes()).unwrap()
        };
        let good = invite("<sips:srs@192.0.2.9>");
        let d =
            Dialog::from_request_as_uas(&good, "l".into(), String::new(), Transport::Tls).unwrap();
        assert_eq!(d.security, DialogSecurity::Sips);
        let plain = invite("<sip:srs@192.0.2.9;transport=tcp>");
        assert!(matches!(
            Dialog::from_request_as_uas(&plain, "l".into(), String::new(), Transport::Tls),
            Err(UasDialogError::LeavesTls(_))
        ));
        let d =
            Dialog::from_request_as_uas(&plain, "l".into(), String::new(), Transport::Tcp).unwrap();
        assert_eq!(d.security, DialogSecurity::Open);
    }

    #[test]
    fn loose_route_set_keeps_target_as_request_uri() {
        let mut d = dialog();
        d.route_set = vec!["<sip:192.0.2.9:5060;lr>".into()];
        let bye = d.request(Method::Bye);
        assert_eq!(
            bye.request_uri().unwrap().to_string(),
            "sip:bob@192.0.2.4:5070"
        );
        assert_eq!(bye.headers.all("Route"), vec!["<sip:192.0.2.9:5060;lr>"]);
        assert_eq!(bye.cseq().unwrap().number, 2);
        assert_eq!(
            d.next_hop(Transport::Udp).unwrap().address.to_string(),
            "192.0.2.9:5060"
        );
    }

    #[test]
    fn strict_router_takes_the_request_uri() {
        let mut d = dialog();
        d.route_set = vec!["<sip:192.0.2.9>".into(), "<sip:192.0.2.10;lr>".into()];
        let req = d.request(Method::Invite);
        assert_eq!(req.request_uri().unwrap().to_string(), "sip:192.0.2.9");
        let routes = req.headers.all("Route");
        assert_eq!(routes.last().copied(), Some("<sip:bob@192.0.2.4:5070>"));
    }

    #[test]
    fn uac_learns_tag_target_and_reversed_routes() {
        let mut d = dialog();
        d.remote_tag = None;
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:alice@a.example>;tag=l1\r\nTo: <sip:bob@b.example>;tag=xyz\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:p2;lr>, <sip:p1;lr>\r\nContact: <sip:bob@192.0.2.77:5999>\r\nContent-Length: 0\r\n\r\n";
        let resp = Message::parse(text.as_bytes()).unwrap();
        d.establish_as_uac(&resp).unwrap();
        assert_eq!(d.remote_tag.as_deref(), Some("xyz"));
        assert_eq!(d.remote_target.port, Some(5999));
        assert_eq!(d.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
    }

    #[test]
    fn out_of_order_cseq_is_refused() {
        let mut d = dialog();
        assert!(d.accept_remote_cseq(5));
        assert!(d.accept_remote_cseq(6));
        assert!(!d.accept_remote_cseq(4));
    }
}
