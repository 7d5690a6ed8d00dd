//! ITU-T G.711 companding: μ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).
//!
//! Both laws squeeze a linear sample into 8 bits: a sign, a 3-bit segment (an octave of the
//! magnitude) and a 4-bit position inside the segment. μ-law works on 14-bit magnitudes and A-law
//! on 13-bit ones; here both take and give 16-bit samples, so the encoder drops the 2 (μ-law) or
//! 3 (A-law) low bits and the decoder returns the middle of the quantisation interval, scaled
//! back to 16 bits.
//!
//! Negative samples are folded with a one's complement (`!x`, i.e. `-x - 1`) rather than a
//! negation, as G.191's reference encoder does: the quantiser is then a mirror image around
//! -0.5, and `i16::MIN` needs no special case.
//!
//! Decoding goes through 256-entry tables computed at compile time; encoding finds the segment
//! from the position of the magnitude's highest set bit.

/// Added to the 14-bit μ-law magnitude so that every segment starts at a power of two.
const ULAW_BIAS: i32 = 33;
/// Largest biased μ-law magnitude that still fits segment 7 (a decoded magnitude of 8158).
const ULAW_BIASED_MAX: i32 = 0x1FFF;
/// A-law's transmitted code has its even bits inverted.
const ALAW_EVEN_BITS: u8 = 0x55;
/// μ-law's transmitted code has all bits inverted.
const ULAW_INVERSION: u8 = 0xFF;
/// Full scale of the f32 sample format: ±1.0 maps onto the i16 range.
const F32_SCALE: f32 = 32_768.0;

static ULAW_TABLE: [i16; 256] = build_table(Law::Ulaw);
static ALAW_TABLE: [i16; 256] = build_table(Law::Alaw);

#[derive(Clone, Copy)]
enum Law {
    Ulaw,
    Alaw,
}

#[allow(
    clippy::indexing_slicing,
    reason = "only evaluated at compile time, where an index out of range fails the build"
)]
const fn build_table(law: Law) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut code = 0usize;
    while code < 256 {
        table[code] = match law {
            Law::Ulaw => ulaw_decode_uncached(code as u8),
            Law::Alaw => alaw_decode_uncached(code as u8),
        };
        code += 1;
    }
    table
}

/// Decodes a μ-law code: sign bit 0 (after inversion) is positive, the magnitude is the middle
/// of the interval `((2m + 33) << s) - 33` in 14-bit units.
const fn ulaw_decode_uncached(code: u8) -> i16 {
    let bits = code ^ ULAW_INVERSION;
    let segment = ((bits >> 4) & 0x07) as i32;
    let mantissa = (bits & 0x0F) as i32;
    let magnitude = (((2 * mantissa + ULAW_BIAS) << segment) - ULAW_BIAS) << 2;
    if bits & 0x80 == 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Decodes an A-law code: sign bit 1 (after un-inverting the even bits) is positive; segment 0
/// is linear with steps of 2, segment `s` ≥ 1 spans `[16 << s, 32 << s)` with steps of `1 << s`
/// in 13-bit units.
const fn alaw_decode_uncached(code: u8) -> i16 {
    let bits = code ^ ALAW_EVEN_BITS;
    let segment = ((bits >> 4) & 0x07) as i32;
    let mantissa = (bits & 0x0F) as i32;
    let magnitude = if segment == 0 {
        2 * mantissa + 1
    } else {
        (2 * mantissa + 33) << (segment - 1)
    } << 3;
    if bits & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// Splits a sample into its sign bit (`true` for non-negative) and a magnitude in which
/// negative values are one's-complemented.
fn fold(sample: i16) -> (bool, i32) {
    if sample >= 0 {
        (true, i32::from(sample))
    } else {
        (false, i32::from(!sample))
    }
}

/// Encodes one 16-bit linear sample as a μ-law code.
pub fn ulaw_encode(sample: i16) -> u8 {
    let (positive, magnitude) = fold(sample);
    let biased = ((magnitude >> 2) + ULAW_BIAS).min(ULAW_BIASED_MAX);
    // `biased` lies in [32, 8192): its highest set bit is bit 5 + segment.
    let segment = (31 - biased.leading_zeros() as i32 - 5).clamp(0, 7);
    let mantissa = (biased >> (segment + 1)) & 0x0F;
    let sign = if positive { 0x00 } else { 0x80 };
    let bits = sign | (segment << 4) | mantissa;
    (bits as u8) ^ ULAW_INVERSION
}

/// Decodes one μ-law code to a 16-bit linear sample (at most ±32124).
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE.get(usize::from(code)).copied().unwrap_or(0)
}

/// Encodes one 16-bit linear sample as an A-law code.
pub fn alaw_encode(sample: i16) -> u8 {
    let (positive, magnitude) = fold(sample);
    // 13-bit magnitude in [0, 4096): segment 0 covers [0, 32), segment s ≥ 1 covers
    // [16 << s, 32 << s).
    let magnitude = magnitude >> 3;
    let (segment, mantissa) = if magnitude < 32 {
        (0, magnitude >> 1)
    } else {
        let segment = (31 - magnitude.leading_zeros() as i32 - 4).clamp(1, 7);
        (segment, (magnitude >> segment) & 0x0F)
    };
    let sign = if positive { 0x80 } else { 0x00 };
    let bits = sign | (segment << 4) | mantissa;
    (bits as u8) ^ ALAW_EVEN_BITS
}

/// Decodes one A-law code to a 16-bit linear sample (at most ±32256, never zero).
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE.get(usize::from(code)).copied().unwrap_or(0)
}

