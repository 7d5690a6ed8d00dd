//! The Session Recording Client (RFC 7866): recording sessions beside calls, the streams that
//! forward or transcode each side of the call, the recording SDP, and RFC 7865 metadata.

pub mod forwarder;
pub mod metadata;
pub mod notice;
pub mod outgoing;
pub mod rs_sdp;
pub mod stream_reports;
pub mod transcoder;

use crate::sip::transport::Transport;
use crate::sip::uri::{Scheme, Uri};

/// Recording sessions go over TCP unless the URI says otherwise (sips: means TLS): their
/// INVITEs carry SDP and metadata, well past what UDP carries safely (RFC 3261 18.1.1).
pub fn recorder_transport(uri: &Uri) -> Option<Transport> {
    if uri.transport_param().is_some() || matches!(uri.scheme, Scheme::Sips) {
        None
    } else {
        Some(Transport::Tcp)
    }
}
