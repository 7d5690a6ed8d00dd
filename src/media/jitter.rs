//! Adaptive jitter buffer for one stream of fixed-length frames (one frame per RTP packet).
//!
//! Packets are stored by extended sequence number and played in sequence order, one per call
//! to [`JitterBuffer::pop`], which the playout side makes once per frame tick.
//!
//! Timing is measured as the playout delay: how long after the fastest recent packet's
//! arrival (in media time) the frame now due gets played, `now − timestamp − min transit`.
//! The target delay covers a high percentile of the recent transit spread, so that packets
//! arriving later than the fastest by up to that spread are still on time. When the delay
//! falls below the target, a frame is stretched (the caller conceals one frame without
//! consuming input); when it stays well above, a frame is dropped. Clock drift between the
//! sender and the playout tick shows up as a slow creep of that delay, so the same two moves
//! keep the buffer bounded under drift.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Transits kept for the spread estimate: five seconds of 20 ms frames.
const WINDOW: usize = 250;
/// The spread percentile that the target delay covers (late packets stay below 1%).
const SPREAD_PERCENTILE: usize = 99;
/// Ticks the delay must stay above the shrink threshold before a frame is dropped.
const SHRINK_PATIENCE: u32 = 50;
/// Frames concealed in a row on an empty buffer before playout goes quiet.
const MAX_CONCEALED: u32 = 3;
/// Sequence jumps shorter than this are gaps or reordering, longer ones a possible restart.
const MIN_RESTART_DISTANCE: u64 = 100;
/// Extended sequence numbers start one cycle up so that early reordering stays positive.
const SEQUENCE_BASE: u64 = 1 << 16;
/// Width of the record of played sequence numbers, to tell duplicates from late packets.
const HISTORY: u64 = 128;
/// Upper bound on stored frames whatever the configuration.
const MAX_CAPACITY: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Media per packet: 20 ms.
    pub frame: Duration,
    /// The delay never goes below this, even with no jitter: 10 ms. Frames are played at
    /// the tick after they are due, which adds up to a frame to it anyway; more would only
    /// be heard as delay, and real jitter raises the target by itself.
    pub min_delay: Duration,
    /// Nor above this, whatever the jitter: 200 ms.
    pub max_delay: Duration,
    /// RTP clock rate of the stream's timestamps.
    pub clock_rate: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
            clock_rate: crate::media::SAMPLE_RATE,
        }
    }
}

/// What to play for one frame tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a, T> {
    /// The frame due now.
    Frame(T),
    /// The frame due now is missing: conceal it. `next` is the following frame when it is
    /// already here, for in-band FEC (Opus carries the missing frame's redundancy in it).
    Lost { next: Option<&'a T> },
    /// The buffer is growing its delay by one frame: conceal (or repeat) one frame without
    /// FEC; the frame due is kept for the next tick. Not a loss.
    Stretch,
    /// Nothing to play: not started, or the stream has stopped (peer on hold, DTX, end of
    /// call). Play silence or comfort noise; no concealment.
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    pub played: u64,
    /// Frames concealed because their packet never came in time.
    pub lost: u64,
    /// Packets that came after their frame was concealed or skipped, or strays far outside
    /// the stream's sequence range; dropped.
    pub late: u64,
    /// Packets already stored or already played; dropped.
    pub duplicates: u64,
    /// Frames thrown away to shrink the delay (drift, bursts) or on overflow and restart.
    pub dropped: u64,
    /// Frames concealed to grow the delay.
    pub stretched: u64,
    /// Times the stream restarted with a new sequence base and the buffer started over.
    pub resets: u64,
    pub target_delay: Duration,
    /// The playout delay last measured (see the module documentation).
    pub buffer_level: Duration,
    pub buffered_frames: usize,
}

#[derive(Debug)]
struct Entry<T> {
    /// Extended timestamp.
    timestamp: i64,
    /// Arrival in timestamp units since the buffer's origin.
    arrival: i64,
    /// Timing epoch the transit was measured in, since comparisons across epochs mean
    /// nothing; `None` for a packet whose transit leapt and is not yet confirmed.
    epoch: Option<u32>,
    item: T,
}

/// A packet far outside the sequence range, kept until the next packet says whether it
/// started a new stream or was a stray.
#[derive(Debug)]
struct PendingRestart<T> {
    sequence: u16,
    timestamp: u32,
    now: Instant,
    item: T,
}

#[derive(Debug)]
pub struct JitterBuffer<T> {
    frame_units: i64,
    min_units: i64,
    max_units: i64,
    clock_rate: u32,
    capacity: usize,
    restart_distance: u64,
    transit_jump_units: i64,

    origin: Option<Instant>,
    entries: BTreeMap<u64, Entry<T>>,
    highest: Option<u64>,
    last_timestamp: Option<(u32, i64)>,
    pending_restart: Option<PendingRestart<T>>,

