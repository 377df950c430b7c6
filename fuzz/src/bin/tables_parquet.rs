//! AFL target: [`fedseg_fuzz::tables_parquet`].
fn main() {
    afl::fuzz!(|data: &[u8]| fedseg_fuzz::tables_parquet(data));
}
