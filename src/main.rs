use clap::Parser;

fn main() {
    let cli = delega::cli::Cli::parse();
    if let Err(e) = delega::cli::run(cli) {
        eprintln!("delega: {e:#}");
        std::process::exit(1);
    }
}
