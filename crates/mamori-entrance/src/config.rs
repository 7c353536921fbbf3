//! The optional `[entrance]` configuration section. Every field has a default, so an
//! empty section (or none at all) works.

use crate::block::BlockBackend;
use crate::parse::JsonFields;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How `mamori watch` applies the blocks its followed logs call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockMode {
    /// The nftables table `inet mamori` (sets with timeouts), as `mamori logs --block`.
    Nftables,
    /// The nginx deny-list include file `nginx_deny` (reload nginx to load it).
    Nginx,
    /// Report `block.added` / `block.removed` only.
    Print,
}

/// Tunables of the entrance layer (`[entrance]` in `mamori.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EntranceConfig {
    /// Addresses and networks never flagged as campaign members and never blocked
    /// (the shop's office, the payment provider's callbacks, monitoring).
    pub allow: Vec<IpNet>,
    /// Networks whose addresses are shared by many people (mobile carrier NAT, company
    /// proxies): they get rate-limit / challenge advice instead of a ban. RFC 6598
    /// (100.64.0.0/10) is always included.
    pub shared: Vec<IpNet>,
    /// Customer login form endpoints (POST), matched as path prefixes, case-insensitive.
    pub customer_login_paths: Vec<String>,
    /// Administrator login endpoints (POST).
    pub admin_login_paths: Vec<String>,
    /// Path prefixes of the administration area.
    pub admin_prefixes: Vec<String>,
    /// Payment endpoints (POST): a 2xx/4xx/5xx answer is a failed (re-rendered) payment.
    pub payment_paths: Vec<String>,
    /// Distinct addresses with failed logins and no success within 30 minutes that mean
    /// credential stuffing.
    pub stuffing_min_ips: usize,
    /// Distinct addresses failing the admin login within 24 hours that mean password spraying.
    pub spraying_min_ips: usize,
    /// Failed logins from one address within one hour that mean brute force.
    pub bruteforce_min_failures: u32,
    /// Failed payments from one address within one hour that mean card testing.
    pub card_testing_min_failures: u32,
    /// Member addresses within `campaign_window_days` needed to call a campaign.
    pub campaign_min_ips: usize,
    pub campaign_window_days: u32,
    /// How long per-address memory lasts without activity.
    pub memory_days: u32,
    /// Upper bound of tracked addresses (memory bound); idle benign ones are dropped first.
    pub max_tracked_ips: usize,
    /// Block durations in hours.
    pub block_hours_campaign: u32,
    pub block_hours_abuse: u32,
    /// Block IPv6 attackers by this prefix length (64 = one subscriber).
    pub block_ipv6_prefix: u8,
    /// JSON log field names.
    pub json_fields: JsonFields,
    /// Access logs that `mamori watch` follows live (tail through rotation; the read
    /// position is kept in the store, so a restart neither skips nor repeats a line).
    pub follow: Vec<std::path::PathBuf>,
    /// `mamori watch` blocks what the followed logs show, through this backend, with
    /// the safeguards of `mamori logs --block`. Unset: follow mode only reports.
    pub block: Option<BlockMode>,
    /// With `block`: decide and report blocks, apply nothing (no `nft`, no file).
    pub block_dry_run: bool,
    /// With `block = "nginx"`: the include file of `deny` lines to write.
    pub nginx_deny: Option<PathBuf>,
    /// Seconds between saves of the detectors' memory by `watch` (when it changed; it
    /// is also saved when watch stops).
    pub save_interval_secs: u64,
}

impl EntranceConfig {
    /// The backend `watch` blocks through (`None`: blocking is off), or why the
    /// section is incomplete.
    pub fn block_backend(&self) -> Result<Option<BlockBackend>, String> {
        Ok(match self.block {
            None => None,
            Some(BlockMode::Print) => Some(BlockBackend::PrintOnly),
            Some(BlockMode::Nftables) => Some(BlockBackend::nftables(self.block_dry_run)),
            Some(BlockMode::Nginx) => match (&self.nginx_deny, self.block_dry_run) {
                (None, _) => return Err("block = \"nginx\" needs nginx_deny = \"FILE\"".into()),
                (Some(_), true) => Some(BlockBackend::PrintOnly),
                (Some(p), false) => Some(BlockBackend::NginxDeny { path: p.clone() }),
            },
        })
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

impl Default for EntranceConfig {
    fn default() -> Self {
        EntranceConfig {
            allow: Vec::new(),
            shared: Vec::new(),
            customer_login_paths: s(&[
                "/mypage/login",
                "/mypage/login_check",
                "/customer/account/loginpost",
                "/my-account",
                "/wp-login.php",
                "/login",
                "/account/login",
            ]),
            admin_login_paths: s(&[
                "/admin/login",
                "/admin/login_check",
                "/admin/admin/index/index",
                "/admin/index/index",
                "/administrator/index.php",
            ]),
            admin_prefixes: s(&["/admin/"]),
            payment_paths: s(&[
                "/shopping/checkout",
                "/shopping/order",
                "/rest/v1/carts/mine/payment-information",
                "/rest/default/v1/carts/mine/payment-information",
                "/rest/default/v1/guest-carts/",
                "/checkout/onepage/saveorder",
                "/?wc-ajax=checkout",
                "/checkout/?wc-ajax=checkout",
            ]),
            stuffing_min_ips: 10,
            spraying_min_ips: 5,
            bruteforce_min_failures: 10,
            card_testing_min_failures: 4,
            campaign_min_ips: 5,
            campaign_window_days: 14,
            memory_days: 35,
            max_tracked_ips: 400_000,
            block_hours_campaign: 24 * 7,
            block_hours_abuse: 24,
            block_ipv6_prefix: 64,
            json_fields: JsonFields::default(),
            follow: Vec::new(),
            block: None,
            block_dry_run: false,
            nginx_deny: None,
            save_interval_secs: 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_partial_sections() {
        let c: EntranceConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, EntranceConfig::default());
        let c: EntranceConfig =
            serde_json::from_str(r#"{"allow":["203.0.113.0/24"],"stuffing_min_ips":20}"#).unwrap();
        assert_eq!(c.stuffing_min_ips, 20);
        assert_eq!(c.allow.len(), 1);
        assert!(serde_json::from_str::<EntranceConfig>(r#"{"nope":1}"#).is_err());
        assert_eq!(c.block_backend(), Ok(None));
    }

    #[test]
    fn block_settings() {
        let c: EntranceConfig =
            serde_json::from_str(r#"{"block":"nftables","block_dry_run":true}"#).unwrap();
        assert_eq!(c.block_backend(), Ok(Some(BlockBackend::nftables(true))));
        let c: EntranceConfig = serde_json::from_str(r#"{"block":"nginx"}"#).unwrap();
        assert!(c.block_backend().is_err());
        let c: EntranceConfig =
            serde_json::from_str(r#"{"block":"nginx","nginx_deny":"/x/deny.conf"}"#).unwrap();
        assert_eq!(
            c.block_backend(),
            Ok(Some(BlockBackend::NginxDeny {
                path: "/x/deny.conf".into()
            }))
        );
        assert!(serde_json::from_str::<EntranceConfig>(r#"{"block":"iptables"}"#).is_err());
    }
}
