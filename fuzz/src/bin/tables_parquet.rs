//! AFL target: [`fedseg_fuzz::tables_parquet`].
//!
//! Without afl's panic hook: the `parquet` crate panics on some malformed
//! files (four places found by this target), and the participant's reader
//! catches those panics and turns them into a read error naming the file
//! (`rfmlt::reader::parquet_step`). The hook would abort on a caught panic;
//! without it, a panic that escapes the target still aborts (afl.rs checks
//! every run's unwinding), so only the reader's own handling is credited.
fn main() {
    afl::fuzz_nohook!(|data: &[u8]| fedseg_fuzz::tables_parquet(data));
}
