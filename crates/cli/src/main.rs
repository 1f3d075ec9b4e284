//! `jsconsole`: the JetStream Console binary. Everything is in [`jsc_cli::commands`].
#![forbid(unsafe_code)]

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = jsc_cli::commands::run(args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    std::process::exit(code);
}
