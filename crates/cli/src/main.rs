//! `jsconsole`: the JetStream Console binary. Everything is in [`jsc_cli::commands`].
// One unsafe call, to set an allocator option (see `return_freed_memory_at_once`).
#![deny(unsafe_code)]

/// mimalloc rather than the system allocator: the console's work is many small, short-lived
/// allocations on several threads (JSON answers of the managed clusters, samples, GraphQL
/// answers), where glibc's malloc spent about 40 % of the collector's CPU (bench scenario 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v2 and v3 alike); the sys crate
/// names no constant for it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Pages of memory the console frees go back to the system at once, rather than after
/// mimalloc's delay (1 s in v3), which a thread gone idle after a burst never reaches. Bench
/// scenario 16: about 1,800–2,000 instead of 2,040–2,400 resident bytes per managed resource
/// after 60,000 were made outside. The price is in the tail: pages freed and faulted in
/// again put the p99 of a page at 10,000 streams at 5–8 ms rather than about 4 ms.
/// `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
#[allow(unsafe_code)]
fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores one option value; mimalloc allows it at any time,
        // from any thread, and reads it on its next purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

#[tokio::main]
async fn main() {
    return_freed_memory_at_once();
    let args: Vec<String> = std::env::args().collect();
    let code = jsc_cli::commands::run(args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    std::process::exit(code);
}
