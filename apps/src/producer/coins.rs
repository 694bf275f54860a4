//! Static facts about the ten default coins (docs/DATA_SCOPE.md "Assets"): the symbol for
//! replayed bars that carry none, the name and rank of their reference rows when no CoinGecko
//! item gives them (synthetic ticks, replayed bars), and realistic starting points for synthetic
//! markets.
//!
//! ```
//! use apps::producer::coins::profile;
//!
//! assert_eq!(profile("bitcoin").symbol, "btc");
//! assert_eq!((profile("ripple").name.as_str(), profile("ripple").market_cap_rank), ("XRP", Some(3)));
//! let unknown = profile("some-new-coin");
//! assert_eq!((unknown.symbol.as_str(), unknown.name.as_str()), ("some-new-coin", "some-new-coin"));
//! assert_eq!(unknown.market_cap_rank, None);
//! ```

/// What a synthetic market starts from for one coin.
#[derive(Clone, Debug, PartialEq)]
pub struct CoinProfile {
    /// CoinGecko id.
    pub id: String,
    /// Ticker, lower case.
    pub symbol: String,
    /// Display name, as CoinGecko gives it.
    pub name: String,
    /// CoinGecko market-cap rank (mid-2025, stablecoins included); `None` when not known.
    pub market_cap_rank: Option<u32>,
    /// Starting price in USD (mid-2025 order of magnitude).
    pub price: f64,
    /// Coins in circulation.
    pub circulating_supply: f64,
    /// Hard cap, if any.
    pub max_supply: Option<f64>,
    /// Annualised volatility in the calm regime.
    pub volatility: f64,
}

/// A profile written as a constant.
struct Known {
    id: &'static str,
    symbol: &'static str,
    name: &'static str,
    rank: Option<u32>,
    price: f64,
    circulating_supply: f64,
    max_supply: Option<f64>,
    volatility: f64,
}

const fn known(
    id: &'static str,
    symbol: &'static str,
    price: f64,
    circulating_supply: f64,
    max_supply: Option<f64>,
    volatility: f64,
) -> Known {
    Known {
        id,
        symbol,
        name: id,
        rank: None,
        price,
        circulating_supply,
        max_supply,
        volatility,
    }
}

impl Known {
    /// With its display name and market-cap rank.
    const fn named(self, name: &'static str, rank: u32) -> Self {
        Self {
            name,
            rank: Some(rank),
            ..self
        }
    }
}

/// Ranks are CoinGecko's of mid-2025 with the stablecoins (USDT 4th, USDC 7th, …) counted, so
/// they can be compared with live rows.
const KNOWN: [Known; 10] = [
    known("bitcoin", "btc", 110_000.0, 19.9e6, Some(21e6), 0.45).named("Bitcoin", 1),
    known("ethereum", "eth", 4_000.0, 120.7e6, None, 0.65).named("Ethereum", 2),
    known("ripple", "xrp", 2.8, 59.5e9, Some(100e9), 0.85).named("XRP", 3),
    known("binancecoin", "bnb", 850.0, 139e6, Some(200e6), 0.55).named("BNB", 5),
    known("solana", "sol", 200.0, 540e6, None, 0.9).named("Solana", 6),
    known("dogecoin", "doge", 0.22, 150e9, None, 1.0).named("Dogecoin", 8),
    known("tron", "trx", 0.34, 94.7e9, None, 0.6).named("TRON", 9),
    known("cardano", "ada", 0.8, 36e9, Some(45e9), 0.9).named("Cardano", 10),
    known("hyperliquid", "hype", 45.0, 334e6, Some(1e9), 1.2).named("Hyperliquid", 14),
    known("sui", "sui", 3.5, 3.5e9, Some(10e9), 1.1).named("Sui", 17),
];

/// The profile of `id`; an unknown coin gets a generic one (price 1, its id as symbol and
/// name, no rank).
pub fn profile(id: &str) -> CoinProfile {
    match KNOWN.iter().find(|known| known.id == id) {
        Some(known) => CoinProfile {
            id: id.to_string(),
            symbol: known.symbol.to_string(),
            name: known.name.to_string(),
            market_cap_rank: known.rank,
            price: known.price,
            circulating_supply: known.circulating_supply,
            max_supply: known.max_supply,
            volatility: known.volatility,
        },
        None => CoinProfile {
            id: id.to_string(),
            symbol: id.to_string(),
            name: id.to_string(),
            market_cap_rank: None,
            price: 1.0,
            circulating_supply: 1e9,
            max_supply: None,
            volatility: 1.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::DEFAULT_COINS;

    #[test]
    fn every_default_coin_has_its_own_profile() {
        let mut ranks = Vec::new();
        for id in DEFAULT_COINS {
            let coin = profile(id);
            assert_ne!(coin.price, 1.0, "{id} has the generic profile");
            assert!(coin.price > 0.0 && coin.circulating_supply > 0.0);
            assert_ne!(coin.name, id, "{id} has a name of its own");
            ranks.extend(coin.market_cap_rank);
        }
        assert_eq!(profile("ripple").symbol, "xrp");
        // DEFAULT_COINS is in market-cap order: the ranks rise, with gaps for the stablecoins.
        assert_eq!(ranks.len(), DEFAULT_COINS.len());
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }
}
