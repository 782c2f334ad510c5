//! Running a statement: plan the days from metadata, open only the columns the query
//! and its condition need, then decode and aggregate the blocks on worker threads
//! (crossbeam scoped threads), order and cut. Two ways to share the work:
//!
//! - groupings by address (many keys) on several workers: every block is decoded
//!   once and aggregated by every worker, each keeping only the keys it owns by hash
//!   (disjoint tables, nothing sent between workers, nothing merged; see `Board`);
//! - other groupings (few keys): the workers pull block after block from a shared
//!   counter, each into its own complete table, and the tables are merged.
//!
//! A block that fails to decode is reported in the result and left out; the other
//! blocks are unaffected. The tables' memory is tracked across workers: when it would
//! pass the statement's limit, the run stops with [`QueryError::MemoryLimit`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::aggregate::{finish, CounterCols, Key, Table};
use super::audit::{Problem, ProblemKind};
use super::condition::Cols;
use super::error::QueryError;
use super::result::{QueryResult, SkippedBlock};
use super::statement::Statement;
use crate::{
    BlockData, BlockError, Column, ColumnSet, Database, DayReader, DecodeScratch, IpColumn,
    ScanRequest,
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
    // each block is decoded once, by whichever worker reaches it first, and shared.
    // Other groupings have few keys: each block goes to one worker, each worker keeps
    // a complete table, and the tables are merged at the end.
    let a = stmt.attributes;
    let shared_mode = cores > 1 && (a.sip || a.dip);

    // Work items: (reader, block, first row, end row). Many blocks: one item per
    // block, each worker decoding into its own reused buffers. Too few blocks to keep
    // every core busy: large blocks are cut into chunks, each block is decoded once
    // (by the first worker to reach it) and shared by the workers of its chunks, and
    // the chunks are handed out round-robin over the blocks, so that the workers
    // start by decoding different blocks instead of waiting for the same one.
    let blocks_total: usize = readers.iter().map(|(_, r)| r.len()).sum();
    let chunked = !shared_mode && cores > 1 && blocks_total < 4 * cores;
    let chunk_rows = if chunked { CHUNK_ROWS } else { usize::MAX };
    let mut offsets = Vec::with_capacity(readers.len());
    let mut n = 0;
    for (_, r) in &readers {
        offsets.push(n);
        n += r.len();
    }
    let shared: Vec<OnceLock<Result<BlockData, BlockError>>> = if chunked {
        (0..blocks_total).map(|_| OnceLock::new()).collect()
    } else {
        Vec::new()
    };
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
    if chunked {
        // Round-robin: chunk 0 of every block, then chunk 1 of every block, ...
        work.sort_by_key(|&(r, b, lo, _)| (lo, r, b));
    }

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
    // Aggregates `block` (rows `row_lo..row_hi`); `count` says whether this call
    // accounts for the block (its first chunk; worker 0 in shared mode): its time
    // span, or the reason it was skipped.
    let aggregate = |table: &mut Table,
                     block: &BlockData,
                     iface: u16,
                     row_lo: usize,
                     row_hi: usize,
                     count: bool,
                     span_acc: &mut (i64, i64, usize)| {
        if block.timestamp < ts_lo || block.timestamp > ts_hi {
            return;
        }
        match add(table, stmt, block, iface, row_lo, row_hi) {
            Ok(()) => {
                if count {
                    span_acc.0 = span_acc.0.min(block.timestamp);
                    span_acc.1 = span_acc.1.max(block.timestamp);
                    span_acc.2 += 1;
                }
            }
            Err(reason) => {
                if count {
                    lock(&skipped_m).push(SkippedBlock {
                        iface: block.iface.clone(),
                        timestamp: block.timestamp,
                        reason,
                    });
                }
            }
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
        // no fresh memory once the buffers have grown), and which block it holds.
        let mut own = BlockData::default();
        let mut scratch = DecodeScratch::default();
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
                let block: &BlockData = if chunked {
                    let Some(cell) = offsets.get(r).and_then(|o| shared.get(o + b)) else {
                        break 'item;
                    };
                    match cell.get_or_init(|| reader.read(b)) {
                        Ok(d) => d,
                        Err(e) => {
                            if first_chunk {
                                report(e);
                            }
                            break 'item;
                        }
                    }
                } else {
                    if cached != Some((r, b)) {
                        cached = None;
                        match reader.read_into(b, &mut own, &mut scratch) {
                            Ok(()) => cached = Some((r, b)),
                            Err(e) => {
                                report(&e);
                                break 'item;
                            }
                        }
                    }
                    &own
                };
                let iface = *iface_idx as u16;
                aggregate(
                    &mut table,
                    block,
                    iface,
                    row_lo,
                    row_hi,
                    first_chunk,
                    &mut span_acc,
                );
            }
            drop(reader);
            item_done(r);
            check_memory(&table, &mut reported)?;
        }
        Ok(finish_worker(table, span_acc))
    };

    // Every block to every worker, decoded once (see `Board`).
    let shared_worker = |me: usize| -> Result<Table, QueryError> {
        // A worker that panics stops the others, which could wait for it forever.
        let _stop = StopOnPanic(&abort, &board);
        let mut table = Table::default();
        table.part = Some((me, threads));
        let mut reported = 0usize;
        let mut span_acc = (i64::MAX, i64::MIN, 0usize);
        let mut scratch = DecodeScratch::default();
        let mut progress = Progress::new(work.len());
        loop {
            if abort.load(Ordering::Relaxed) {
                board.wake_all();
                break;
            }
            match board.next(&mut progress, &abort) {
                Step::Finish => break,
                Step::Decode(i, mut data) => {
                    let Some(&(r, b, ..)) = work.get(i) else {
                        board.failed(i);
                        continue;
                    };
                    let reader = slots.get(r).and_then(|(_, slot, _)| lock(slot).clone());
                    let decoded = match reader.as_deref() {
                        Some(reader) => reader.read_into(b, &mut data, &mut scratch),
                        None => Err(BlockError {
                            iface: String::new(),
                            date: chrono::NaiveDate::MIN,
                            block: b,
                            timestamp: 0,
                            file: Default::default(),
                            kind: crate::BlockErrorKind::NoSuchBlock(0),
                        }),
                    };
                    drop(reader);
                    match decoded {
                        Ok(()) => board.ready(i, data),
                        Err(e) => {
                            report(&e);
                            board.failed(i);
                            item_done(r);
                        }
                    }
                }
                Step::Process(i, data) => {
                    let Some(&(r, ..)) = work.get(i) else {
                        continue;
                    };
                    let iface = slots.get(r).map_or(0, |s| s.0) as u16;
                    aggregate(
                        &mut table,
                        &data,
                        iface,
                        0,
                        usize::MAX,
                        me == 0,
                        &mut span_acc,
                    );
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
        Ok(finish_worker(table, span_acc))
    };

    let results: Vec<Result<Table, QueryError>> = crossbeam::thread::scope(|scope| {
        let split_worker = &split_worker;
        let shared_worker = &shared_worker;
        let handles: Vec<_> = (0..threads)
            .map(|me| {
                scope.spawn(move |_| {
                    if shared_mode {
                        shared_worker(me)
                    } else {
                        split_worker()
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
    for r in results {
        tables.push(r?);
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
    let entries: usize = tables.iter().map(Table::len).sum();
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
    let (rows, hits_total) = finish(stmt, tables, &ifaces);
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

/// Decoded blocks alive at once in shared mode, per worker (bounds the memory when
/// one worker runs ahead of another).
const LIVE_PER_WORKER: usize = 2;

/// What a worker of the shared mode does next.
enum Step {
    /// Decode work item `i` into this buffer, then hand it to [`Board::ready`] (or
    /// report [`Board::failed`]).
    Decode(usize, Box<BlockData>),
    /// Aggregate work item `i` (decoded), then tell [`Board::consumed`].
    Process(usize, Arc<BlockData>),
    /// Every item is done, or the query stopped.
    Finish,
}

/// The state of one work item in shared mode.
enum Cell {
    /// Nobody has started decoding it.
    Todo,
    /// A worker is decoding it.
    Decoding,
    /// Decoded; the number of workers that still have to aggregate it.
    Ready(Arc<BlockData>, usize),
    /// Aggregated by every worker, or failed to decode.
    Gone,
}

/// The blocks of a shared-mode scan: each decoded once, by the first worker free to
/// do it, then aggregated by every worker, then its buffer reused for a later block.
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
    /// Buffers of consumed blocks, to decode later blocks into.
    pool: Vec<BlockData>,
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
    fn ready(&self, i: usize, data: Box<BlockData>) {
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
    let rows = b.rows;
    let v4 = b.rows_v4;
    let empty_ip = IpColumn::default();
    let sip = b.sip.as_ref().unwrap_or(&empty_ip);
    let dip = b.dip.as_ref().unwrap_or(&empty_ip);
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
    table.add_block(stmt, &cols, &counters, b.timestamp, iface);
    Ok(())
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
