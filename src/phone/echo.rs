//! The built-in echo test: `sip:echo@verbatim.invalid` reaches a second phone in this
//! process, on loopback, that answers every call and sends back what it hears a second
//! later. It is an ordinary SIP peer (its own engine and sockets), so a call to it goes
//! through everything a real call does: SIP, SDP, RTP, the codecs, and recording.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::driver::media::{AudioFactory, CallAudio};
use crate::driver::{self, DriverConfig};
use crate::engine::{EngineConfig, Event};
use crate::media::FRAME_SAMPLES;
use crate::sdp::Codec;
use crate::sip::transport::Destination;
use crate::sip::uri::Uri;

/// The host name of the echo test: `.invalid` never resolves (RFC 2606), so nothing else
/// can answer to it.
pub const ECHO_HOST: &str = "verbatim.invalid";
/// What the user dials.
pub const ECHO_URI: &str = "sip:echo@verbatim.invalid";
/// How long the echo waits before playing back: long enough to hear oneself apart.
pub const ECHO_DELAY_FRAMES: usize = 50;

/// Whether `target` is the echo test.
pub fn is_echo(target: &Uri) -> bool {
    target.host.eq_ignore_ascii_case(ECHO_HOST)
}

/// The running echo peer: where to send its calls. Dropping it ends it.
#[derive(Debug)]
pub struct EchoPeer {
    pub destination: Destination,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoPeer {
    /// Starts the echo phone on 127.0.0.1 (a free port), answering every call in one of
    /// `codecs`.
    pub async fn start(codecs: Vec<Codec>) -> Result<EchoPeer, String> {
        let audio: AudioFactory = Arc::new(|_call| Box::new(EchoAudio::default()));
        let handle = driver::start(
            super::live_engine_config(EngineConfig {
                contact_user: "echo".into(),
                codecs,
                ..EngineConfig::default()
            }),
            DriverConfig {
                listen: Some(core::net::SocketAddr::from(([127, 0, 0, 1], 0))),
                audio: Some(audio),
                ..DriverConfig::default()
            },
        )
        .await
        .map_err(|e| format!("the echo test cannot start: {e}"))?;
        let destination = handle
            .listeners
            .first()
            .copied()
            .ok_or("the echo test has no address")?;
        let mut phone = super::Phone::new(handle, super::RecordingPolicy::default());
        let task = tokio::spawn(async move {
            while let Some(event) = phone.handle.events.recv().await {
                if let Event::IncomingCall { call, .. } = event
                    && let Err(problem) = phone.answer(call).await
                {
                    tracing::warn!(%problem, "the echo test could not answer");
                }
            }
        });
        Ok(EchoPeer { destination, task })
    }
}

/// A delay line: what the caller said comes back [`ECHO_DELAY_FRAMES`] frames later.
#[derive(Debug)]
pub struct EchoAudio {
    heard: VecDeque<f32>,
}

impl Default for EchoAudio {
    fn default() -> Self {
        EchoAudio {
            heard: VecDeque::with_capacity((ECHO_DELAY_FRAMES + 2) * FRAME_SAMPLES),
        }
    }
}

impl CallAudio for EchoAudio {
    fn capture(&mut self, frame: &mut [f32]) {
        if self.heard.len() < ECHO_DELAY_FRAMES * FRAME_SAMPLES {
            frame.fill(0.0);
            return;
        }
        for sample in frame.iter_mut() {
            *sample = self.heard.pop_front().unwrap_or(0.0);
        }
    }

    fn play(&mut self, frame: &[f32]) {
        self.heard.extend(frame.iter().copied());
        // Never more than the delay plus a frame: a stalled capture must not grow it.
        let limit = (ECHO_DELAY_FRAMES + 1) * FRAME_SAMPLES;
        if self.heard.len() > limit {
            let excess = self.heard.len() - limit;
            self.heard.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_heard_comes_back_a_second_later() {
        let mut echo = EchoAudio::default();
        let mut out = vec![0.0f32; FRAME_SAMPLES];
        for n in 0..ECHO_DELAY_FRAMES {
            let said = vec![n as f32 + 1.0; FRAME_SAMPLES];
            echo.capture(&mut out);
            assert!(out.iter().all(|s| *s == 0.0), "silence before the delay");
            echo.play(&said);
        }
        for n in 0..10 {
            echo.capture(&mut out);
            assert!(
                out.iter().all(|s| *s == n as f32 + 1.0),
                "frame {n} comes back"
            );
            echo.play(&vec![0.0; FRAME_SAMPLES]);
        }
    }

    #[test]
    fn the_echo_is_recognised_by_its_host() {
        assert!(is_echo(&Uri::parse(ECHO_URI).unwrap()));
        assert!(is_echo(
            &Uri::parse("sip:anything@Verbatim.Invalid").unwrap()
        ));
        assert!(!is_echo(&Uri::parse("sip:echo@example.com").unwrap()));
    }
}
