//! `jsconsole`: the JetStream Console binary. Everything is in [`jsc_cli::commands`].
#![forbid(unsafe_code)]

/// mimalloc rather than the system allocator: the console's work is many small, short-lived
/// allocations on several threads (JSON answers of the managed clusters, samples, GraphQL
/// answers), where glibc's malloc spent about 40 % of the collector's CPU (bench scenario 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = jsc_cli::commands::run(args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    std::process::exit(code);
}
