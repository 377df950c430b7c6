//! AFL target: [`fedseg_fuzz::ledger`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::ledger(data));
}
