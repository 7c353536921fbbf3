//! The posture part: `audit`, `attest`, and sealing (`keygen`, `seal`, `unseal`).

use crate::bail_user;
use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::tr;
use mamori_posture::{AuditOptions, PostureConfig, seal};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The shop's URL for the exposure probes (e.g. http://127.0.0.1/).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// A shop document root to audit (its .env / app/etc/env.php / wp-config.php,
    /// its code's permissions); repeatable; added to the config's `[[root]]` paths.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct AttestArgs {
    /// The checklist item or check id attested (e.g. 20-1.4).
    #[arg(value_name = "ITEM")]
    pub item: String,
    /// What is being attested, in a sentence.
    #[arg(long, value_name = "TEXT")]
    pub statement: String,
    /// Until when (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub expires: String,
}

#[derive(Args, Debug)]
pub struct SealArgs {
    /// Recipient public key (age1…); repeatable. Default: `posture.recipients`.
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Output file (default FILE.age; stdout for `-`).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Files to seal, or `-` for standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UnsealArgs {
    /// Identity file (from `mamori keygen` or `age-keygen`).
    #[arg(
        short = 'i',
        long = "identity",
        required = true,
        value_name = "IDENTITY"
    )]
    pub identity: Vec<PathBuf>,
    /// Output file (default: FILE without .age; stdout for `-`).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The sealed file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

fn posture_config(ctx: &Ctx) -> Result<PostureConfig> {
    let lang = ctx.lang;
    match ctx.config_opt().and_then(|l| l.config.posture.clone()) {
        Some(t) => Ok(t.try_into().map_err(|e: toml::de::Error| {
            super::UserError(tr!(
                lang,
                "{}: [posture]: {}; see docs/posture.md",
                "{}: [posture] の設定が不正です: {}。docs/posture.md を参照してください",
                ctx.config_path.display(),
                e.message().trim()
            ))
        })?),
        None => Ok(PostureConfig::default()),
    }
}

fn loc(lang: mamori_core::Lang) -> impl Fn(mamori_posture::PostureError) -> anyhow::Error {
    move |e| super::UserError(e.localized(lang)).into()
}

pub fn audit(ctx: &Ctx, a: &AuditArgs) -> Result<u8> {
    let lang = ctx.lang;
    let mut cfg = posture_config(ctx)?;
    let mut opts = AuditOptions::default();
    if let Some(l) = ctx.config_opt() {
        cfg.shop_roots.extend(l.roots().into_iter().map(|r| r.path));
        let att = cfg
            .attestations_file
            .clone()
            .unwrap_or_else(|| l.state_dir().join("attestations.jsonl"));
        opts.attestations = mamori_posture::load_attestations(&att).map_err(loc(lang))?;
        opts.attest_key = std::fs::read(l.key_file()).ok();
    }
    for r in &a.roots {
        if !r.is_dir() {
            bail_user!(
                lang,
                "--root {}: not a directory",
                "--root {}: ディレクトリではありません",
                r.display()
            );
        }
        let abs = std::path::absolute(r).unwrap_or_else(|_| r.clone());
        if !cfg.shop_roots.contains(&abs) {
            cfg.shop_roots.push(abs);
        }
    }
    opts.config = cfg;
    opts.url = a.url.clone();
    let report = mamori_posture::audit(&opts, &ctx.host(), lang).map_err(loc(lang))?;
    let findings = report.findings();
    if let Some(l) = ctx.config_opt()
        && let Ok(mut store) = crate::ctx::open_store(&l.db_path(), &l.key_file())
    {
        store.append_findings(&findings)?;
    }
    if ctx.json {
        ctx.emit(&findings)
    } else {
        print!("{}", mamori_posture::render_table(&report, lang));
        Ok(mamori_core::output::exit_code(&findings, ctx.fail_on()) as u8)
    }
}

fn parse_date(lang: mamori_core::Lang, s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(23, 59, 59)
    {
        return Ok(t.and_utc());
    }
    bail_user!(
        lang,
        "--expires {s}: not a date; use YYYY-MM-DD or RFC 3339",
        "--expires {s}: 日付として不正です。YYYY-MM-DD か RFC 3339 で指定してください"
    )
}

