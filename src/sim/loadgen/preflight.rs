//! Before any load: what the run needs, checked, each missing thing stopping the run
//! with one line that says what and the command that fixes it; then the accounts each
//! bank pays from, announced before they are opened.

use std::path::Path;

use serde::Serialize;
use tonic::transport::Channel;

use crate::model::{Balance, Bic, Currency, format_minor_units};
use crate::net::{admin_client, operator_client};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::tls::NetworkDir;

/// Prefix of the accounts the load generator pays from and into: `LOADGEN-1`, `LOADGEN-2`...
pub const ACCOUNT_PREFIX: &str = "LOADGEN-";
/// What the fix for an unfunded position suggests funding, in the currency's units.
const FUNDING_SUGGESTED: &str = "1000000";

/// The run's network as the checks need it.
pub(super) struct Network<'a> {
    pub network: &'a NetworkDir,
    /// Its directory, as the fixes should name it.
    pub dir: &'a Path,
    pub hub_url: &'a str,
    pub banks: &'a [(Bic, String)],
    pub currency: Currency,
    /// One payment, in minor units.
    pub payment_minor_units: i64,
}

/// The account a bank pays from, as the report lists it.
#[derive(Clone, Debug, Serialize)]
pub struct LoadgenAccount {
    /// The bank.
    pub bank: String,
    /// The account: `LOADGEN-n`.
    pub account: String,
    /// True when this run opened it; false when an earlier run had.
    pub opened: bool,
    /// Opened: its deposit; reused: its balance when the run began. Decimal text.
    pub balance: String,
}

/// Checks that the hub answers and funds every bank in the run's currency, and that
/// every bank answers; returns each bank's operator client.
pub(super) async fn check(net: &Network<'_>) -> Result<Vec<BankServiceClient<Channel>>, String> {
    check_positions(net).await?;
    let mut clients = Vec::new();
    for (bic, url) in net.banks {
        let mut client =
            operator_client(net.network, url).await.map_err(|e| unreachable_bank(net, *bic, url, &e))?;
        client
            .list_accounts(pb::ListAccountsRequest {})
            .await
            .map_err(|s| unreachable_bank(net, *bic, url, s.message()))?;
        clients.push(client);
    }
    Ok(clients)
}

fn unreachable_bank(net: &Network<'_>, bic: Bic, url: &str, cause: &str) -> String {
    format!(
        "bank {bic} does not answer at {url} ({cause}): start it with `corridor bank --dir {} --bic {bic} \
         --hub {} --listen {}`",
        net.dir.display(),
        net.hub_url,
        url.trim_start_matches("https://"),
    )
}

/// Every bank has a position at the hub in the run's currency that covers a payment,
/// and is not suspended.
async fn check_positions(net: &Network<'_>) -> Result<(), String> {
    let (dir, hub) = (net.dir.display(), net.hub_url);
    let unreachable = |cause: &str| {
        format!(
            "the hub does not answer at {hub} ({cause}): start it with `corridor hub --dir {dir} --listen {}`",
            hub.trim_start_matches("https://")
        )
    };
    let mut admin = admin_client(net.network, hub).await.map_err(|e| unreachable(&e))?;
    let listed =
        admin.list_positions(pb::ListPositionsRequest {}).await.map_err(|s| unreachable(s.message()))?;
    let positions = listed.into_inner().positions;
    let currency = net.currency;
    for (bic, _) in net.banks {
        let mine = |p: &&pb::Position| p.participant_bic == bic.as_str();
        if positions.iter().filter(mine).any(|p| p.suspended) {
            return Err(format!(
                "{bic} is suspended at the hub: resume it with `corridor admin --dir {dir} --hub {hub} resume \
                 --participant {bic}`"
            ));
        }
        let available =
            positions.iter().filter(mine).find(|p| p.currency == currency.code()).map_or(0, |p| p.available);
        if available < net.payment_minor_units {
            return Err(format!(
                "{bic} has {} available to pay with at the hub, less than one payment: fund it with \
                 `corridor admin --dir {dir} --hub {hub} fund --participant {bic} --currency {currency} --amount \
                 {FUNDING_SUGGESTED}`",
                Balance { minor_units: available, currency },
            ));
        }
    }
    Ok(())
}

/// The account each bank pays from: its first `LOADGEN-n` account in the run's
/// currency, not blocked, that holds at least a payment; else a new one, the next
/// `LOADGEN-n`, with `deposit` (minor units). Says which before opening any.
pub(super) async fn accounts(
    net: &Network<'_>,
    clients: &mut [BankServiceClient<Channel>],
    deposit_minor_units: i64,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<LoadgenAccount>, String> {
    let currency = net.currency;
    let mut chosen = Vec::new();
    for ((bic, _), client) in net.banks.iter().zip(clients.iter_mut()) {
        let listed = client.list_accounts(pb::ListAccountsRequest {}).await;
        let listed = listed.map_err(|s| format!("bank {bic}: cannot list its accounts: {}", s.message()))?;
        chosen.push(choose(*bic, &listed.into_inner().accounts, net, deposit_minor_units));
    }
    for account in &chosen {
        progress(&match account.opened {
            true => format!(
                "{}: opens {} with a deposit of {} {currency}",
                account.bank, account.account, account.balance
            ),
            false => format!(
                "{}: pays from {}, opened by an earlier run ({} {currency})",
                account.bank, account.account, account.balance
            ),
        });
    }
    for (account, client) in chosen.iter().zip(clients.iter_mut()).filter(|(a, _)| a.opened) {
        let request = pb::OpenAccountRequest {
            account_id: account.account.clone(),
            currency: currency.to_string(),
            name: "Load generator".into(),
            opening_deposit: account.balance.clone(),
        };
        client.open_account(request).await.map_err(|s| {
            format!("bank {}: cannot open {}: {}", account.bank, account.account, s.message())
        })?;
    }
    Ok(chosen)
}

fn choose(bic: Bic, accounts: &[pb::Account], net: &Network<'_>, deposit_minor_units: i64) -> LoadgenAccount {
    let number = |account: &pb::Account| account.id.strip_prefix(ACCOUNT_PREFIX)?.parse::<u64>().ok();
    let usable = accounts.iter().filter(|a| number(a).is_some()).find(|a| {
        let balance = a.balance.clone().unwrap_or_default();
        !a.blocked
            && balance.currency == net.currency.code()
            && balance.minor_units >= net.payment_minor_units
    });
    match usable {
        Some(account) => LoadgenAccount {
            bank: bic.to_string(),
            account: account.id.clone(),
            opened: false,
            balance: format_minor_units(
                account.balance.clone().unwrap_or_default().minor_units,
                net.currency,
            ),
        },
        None => LoadgenAccount {
            bank: bic.to_string(),
            account: format!("{ACCOUNT_PREFIX}{}", accounts.iter().filter_map(number).max().unwrap_or(0) + 1),
            opened: true,
            balance: format_minor_units(deposit_minor_units, net.currency),
        },
    }
}
