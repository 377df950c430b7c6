//! AFL target: [`fedseg_fuzz::vector`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::vector(data));
}
