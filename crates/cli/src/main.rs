//! `jsconsole`: the JetStream Console binary. Everything is in [`jsc_cli::commands`].
// The only unsafe calls: allocator options and collection, and one prctl (see
// `return_freed_memory_at_once` and `collect_when_idle`).
#![deny(unsafe_code)]

/// mimalloc rather than the system allocator: the console's work is many small, short-lived
/// allocations on several threads (JSON answers of the managed clusters, samples, GraphQL
/// answers), where glibc's malloc spent about 40 % of the collector's CPU (bench scenario 11).
/// The `system-allocator` feature leaves it out, for heap profilers that follow malloc
/// (`cargo build --release -p jsc-cli --features system-allocator`, then heaptrack).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 alike); the sys crate
/// names no constant for it.
#[cfg(not(feature = "system-allocator"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// `mi_option_allow_thp` in mimalloc v3's `mi_option_e`.
#[cfg(not(feature = "system-allocator"))]
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Pages of memory the console frees go back to the system at once, rather than after
/// mimalloc's delay (1 s in v3), which a thread gone idle after a burst never reaches. Bench
/// scenario 16: about 1,800–2,000 instead of 2,040–2,400 resident bytes per managed resource
/// after 60,000 were made outside. The price is in the tail: pages freed and faulted in
/// again put the p99 of a page at 10,000 streams at 5–8 ms rather than about 4 ms.
/// `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
///
/// And no transparent huge pages: with them mimalloc gives memory back in 2 MiB pieces
/// only, and a console at rest held about 20 MiB more (bench scenario 17: 56 instead of
/// 75 MiB before any subscriber, 65 instead of 79 MiB after 10,000 came and went). This is
/// what `MIMALLOC_ALLOW_THP=0` does at start, which the environment can still say otherwise.
#[allow(unsafe_code)]
#[cfg(not(feature = "system-allocator"))]
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores one option value; mimalloc allows it at any time,
        // from any thread, and reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: as above; and prctl(PR_SET_THP_DISABLE) only sets a flag of this process
        // (huge pages are not used for its memory from then on).
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}

#[cfg(feature = "system-allocator")]
fn return_freed_memory_at_once() {}

/// How often an idle worker thread gives back what it freed (see [`collect_when_idle`]).
#[cfg(not(feature = "system-allocator"))]
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Called as a runtime worker thread goes idle: at most once a [`COLLECT_EVERY`], mimalloc
/// takes in the blocks other threads freed into this thread's pages and gives back the pages
/// that are then empty. Without it, the pages of 10,000 WebSocket connections closed at
/// once stayed resident (about 100 MiB), since no thread allocated in them again.
#[allow(unsafe_code)]
#[cfg(not(feature = "system-allocator"))]
fn collect_when_idle() {
    use std::cell::Cell;
    use std::time::Instant;
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    LAST.with(|last| {
        if last.get().is_some_and(|t| t.elapsed() < COLLECT_EVERY) {
            return;
        }
        last.set(Some(Instant::now()));
        // SAFETY: mi_collect(false) only tidies the calling thread's own heap; mimalloc
        // allows it from any thread at any time.
        unsafe { libmimalloc_sys::mi_collect(false) }
    });
}

#[cfg(feature = "system-allocator")]
fn collect_when_idle() {}

fn main() {
    return_freed_memory_at_once();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(collect_when_idle)
        .build()
        .expect("the async runtime could not start");
    let args: Vec<String> = std::env::args().collect();
    let code = runtime.block_on(jsc_cli::commands::run(
        args,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ));
    std::process::exit(code);
}
