//! Stand-in for `mamori seal` / `mamori unseal` / `mamori keygen` until the binary has
//! them (used by bench/seal.sh):
//!   seal_bench keygen
//!   seal_bench seal -r RECIPIENT [-r …] -o OUT IN
//!   seal_bench unseal -i IDENTITY_FILE -o OUT IN

use mamori_posture::seal;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut rs, mut ids, mut out, mut input) = (Vec::new(), Vec::new(), None, None);
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "-r" if i + 1 < args.len() => {
                rs.push(args[i + 1].clone());
                i += 1;
            }
            "-i" if i + 1 < args.len() => {
                match seal::read_identity_file(&PathBuf::from(&args[i + 1])) {
                    Ok(v) => ids.extend(v),
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                }
                i += 1;
            }
            "-o" if i + 1 < args.len() => {
                out = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            other => input = Some(PathBuf::from(other)),
        }
        i += 1;
    }
    let r = match (args.first().map(String::as_str), input) {
        (Some("keygen"), _) => {
            let (id, r) = seal::keygen();
            println!("# public key: {r}\n{id}");
            return ExitCode::SUCCESS;
        }
        (Some("seal"), Some(inp)) => seal::seal_file(&inp, out.as_deref(), &rs),
        (Some("unseal"), Some(inp)) => seal::unseal_file(&inp, out.as_deref(), &ids),
        _ => {
            eprintln!("usage: seal_bench keygen | seal -r R -o OUT IN | unseal -i ID -o OUT IN");
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