/// Converts a float sample (full scale ±1.0) to 16 bits, saturating outside the range; NaN
/// becomes silence.
pub fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates at the i16 bounds and maps NaN to 0.
    (sample * F32_SCALE).round() as i16
}

/// Converts a 16-bit sample to a float with full scale ±1.0.
pub fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / F32_SCALE
}

/// Appends the μ-law codes of `samples` to `out`.
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| ulaw_encode(s)));
}

/// Appends the samples decoded from μ-law `codes` to `out`.
pub fn decode_ulaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| ulaw_decode(c)));
}

/// Appends the A-law codes of `samples` to `out`.
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| alaw_encode(s)));
}

/// Appends the samples decoded from A-law `codes` to `out`.
pub fn decode_alaw(codes: &[u8], out: &mut Vec<i16>) {
    out.extend(codes.iter().map(|&c| alaw_decode(c)));
}

/// Appends the μ-law codes of float `samples` (full scale ±1.0, saturating) to `out`.
pub fn encode_ulaw_f32(samples: &[f32], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| ulaw_encode(f32_to_i16(s))));
}

/// Appends the float samples (full scale ±1.0) decoded from μ-law `codes` to `out`.
pub fn decode_ulaw_f32(codes: &[u8], out: &mut Vec<f32>) {
    out.extend(codes.iter().map(|&c| i16_to_f32(ulaw_decode(c))));
}

/// Appends the A-law codes of float `samples` (full scale ±1.0, saturating) to `out`.
pub fn encode_alaw_f32(samples: &[f32], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| alaw_encode(f32_to_i16(s))));
}

