//! The Session Recording Client (RFC 7866): recording sessions beside calls, the streams that
//! forward or transcode each side of the call, the recording SDP, and RFC 7865 metadata.

pub mod forwarder;
pub mod metadata;
pub mod rs_sdp;
pub mod transcoder;