    playing: bool,
    next_play: Option<u64>,
    /// Bit i set: sequence `next_play − 1 − i` was consumed (played or dropped).
    consumed: u128,
    misses_in_a_row: u32,
    /// Frames concealed in a row on an empty buffer, handed back if the stream only paused.
    concealed_in_a_row: u64,
    above_target_ticks: u32,

    transits: VecDeque<i64>,
    sorted_scratch: Vec<i64>,
    min_transit: Option<i64>,
    reference_transit: Option<i64>,
    jumps_in_a_row: u32,
    epoch: u32,
    target_units: i64,
    last_delay_units: i64,

    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    /// A zero frame or clock rate is raised to the smallest sensible value, and a maximum
    /// delay below the minimum is raised to it, so that no configuration divides by zero.
    pub fn new(config: JitterConfig) -> Self {
        let clock_rate = config.clock_rate.max(1);
        let frame = config.frame.max(Duration::from_millis(1));
        let frame_units = to_units(frame, clock_rate).max(1);
        let min_units = to_units(config.min_delay, clock_rate);
        let max_units = to_units(config.max_delay, clock_rate).max(min_units);
        let max_frames = usize::try_from(max_units / frame_units).unwrap_or(MAX_CAPACITY);
        let capacity = max_frames
            .saturating_mul(2)
            .saturating_add(16)
            .min(MAX_CAPACITY);
        let restart_distance =
            MIN_RESTART_DISTANCE.max(u64::try_from(capacity).unwrap_or(u64::MAX) * 2);
        let transit_jump_units = to_units(Duration::from_secs(1), clock_rate).max(4 * max_units);
        Self {
            frame_units,
            min_units,
            max_units,
            clock_rate,
            capacity,
            restart_distance,
            transit_jump_units,
            origin: None,
            entries: BTreeMap::new(),
            highest: None,
            last_timestamp: None,
            pending_restart: None,
            playing: false,
            next_play: None,
            consumed: 0,
            misses_in_a_row: 0,
            concealed_in_a_row: 0,
            above_target_ticks: 0,
            transits: VecDeque::with_capacity(WINDOW + 1),
            sorted_scratch: Vec::with_capacity(WINDOW + 1),
            min_transit: None,
            reference_transit: None,
            jumps_in_a_row: 0,
            epoch: 0,
            target_units: min_units,
            last_delay_units: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        JitterStats {
            target_delay: self.to_duration(self.target_units),
            buffer_level: self.to_duration(self.last_delay_units),
            buffered_frames: self.entries.len(),
            ..self.stats
        }
    }

    /// Stores one packet's frame.
    pub fn push(&mut self, now: Instant, sequence: u16, timestamp: u32, item: T) {
        let origin = *self.origin.get_or_insert(now);
        let arrival = to_units(now.saturating_duration_since(origin), self.clock_rate);
        let Some(highest) = self.highest else {
            self.accept(
                SEQUENCE_BASE + u64::from(sequence),
                timestamp,
                arrival,
                item,
            );
            return;
        };
        // The wrapped difference read as signed is the short way round the sequence circle.
        let delta = i64::from(sequence.wrapping_sub(highest as u16) as i16);
        if delta.unsigned_abs() > self.restart_distance {
            self.consider_restart(now, sequence, timestamp, item);
            return;
        }
        if self.pending_restart.take().is_some() {
            self.stats.late += 1;
        }
        match highest.checked_add_signed(delta) {
            Some(extended) => self.accept(extended, timestamp, arrival, item),
            None => self.stats.late += 1,
        }
    }

    fn consider_restart(&mut self, now: Instant, sequence: u16, timestamp: u32, item: T) {
        match self.pending_restart.take() {
            Some(pending) if pending.sequence.wrapping_add(1) == sequence => {
                self.restart();
                let origin = self.origin.unwrap_or(now);
                for (sequence, timestamp, when, item) in [
                    (
                        pending.sequence,
                        pending.timestamp,
                        pending.now,
                        pending.item,
                    ),
                    (sequence, timestamp, now, item),
                ] {
                    let arrival = to_units(when.saturating_duration_since(origin), self.clock_rate);
                    let extended = match self.highest {
                        None => SEQUENCE_BASE + u64::from(sequence),
                        Some(highest) => highest + 1,
                    };
                    self.accept(extended, timestamp, arrival, item);
                }
            }
            stray => {
                if stray.is_some() {
                    self.stats.late += 1;
                }
                self.pending_restart = Some(PendingRestart {
                    sequence,
                    timestamp,
                    now,
                    item,
                });
            }
        }
    }

    /// The peer started a new stream: what is buffered belongs to the old one.
    fn restart(&mut self) {
        self.stats.resets += 1;
        self.stats.dropped += u64::try_from(self.entries.len()).unwrap_or(u64::MAX);
        self.entries.clear();
        self.highest = None;
        self.last_timestamp = None;
        self.playing = false;
        self.next_play = None;
        self.consumed = 0;
        self.misses_in_a_row = 0;
        self.concealed_in_a_row = 0;
        self.above_target_ticks = 0;
        self.new_timing_epoch();
        self.reference_transit = None;
    }

    fn accept(&mut self, extended: u64, timestamp: u32, arrival: i64, item: T) {
        self.highest = Some(
            self.highest
                .map_or(extended, |highest| highest.max(extended)),
        );
        if self.entries.contains_key(&extended) {
            self.stats.duplicates += 1;
            return;
        }
        if let Some(next_play) = self.next_play
            && extended < next_play
        {
            if self.was_consumed(next_play, extended) {
                self.stats.duplicates += 1;
            } else {
                // Still a sample of the network's delay, so it feeds the estimate.
                let timestamp = self.extend_timestamp(timestamp);
                self.record_transit(arrival.saturating_sub(timestamp));
                self.stats.late += 1;
            }
            return;
        }
        let timestamp = self.extend_timestamp(timestamp);
        let trusted = self.record_transit(arrival.saturating_sub(timestamp));
        self.entries.insert(
            extended,
            Entry {
                timestamp,
                arrival,
                epoch: trusted.then_some(self.epoch),
                item,
            },
        );
        while self.entries.len() > self.capacity {
            if let Some((oldest, _)) = self.entries.pop_first() {
                self.stats.dropped += 1;
                self.skip_to(oldest);
                self.advance(true);
            }
        }
    }

    fn extend_timestamp(&mut self, timestamp: u32) -> i64 {
        let extended = match self.last_timestamp {
            None => i64::from(timestamp),
            Some((raw, extended)) => {
                extended.saturating_add(i64::from(timestamp.wrapping_sub(raw) as i32))
            }
        };
        self.last_timestamp = Some((timestamp, extended));
        extended
    }

    /// Adds a transit sample; `false` when it leapt away from the previous ones and waits
    /// for the next packet to tell a stray from new timing.
    fn record_transit(&mut self, transit: i64) -> bool {
        match self.reference_transit {
            Some(reference)
                if transit.abs_diff(reference) > self.transit_jump_units.unsigned_abs() =>
            {
                // One leap is a stray; two in a row mean the timestamps or the path changed.
                self.jumps_in_a_row += 1;
                if self.jumps_in_a_row < 2 {
                    return false;
                }
                self.new_timing_epoch();
            }
            _ => self.jumps_in_a_row = 0,
        }
        self.reference_transit = Some(transit);
        self.transits.push_back(transit);
        if self.transits.len() > WINDOW {
            self.transits.pop_front();
        }
        self.update_target();
        true
    }

    fn new_timing_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.transits.clear();
        self.min_transit = None;
        self.jumps_in_a_row = 0;
    }

