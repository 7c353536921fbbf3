//! The human report: checks grouped by checklist item, each item with its score.

use crate::audit::{AuditReport, ItemScore, Status};
use mamori_core::{Lang, tr};
use std::fmt::Write;

/// The title of a checklist item.
pub fn item_title(item: &str, lang: Lang) -> String {
    let (en, ja) = match item {
        "20-1.1" => ("Threat prevention and monitoring", "脅威の防止と監視"),
        "20-1.2" => (
            "New attack methods followed, countermeasures verified",
            "新たな攻撃手法の把握と対策の検証",
        ),
        "20-1.3" => ("OS and software kept current", "OS・ソフトウェアの最新化"),
        "20-1.4" => (
            "E-mail borne infection: education",
            "メール経由の感染対策と教育",
        ),
        "20-1.5" => (
            "Antivirus with updated definitions",
            "ウイルス対策ソフトと定義ファイルの更新",
        ),
        "20-1.6" => (
            "Login ids other than e-mail addresses",
            "メールアドレス以外のログイン ID",
        ),
        "20-1.7" => ("Two-step / two-factor login", "二段階・二要素認証"),
        "20-1.8" => (
            "Test environments no weaker than production",
            "テスト環境の安全性",
        ),
        "20-1.9" => ("Contractors held to the same rules", "委託先の管理"),
        "jca:admin" => (
            "Card guideline: admin screen access and credentials",
            "カード指針: 管理画面のアクセス制限と ID/パスワード管理",
        ),
        "jca:exposure" => (
            "Card guideline: no exposed data directories",
            "カード指針: データディレクトリの公開防止",
        ),
        "jca:webapp" => (
            "Card guideline: web application vulnerabilities",
            "カード指針: Web アプリケーションの脆弱性対策",
        ),
        "jca:antivirus" => (
            "Card guideline: antivirus installed and operated",
            "カード指針: ウイルス対策ソフトの導入・運用",
        ),
        "jca:card_testing" => (
            "Card guideline: card-testing countermeasures",
            "カード指針: クレジットマスター対策",
        ),
        _ => (item, item),
    };
    match lang {
        Lang::En => en.to_string(),
        Lang::Ja => ja.to_string(),
    }
}

fn score_line(s: &ItemScore, lang: Lang) -> String {
    let pct = s
        .score
        .map(|p| format!("{p}%"))
        .unwrap_or_else(|| "-".into());
    let (p, f, w, a, n, e) = (
        s.pass,
        s.fail,
        s.warn,
        s.attested,
        s.not_applicable,
        s.error,
    );
    tr!(
        lang,
        "score {pct}  (pass {p}, fail {f}, warn {w}, attested {a}, n/a {n}, error {e})",
        "達成度 {pct}  (合格 {p}・不合格 {f}・警告 {w}・自己申告 {a}・対象外 {n}・エラー {e})"
    )
}

/// The report as a table, grouped by checklist item (a check bearing on several items
/// appears under each).
pub fn render_table(report: &AuditReport, lang: Lang) -> String {
    let mut out = String::new();
    let host = &report.host;
    let when = report.generated_at.format("%Y-%m-%d %H:%M UTC");
    let _ = writeln!(
        out,
        "{}",
        tr!(
            lang,
            "mamori audit: {host}, {when}",
            "mamori 監査: {host}、{when}"
        )
    );
    for s in &report.scores {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}  {}", s.item, item_title(&s.item, lang));
        let _ = writeln!(out, "        {}", score_line(s, lang));
        for r in report
            .results
            .iter()
            .filter(|r| r.checklist.contains(&s.item))
        {
            let _ = writeln!(out, "  {:<9} {:<22} {}", r.status.label(), r.id, r.title);
            let _ = writeln!(out, "  {:<9} {:<22} {}", "", "", r.seen);
            if matches!(r.status, Status::Fail | Status::Warn) {
                let _ = writeln!(out, "  {:<9} {:<22} -> {}", "", "", r.remediation);
            }
        }
    }
    let count = |f: fn(&Status) -> bool| report.results.iter().filter(|r| f(&r.status)).count();
    let (p, f, w, a, n, e) = (
        count(|s| *s == Status::Pass),
        count(|s| *s == Status::Fail),
        count(|s| *s == Status::Warn),
        count(|s| *s == Status::Attested),
        count(|s| matches!(s, Status::NotApplicable(_))),
        count(|s| matches!(s, Status::Error(_))),
    );
    let total = report.results.len();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        tr!(
            lang,
            "{total} checks: {p} pass, {f} fail, {w} warn, {a} attested (not verified by mamori), {n} n/a, {e} error",
            "{total} 項目: 合格 {p}・不合格 {f}・警告 {w}・自己申告 {a} (mamori は未検証)・対象外 {n}・エラー {e}"
        )
    );
    out
}
