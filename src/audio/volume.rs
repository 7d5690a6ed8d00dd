//! Input and output volume, set from the settings screen while calls run: two atomics that
//! the call's audio reads every frame, so a change is heard within 20 ms and nothing locks.

use core::sync::atomic::{AtomicU32, Ordering};

/// The highest volume, in percent: twice the device's own level.
pub const MAX_VOLUME_PERCENT: u16 = 200;

#[derive(Debug)]
pub struct Volumes {
    input: AtomicU32,
    output: AtomicU32,
}

impl Default for Volumes {
    fn default() -> Self {
        Volumes::new(100, 100)
    }
}

impl Volumes {
    pub fn new(input_percent: u16, output_percent: u16) -> Volumes {
        Volumes {
            input: AtomicU32::new(u32::from(input_percent.min(MAX_VOLUME_PERCENT))),
            output: AtomicU32::new(u32::from(output_percent.min(MAX_VOLUME_PERCENT))),
        }
    }

    pub fn set(&self, input_percent: u16, output_percent: u16) {
        let clamp = |p: u16| u32::from(p.min(MAX_VOLUME_PERCENT));
        self.input.store(clamp(input_percent), Ordering::Relaxed);
        self.output.store(clamp(output_percent), Ordering::Relaxed);
    }

    pub fn percents(&self) -> (u16, u16) {
        let read = |a: &AtomicU32| u16::try_from(a.load(Ordering::Relaxed)).unwrap_or(100);
        (read(&self.input), read(&self.output))
    }

    /// Scales the microphone's frame in place.
    pub fn apply_input(&self, frame: &mut [f32]) {
        scale(frame, self.input.load(Ordering::Relaxed));
    }

    /// Scales what goes to the speaker in place.
    pub fn apply_output(&self, frame: &mut [f32]) {
        scale(frame, self.output.load(Ordering::Relaxed));
    }
}

fn scale(frame: &mut [f32], percent: u32) {
    if percent == 100 {
        return;
    }
    let gain = percent as f32 / 100.0;
    for sample in frame {
        *sample = (*sample * gain).clamp(-1.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_scale_and_clip_and_stay_in_range() {
        let volumes = Volumes::new(50, 100);
        let mut frame = [0.5f32, -0.8];
        volumes.apply_input(&mut frame);
        assert_eq!(frame, [0.25, -0.4]);
        let mut untouched = [0.3f32];
        volumes.apply_output(&mut untouched);
        assert_eq!(untouched, [0.3]);
        volumes.set(100, 500);
        assert_eq!(volumes.percents(), (100, MAX_VOLUME_PERCENT));
        let mut loud = [0.8f32, -0.9];
        volumes.apply_output(&mut loud);
        assert_eq!(loud, [1.0, -1.0], "clipped, never beyond full scale");
        volumes.set(0, 100);
        let mut muted = [0.7f32];
        volumes.apply_input(&mut muted);
        assert_eq!(muted, [0.0]);
    }
}
