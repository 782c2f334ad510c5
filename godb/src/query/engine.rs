//! Running a statement: plan the days from metadata, open only the columns the query
//! and its condition need, then decode and aggregate the blocks on worker threads
//! (crossbeam scoped threads), order and cut.
//!
//! A block is decoded in two steps: its columns are checked and decompressed once
//! ([`RawBlock`], values still in their stored width; a framed block's frames stay
//! compressed), then widened a range of rows at a time (a framed block's frames
//! decompressed then) into small buffers that stay in the cache while they are
//! aggregated. A
//! scan thus never holds a whole block at full width (eight bytes per counter and
//! row): fresh memory, which the kernel has to zero, was most of a short query's cost.
//!
//! Two ways to share the work:
//!
//! - groupings by address (many keys) on several workers: the blocks are cut into
//!   chunks, each chunk widened once and aggregated by every worker, each keeping
//!   only the keys it owns by hash (disjoint tables, nothing merged; see `Board`).
//!   For groupings by addresses alone (talk_*), the worker that widens a chunk also
//!   keys, run-sums and hashes its rows and sorts them out by owner (`Partition`),
//!   so that every worker adds only its own rows instead of reading all of them;
//! - other groupings (few keys): the workers pull block after block (or chunk after
//!   chunk, when there are fewer blocks than the workers could share) from a shared
//!   counter, each into its own complete table, and the tables are merged.
//!
//! A block that fails to decode is reported in the result and left out; the other
//! blocks are unaffected. The tables' memory is tracked across workers: when it would
//! pass the statement's limit, the run stops with [`QueryError::MemoryLimit`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::aggregate::{finish_cut, CounterCols, Cut, Key, Partition, Table};
use super::audit::{Problem, ProblemKind};
use super::condition::Cols;
use super::error::QueryError;
use super::result::{QueryResult, SkippedBlock};
use super::statement::Statement;
use crate::{
    BlockData, BlockError, Column, ColumnSet, Database, DayReader, IpColumn, RawBlock, ScanRequest,
};

/// The columns `stmt` reads: its attributes, its condition's, and the four counters.
pub fn needed_columns(stmt: &Statement) -> ColumnSet {
    let a = stmt.attributes;
    let n = stmt
        .condition
        .as_ref()
        .map(|c| c.columns())
        .unwrap_or_default();
    let mut set = ColumnSet::EMPTY
        .with(Column::BytesRcvd)
        .with(Column::BytesSent)
        .with(Column::PktsRcvd)
        .with(Column::PktsSent);
    for (wanted, col) in [
        (a.sip || n.sip, Column::Sip),
        (a.dip || n.dip, Column::Dip),
        (a.dport || n.dport, Column::Dport),
        (a.proto || n.proto, Column::Proto),
        (a.l7 || n.l7, Column::L7),
    ] {
        if wanted {
            set = set.with(col);
        }
    }
    set
}

