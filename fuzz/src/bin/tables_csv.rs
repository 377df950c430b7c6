//! AFL target: [`fedseg_fuzz::tables_csv`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::tables_csv(data));
}
