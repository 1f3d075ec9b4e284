//! `jsc-client URL EMAIL PASSWORD [STREAM]`: the typed client's walk-through against a console.

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, email, password, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: jsc-client URL EMAIL PASSWORD [STREAM]  (e.g. http://127.0.0.1:8080)");
    };
    let stream = rest.first().map_or("RUST_CLIENT", String::as_str);
    for line in jsc_client::walkthrough(base, email, password, stream).await? {
        println!("{line}");
    }
    Ok(())
}
