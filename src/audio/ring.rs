//! The only way samples cross between the engine and whatever plays or records them: two
//! lock-free single-producer single-consumer rings of 48 kHz mono `f32`.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::media::FRAME_SAMPLES;

/// Capacity of each engine-side ring: 200 ms at 48 kHz, ten frames.
pub const RING_SAMPLES: usize = FRAME_SAMPLES * 10;

/// The engine's ends of the rings.
#[derive(Debug)]
pub struct AudioPorts {
    /// 48 kHz mono from the microphone (or a file, or silence).
    pub capture: Consumer<f32>,
    /// 48 kHz mono to the speaker (or a file, or nowhere).
    pub playback: Producer<f32>,
}

/// The ends an audio backend keeps: it fills `capture` and drains `playback`.
#[derive(Debug)]
pub struct DriverPorts {
    pub capture: Producer<f32>,
    pub playback: Consumer<f32>,
}

impl AudioPorts {
    /// A fresh pair of rings of [`RING_SAMPLES`] each.
    pub fn pair() -> (AudioPorts, DriverPorts) {
        let (capture_in, capture_out) = RingBuffer::new(RING_SAMPLES);
        let (playback_in, playback_out) = RingBuffer::new(RING_SAMPLES);
        (
            AudioPorts {
                capture: capture_out,
                playback: playback_in,
            },
            DriverPorts {
                capture: capture_in,
                playback: playback_out,
            },
        )
    }

    /// Fills `out` from the capture ring if it holds that many samples; otherwise takes
    /// nothing and returns false, so frames never split.
    pub fn read_capture(&mut self, out: &mut [f32]) -> bool {
        self.capture.pop_entire_slice(out).is_ok()
    }

    /// Queues `frame` for playback if it fits whole; otherwise queues nothing and returns
    /// false (the backend is not draining, so the frame is better dropped than split).
    pub fn write_playback(&mut self, frame: &[f32]) -> bool {
        self.playback.push_entire_slice(frame).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered_frame(start: usize) -> Vec<f32> {
        (start..start + FRAME_SAMPLES).map(|n| n as f32).collect()
    }

    #[test]
    fn frames_cross_both_rings_in_order_and_whole() {
        let (mut ports, mut driver) = AudioPorts::pair();
        for k in 0..3 {
            driver
                .capture
                .push_entire_slice(&numbered_frame(k * FRAME_SAMPLES))
                .unwrap();
        }
        let mut frame = vec![0.0; FRAME_SAMPLES];
        for k in 0..3 {
            assert!(ports.read_capture(&mut frame));
            assert_eq!(frame, numbered_frame(k * FRAME_SAMPLES));
        }
        assert!(!ports.read_capture(&mut frame), "the ring is empty now");

        assert!(ports.write_playback(&numbered_frame(7)));
        let mut out = vec![0.0; FRAME_SAMPLES];
        driver.playback.pop_entire_slice(&mut out).unwrap();
        assert_eq!(out, numbered_frame(7));
    }

    #[test]
    fn a_partial_frame_is_not_read_and_a_full_ring_takes_no_partial_frame() {
        let (mut ports, mut driver) = AudioPorts::pair();
        driver.capture.push_entire_slice(&[0.5; 100]).unwrap();
        let mut frame = vec![0.0; FRAME_SAMPLES];
        assert!(!ports.read_capture(&mut frame));
        assert_eq!(ports.capture.slots(), 100, "nothing was taken");

        let frames_that_fit = RING_SAMPLES / FRAME_SAMPLES;
        for _ in 0..frames_that_fit {
            assert!(ports.write_playback(&frame));
        }
        assert!(!ports.write_playback(&frame));
        assert_eq!(driver.playback.slots(), RING_SAMPLES);
    }
}
