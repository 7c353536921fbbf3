//! The check catalogue: every check as data.

pub mod advisory;
pub mod av;
pub mod eol;
pub mod firewall;
pub mod fpm;
pub mod http;
pub mod net;
pub mod php;
pub mod pkg;
pub mod shop2fa;
pub mod shopdb;
pub mod ssh;
pub mod tls;
pub mod web;

use crate::audit::{CheckDef, Ctx, Missing, Outcome};
use mamori_core::Severity::{Critical, High, Medium};
use mamori_core::tr;

macro_rules! def {
    ($id:literal, [$($c:literal),*], $sev:expr, $missing:ident, $run:expr,
     $ten:literal, $tja:literal, $ren:literal, $rja:literal) => {
        CheckDef {
            id: $id,
            checklist: &[$($c),*],
            severity: $sev,
            title_en: $ten,
            title_ja: $tja,
            remediation_en: $ren,
            remediation_ja: $rja,
            missing: Missing::$missing,
            run: $run,
        }
    };
}

/// EC-CUBE 4 `ECCUBE_ADMIN_ALLOW_HOSTS`: the admin screen restricted by IP.
fn admin_allow_hosts(ctx: &Ctx) -> Outcome {
    let lang = ctx.lang;
    for r in &ctx.cfg.shop_roots {
        let abs = format!("{}/.env", r.display());
        let Ok(t) = ctx.sys.read(&abs) else { continue };
        if !t.contains("ECCUBE_") && !t.contains("DATABASE_URL") {
            continue;
        }
        let v = t
            .lines()
            .find_map(|l| l.trim().strip_prefix("ECCUBE_ADMIN_ALLOW_HOSTS="))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string());
        match v {
            Some(v) if !v.is_empty() && v.replace(' ', "") != "[]" => {
                return Outcome::pass(
                    tr!(
                        lang,
                        "EC-CUBE admin restricted to {v}",
                        "EC-CUBE 管理画面は {v} に制限されています"
                    ),
                    abs,
                );
            }
            _ => {
                return Outcome::fail(
                    tr!(
                        lang,
                        "EC-CUBE admin screen reachable from any IP (ECCUBE_ADMIN_ALLOW_HOSTS empty)",
                        "EC-CUBE 管理画面にどの IP からでもアクセスできます (ECCUBE_ADMIN_ALLOW_HOSTS が空)"
                    ),
                    abs,
                );
            }
        }
    }
    Outcome::missing(
        tr!(
            lang,
            "no EC-CUBE .env in the shop roots",
            "店舗ルートに EC-CUBE の .env がありません"
        ),
        "posture.shop_roots",
    )
}