/// Resolves the statement's interfaces against the database: all of them when the
/// statement names none, else the named ones, each of which must exist.
pub fn resolve_ifaces(db: &Database, stmt: &Statement) -> Result<Vec<String>, QueryError> {
    let known = db
        .interfaces()
        .map_err(|e| QueryError::Database(e.to_string()))?;
    if stmt.ifaces.is_empty() {
        if known.is_empty() {
            return Err(QueryError::EmptyDatabase);
        }
        return Ok(known);
    }
    for i in &stmt.ifaces {
        if !known.contains(i) {
            return Err(QueryError::UnknownInterface {
                iface: i.clone(),
                known: if known.is_empty() {
                    "no interfaces".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(stmt.ifaces.clone())
}

/// Runs `stmt` over `db`.
pub fn run(db: &Database, stmt: &Statement) -> Result<QueryResult, QueryError> {
    let start = Instant::now();
    stmt.validate()?;
    let ifaces = resolve_ifaces(db, stmt)?;
    let (ts_lo, ts_hi) = stmt.block_range();
    let mut problems = super::audit::audit(
        db,
        &ifaces,
        crate::day_of(ts_lo).ok().zip(crate::day_of(ts_hi).ok()),
    );
    let mut plans = Vec::new();
    for iface in &ifaces {
        match db.plan(&ScanRequest {
            ifaces: vec![iface.clone()],
            first: ts_lo,
            last: ts_hi,
        }) {
            Ok(p) => plans.extend(p),
            Err(e) => {
                let path = db.path().join(iface);
                if !problems.iter().any(|p| p.path == path) {
                    problems.push(Problem {
                        iface: Some(iface.clone()),
                        path,
                        kind: ProblemKind::Unlistable(e.to_string()),
                        blocks_left_out: 0,
                    });
                }
            }
        }
    }
    let columns = needed_columns(stmt);
    let mut readers: Vec<(usize, DayReader)> = Vec::with_capacity(plans.len());
    let skipped = Vec::new();
    for plan in &plans {
        let iface_idx = ifaces.iter().position(|i| *i == plan.iface).unwrap_or(0);
        if let Some(why) = &plan.damaged {
            let path = plan.meta_path();
            if !problems.iter().any(|p| p.path == path) {
                problems.push(Problem {
                    iface: Some(plan.iface.clone()),
                    path,
                    kind: ProblemKind::UnreadableDay(why.clone()),
                    blocks_left_out: 0,
                });
            }
            continue;
        }
        match plan.open(db, columns) {
            Ok(r) => {
                let missing = r.unavailable();
                if missing.is_empty() {
                    readers.push((iface_idx, r));
                    continue;
                }
                // A needed column file is missing or unreadable: the whole day is
                // left out, reported once (not once per block).
                for (c, path, why) in missing {
                    match problems.iter_mut().find(|p| p.path == path) {
                        Some(p) => p.blocks_left_out += r.len(),
                        None => problems.push(Problem {
                            iface: Some(plan.iface.clone()),
                            path: path.to_path_buf(),
                            kind: ProblemKind::UnreadableColumn(c, why.to_string()),
                            blocks_left_out: r.len(),
                        }),
                    }
                }
            }
            Err(e) => problems.push(Problem {
                iface: Some(plan.iface.clone()),
                path: plan.dir().to_path_buf(),
                kind: ProblemKind::UnreadableDay(e.to_string()),
                blocks_left_out: plan.blocks.len(),
            }),
        }
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    // Automatic: one worker per core, but no more than one per ROWS_PER_WORKER rows
    // to scan; below that a second worker costs more (thread start, its own decode
    // buffers and table) than it saves. From there on a second worker costs some CPU
    // (about 20 % on 460,000 rows) but shortens the query (by about 15 %).
    let rows_total: u64 = readers
        .iter()
        .flat_map(|(_, r)| r.blocks())
        .map(|b| b.rows())
        .sum();
    let cores = if stmt.threads == 0 {
        let by_rows = usize::try_from(rows_total.div_ceil(ROWS_PER_WORKER)).unwrap_or(usize::MAX);
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(by_rows.max(1))
    } else {
        stmt.threads
    }
    .clamp(1, MAX_THREADS);

    // Address groupings on several workers: every worker aggregates every block,
    // keeping only the keys it owns (by hash), so the workers' tables are disjoint
    // (each holds a share of the keys, nothing is merged or sent between workers);
    // each chunk is widened once, by whichever worker reaches it first, and shared.
    // Other groupings have few keys: each block goes to one worker, each worker keeps
    // a complete table, and the tables are merged at the end.
    let a = stmt.attributes;
    let shared_mode = cores > 1 && (a.sip || a.dip);
    // Address-only groupings (talk_*) in shared mode: the worker that widens a chunk
    // also keys, run-sums and hashes its rows once and sorts them out by owner (see
    // `Partition`); every worker then adds only its own rows.
    let parted = shared_mode && !(a.time || a.iface || a.dport || a.proto || a.l7);

    // Work items: (reader, block, first row, end row). Many blocks on workers of
    // their own: one item per block, each worker decoding into its own reused
    // buffers. Otherwise blocks are cut into chunks; each block is decoded once (by
    // the first worker to reach one of its chunks, see `RawShelf`) and its chunks
    // widened from it. Too few blocks to keep every core busy: the chunks are handed
    // out round-robin over the blocks, so that the workers start by decoding
    // different blocks instead of waiting for the same one. In shared mode each
    // chunk is widened once and aggregated by every worker; the chunks of `threads`
    // blocks at a time are interleaved, for the same reason.
    let blocks_total: usize = readers.iter().map(|(_, r)| r.len()).sum();
    let chunked = shared_mode || (cores > 1 && blocks_total < 4 * cores);
    let chunk_rows = match (shared_mode, chunked) {
        (true, _) => SHARED_CHUNK_ROWS,
        (false, true) => CHUNK_ROWS,
        (false, false) => usize::MAX,
    };
    let mut offsets = Vec::with_capacity(readers.len());
    let mut n = 0;
    for (_, r) in &readers {
        offsets.push(n);
        n += r.len();
    }
    let mut work: Vec<(usize, usize, usize, usize)> = readers
        .iter()
        .enumerate()
        .flat_map(|(r, (_, reader))| {
            reader
                .blocks()
                .iter()
                .enumerate()
                .flat_map(move |(b, meta)| {
                    let rows = usize::try_from(meta.rows()).unwrap_or(usize::MAX);
                    let chunks = rows.div_ceil(chunk_rows).max(1);
                    (0..chunks).map(move |c| {
                        let lo = c * chunk_rows;
                        let hi = if c + 1 == chunks {
                            usize::MAX
                        } else {
                            lo + chunk_rows
                        };
                        (r, b, lo, hi)
                    })
                })
        })
        .collect();
    if shared_mode {
        // Blocks in groups of one per core, round-robin within each group.
        let per = cores.max(1);
        work.sort_by_key(|&(r, b, lo, _)| {
            let k = offsets.get(r).copied().unwrap_or(0) + b;
            (k / per, lo, k)
        });
    } else if chunked {
        // Round-robin: chunk 0 of every block, then chunk 1 of every block, ...
        work.sort_by_key(|&(r, b, lo, _)| (lo, r, b));
    }
    // Chunks per block still to widen (when the last is, the decoded block goes).
    let mut chunks_of = vec![0usize; if chunked { blocks_total } else { 0 }];
    if chunked {
        for &(r, b, ..) in &work {
            if let Some(n) = offsets.get(r).and_then(|o| chunks_of.get_mut(o + b)) {
                *n += 1;
            }
        }
    }
    let shelf = RawShelf::new(&chunks_of);
    // Rows and IPv4 rows of each block (for `Table::expect`).
    let block_rows: Vec<(usize, usize)> = readers
        .iter()
        .flat_map(|(_, r)| r.blocks())
        .map(|m| {
            let v4 = usize::try_from(m.rows_v4).unwrap_or(usize::MAX);
            (usize::try_from(m.rows()).unwrap_or(usize::MAX), v4)
        })
        .collect();

    let threads = if shared_mode {
        cores
    } else {
        cores.min(work.len().max(1))
    };

    // Each day's reader (its mapped column files) is released as soon as the last
    // work item of the day is done, so a long scan holds the mappings (and the
    // resident file pages) of a few days at a time, not of all of them.
    let mut items = vec![0usize; readers.len()];
    for &(r, ..) in &work {
        if let Some(n) = items.get_mut(r) {
            *n += 1;
        }
    }
    type Slot = (usize, Mutex<Option<Arc<DayReader>>>, AtomicUsize);
    let slots: Vec<Slot> = readers
        .into_iter()
        .zip(items)
        .map(|((iface, reader), n)| {
            (
                iface,
                Mutex::new(Some(Arc::new(reader))),
                AtomicUsize::new(n),
            )
        })
        .collect();
    // The day's last item done: release its mapped files.
    let item_done = |r: usize| {
        if let Some((_, slot, left)) = slots.get(r) {
            if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                lock(slot).take();
            }
        }
    };

    let next = AtomicUsize::new(0);
    let used = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let skipped_m = Mutex::new(skipped);
    let span = Mutex::new((i64::MAX, i64::MIN, 0usize));
    let board = Board::new(work.len(), threads);

    let check_memory = |table: &Table, reported: &mut usize| -> Result<(), QueryError> {
        let now = table.bytes();
        if now > *reported {
            let total = used.fetch_add(now - *reported, Ordering::Relaxed) + now - *reported;
            *reported = now;
            if total > stmt.memory_limit {
                abort.store(true, Ordering::Relaxed);
                return Err(QueryError::MemoryLimit {
                    limit_mib: stmt.memory_limit >> 20,
                    entries: table.len(),
                });
            }
        }
        Ok(())
    };
    let report = |e: &BlockError| {
        lock(&skipped_m).push(SkippedBlock {
            iface: e.iface.clone(),
            timestamp: e.timestamp,
            reason: e.to_string(),
        });
    };
    // Accounts for a block aggregated (its time span) or left out (the reason).
    let account = |result: Result<(), String>,
                   iface: &str,
                   ts: i64,
                   span_acc: &mut (i64, i64, usize)| match result {
        Ok(()) => {
            span_acc.0 = span_acc.0.min(ts);
            span_acc.1 = span_acc.1.max(ts);
            span_acc.2 += 1;
        }
        Err(reason) => lock(&skipped_m).push(SkippedBlock {
            iface: iface.to_string(),
            timestamp: ts,
            reason,
        }),
    };
    // Aggregates rows `row_lo..row_hi` of `block`, widened `WIDEN_ROWS` at a time
    // into the worker's `rows` buffers (which stay in the cache); `count` says
    // whether this call accounts for the block (its first chunk).
    #[allow(clippy::too_many_arguments)]
    let aggregate_raw = |table: &mut Table,
                         block: &RawBlock,
                         rows: &mut BlockData,
                         iface: u16,
                         row_lo: usize,
                         row_hi: usize,
                         count: bool,
                         span_acc: &mut (i64, i64, usize)|
     -> Result<(), QueryError> {
        let ts = block.timestamp();
        if ts < ts_lo || ts > ts_hi {
            return Ok(());
        }
        let (row_lo, row_hi) = (row_lo.min(block.rows()), row_hi.min(block.rows()));
        let v4 = block.rows_v4();
        let mut at = row_lo;
        let mut result = Ok(());
        while at < row_hi && result.is_ok() {
            let end = row_hi.min(at + WIDEN_ROWS);
            table.expect(stmt, row_hi - at, v4.saturating_sub(at).min(row_hi - at));
            if let Err(e) = block.rows_into(at..end, rows) {
                return Err(undecodable_frame(&abort, e));
            }
            result = add(table, stmt, rows, iface, 0, usize::MAX);
            at = end;
        }
        if count {
            account(result, block.iface(), ts, span_acc);
        }
        Ok(())
    };
    // The decoded block `b` of reader `r`, decoded now if no worker has yet (a
    // failure reported once); `None` for an item that does not exist.
    let raw_block = |r: usize, b: usize| {
        let k = offsets.get(r)? + b;
        let reader = slots.get(r).and_then(|(_, slot, _)| lock(slot).clone());
        Some(shelf.get(k, reader.as_deref(), b, &abort, report))
    };
    let raw_done = |r: usize, b: usize| {
        if let Some(o) = offsets.get(r) {
            shelf.widened(o + b);
        }
    };
    let finish_worker = |table: Table, span_acc: (i64, i64, usize)| {
        let mut s = lock(&span);
        s.0 = s.0.min(span_acc.0);
        s.1 = s.1.max(span_acc.1);
        s.2 += span_acc.2;
        table
    };

    // Each block to one worker (split between them, or in chunks).
    let split_worker = || -> Result<Table, QueryError> {
        let mut table = Table::default();
        let mut reported = 0usize;
        let mut span_acc = (i64::MAX, i64::MIN, 0usize);
        // The decoded block, refilled in place block after block (no allocation and
        // no fresh memory once the buffers have grown), and which block it holds;
        // the rows being aggregated, widened from it.
        let mut own = RawBlock::default();
        let mut rows = BlockData::default();
        let mut cached: Option<(usize, usize)> = None;
        loop {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(r, b, row_lo, row_hi)) = work.get(i) else {
                break;
            };
            let Some((iface_idx, slot, _)) = slots.get(r) else {
                break;
            };
            let reader = lock(slot).clone();
            'item: {
                let Some(reader) = reader.as_deref() else {
                    break 'item;
                };
                let first_chunk = row_lo == 0;
                let iface = *iface_idx as u16;
                // A chunk's block from the shelf (decoded once), or the worker's own.
                let shelved = if chunked { raw_block(r, b) } else { None };
                let block: &RawBlock = if chunked {
                    match shelved.as_deref() {
                        Some(Ok(block)) => block,
                        _ => {
                            drop(shelved);
                            raw_done(r, b);
                            break 'item;
                        }
                    }
                } else {
                    if cached != Some((r, b)) {
                        cached = None;
                        match reader.read_raw_into(b, &mut own) {
                            Ok(()) => cached = Some((r, b)),
                            Err(e) => {
                                report(&e);
                                break 'item;
                            }
                        }
                    }
                    &own
                };
                aggregate_raw(
                    &mut table,
                    block,
                    &mut rows,
                    iface,
                    row_lo,
                    row_hi,
                    first_chunk,
                    &mut span_acc,
                )?;
                if chunked {
                    // The block goes back to the shelf's pool after its last chunk.
                    drop(shelved);
                    raw_done(r, b);
                }
            }
            drop(reader);
            item_done(r);
            check_memory(&table, &mut reported)?;
        }
        Ok(finish_worker(table, span_acc))
    };

    // Every chunk to every worker, widened once (see `Board`).
    let shared_worker = |me: usize| -> Result<(Table, Option<Cut<'_>>), QueryError> {
        // A worker that panics stops the others, which could wait for it forever.
        let _stop = StopOnPanic(&abort, &board);
        let mut table = Table::default();
        table.part = Some((me, threads));
        let mut reported = 0usize;
        let mut span_acc = (i64::MAX, i64::MIN, 0usize);
        let mut progress = Progress::new(work.len());
        loop {
            if abort.load(Ordering::Relaxed) {
                board.wake_all();
                break;
            }
            match board.next(&mut progress, &abort) {
                Step::Finish => break,
                Step::Decode(i, mut data) => {
                    // Widen the chunk (decoding its block first if nobody has).
                    let Some(&(r, b, lo, hi)) = work.get(i) else {
                        board.failed(i);
                        continue;
                    };
                    let decoded = raw_block(r, b);
                    let ok = match decoded.as_deref() {
                        Some(Ok(block)) => {
                            if let Err(e) = block.rows_into(lo..hi, &mut data.data) {
                                board.failed(i);
                                board.wake_all();
                                return Err(undecodable_frame(&abort, e));
                            }
                            data.parted = parted.then(|| {
                                partition(&mut table, stmt, &data.data, threads, &mut data.part)
                            });
                            // This worker's own rows at once, while in its cache.
                            let ts = data.data.timestamp;
                            if matches!(data.parted, Some(Ok(()))) && ts >= ts_lo && ts <= ts_hi {
                                table.take_own_rows(&mut data.part);
                            }
                            true
                        }
                        _ => false,
                    };
                    drop(decoded);
                    raw_done(r, b);
                    if ok {
                        board.ready(i, data);
                    } else {
                        board.failed(i);
                        item_done(r);
                    }
                }
                Step::Process(i, data) => {
                    let Some(&(r, b, lo, _)) = work.get(i) else {
                        continue;
                    };
                    let iface = slots.get(r).map_or(0, |s| s.0) as u16;
                    let ts = data.data.timestamp;
                    // The rest of the block is coming.
                    if let Some(&(rows, v4)) = offsets.get(r).and_then(|o| block_rows.get(o + b)) {
                        table.expect(stmt, rows.saturating_sub(lo), v4.saturating_sub(lo));
                    }
                    if ts >= ts_lo && ts <= ts_hi {
                        let result = match &data.parted {
                            Some(Ok(())) => {
                                table.add_partition(&data.part);
                                Ok(())
                            }
                            Some(Err(e)) => Err(e.clone()),
                            None => add(&mut table, stmt, &data.data, iface, 0, usize::MAX),
                        };
                        // Worker 0 accounts for the block, at its first chunk.
                        if me == 0 && lo == 0 {
                            account(result, &data.data.iface, ts, &mut span_acc);
                        }
                    }
                    drop(data);
                    if board.consumed(i) {
                        item_done(r);
                    }
                    if let Err(e) = check_memory(&table, &mut reported) {
                        board.wake_all();
                        return Err(e);
                    }
                }
            }
        }
        // With a limit, the worker picks its own candidates for the cut (the tables
        // are disjoint), in parallel with the others, and keeps only its totals.
        let table = finish_worker(table, span_acc);
        if stmt.limit == 0 {
            return Ok((table, None));
        }
        let mut rest = Table::default();
        rest.totals = table.totals;
        rest.rows_scanned = table.rows_scanned;
        let mut cut = Cut::new(stmt, 0);
        cut.add_table(table);
        Ok((rest, Some(cut)))
    };

    let results: Vec<Result<(Table, Option<Cut<'_>>), QueryError>> =
        crossbeam::thread::scope(|scope| {
            let split_worker = &split_worker;
            let shared_worker = &shared_worker;
            let handles: Vec<_> = (0..threads)
                .map(|me| {
                    scope.spawn(move |_| {
                        if shared_mode {
                            shared_worker(me)
                        } else {
                            split_worker().map(|t| (t, None))
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(QueryError::Worker)))
                .collect()
        })
        .unwrap_or_else(|_| vec![Err(QueryError::Worker)]);

    let mut tables = Vec::with_capacity(results.len());
    let mut cuts = Vec::new();
    for r in results {
        let (t, c) = r?;
        tables.push(t);
        cuts.extend(c);
    }
    if !shared_mode {
        let mut merged = Table::default();
        for t in tables.drain(..) {
            merged.merge(t);
            if merged.bytes() > stmt.memory_limit {
                return Err(QueryError::MemoryLimit {
                    limit_mib: stmt.memory_limit >> 20,
                    entries: merged.len(),
                });
            }
        }
        tables.push(merged);
    }
    // Ordering needs the entries once more as a vector next to the tables: all of
    // them without a limit, else at most twice the limit.
    let entries: usize =
        tables.iter().map(Table::len).sum::<usize>() + cuts.iter().map(|c| c.hits).sum::<usize>();
    let held: usize = tables.iter().map(Table::bytes).sum();
    let ordered = match stmt.limit {
        0 => entries,
        n => entries.min(n.saturating_mul(2)),
    };
    let sort_bytes = ordered.saturating_mul(std::mem::size_of::<(Key, crate::Counters)>());
    if held.saturating_add(sort_bytes) > stmt.memory_limit {
        return Err(QueryError::MemoryLimit {
            limit_mib: stmt.memory_limit >> 20,
            entries,
        });
    }
    let mut totals = crate::Counters::default();
    let mut rows_scanned = 0;
    for t in &tables {
        totals.add(&t.totals);
        rows_scanned += t.rows_scanned;
    }
    let mut cut = Cut::new(stmt, entries);
    for c in cuts {
        cut.add_cut(c);
    }
    for t in tables {
        cut.add_table(t);
    }
    let (rows, hits_total) = finish_cut(stmt, cut, &ifaces);
    let (lo, hi, blocks_read) = *lock(&span);
    let mut skipped = skipped_m.into_inner().unwrap_or_else(|p| p.into_inner());
    skipped.sort_by(|a, b| (&a.iface, a.timestamp).cmp(&(&b.iface, b.timestamp)));
    Ok(QueryResult {
        rows,
        totals,
        hits_total,
        interfaces: ifaces,
        time_first: if blocks_read > 0 { lo } else { stmt.first },
        time_last: if blocks_read > 0 { hi } else { stmt.last },
        blocks_read,
        rows_scanned,
        skipped,
        problems,
        duration: start.elapsed(),
    })
}

/// The error that stops a query when a frame of a framed block does not decompress
/// although the block's checksums matched (a faulty writer or a crafted file): its
/// other frames may have been counted already, so the query stops instead of
/// reporting the block as left out; the other workers stop too.
fn undecodable_frame(abort: &AtomicBool, e: BlockError) -> QueryError {
    abort.store(true, Ordering::Relaxed);
    QueryError::Database(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops the query (and wakes the waiting workers) when dropped by a panicking worker.
struct StopOnPanic<'a>(&'a AtomicBool, &'a Board);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
            self.1.wake_all();
        }
    }
}

/// The decoded blocks of a chunked scan: each block decoded once, its columns shared
/// out between the workers that need one of its chunks (the first to come starts
/// it, the others take the columns still to decode, then wait for the last), kept
/// while chunks of it are still to be widened, then its buffers reused for a later
/// block. Sharing the columns matters when a few large blocks make the whole scan:
/// decoding one is then most of the query's critical path.
struct RawShelf {
    blocks: Vec<ShelfSlot>,
    pool: Mutex<Vec<RawBlock>>,
}

/// One block on the shelf, and the number of its chunks not yet widened.
struct ShelfSlot {
    state: Mutex<ShelfState>,
    done: Condvar,
    left: AtomicUsize,
}

enum ShelfState {
    /// Not decoded yet (or its chunks are all widened).
    Empty,
    /// Being decoded: the block with the columns decoded so far, the columns no
    /// worker has taken yet, how many are being decoded, the first failure.
    Decoding {
        raw: Box<RawBlock>,
        todo: Vec<Column>,
        busy: usize,
        error: Option<BlockError>,
    },
    /// Decoded, or why it could not be.
    Done(Arc<Result<RawBlock, BlockError>>),
}

/// The error for a block that cannot be found (a bug, or a stopped query).
fn no_block(block: usize) -> BlockError {
    BlockError {
        iface: String::new(),
        date: chrono::NaiveDate::MIN,
        block,
        timestamp: 0,
        file: Default::default(),
        kind: crate::BlockErrorKind::NoSuchBlock(0),
    }
}

impl RawShelf {
    /// A shelf for blocks of `chunks[k]` chunks each.
    fn new(chunks: &[usize]) -> RawShelf {
        RawShelf {
            blocks: chunks
                .iter()
                .map(|&n| ShelfSlot {
                    state: Mutex::new(ShelfState::Empty),
                    done: Condvar::new(),
                    left: AtomicUsize::new(n),
                })
                .collect(),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Block `k` of the shelf, block `b` of `reader`: decoded now, with the help of
    /// the other workers that need it, if it is not yet. A failure is reported
    /// once, with `report`. Gives up (an error) when `abort` is set while waiting.
    fn get(
        &self,
        k: usize,
        reader: Option<&DayReader>,
        b: usize,
        abort: &AtomicBool,
        report: impl Fn(&BlockError),
    ) -> Arc<Result<RawBlock, BlockError>> {
        let Some(slot) = self.blocks.get(k) else {
            return Arc::new(Err(no_block(b)));
        };
        let mut st = lock(&slot.state);
        loop {
            match &mut *st {
                ShelfState::Done(d) => return Arc::clone(d),
                ShelfState::Empty => {
                    let mut raw = lock(&self.pool).pop().unwrap_or_default();
                    let begun = match reader {
                        Some(r) => r.begin_raw(b, &mut raw),
                        None => Err(no_block(b)),
                    };
                    *st = match begun {
                        Ok(columns) => {
                            // Smallest first in the list: the largest are taken first.
                            let size = |c: &Column| {
                                reader
                                    .and_then(|r| r.blocks().get(b))
                                    .map_or(0, |m| m.column(*c).stored_len)
                            };
                            let mut todo: Vec<Column> = columns.iter().collect();
                            todo.sort_by_key(size);
                            ShelfState::Decoding {
                                raw: Box::new(raw),
                                todo,
                                busy: 0,
                                error: None,
                            }
                        }
                        Err(e) => {
                            report(&e);
                            lock(&self.pool).push(raw);
                            slot.done.notify_all();
                            ShelfState::Done(Arc::new(Err(e)))
                        }
                    };
                }
                ShelfState::Decoding {
                    raw, todo, busy, ..
                } => {
                    if let Some(c) = todo.pop() {
                        // Decode one column without holding the lock.
                        let mut buf = raw.take_column(c);
                        *busy += 1;
                        drop(st);
                        let layout = match reader {
                            Some(r) => r.read_raw_column(b, c, &mut buf),
                            None => Err(no_block(b)),
                        };
                        st = lock(&slot.state);
                        if let ShelfState::Decoding {
                            raw,
                            todo,
                            busy,
                            error,
                        } = &mut *st
                        {
                            raw.put_column(c, buf, layout.as_ref().ok().copied());
                            *busy -= 1;
                            if let Err(e) = layout {
                                todo.clear();
                                error.get_or_insert(e);
                            }
                        }
                    } else if *busy > 0 {
                        if abort.load(Ordering::Relaxed) {
                            return Arc::new(Err(no_block(b)));
                        }
                        // A timeout only as a safety net: the last column notifies.
                        st = slot
                            .done
                            .wait_timeout(st, std::time::Duration::from_millis(50))
                            .map(|(g, _)| g)
                            .unwrap_or_else(|p| p.into_inner().0);
                    } else {
                        // Every column is decoded (or one failed): the block is done.
                        let ShelfState::Decoding { raw, error, .. } =
                            std::mem::replace(&mut *st, ShelfState::Empty)
                        else {
                            continue;
                        };
                        let result = match error {
                            Some(e) => {
                                report(&e);
                                lock(&self.pool).push(*raw);
                                Err(e)
                            }
                            None => Ok(*raw),
                        };
                        *st = ShelfState::Done(Arc::new(result));
                        slot.done.notify_all();
                    }
                }
            }
        }
    }

    /// One chunk of block `k` is widened (and the caller has dropped the block):
    /// after its last chunk the block's buffers go back to the pool.
    fn widened(&self, k: usize) {
        let Some(slot) = self.blocks.get(k) else {
            return;
        };
        if slot.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let taken = std::mem::replace(&mut *lock(&slot.state), ShelfState::Empty);
        if let ShelfState::Done(d) = taken {
            if let Ok(Ok(raw)) = Arc::try_unwrap(d) {
                lock(&self.pool).push(raw);
            }
        }
    }
}

/// Widened chunks alive at once in shared mode, per worker (bounds the memory when
/// one worker runs ahead of another).
const LIVE_PER_WORKER: usize = 2;

/// A widened chunk of shared mode; for address-only groupings also its rows sorted
/// out by owner, by the worker that widened it.
#[derive(Default)]
struct Chunk {
    data: BlockData,
    part: Partition,
    /// Whether `part` holds the rows (the outcome of [`partition`]); `None` when every
    /// worker aggregates `data` itself.
    parted: Option<Result<(), String>>,
}

/// What a worker of the shared mode does next.
enum Step {
    /// Widen work item `i` (a chunk of a block) into this buffer, then hand it to
    /// [`Board::ready`] (or report [`Board::failed`]).
    Decode(usize, Box<Chunk>),
    /// Aggregate work item `i` (widened), then tell [`Board::consumed`].
    Process(usize, Arc<Chunk>),
    /// Every item is done, or the query stopped.
    Finish,
}

/// The state of one work item in shared mode.
enum Cell {
    /// Nobody has started widening it.
    Todo,
    /// A worker is widening it.
    Decoding,
    /// Widened; the number of workers that still have to aggregate it.
    Ready(Arc<Chunk>, usize),
    /// Aggregated by every worker, or its block failed to decode.
    Gone,
}

/// The chunks of a shared-mode scan: each widened once (from its block, decoded once
/// on the `RawShelf`), by the first worker free to do it, then aggregated by every
/// worker, then its buffer reused for a later chunk.
struct Board {
    state: Mutex<BoardState>,
    changed: Condvar,
    threads: usize,
}

struct BoardState {
    cells: Vec<Cell>,
    /// Items decoding or decoded and not yet consumed by every worker.
    live: usize,
    /// Lowest item that may still be `Todo`.
    next_todo: usize,
    /// Buffers of consumed chunks, to widen later chunks into.
    pool: Vec<Chunk>,
}

/// One worker's progress over the items: which it has aggregated (or found gone).
struct Progress {
    seen: Vec<bool>,
    /// Every item below this one is seen.
    lo: usize,
}

impl Progress {
    fn new(items: usize) -> Progress {
        Progress {
            seen: vec![false; items],
            lo: 0,
        }
    }
}

impl Board {
    fn new(items: usize, threads: usize) -> Board {
        Board {
            state: Mutex::new(BoardState {
                cells: (0..items).map(|_| Cell::Todo).collect(),
                live: 0,
                next_todo: 0,
                pool: Vec::new(),
            }),
            changed: Condvar::new(),
            threads,
        }
    }

    /// The next step of a worker: a decoded item it has not aggregated yet, else an
    /// item to decode (while few are alive), else it waits.
    fn next(&self, me: &mut Progress, abort: &AtomicBool) -> Step {
        let mut st = lock(&self.state);
        loop {
            if abort.load(Ordering::Relaxed) {
                return Step::Finish;
            }
            while me.seen.get(me.lo).copied().unwrap_or(false) {
                me.lo += 1;
            }
            let mut pending = false;
            for i in me.lo..st.cells.len() {
                if me.seen.get(i).copied().unwrap_or(true) {
                    continue;
                }
                match &st.cells[i] {
                    Cell::Ready(d, _) => {
                        me.seen[i] = true;
                        return Step::Process(i, Arc::clone(d));
                    }
                    Cell::Gone => me.seen[i] = true,
                    Cell::Todo | Cell::Decoding => pending = true,
                }
            }
            if !pending {
                return Step::Finish;
            }
            if st.live < self.threads * LIVE_PER_WORKER {
                let from = st.next_todo;
                if let Some(i) = (from..st.cells.len()).find(|&i| matches!(st.cells[i], Cell::Todo))
                {
                    st.cells[i] = Cell::Decoding;
                    st.live += 1;
                    st.next_todo = i + 1;
                    let data = Box::new(st.pool.pop().unwrap_or_default());
                    return Step::Decode(i, data);
                }
            }
            // A timeout only as a safety net: every change notifies.
            st = self
                .changed
                .wait_timeout(st, std::time::Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Item `i` is decoded: every worker may aggregate it now.
    fn ready(&self, i: usize, data: Box<Chunk>) {
        let mut st = lock(&self.state);
        if let Some(c) = st.cells.get_mut(i) {
            *c = Cell::Ready(Arc::new(*data), self.threads);
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Item `i` failed to decode (reported by the caller): it is gone for everyone.
    fn failed(&self, i: usize) {
        let mut st = lock(&self.state);
        if let Some(c) = st.cells.get_mut(i) {
            *c = Cell::Gone;
            st.live -= 1;
        }
        drop(st);
        self.changed.notify_all();
    }

    /// One worker has aggregated item `i` (and dropped its reference). Whether it
    /// was the last one (the item is done).
    fn consumed(&self, i: usize) -> bool {
        let mut st = lock(&self.state);
        let Some(Cell::Ready(_, left)) = st.cells.get_mut(i) else {
            return false;
        };
        *left -= 1;
        if *left > 0 {
            return false;
        }
        if let Some(Cell::Ready(d, _)) = st
            .cells
            .get_mut(i)
            .map(|c| std::mem::replace(c, Cell::Gone))
        {
            if let Ok(d) = Arc::try_unwrap(d) {
                st.pool.push(d);
            }
        }
        st.live -= 1;
        drop(st);
        self.changed.notify_all();
        true
    }

    /// Wakes the waiting workers (the query stops).
    fn wake_all(&self) {
        self.changed.notify_all();
    }
}

/// Most worker threads a query starts, whatever the statement asks for.
pub const MAX_THREADS: usize = 64;

/// Rows to scan per automatic worker (see `Statement::threads`).
pub const ROWS_PER_WORKER: u64 = 200_000;

/// Rows per work item: blocks larger than this are shared between workers.
const CHUNK_ROWS: usize = 32_768;

/// Rows per work item in shared mode: each is widened once, by one worker, and
/// aggregated by every worker (about 40 bytes a row for the talk_* queries).
const SHARED_CHUNK_ROWS: usize = 16_384;

/// Rows widened from a decoded block at a time: their values at full width (about
/// 80 bytes a row with every column) stay in the L2 cache while they are aggregated.
/// One frame of a framed block (the writer's frames, `FRAME_ROWS`), so that each
/// frame is decoded once; the work items start at multiples of it.
const WIDEN_ROWS: usize = crate::column::FRAME_ROWS;

/// The rows `lo..hi` of `s` (empty when the column was not read).
fn sub<T>(s: &[T], lo: usize, hi: usize) -> &[T] {
    s.get(lo..hi).unwrap_or(&[])
}

/// Checks the lengths of a decoded block's columns and aggregates its rows
/// `row_lo..row_hi` (clamped to the block).
fn add(
    table: &mut Table,
    stmt: &Statement,
    b: &BlockData,
    iface: u16,
    row_lo: usize,
    row_hi: usize,
) -> Result<(), String> {
    let (cols, counters) = columns_of(b, row_lo, row_hi)?;
    table.add_block(stmt, &cols, &counters, b.timestamp, iface);
    Ok(())
}

/// Checks the lengths of a widened chunk's columns and sorts its rows out by owner
/// among `workers` (address-only groupings in shared mode, see [`Partition`]).
fn partition(
    table: &mut Table,
    stmt: &Statement,
    b: &BlockData,
    workers: usize,
    out: &mut Partition,
) -> Result<(), String> {
    let (cols, counters) = columns_of(b, 0, usize::MAX)?;
    if table.partition_block(stmt, &cols, &counters, workers, out) {
        Ok(())
    } else {
        Err("columns of different lengths".into())
    }
}

/// The columns of a decoded block's rows `row_lo..row_hi` (clamped to the block),
/// once their lengths are checked.
fn columns_of(
    b: &BlockData,
    row_lo: usize,
    row_hi: usize,
) -> Result<(Cols<'_>, CounterCols<'_>), String> {
    let rows = b.rows;
    let v4 = b.rows_v4;
    const EMPTY_IP: &IpColumn = &IpColumn {
        v4: Vec::new(),
        v6: Vec::new(),
    };
    let sip = b.sip.as_ref().unwrap_or(EMPTY_IP);
    let dip = b.dip.as_ref().unwrap_or(EMPTY_IP);
    let check_ip = |name: &str, c: &Option<IpColumn>| -> Result<(), String> {
        match c {
            Some(c) if c.v4.len() != v4 || c.v4.len() + c.v6.len() != rows => Err(format!(
                "column {name} has {} IPv4 and {} IPv6 rows, expected {v4} of {rows}",
                c.v4.len(),
                c.v6.len()
            )),
            _ => Ok(()),
        }
    };
    check_ip("sip", &b.sip)?;
    check_ip("dip", &b.dip)?;
    fn check<T>(name: &str, c: &Option<Vec<T>>, rows: usize) -> Result<(), String> {
        match c {
            Some(v) if v.len() != rows => Err(format!(
                "column {name} has {} rows, expected {rows}",
                v.len()
            )),
            _ => Ok(()),
        }
    }
    check("proto", &b.proto, rows)?;
    check("dport", &b.dport, rows)?;
    check("l7", &b.l7, rows)?;
    let (lo, hi) = (row_lo.min(rows), row_hi.min(rows));
    let (lo4, hi4) = (lo.min(v4), hi.min(v4));
    let (lo6, hi6) = (lo.max(v4) - v4, hi.max(v4) - v4);
    let counters = CounterCols {
        bytes_rcvd: sub(counter(&b.bytes_rcvd, "bytes_rcvd", rows)?, lo, hi),
        bytes_sent: sub(counter(&b.bytes_sent, "bytes_sent", rows)?, lo, hi),
        pkts_rcvd: sub(counter(&b.pkts_rcvd, "pkts_rcvd", rows)?, lo, hi),
        pkts_sent: sub(counter(&b.pkts_sent, "pkts_sent", rows)?, lo, hi),
    };
    let cols = Cols {
        rows: hi - lo,
        rows_v4: hi4 - lo4,
        sip4: sub(&sip.v4, lo4, hi4),
        sip6: sub(&sip.v6, lo6, hi6),
        dip4: sub(&dip.v4, lo4, hi4),
        dip6: sub(&dip.v6, lo6, hi6),
        dport: sub(b.dport.as_deref().unwrap_or(&[]), lo, hi),
        proto: sub(b.proto.as_deref().unwrap_or(&[]), lo, hi),
        l7: sub(b.l7.as_deref().unwrap_or(&[]), lo, hi),
        pkts_rcvd: counters.pkts_rcvd,
        pkts_sent: counters.pkts_sent,
    };
    Ok((cols, counters))
}

fn counter<'a>(c: &'a Option<Vec<u64>>, name: &str, rows: usize) -> Result<&'a [u64], String> {
    match c {
        Some(v) if v.len() == rows => Ok(v),
        Some(v) => Err(format!(
            "column {name} has {} rows, expected {rows}",
            v.len()
        )),
        None => Err(format!("column {name} was not decoded")),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
