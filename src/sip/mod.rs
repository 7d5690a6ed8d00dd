//! SIP: messages, framing, transactions, dialogs, digest auth and server location.

pub mod auth;
pub mod conference_info;
pub mod dialog;
pub mod framing;
pub mod locate;
pub mod message;
pub mod multipart;
pub mod replaces;
pub mod session_id;
pub mod session_timer;
pub mod transaction;
pub mod transport;
pub mod uri;

pub use message::{Message, Method};
pub use transport::{Destination, Transport};
pub use uri::{NameAddr, Uri};
