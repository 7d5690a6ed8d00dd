//! Dialog state (RFC 3261 12): identifiers, CSeq spaces, remote target, route set, and the
//! construction of requests inside the dialog.

use super::message::{Message, Method};
use super::transport::{Destination, Transport};
use super::uri::{NameAddr, Uri};

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
}

impl Dialog {
    /// The dialog a UAS sets up for an initial request (RFC 3261 12.1.1): the peer's tag and
    /// identity from From, ours from To, its Contact (or, lacking one, its From URI) as the
    /// remote target, its Record-Route as the route set. None without From, To or Call-ID.
    pub fn from_request_as_uas(
        request: &Message,
        local_tag: String,
        local_contact: String,
    ) -> Option<Dialog> {
        let without_tag = |mut name: NameAddr| {
            name.params
                .retain(|(key, _)| !key.eq_ignore_ascii_case("tag"));
            name
        };
        let from = request.from_header().ok()?;
        let to = request.to_header().ok()?;
        let remote_target = request
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map_or_else(|| from.uri.clone(), |c| c.uri);
        Some(Dialog {
            call_id: request.call_id()?.to_owned(),
            local_tag,
            remote_tag: from.tag().map(str::to_owned),
            local_uri: without_tag(to),
            remote_uri: without_tag(from),
            local_cseq: 0,
            remote_cseq: request.cseq().ok().map(|c| c.number),
            remote_target,
            route_set: request
                .headers
                .list("Record-Route")
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_contact,
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

    /// Fills in what the UAC learns from a 1xx/2xx with a To tag (RFC 3261 12.1.2).
    pub fn establish_as_uac(&mut self, response: &Message) {
        if let Ok(to) = response.to_header()
            && let Some(tag) = to.tag()
        {
            self.remote_tag = Some(tag.to_owned());
        }
        if let Some(contact) = response.contacts().ok().and_then(|c| c.into_iter().next()) {
            self.remote_target = contact.uri;
        }
        let mut routes: Vec<String> = response
            .headers
            .list("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        routes.reverse();
        self.route_set = routes;
    }

    /// A remote target refresh (re-INVITE, UPDATE or their 2xx) replaces the remote target.
    pub fn refresh_target(&mut self, message: &Message) {
        if let Some(contact) = message.contacts().ok().and_then(|c| c.into_iter().next()) {
            self.remote_target = contact.uri;
        }
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
    /// needs a DNS lookup, in which case the caller keeps using the dialog's first hop.
    pub fn next_hop(&self, default_transport: Transport) -> Option<Destination> {
        let uri = match self.route_set.first() {
            Some(route) => NameAddr::parse(route).ok()?.uri,
            None => self.remote_target.clone(),
        };
        let ip = uri.host_ip()?;
        let transport =
            uri.transport_param()
                .unwrap_or(if matches!(uri.scheme, super::uri::Scheme::Sips) {
                    Transport::Tls
                } else {
                    default_transport
                });
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
        }
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
        d.establish_as_uac(&resp);
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