/// Appends the float samples (full scale ±1.0) decoded from A-law `codes` to `out`.
pub fn decode_alaw_f32(codes: &[u8], out: &mut Vec<f32>) {
    out.extend(codes.iter().map(|&c| i16_to_f32(alaw_decode(c))));
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

    #[test]
    fn ulaw_known_code_points() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        // The G.711 table in 14-bit units: +30..+1 in 15 intervals of 2 from 0xF0 on (0xF0 is
        // the top one, 29..31, decoded 30), +94..+31 in 16 intervals of 4 from 0xE0 on (0xEF is
        // the bottom one, 31..35, decoded 33).
        assert_eq!(ulaw_decode(0xF0), 30 * 4);
        assert_eq!(ulaw_decode(0xEF), 33 * 4);
        assert_eq!(ulaw_encode(30 * 4), 0xF0);
        assert_eq!(ulaw_encode(31 * 4), 0xEF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn alaw_known_code_points() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn tables_match_the_segment_formulas() {
        for code in 0..=255u8 {
            assert_eq!(ULAW_TABLE[usize::from(code)], ulaw_decode_uncached(code));
            assert_eq!(ALAW_TABLE[usize::from(code)], alaw_decode_uncached(code));
        }
    }

    #[test]
    fn every_ulaw_code_reencodes_to_itself_except_negative_zero() {
        for code in 0..=255u8 {
            let again = ulaw_encode(ulaw_decode(code));
            if code == 0x7F {
                assert_eq!(again, 0xFF, "negative zero becomes positive zero");
            } else {
                assert_eq!(again, code, "code {code:#04x}");
            }
        }
    }

    #[test]
    fn every_alaw_code_reencodes_to_itself() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "code {code:#04x}");
        }
    }

    #[test]
    fn decoded_values_are_symmetric_and_distinct() {
        let mut ulaw: Vec<i16> = (0..=255u8).map(ulaw_decode).collect();
        let mut alaw: Vec<i16> = (0..=255u8).map(alaw_decode).collect();
        for code in 0..=127u8 {
            assert_eq!(ulaw_decode(code), -ulaw_decode(code | 0x80));
            assert_eq!(alaw_decode(code), -alaw_decode(code | 0x80));
        }
        ulaw.sort_unstable();
        ulaw.dedup();
        alaw.sort_unstable();
        alaw.dedup();
        assert_eq!(ulaw.len(), 255, "only μ-law zero has two codes");
        assert_eq!(alaw.len(), 256);
    }

    fn assert_monotonic(encode: fn(i16) -> u8, decode: fn(u8) -> i16) {
        let mut previous = decode(encode(i16::MIN));
        for sample in i16::MIN..=i16::MAX {
            let level = decode(encode(sample));
            assert!(level >= previous, "sample {sample}: {level} < {previous}");
            previous = level;
        }
    }

    #[test]
    fn ulaw_encoding_is_monotonic() {
        assert_monotonic(ulaw_encode, ulaw_decode);
    }

    #[test]
    fn alaw_encoding_is_monotonic() {
        assert_monotonic(alaw_encode, alaw_decode);
    }

    #[test]
    fn ulaw_error_stays_within_half_a_step() {
        for sample in i16::MIN..=i16::MAX {
            let code = ulaw_encode(sample);
            let decoded = i32::from(ulaw_decode(code));
            let segment = i32::from(((code ^ ULAW_INVERSION) >> 4) & 0x07);
            // The step is 2 << segment in 14-bit units; the dropped 2 low bits add up to 4.
            let half_step = 4 << segment;
            let error = (decoded - i32::from(sample)).abs();
            if i32::from(sample).abs() > 32124 + half_step {
                assert_eq!(decoded.abs(), 32124, "clipped at full scale");
            } else {
                assert!(error <= half_step + 4, "sample {sample}: error {error}");
            }
        }
    }

    #[test]
    fn alaw_error_stays_within_half_a_step() {
        for sample in i16::MIN..=i16::MAX {
            let code = alaw_encode(sample);
            let decoded = i32::from(alaw_decode(code));
            let segment = i32::from(((code ^ ALAW_EVEN_BITS) >> 4) & 0x07);
            // The step is 2 (segments 0 and 1) or 1 << segment in 13-bit units; the dropped 3
            // low bits add up to 8.
            let half_step = 8 << (segment - 1).max(0);
            let error = (decoded - i32::from(sample)).abs();
            assert!(error <= half_step + 8, "sample {sample}: error {error}");
        }
    }

    #[test]
    fn float_conversion_saturates() {
        assert_eq!(f32_to_i16(0.0), 0);
        assert_eq!(f32_to_i16(1.0), i16::MAX);
        assert_eq!(f32_to_i16(2.5), i16::MAX);
        assert_eq!(f32_to_i16(-1.0), i16::MIN);
        assert_eq!(f32_to_i16(-7.0), i16::MIN);
        assert_eq!(f32_to_i16(f32::NAN), 0);
        assert_eq!(f32_to_i16(0.5), 16384);
        assert_eq!(i16_to_f32(i16::MIN), -1.0);
        assert_eq!(i16_to_f32(16384), 0.5);
    }

    #[test]
    fn slice_helpers_append_and_round_trip() {
        let samples: Vec<i16> = (-20..20).map(|i| i * 1500).collect();
        let mut ulaw = vec![0xAB];
        encode_ulaw(&samples, &mut ulaw);
        assert_eq!(ulaw.len(), samples.len() + 1);
        assert_eq!(ulaw[0], 0xAB, "existing content is kept");
        let mut back = Vec::new();
        decode_ulaw(&ulaw[1..], &mut back);
        let mut alaw = Vec::new();
        encode_alaw(&samples, &mut alaw);
        let mut back_alaw = Vec::new();
        decode_alaw(&alaw, &mut back_alaw);
        for ((&s, &u), &a) in samples.iter().zip(&back).zip(&back_alaw) {
            // Largest step (segment 7) is 1024 for both laws.
            assert!((i32::from(s) - i32::from(u)).abs() <= 512 + 4, "{s} -> {u}");
            assert!((i32::from(s) - i32::from(a)).abs() <= 512 + 8, "{s} -> {a}");
        }
    }

    #[test]
    fn float_helpers_round_trip_within_companding_error() {
        let samples: Vec<f32> = (0..200).map(|i| (i as f32 * 0.07).sin() * 0.8).collect();
        for (encode, decode) in [
            (
                encode_ulaw_f32 as fn(&[f32], &mut Vec<u8>),
                decode_ulaw_f32 as fn(&[u8], &mut Vec<f32>),
            ),
            (encode_alaw_f32, decode_alaw_f32),
        ] {
            let mut codes = Vec::new();
            encode(&samples, &mut codes);
            let mut back = Vec::new();
            decode(&codes, &mut back);
            assert_eq!(back.len(), samples.len());
            for (&s, &b) in samples.iter().zip(&back) {
                // Companding keeps the relative error near 3 % (half of a 1/16 segment step).
                assert!((s - b).abs() <= s.abs() * 0.035 + 0.001, "{s} -> {b}");
            }
        }
    }
}
