#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| verbatim::fuzzing::sdp_offer_answer(data));
