use clap::Parser;

/// mimalloc keeps freed memory for reuse: with glibc's allocator every
/// megabyte-sized answer (a list of 1,000 tasks) was a fresh mapping,
/// faulted in page by page and unmapped after sending.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = delega::cli::Cli::parse();
    if let Err(e) = delega::cli::run(cli) {
        // One line on stderr; the exit code says what kind of failure it
        // was (1 API, 2 usage, 3 connection: see cli::output).
        std::process::exit(delega::cli::report(&e));
    }
}
