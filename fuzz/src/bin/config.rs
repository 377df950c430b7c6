//! AFL target: [`fedseg_fuzz::config`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::config(data));
}