pub fn attest(ctx: &Ctx, a: &AttestArgs) -> Result<u8> {
    let lang = ctx.lang;
    let l = ctx.config()?;
    let expires = parse_date(lang, &a.expires)?;
    let key = crate::ctx::open_store(&l.db_path(), &l.key_file())
        .and_then(|_| Ok(std::fs::read(l.key_file())?))?;
    let cfg = posture_config(ctx)?;
    let path = cfg
        .attestations_file
        .unwrap_or_else(|| l.state_dir().join("attestations.jsonl"));
    let att = mamori_posture::attest(&a.item, &a.statement, expires, &key).map_err(loc(lang))?;
    mamori_posture::append_attestation(&path, &att).map_err(loc(lang))?;
    let (item, until) = (&a.item, expires.format("%Y-%m-%d"));
    println!(
        "{}",
        tr!(
            lang,
            "attested {item} until {until} (signed; shown as ATTESTED, never PASS)",
            "{item} を {until} まで表明しました (署名済み。PASS ではなく ATTESTED と表示されます)"
        )
    );
    Ok(0)
}

pub fn keygen(ctx: &Ctx) -> Result<u8> {
    let (identity, recipient) = seal::keygen();
    ctx.note(&tr!(
        ctx.lang,
        "Keep this identity on the owner's PC, not on the server: anyone with it can read every sealed file. Put the public key in `posture.recipients` or pass it with -r.",
        "この秘密鍵はサーバーではなく店主の PC に保管してください。持っている人は封印したファイルをすべて読めます。公開鍵は `posture.recipients` に書くか -r で指定してください。"
    ));
    println!("# created: {}", chrono::Utc::now().to_rfc3339());
    println!("# public key: {recipient}");
    println!("{identity}");
    Ok(0)
}

pub fn seal_cmd(ctx: &Ctx, a: &SealArgs) -> Result<u8> {
    let lang = ctx.lang;
    let recipients = if a.recipients.is_empty() {
        posture_config(ctx)?.recipients
    } else {
        a.recipients.clone()
    };
    if recipients.is_empty() {
        bail_user!(
            lang,
            "no recipient: pass -r age1… or set posture.recipients (make one with `mamori keygen`)",
            "受信者がありません。-r age1… を指定するか posture.recipients を設定してください (`mamori keygen` で作成)"
        );
    }
    for f in &a.files {
        if f.as_os_str() == "-" {
            match &a.output {
                Some(o) if o.as_os_str() != "-" => {
                    let out = std::fs::File::create(o)?;
                    seal::seal(std::io::stdin().lock(), out, &recipients).map_err(loc(lang))?;
                }
                _ => {
                    seal::seal(
                        std::io::stdin().lock(),
                        std::io::stdout().lock(),
                        &recipients,
                    )
                    .map_err(loc(lang))?;
                }
            }
        } else {
            let out = seal::seal_file(f, a.output.as_deref(), &recipients).map_err(loc(lang))?;
            ctx.note(&format!("{} → {}", f.display(), out.display()));
        }
    }
    Ok(0)
}

pub fn unseal_cmd(ctx: &Ctx, a: &UnsealArgs) -> Result<u8> {
    let lang = ctx.lang;
    let mut ids = Vec::new();
    for p in &a.identity {
        ids.extend(seal::read_identity_file(p).map_err(loc(lang))?);
    }
    let to_stdout = a.output.as_ref().is_some_and(|o| o.as_os_str() == "-");
    if a.file.as_os_str() == "-" || to_stdout {
        let input: Box<dyn std::io::Read> = if a.file.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                std::fs::File::open(&a.file).map_err(|e| mamori_core::Error::Read {
                    path: a.file.clone(),
                    source: e,
                })?,
            )
        };
        seal::unseal(input, std::io::stdout().lock(), &ids).map_err(loc(lang))?;
    } else {
        let out = seal::unseal_file(&a.file, a.output.as_deref(), &ids).map_err(loc(lang))?;
        ctx.note(&format!("{} → {}", a.file.display(), out.display()));
    }
    Ok(0)
}
