//! AFL target: [`fedseg_fuzz::journal`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::journal(data));
}