    fn update_target(&mut self) {
        self.sorted_scratch.clear();
        self.sorted_scratch.extend(self.transits.iter().copied());
        self.sorted_scratch.sort_unstable();
        let samples = self.sorted_scratch.len();
        let Some(&fastest) = self.sorted_scratch.first() else {
            return;
        };
        // The slowest 1 % are left out, and at least the slowest one, so that a single
        // outlier early in a call does not hold the delay up for a whole window.
        let outliers = (samples * (100 - SPREAD_PERCENTILE) / 100).max(1);
        let percentile_index = samples.saturating_sub(1 + outliers);
        let slow = self
            .sorted_scratch
            .get(percentile_index)
            .copied()
            .unwrap_or(fastest);
        self.min_transit = Some(fastest);
        // A quarter frame of margin absorbs the sampling error of the percentile.
        let wanted = slow.saturating_sub(fastest) + self.frame_units / 4;
        self.target_units = wanted.clamp(self.min_units, self.max_units);
    }

    /// How long past its earliest possible playout the entry would play at `now`, in
    /// timestamp units; `None` when its transit belongs to an older timing epoch.
    fn delay_of(&self, entry: &Entry<T>, now_units: i64) -> Option<i64> {
        let min_transit = self.min_transit?;
        let delay = now_units
            .saturating_sub(entry.timestamp)
            .saturating_sub(min_transit);
        (entry.epoch == Some(self.epoch)).then_some(delay)
    }

    fn delay_at(&self, sequence: u64, now_units: i64) -> Option<i64> {
        let entry = self.entries.get(&sequence)?;
        self.delay_of(entry, now_units)
    }

    fn was_consumed(&self, next_play: u64, sequence: u64) -> bool {
        let age = next_play - 1 - sequence;
        age < HISTORY && (self.consumed >> age) & 1 == 1
    }

