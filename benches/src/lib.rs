//! Shared helpers of the criterion benchmarks in `benches/benches/`: synthetic flow
//! data and packets loaded from the shared captures.
