//! AFL target: [`fedseg_fuzz::result_json`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::result_json(data));
}