    fn advance(&mut self, consumed: bool) {
        self.consumed = self.consumed << 1 | u128::from(consumed);
        self.next_play = self.next_play.map(|next| next + 1);
    }

    /// Moves the playout cursor forward to `sequence` over frames never played.
    fn skip_to(&mut self, sequence: u64) {
        let skipped = self
            .next_play
            .map_or(HISTORY, |next| sequence.saturating_sub(next));
        self.consumed = if skipped >= HISTORY {
            0
        } else {
            self.consumed << skipped
        };
        self.next_play = Some(self.next_play.map_or(sequence, |next| next.max(sequence)));
    }

    /// The frame for this tick. Call once per frame period.
    pub fn pop(&mut self, now: Instant) -> Playout<'_, T> {
        let Some(origin) = self.origin else {
            return Playout::Empty;
        };
        let now_units = to_units(now.saturating_duration_since(origin), self.clock_rate);
        if !self.playing && !self.start(now_units) {
            return Playout::Empty;
        }
        let Some(due) = self.next_play else {
            return Playout::Empty;
        };
        if self.entries.contains_key(&due) {
            if let Some(delay) = self.delay_at(due, now_units) {
                self.last_delay_units = delay;
                if delay < self.target_units {
                    self.above_target_ticks = 0;
                    self.stats.stretched += 1;
                    return Playout::Stretch;
                }
                self.shrink_if_due(delay, now_units);
            }
            return match self.take_due() {
                Some(item) => Playout::Frame(item),
                None => Playout::Empty,
            };
        }
        self.misses_in_a_row += 1;
        if self.entries.is_empty() {
            if self.misses_in_a_row > MAX_CONCEALED {
                self.go_quiet();
                return Playout::Empty;
            }
            self.concealed_in_a_row += 1;
        } else {
            self.concealed_in_a_row = 0;
        }
        self.advance(false);
        self.stats.lost += 1;
        let next = self.next_play.and_then(|next| self.entries.get(&next));
        Playout::Lost {
            next: next.map(|entry| &entry.item),
        }
    }

    /// The stream stopped rather than lost packets (hold, DTX): the sequence numbers just
    /// concealed will still come, so the cursor goes back to the first of them.
    fn go_quiet(&mut self) {
        self.playing = false;
        let rewind = self.concealed_in_a_row.min(HISTORY - 1);
        self.next_play = self.next_play.map(|next| next.saturating_sub(rewind));
        self.consumed >>= rewind;
        self.concealed_in_a_row = 0;
    }

    /// Starts (or restarts after an underrun) when the earliest frame has waited the target.
    fn start(&mut self, now_units: i64) -> bool {
        let Some((&first, entry)) = self.entries.first_key_value() else {
            return false;
        };
        // Without a transit in this epoch the frame's own waiting time is all there is.
        let delay = self
            .delay_of(entry, now_units)
            .unwrap_or(now_units.saturating_sub(entry.arrival));
        if delay < self.target_units {
            return false;
        }
        self.skip_to(first);
        // After a stall the oldest frames are already too old: start at the first that is not.
        while self.entries.len() > 1 {
            let Some(due) = self.next_play else { break };
            let too_old = self
                .delay_at(due, now_units)
                .is_some_and(|delay| delay > self.target_units + self.frame_units);
            if !too_old {
                break;
            }
            self.entries.remove(&due);
            self.stats.dropped += 1;
            self.advance(true);
            if let Some((&next, _)) = self.entries.first_key_value() {
                self.skip_to(next);
            }
        }
        self.playing = true;
        self.misses_in_a_row = 0;
        self.above_target_ticks = 0;
        true
    }

    /// Drops the due frame when the delay has stayed a frame and a half over the target
    /// (so that it is still at or over the target afterwards), or at once while it is over
    /// the maximum, and only when the following frame is here to play instead.
    fn shrink_if_due(&mut self, mut delay: i64, now_units: i64) {
        let threshold = self.target_units + self.frame_units + self.frame_units / 2;
        if delay > threshold {
            self.above_target_ticks += 1;
        } else {
            self.above_target_ticks = 0;
        }
        let too_long = self.max_units + self.frame_units;
        while self.above_target_ticks >= SHRINK_PATIENCE || delay > too_long {
            let Some(due) = self.next_play else { return };
            let Some(following) = self.delay_at(due + 1, now_units) else {
                return;
            };
            self.entries.remove(&due);
            self.advance(true);
            self.stats.dropped += 1;
            self.above_target_ticks = 0;
            delay = following;
            self.last_delay_units = delay;
        }
    }

    fn take_due(&mut self) -> Option<T> {
        let due = self.next_play?;
        let entry = self.entries.remove(&due)?;
        self.advance(true);
        self.misses_in_a_row = 0;
        self.concealed_in_a_row = 0;
        self.stats.played += 1;
        Some(entry.item)
    }

    fn to_duration(&self, units: i64) -> Duration {
        let units = u64::try_from(units).unwrap_or(0);
        let nanos = u128::from(units) * 1_000_000_000 / u128::from(self.clock_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

fn to_units(duration: Duration, clock_rate: u32) -> i64 {
    let units = duration.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
    i64::try_from(units).unwrap_or(i64::MAX)
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

    const FRAME_NS: u64 = 20_000_000;
    const FRAME_TICKS: u32 = 960;

    /// A 20 ms floor: a whole frame, so that where each frame lands is easy to follow.
    fn twenty_ms() -> JitterConfig {
        JitterConfig {
            min_delay: Duration::from_millis(20),
            ..JitterConfig::default()
        }
    }

    /// Deterministic randomness for the simulations.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        Frame(u32),
        Lost(Option<u32>),
        Stretch,
        Empty,
    }

    #[derive(Debug, Clone, Copy)]
    struct Arrival {
        at_ns: u64,
        sequence: u16,
        timestamp: u32,
        id: u32,
    }

    /// Packet `id` of a stream sent every `interval_ns`, delayed by `delay_ns`.
    fn packet(id: u32, interval_ns: u64, delay_ns: u64, base_seq: u16, base_ts: u32) -> Arrival {
        Arrival {
            at_ns: u64::from(id) * interval_ns + delay_ns,
            sequence: base_seq.wrapping_add(id as u16),
            timestamp: base_ts.wrapping_add(id.wrapping_mul(FRAME_TICKS)),
            id,
        }
    }

    /// Runs the arrivals and `ticks` playout ticks (at `phase_ns + k × 20 ms`) in virtual
    /// time; `observe` sees the buffer after every tick.
    fn simulate(
        buffer: &mut JitterBuffer<u32>,
        mut arrivals: Vec<Arrival>,
        ticks: u64,
        phase_ns: u64,
        mut observe: impl FnMut(u64, &JitterBuffer<u32>),
    ) -> Vec<Out> {
        let origin = Instant::now();
        arrivals.sort_by_key(|arrival| arrival.at_ns);
        let mut pending = arrivals.into_iter().peekable();
        let mut outs = Vec::new();
        for tick in 0..ticks {
            let tick_ns = phase_ns + tick * FRAME_NS;
            while let Some(arrival) = pending.next_if(|arrival| arrival.at_ns <= tick_ns) {
                let at = origin + Duration::from_nanos(arrival.at_ns);
                buffer.push(at, arrival.sequence, arrival.timestamp, arrival.id);
            }
            let out = match buffer.pop(origin + Duration::from_nanos(tick_ns)) {
                Playout::Frame(id) => Out::Frame(id),
                Playout::Lost { next } => Out::Lost(next.copied()),
                Playout::Stretch => Out::Stretch,
                Playout::Empty => Out::Empty,
            };
            outs.push(out);
            observe(tick, buffer);
        }
        outs
    }

    fn frames(outs: &[Out]) -> Vec<u32> {
        outs.iter()
            .filter_map(|out| match out {
                Out::Frame(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn count(outs: &[Out], wanted: Out) -> usize {
        outs.iter()
            .filter(|out| std::mem::discriminant(*out) == std::mem::discriminant(&wanted))
            .count()
    }

    /// Outcomes between the first frame and the tick of the last frame.
    fn mid_stream(outs: &[Out]) -> &[Out] {
        let first = outs.iter().position(|out| matches!(out, Out::Frame(_)));
        let last = outs.iter().rposition(|out| matches!(out, Out::Frame(_)));
        match (first, last) {
            (Some(first), Some(last)) => &outs[first..=last],
            _ => &[],
        }
    }

    /// The default floor is 10 ms: a packet that came 17 ms before a tick is played at it,
    /// where a 20 ms floor waits a frame more.
    #[test]
    fn by_default_a_clean_stream_waits_at_least_10_ms() {
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let arrivals = (0..500)
            .map(|id| packet(id, FRAME_NS, 3_000_000, 65_400, 4_000_000_000))
            .collect();
        let outs = simulate(&mut buffer, arrivals, 520, 0, |_, _| {});
        assert_eq!(&outs[..2], &[Out::Empty, Out::Frame(0)]);
        assert_eq!(frames(&outs), (0..500).collect::<Vec<_>>());
        assert_eq!(mid_stream(&outs).len(), 500, "no gap, stretch or drop");
        // 7 ms before the tick is too little: it waits for the next.
        let mut buffer = JitterBuffer::new(JitterConfig::default());
        let arrivals = (0..50)
            .map(|id| packet(id, FRAME_NS, 13_000_000, 65_400, 4_000_000_000))
            .collect();
        let outs = simulate(&mut buffer, arrivals, 60, 0, |_, _| {});
        assert_eq!(&outs[..3], &[Out::Empty, Out::Empty, Out::Frame(0)]);
    }

    #[test]
    fn in_order_stream_plays_every_frame_after_min_delay() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let arrivals = (0..500)
            .map(|id| packet(id, FRAME_NS, 3_000_000, 65_400, 4_000_000_000))
            .collect();
        let outs = simulate(&mut buffer, arrivals, 520, 0, |_, _| {});
        // First packet at 3 ms: 17 ms waited at the 20 ms tick, 37 ms at the 40 ms tick.
        assert_eq!(&outs[..2], &[Out::Empty, Out::Empty]);
        assert_eq!(outs[2], Out::Frame(0));
        assert_eq!(frames(&outs), (0..500).collect::<Vec<_>>());
        assert_eq!(mid_stream(&outs).len(), 500, "no gap, stretch or drop");
        let stats = buffer.stats();
        assert_eq!(stats.played, 500);
        assert_eq!(
            (stats.lost, stats.late, stats.dropped, stats.stretched),
            (3, 0, 0, 0),
            "three frames concealed after the end, then quiet"
        );
        assert_eq!(stats.target_delay, Duration::from_millis(20));
        assert_eq!(outs[505..], [Out::Empty; 15]);
    }

    #[test]
    fn reordering_within_the_target_is_repaired() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        // Every even packet is 25 ms late and so arrives after the odd one that follows it.
        let arrivals = (0..400)
            .map(|id| {
                let delay = if id % 2 == 0 { 25_000_000 } else { 0 };
                packet(id, FRAME_NS, delay, 100, 0)
            })
            .collect();
        let outs = simulate(&mut buffer, arrivals, 420, 0, |_, _| {});
        assert_eq!(frames(&outs), (0..400).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.dropped), (0, 0));
        assert_eq!(count(mid_stream(&outs), Out::Lost(None)), 0);
        assert_eq!(
            stats.target_delay,
            Duration::from_millis(30),
            "25 ms spread + margin"
        );
    }

    #[test]
    fn five_percent_loss_is_concealed_without_going_quiet() {
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buffer = JitterBuffer::new(twenty_ms());
        let total = 3000u32;
        let mut dropped_ids = Vec::new();
        let arrivals = (0..total)
            .filter(|&id| {
                let keep = id < 5 || id >= total - 5 || random.below(100) >= 5;
                if !keep {
                    dropped_ids.push(id);
                }
                keep
            })
            .map(|id| packet(id, FRAME_NS, 7_000_000, 0, 0))
            .collect();
        let outs = simulate(&mut buffer, arrivals, u64::from(total) + 20, 0, |_, _| {});
        let mid = mid_stream(&outs);
        assert_eq!(count(mid, Out::Empty), 0);
        assert_eq!(count(mid, Out::Stretch), 0);
        let lost = count(mid, Out::Lost(None));
        assert_eq!(
            lost,
            dropped_ids.len(),
            "each missing packet is one concealed frame"
        );
        let share = lost as f64 / f64::from(total);
        assert!((0.04..0.06).contains(&share), "loss share {share}");
        // Where only one packet is missing, the next one is offered for FEC.
        for (index, out) in mid.iter().enumerate() {
            if let Out::Lost(next) = out
                && let Some(Out::Frame(following)) = mid.get(index + 1)
            {
                assert_eq!(*next, Some(*following));
            }
        }
        let played = frames(&outs);
        assert_eq!(played.len() + dropped_ids.len(), total as usize);
        assert!(played.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn forty_ms_jitter_raises_the_target_and_then_under_one_percent_is_late() {
        let mut random = XorShift(0x1234_5678_9abc_def1);
        let mut buffer = JitterBuffer::new(twenty_ms());
        let total = 3000u32;
        let arrivals = (0..total)
            .map(|id| packet(id, FRAME_NS, 5_000_000 + random.below(40_000_000), 9, 9))
            .collect();
        let warm_up_ticks = 500;
        let mut at_warm_up = JitterStats::default();
        let outs = simulate(
            &mut buffer,
            arrivals,
            u64::from(total) + 20,
            1_000_000,
            |tick, buffer| {
                if tick == warm_up_ticks {
                    at_warm_up = buffer.stats();
                }
            },
        );
        let stats = buffer.stats();
        let target = stats.target_delay;
        assert!(
            target >= Duration::from_millis(40) && target <= Duration::from_millis(50),
            "target {target:?}"
        );
        let late = stats.late - at_warm_up.late;
        let lost = stats.lost - at_warm_up.lost;
        let later_packets = u64::from(total) - warm_up_ticks;
        assert!(late * 100 < later_packets, "{late} late of {later_packets}");
        // Three frames are concealed after the last packet.
        assert!((lost - 3) * 100 < later_packets, "{lost} lost");
        assert_eq!(count(mid_stream(&outs), Out::Empty), 0);
        let played = frames(&outs);
        assert!(played.windows(2).all(|pair| pair[0] < pair[1]));
    }

    /// Ten minutes of a sender whose clock runs `numerator / 1000` times real speed.
    fn drifting_sender(numerator: u64) -> (Vec<Out>, JitterStats, usize, Duration) {
        let mut random = XorShift(0x0dd_ba11_cafe_f00d);
        let mut buffer = JitterBuffer::new(twenty_ms());
        let total = 30_000u32;
        let interval_ns = FRAME_NS * 1000 / numerator;
        let arrivals = (0..total)
            .map(|id| packet(id, interval_ns, 10_000_000 + random.below(5_000_000), 0, 0))
            .collect();
        let mut most_buffered = 0;
        let mut longest_delay = Duration::ZERO;
        let outs = simulate(&mut buffer, arrivals, 30_100, 0, |tick, buffer| {
            if tick > 500 && tick < 29_900 {
                let stats = buffer.stats();
                most_buffered = most_buffered.max(stats.buffered_frames);
                longest_delay = longest_delay.max(stats.buffer_level);
            }
        });
        (outs, buffer.stats(), most_buffered, longest_delay)
    }

    #[test]
    fn fast_sender_clock_does_not_grow_the_buffer() {
        let (outs, stats, most_buffered, longest_delay) = drifting_sender(1001);
        // Left alone, 0.1 % over ten minutes would pile up 30 frames (600 ms).
        assert!(most_buffered <= 5, "{most_buffered} frames buffered");
        assert!(
            longest_delay <= Duration::from_millis(80),
            "{longest_delay:?}"
        );
        assert!(
            (20..=40).contains(&stats.dropped),
            "{} dropped",
            stats.dropped
        );
        assert_eq!(count(mid_stream(&outs), Out::Empty), 0);
        assert_eq!(count(mid_stream(&outs), Out::Lost(None)), 0);
        assert_eq!(stats.late, 0);
    }

    #[test]
    fn slow_sender_clock_does_not_underrun() {
        let (outs, stats, most_buffered, longest_delay) = drifting_sender(999);
        let mid = mid_stream(&outs);
        assert_eq!(count(mid, Out::Empty), 0);
        assert_eq!(count(mid, Out::Lost(None)), 0);
        assert_eq!(stats.late, 0);
        // The 30 frames of drift are made up by stretching, not by losses.
        assert!(
            (20..=40).contains(&stats.stretched),
            "{} stretched",
            stats.stretched
        );
        assert!(most_buffered <= 5, "{most_buffered} frames buffered");
        assert!(
            longest_delay <= Duration::from_millis(80),
            "{longest_delay:?}"
        );
    }

    #[test]
    fn duplicates_never_play_twice() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let mut arrivals = Vec::new();
        for id in 0..300 {
            arrivals.push(packet(id, FRAME_NS, 2_000_000, 500, 0));
            // One copy right behind, one long after the original has played.
            arrivals.push(packet(id, FRAME_NS, 3_000_000, 500, 0));
            if id % 3 == 0 {
                arrivals.push(packet(id, FRAME_NS, 90_000_000, 500, 0));
            }
        }
        let outs = simulate(&mut buffer, arrivals, 320, 0, |_, _| {});
        assert_eq!(frames(&outs), (0..300).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!(stats.duplicates, 400);
        assert_eq!(stats.late, 0);
    }

    #[test]
    fn late_packet_is_concealed_then_counted_late() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let arrivals = (0..100)
            .map(|id| {
                let delay = if id == 50 { 300_000_000 } else { 1_000_000 };
                packet(id, FRAME_NS, delay, 0, 0)
            })
            .collect();
        let outs = simulate(&mut buffer, arrivals, 110, 0, |_, _| {});
        let played = frames(&outs);
        assert_eq!(played.len(), 99);
        assert!(!played.contains(&50));
        let stats = buffer.stats();
        assert_eq!(stats.late, 1);
        assert_eq!(count(mid_stream(&outs), Out::Lost(None)), 1);
        assert_eq!(
            stats.target_delay,
            Duration::from_millis(20),
            "one outlier does not hold the delay up"
        );
    }

    #[test]
    fn stream_on_hold_goes_quiet_then_resumes() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        // 100 frames, a 3 s pause in sending (timestamps keep running), 100 more.
        let arrivals = (0..100)
            .chain(250..350)
            .map(|id| packet(id, FRAME_NS, 5_000_000, 0, 0))
            .map(|arrival| Arrival {
                sequence: if arrival.id >= 250 {
                    arrival.sequence.wrapping_sub(150)
                } else {
                    arrival.sequence
                },
                ..arrival
            })
            .collect();
        let outs = simulate(&mut buffer, arrivals, 360, 0, |_, _| {});
        let played = frames(&outs);
        assert_eq!(played, (0..100).chain(250..350).collect::<Vec<_>>());
        let mid = mid_stream(&outs);
        assert_eq!(
            count(mid, Out::Lost(None)),
            3,
            "a few concealed frames, no storm"
        );
        assert!(count(mid, Out::Empty) >= 140);
        assert_eq!(buffer.stats().late, 0);
    }

    #[test]
    fn stream_restart_with_a_new_sequence_base_recovers() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let first: Vec<Arrival> = (0..100)
            .map(|id| packet(id, FRAME_NS, 4_000_000, 65_500, 1_000))
            .collect();
        // The new stream continues in time but with new random sequence and timestamp bases.
        let second: Vec<Arrival> = (100..200)
            .map(|id| {
                let arrival = packet(id, FRAME_NS, 4_000_000, 0, 0);
                Arrival {
                    sequence: 30_000u16.wrapping_add(id as u16),
                    timestamp: 3_000_000_000u32.wrapping_add(id * FRAME_TICKS),
                    ..arrival
                }
            })
            .collect();
        let arrivals = first.into_iter().chain(second).collect();
        let outs = simulate(&mut buffer, arrivals, 220, 0, |_, _| {});
        let played = frames(&outs);
        let (old, new): (Vec<u32>, Vec<u32>) = played.iter().partition(|&&id| id < 100);
        assert_eq!(new, (100..200).collect::<Vec<_>>());
        assert!(
            old.len() >= 97,
            "only the frames still buffered at the restart go"
        );
        assert_eq!(old, (0..old.len() as u32).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!(stats.resets, 1);
        assert_eq!(stats.late, 0);
    }

    #[test]
    fn a_single_stray_far_packet_does_not_reset() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let mut arrivals: Vec<Arrival> = (0..200)
            .map(|id| packet(id, FRAME_NS, 4_000_000, 0, 0))
            .collect();
        arrivals.push(Arrival {
            at_ns: 2_000_000_000 + 1,
            sequence: 20_000,
            timestamp: 5,
            id: 9999,
        });
        let outs = simulate(&mut buffer, arrivals, 220, 0, |_, _| {});
        assert_eq!(frames(&outs), (0..200).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!((stats.resets, stats.late), (0, 1));
    }

    #[test]
    fn timestamp_jump_with_continuous_sequence_keeps_playing() {
        let mut buffer = JitterBuffer::new(twenty_ms());
        let arrivals = (0..300)
            .map(|id| {
                let arrival = packet(id, FRAME_NS, 6_000_000, 0, 0);
                if id >= 150 {
                    // A media server switched sources: timestamps leap, sequence continues.
                    Arrival {
                        timestamp: arrival.timestamp.wrapping_add(2_000_000_000),
                        ..arrival
                    }
                } else {
                    arrival
                }
            })
            .collect();
        let outs = simulate(&mut buffer, arrivals, 320, 0, |_, _| {});
        assert_eq!(frames(&outs), (0..300).collect::<Vec<_>>());
        let stats = buffer.stats();
        assert_eq!((stats.late, stats.dropped, stats.lost), (0, 0, 3));
    }

    #[test]
    fn arbitrary_input_never_panics_and_stays_bounded() {
        let mut random = XorShift(0xfeed_face_dead_beef);
        let origin = Instant::now() + Duration::from_secs(1000);
        for config in [
            JitterConfig::default(),
            JitterConfig {
                frame: Duration::ZERO,
                min_delay: Duration::from_secs(5),
                max_delay: Duration::ZERO,
                clock_rate: 0,
            },
            JitterConfig {
                clock_rate: 8000,
                max_delay: Duration::from_secs(3600),
                ..JitterConfig::default()
            },
        ] {
            let mut buffer: JitterBuffer<u64> = JitterBuffer::new(config);
            let mut now_ms: u64 = 1000;
            let mut sequence: u16 = 0;
            for step in 0..40_000u64 {
                let roll = random.next();
                now_ms = match roll % 10 {
                    0 => now_ms.saturating_sub(roll % 900),
                    1 => now_ms + roll % 100_000,
                    _ => now_ms + roll % 30,
                };
                sequence = match (roll >> 8) % 4 {
                    0 => (roll >> 16) as u16,
                    1 => sequence.wrapping_sub(((roll >> 16) % 50) as u16),
                    _ => sequence.wrapping_add(1),
                };
                let now = origin - Duration::from_secs(1) + Duration::from_millis(now_ms);
                if roll >> 62 == 0 {
                    let _ = buffer.pop(now);
                } else {
                    buffer.push(now, sequence, (roll >> 32) as u32, step);
                }
                assert!(buffer.stats().buffered_frames <= buffer.capacity);
            }
        }
    }
}
