//! AFL target: [`fedseg_fuzz::wire`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::wire(data));
}