pub(crate) static CATALOG: &[CheckDef] = &[
    def!(
        "pkg.security_updates",
        ["20-1.3"],
        High,
        NotApplicable,
        pkg::security_updates,
        "Security updates applied",
        "セキュリティ更新の適用",
        "Apply them now: apt-get update && apt-get upgrade (or unattended-upgrade -v).",
        "今すぐ適用してください: apt-get update && apt-get upgrade (または unattended-upgrade -v)。"
    ),
    def!(
        "pkg.reboot_required",
        ["20-1.3"],
        Medium,
        NotApplicable,
        pkg::reboot_required,
        "No reboot pending after updates",
        "更新後の再起動待ちなし",
        "Reboot in a quiet hour so the updated kernel and libraries are in use.",
        "更新したカーネルやライブラリを使うため、閑散時間に再起動してください。"
    ),
    def!(
        "pkg.auto_updates",
        ["20-1.3"],
        Medium,
        NotApplicable,
        pkg::auto_updates,
        "Automatic security updates",
        "セキュリティ更新の自動適用",
        "apt-get install unattended-upgrades && dpkg-reconfigure -plow unattended-upgrades",
        "apt-get install unattended-upgrades && dpkg-reconfigure -plow unattended-upgrades を実行してください。"
    ),
    def!(
        "eol.os",
        ["20-1.3"],
        High,
        NotApplicable,
        eol::os,
        "Operating system still supported",
        "OS のサポート期限",
        "Plan the upgrade to a supported release before security support ends.",
        "セキュリティサポートが切れる前に、サポート中のリリースへ更新してください。"
    ),
    def!(
        "eol.php",
        ["20-1.3"],
        High,
        NotApplicable,
        eol::php,
        "PHP version still supported",
        "PHP のサポート期限",
        "Move the shop to a supported PHP branch (check the shop software's supported versions first).",
        "サポート中の PHP に移行してください (先に店舗ソフトの対応バージョンを確認)。"
    ),
    def!(
        "eol.webserver",
        ["20-1.3"],
        High,
        NotApplicable,
        eol::webserver,
        "Web server version still supported",
        "Web サーバーのサポート期限",
        "Install the web server from a supported distribution release.",
        "サポート中のディストリビューションの Web サーバーを使ってください。"
    ),
    def!(
        "eol.db",
        ["20-1.3"],
        High,
        NotApplicable,
        eol::database,
        "Database version still supported",
        "データベースのサポート期限",
        "Upgrade the database server to a supported release (dump and test first).",
        "データベースをサポート中のリリースへ更新してください (事前にダンプと動作確認)。"
    ),
    def!(
        "shop.version_advisories",
        ["20-1.3", "jca:webapp"],
        High,
        NotApplicable,
        advisory::shop_version,
        "Shop software has no known vulnerability",
        "店舗ソフトに既知の脆弱性がない",
        "Update the shop software to the fixed version (or apply the vendor's patch); keep the advisory snapshot current (posture.advisories_file).",
        "店舗ソフトを修正済みのバージョンに更新する (または提供元のパッチを適用する) とともに、脆弱性スナップショットを最新に保ってください (posture.advisories_file)。"
    ),
    def!(
        "av.installed",
        ["20-1.5", "jca:antivirus"],
        High,
        Fail,
        av::installed,
        "Antivirus installed on the server",
        "サーバーにウイルス対策ソフト",
        "apt-get install clamav clamav-freshclam (and scan the document root daily).",
        "apt-get install clamav clamav-freshclam を実行し、ドキュメントルートを毎日スキャンしてください。"
    ),
    def!(
        "av.definitions",
        ["20-1.5", "jca:antivirus"],
        High,
        Fail,
        av::definitions,
        "Antivirus definitions fresh",
        "ウイルス定義ファイルが最新",
        "Enable automatic updates: systemctl enable --now clamav-freshclam.",
        "自動更新を有効にしてください: systemctl enable --now clamav-freshclam"
    ),
    def!(
        "av.scheduled_scan",
        ["20-1.5", "jca:antivirus"],
        Medium,
        Fail,
        av::scheduled_scan,
        "Scheduled virus scans",
        "定期ウイルススキャン",
        "Add a daily cron job: clamscan -ri --no-summary /var/www.",
        "毎日の cron を追加してください: clamscan -ri --no-summary /var/www"
    ),
    def!(
        "shop.login_email",
        ["20-1.6", "jca:admin"],
        Medium,
        NotApplicable,
        shopdb::login_email,
        "Admin login ids are not e-mail addresses",
        "管理者ログイン ID がメールアドレスでない",
        "Give each administrator a login id that is not their e-mail address, and a long unique password.",
        "各管理者にメールアドレス以外のログイン ID と、長く使い回しのないパスワードを設定してください。"
    ),
    def!(
        "shop.admin_allow_hosts",
        ["jca:admin"],
        High,
        NotApplicable,
        admin_allow_hosts,
        "Admin screen restricted by IP",
        "管理画面の IP 制限",
        "Set ECCUBE_ADMIN_ALLOW_HOSTS (EC-CUBE) or allow/deny on the admin location to the office's addresses.",
        "ECCUBE_ADMIN_ALLOW_HOSTS (EC-CUBE) または管理画面の allow/deny で事務所の IP のみに制限してください。"
    ),
    def!(
        "shop.admin_2fa",
        ["20-1.7", "jca:admin"],
        High,
        NotApplicable,
        shop2fa::admin_2fa,
        "Two-factor login for the shop admin",
        "管理画面の二段階認証",
        "EC-CUBE 4.1+: keep ECCUBE_2FA_ENABLED on and have every member set up 2FA (Settings > Members); Magento: enable Magento_TwoFactorAuth; WordPress: activate a two-factor plugin (e.g. Two Factor, WP 2FA) and require it for administrators.",
        "EC-CUBE 4.1 以降: ECCUBE_2FA_ENABLED を有効のままにし全メンバーに二段階認証を設定させてください (設定 > メンバー管理)。Magento: Magento_TwoFactorAuth を有効化。WordPress: 二段階認証プラグイン (Two Factor、WP 2FA など) を有効化し管理者に必須にしてください。"
    ),
    def!(
        "ssh.2fa",
        ["20-1.7"],
        High,
        NotApplicable,
        ssh::two_factor,
        "Two-factor SSH login",
        "SSH の二要素認証",
        "Require a key and a one-time code: AuthenticationMethods publickey,keyboard-interactive with pam_google_authenticator or pam_oath; PasswordAuthentication no.",
        "鍵とワンタイムコードを必須にしてください: AuthenticationMethods publickey,keyboard-interactive と pam_google_authenticator / pam_oath、PasswordAuthentication no。"
    ),
    def!(
        "ssh.keys_owned",
        ["20-1.9"],
        High,
        NotApplicable,
        ssh::keys_owned,
        "Every SSH key belongs to a named person",
        "SSH 鍵の持ち主がすべて判明",
        "Remove unknown keys; list each remaining fingerprint with its owner under [posture.ssh_keys].",
        "不明な鍵を削除し、残す鍵のフィンガープリントと持ち主を [posture.ssh_keys] に記載してください。"
    ),
    def!(
        "ssh.weak_keys",
        ["20-1.9"],
        Medium,
        NotApplicable,
        ssh::weak_keys,
        "No weak SSH keys",
        "弱い SSH 鍵なし",
        "Replace DSA and RSA < 3072 keys with ed25519 keys (ssh-keygen -t ed25519).",
        "DSA 鍵や 3072 ビット未満の RSA 鍵を ed25519 鍵に置き換えてください (ssh-keygen -t ed25519)。"
    ),
    def!(
        "web.staging_exposed",
        ["20-1.8"],
        High,
        NotApplicable,
        web::staging,
        "Test/staging sites not open to anyone",
        "テスト/ステージング環境が誰でも閲覧できない",
        "Restrict each test/staging vhost to the office's addresses (nginx allow/deny all; Apache Require ip) or put it behind a login, keep it as patched as production, and never copy real customer or card data into it.",
        "テスト/ステージング用のバーチャルホストを事務所の IP に制限する (nginx allow/deny all、Apache Require ip) かログイン必須にし、本番と同じく更新し、実際の顧客・カード情報を置かないでください。"
    ),
    def!(
        "http.git_exposed",
        ["jca:exposure"],
        Critical,
        NotApplicable,
        http::git,
        "/.git not served",
        "/.git が公開されていない",
        "Deny hidden paths in the web server (nginx: location ~ /\\. { deny all; }) and deploy without .git.",
        "Web サーバーで隠しパスを拒否し (nginx: location ~ /\\. { deny all; })、.git を含めずに配置してください。"
    ),
    def!(
        "http.env_exposed",
        ["jca:exposure"],
        Critical,
        NotApplicable,
        http::env,
        "/.env not served",
        "/.env が公開されていない",
        "Deny /.env in the web server, then change every password and key it contains.",
        "Web サーバーで /.env を拒否し、中のパスワードと鍵をすべて変更してください。"
    ),
    def!(
        "http.backup_exposed",
        ["jca:exposure"],
        Critical,
        NotApplicable,
        http::backups,
        "No backups or dumps served",
        "バックアップやダンプが公開されていない",
        "Move backups and dumps out of the document root and seal them (mamori seal).",
        "バックアップやダンプをドキュメントルート外へ移し、暗号化してください (mamori seal)。"
    ),
    def!(
        "http.phpinfo",
        ["jca:exposure", "jca:webapp"],
        Medium,
        NotApplicable,
        http::phpinfo,
        "No phpinfo page",
        "phpinfo ページなし",
        "Delete phpinfo()/info.php test pages.",
        "phpinfo()/info.php などのテストページを削除してください。"
    ),
    def!(
        "http.dir_listing",
        ["jca:exposure"],
        Medium,
        NotApplicable,
        http::listing,
        "No directory listings",
        "ディレクトリ一覧の表示なし",
        "Turn off autoindex (nginx) / Options -Indexes (Apache).",
        "autoindex (nginx) / Options -Indexes (Apache) を無効にしてください。"
    ),
    def!(
        "http.vendor_exposed",
        ["jca:exposure"],
        Medium,
        NotApplicable,
        http::vendor,
        "/vendor and composer files not served",
        "/vendor と composer ファイルが公開されていない",
        "Serve only the public directory; deny /vendor/ and composer.* in the web server.",
        "公開ディレクトリのみを配信し、/vendor/ と composer.* を拒否してください。"
    ),
    def!(
        "http.var_exposed",
        ["jca:exposure"],
        High,
        NotApplicable,
        http::var,
        "/var (logs, cache) not served",
        "/var (ログ・キャッシュ) が公開されていない",
        "Deny /var/ in the web server (EC-CUBE, Magento keep logs there).",
        "Web サーバーで /var/ を拒否してください (EC-CUBE や Magento はログを置きます)。"
    ),
    def!(
        "http.app_env_exposed",
        ["jca:exposure"],
        Critical,
        NotApplicable,
        http::magento_env,
        "App config (app/etc/env.php) not served",
        "アプリ設定 (app/etc/env.php) が公開されていない",
        "Point the document root at pub/ (Magento) or html/ (EC-CUBE) and deny /app/.",
        "ドキュメントルートを pub/ (Magento) や html/ (EC-CUBE) にし、/app/ を拒否してください。"
    ),
    def!(
        "http.server_status",
        ["jca:exposure"],
        Medium,
        NotApplicable,
        http::server_status,
        "No public server-status page",
        "server-status が公開されていない",
        "Restrict /server-status and stub_status to 127.0.0.1.",
        "/server-status や stub_status を 127.0.0.1 のみに制限してください。"
    ),
    def!(
        "php.hardening",
        ["jca:webapp"],
        Medium,
        NotApplicable,
        php::hardening,
        "PHP hardened (expose_php, display_errors, allow_url_include off)",
        "PHP の安全設定",
        "In php.ini: expose_php = Off, display_errors = Off, allow_url_include = Off; reload PHP-FPM.",
        "php.ini で expose_php = Off、display_errors = Off、allow_url_include = Off にして PHP-FPM を再読み込みしてください。"
    ),
    def!(
        "net.db_public",
        ["20-1.1", "jca:exposure"],
        High,
        NotApplicable,
        net::db_public,
        "Database not listening publicly",
        "データベースが外部で待ち受けていない",
        "Set bind-address = 127.0.0.1 (MariaDB/MySQL) or listen_addresses = 'localhost' (PostgreSQL).",
        "bind-address = 127.0.0.1 (MariaDB/MySQL) や listen_addresses = 'localhost' (PostgreSQL) を設定してください。"
    ),
    def!(
        "php.code_writable",
        ["20-1.1", "jca:webapp"],
        High,
        NotApplicable,
        fpm::code_writable,
        "Shop code not writable by the PHP user",
        "PHP の実行ユーザーが店舗のコードを書き換えられない",
        "Give the code to a deploy user, not the PHP-FPM pool's user: chown -R deploy: SHOP && chmod -R go-w SHOP; leave only upload, cache and log directories writable.",
        "コードの所有者を PHP-FPM プールのユーザーではなくデプロイ用ユーザーにしてください: chown -R deploy: SHOP && chmod -R go-w SHOP。書き込み可能にするのはアップロード・キャッシュ・ログのディレクトリだけにしてください。"
    ),
    def!(
        "net.egress_policy",
        ["20-1.1"],
        Medium,
        Warn,
        firewall::egress,
        "Outbound traffic restricted",
        "外向き通信の制限",
        "Drop new outbound connections of the web user except to the payment provider and update mirrors (nft: meta skuid \"www-data\" ip daddr != @allowed reject), or make the output chain default-deny.",
        "Web ユーザーの新規外向き通信を決済代行・更新サーバー以外拒否してください (nft: meta skuid \"www-data\" ip daddr != @allowed reject)。または output チェーンを既定拒否にしてください。"
    ),
    def!(
        "tls.protocols",
        ["jca:webapp"],
        High,
        NotApplicable,
        tls::protocols,
        "No old TLS/SSL versions",
        "古い TLS/SSL が無効",
        "Allow TLS 1.2 and 1.3 only: ssl_protocols TLSv1.2 TLSv1.3; (nginx) / SSLProtocol -all +TLSv1.2 +TLSv1.3 (Apache), then reload.",
        "TLS 1.2 と 1.3 のみを許可してください: ssl_protocols TLSv1.2 TLSv1.3; (nginx) / SSLProtocol -all +TLSv1.2 +TLSv1.3 (Apache) にして再読み込みしてください。"
    ),
    def!(
        "tls.cert_expiry",
        ["jca:webapp"],
        High,
        NotApplicable,
        tls::cert_expiry,
        "TLS certificate not about to expire",
        "TLS 証明書の有効期限",
        "Renew the certificate now and check the automatic renewal (certbot renew --dry-run; systemctl list-timers certbot).",
        "今すぐ証明書を更新し、自動更新を確認してください (certbot renew --dry-run、systemctl list-timers certbot)。"
    ),
    def!(
        "attest.threat_intel",
        ["20-1.2"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.threat_intel"),
        "New attack methods followed (attested)",
        "新たな攻撃手法の把握 (自己申告)",
        "Record who follows advisories (JPCERT/CC, IPA, the shop vendor) and how countermeasures are verified: mamori attest 20-1.2.",
        "誰が注意喚起 (JPCERT/CC、IPA、店舗ソフト) を確認し対策をどう検証するかを記録してください: mamori attest 20-1.2"
    ),
    def!(
        "attest.mail_training",
        ["20-1.4"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.mail_training"),
        "Staff trained on e-mail infection (attested)",
        "メール経由の感染対策教育 (自己申告)",
        "Train the operators on phishing and attachments yearly and record it: mamori attest 20-1.4.",
        "フィッシングや添付ファイルの教育を年 1 回行い記録してください: mamori attest 20-1.4"
    ),
    def!(
        "attest.pc_antivirus",
        ["20-1.5"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.pc_antivirus"),
        "Operators' PCs have antivirus (attested)",
        "運用 PC のウイルス対策 (自己申告)",
        "Confirm every PC that logs in to the shop has antivirus with automatic updates: mamori attest 20-1.5.",
        "店舗にログインする PC すべてに自動更新のウイルス対策があることを確認してください: mamori attest 20-1.5"
    ),
    def!(
        "attest.test_env",
        ["20-1.8"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.test_env"),
        "Test environments no weaker than production (attested)",
        "テスト環境の対策 (自己申告)",
        "Protect staging like production (IP or password restricted, no real card data): mamori attest 20-1.8.",
        "テスト環境も本番同様に保護してください (IP/パスワード制限、実カード情報なし): mamori attest 20-1.8"
    ),
    def!(
        "attest.contractors",
        ["20-1.9"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.contractors"),
        "Contractors bound and supervised (attested)",
        "委託先の管理 (自己申告)",
        "Put the same security rules in each contractor's contract and review their access: mamori attest 20-1.9.",
        "委託先の契約に同じセキュリティ要件を入れ、アクセスを定期確認してください: mamori attest 20-1.9"
    ),
    def!(
        "attest.pentest",
        ["jca:webapp"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.pentest"),
        "Vulnerability assessment within 12 months (attested)",
        "脆弱性診断の実施 (自己申告)",
        "Have the site assessed (or pentested) at least yearly and after major changes: mamori attest jca:webapp.",
        "年 1 回以上と大きな改修後に脆弱性診断を受けてください: mamori attest jca:webapp"
    ),
    def!(
        "attest.card_testing",
        ["jca:card_testing"],
        Medium,
        Fail,
        |c| crate::attest::check(c, "attest.card_testing"),
        "Card-testing countermeasures (attested)",
        "クレジットマスター対策 (自己申告)",
        "Enable EMV 3-D Secure, rate limits and CAPTCHA on checkout: mamori attest jca:card_testing.",
        "EMV 3-D セキュア、決済の回数制限、CAPTCHA を導入してください: mamori attest jca:card_testing"
    ),
];
