//! The backend with no device: capture is silence at 48 kHz, playback goes nowhere. It does
//! nothing until pumped, so the caller's clock (real or virtual) sets the pace.

use std::time::Duration;

use super::ring::{AudioPorts, DriverPorts};
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};

/// Drives the far end of a pair of null ports.
#[derive(Debug)]
pub struct NullPump {
    driver: DriverPorts,
    elapsed: Duration,
    samples_made: u128,
    silence: Vec<f32>,
}

/// Engine ports whose far end is a [`NullPump`].
pub fn null_ports() -> (AudioPorts, NullPump) {
    let (ports, driver) = AudioPorts::pair();
    let pump = NullPump {
        driver,
        elapsed: Duration::ZERO,
        samples_made: 0,
        silence: vec![0.0; FRAME_SAMPLES],
    };
    (ports, pump)
}

/// What one pump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pumped {
    /// Silent samples put in the capture ring.
    pub captured: usize,
    /// Silent samples that did not fit because the engine is not reading.
    pub overflowed: usize,
    /// Playback samples thrown away.
    pub discarded: usize,
}

impl NullPump {
    /// Accounts for `elapsed` more time: adds that much silence to the capture ring (48 samples
    /// a millisecond, fractions carried over to the next call) and empties the playback ring.
    pub fn pump(&mut self, elapsed: Duration) -> Pumped {
        self.elapsed = self.elapsed.saturating_add(elapsed);
        let due = self.elapsed.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
        let mut owed = usize::try_from(due.saturating_sub(self.samples_made)).unwrap_or(usize::MAX);
        self.samples_made = due;
        let mut pumped = Pumped::default();
        while owed > 0 {
            let len = owed.min(self.silence.len());
            let silence = self.silence.get(..len).unwrap_or_default();
            let (taken, left) = self.driver.capture.push_partial_slice(silence);
            pumped.captured += taken.len();
            pumped.overflowed += left.len();
            owed -= len;
        }
        pumped.discarded = self.discard_playback();
        pumped
    }

    /// One 20 ms frame's worth of [`NullPump::pump`].
    pub fn pump_frame(&mut self) -> Pumped {
        self.pump(Duration::from_millis(20))
    }

    fn discard_playback(&mut self) -> usize {
        let queued = self.driver.playback.slots();
        match self.driver.playback.read_chunk(queued) {
            Ok(chunk) => {
                chunk.commit_all();
                queued
            }
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_silence_at_48_khz_with_fractions_carried() {
        let (mut ports, mut pump) = null_ports();
        // 7 ms and 13 ms are 336 and 624 samples; 20.5 ms then adds 984.
        assert_eq!(pump.pump(Duration::from_millis(7)).captured, 336);
        assert_eq!(pump.pump(Duration::from_millis(13)).captured, 624);
        let mut frame = vec![1.0; FRAME_SAMPLES];
        assert!(ports.read_capture(&mut frame));
        assert!(frame.iter().all(|&s| s == 0.0));
        assert_eq!(pump.pump(Duration::from_micros(20_500)).captured, 984);
        // 1/48 ms at a time: each call owes less than a sample until the 48th.
        let tick = Duration::from_nanos(20_833);
        let total: usize = (0..480).map(|_| pump.pump(tick).captured).sum();
        assert_eq!(
            total, 479,
            "479.99 samples are due after 480 ticks of 20.833 us"
        );
    }

    #[test]
    fn playback_is_discarded_and_a_full_capture_ring_overflows() {
        let (mut ports, mut pump) = null_ports();
        assert!(ports.write_playback(&[0.25; FRAME_SAMPLES]));
        assert!(ports.write_playback(&[0.25; FRAME_SAMPLES]));
        let pumped = pump.pump_frame();
        assert_eq!(pumped.discarded, 2 * FRAME_SAMPLES);
        assert_eq!(ports.playback.slots(), super::super::RING_SAMPLES);

        let pumped = pump.pump(Duration::from_millis(300));
        assert_eq!(pumped.captured, super::super::RING_SAMPLES - FRAME_SAMPLES);
        assert_eq!(pumped.overflowed, 300 * 48 - pumped.captured);
    }
}
