//! AFL target: [`fedseg_fuzz::identity`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::identity(data));
}
