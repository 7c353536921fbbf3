//! One module per subcommand: `XArgs` (clap) and `run(&Ctx, &XArgs) -> Result<u8>`
//! returning the exit code (0/1); errors become exit 2 in `main`.

pub mod approve;
pub mod baseline;
pub mod check;
pub mod demo;
pub mod egress;
pub mod events;
pub mod init;
pub mod logs;
pub mod page;
pub mod posture;
pub mod scan;
pub mod watch;

/// An error whose text is already localized and complete (printed as is).
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Fail with a localized message: `bail_user!(ctx.lang, "en…", "ja…")`.
#[macro_export]
macro_rules! bail_user {
    ($lang:expr, $en:literal, $ja:literal $(, $($args:tt)*)?) => {
        return Err($crate::cmd::UserError(mamori_core::tr!($lang, $en, $ja $(, $($args)*)?)).into())
    };
}

/// Per-file warnings on stderr: the first 20, then a count.
pub fn print_warnings(ctx: &crate::ctx::Ctx, warnings: &[mamori_internal::Warning]) {
    const SHOW: usize = 20;
    for w in warnings.iter().take(SHOW) {
        ctx.warn(&w.localized(ctx.lang));
    }
    if warnings.len() > SHOW {
        let n = warnings.len() - SHOW;
        ctx.warn(&mamori_core::tr!(
            ctx.lang,
            "… and {n} more warnings",
            "… ほか {n} 件の警告"
        ));
    }
}
