//! Static facts about the ten default coins (docs/DATA_SCOPE.md "Assets"): the symbol for
//! replayed bars that carry none, and realistic starting points for synthetic markets.
//!
//! ```
//! use apps::producer::coins::profile;
//!
//! assert_eq!(profile("bitcoin").symbol, "btc");
//! assert_eq!(profile("some-new-coin").symbol, "some-new-coin");
//! ```

/// What a synthetic market starts from for one coin.
#[derive(Clone, Debug, PartialEq)]
pub struct CoinProfile {
    /// CoinGecko id.
    pub id: String,
    /// Ticker, lower case.
    pub symbol: String,
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
        price,
        circulating_supply,
        max_supply,
        volatility,
    }
}

const KNOWN: [Known; 10] = [
    known("bitcoin", "btc", 110_000.0, 19.9e6, Some(21e6), 0.45),
    known("ethereum", "eth", 4_000.0, 120.7e6, None, 0.65),
    known("ripple", "xrp", 2.8, 59.5e9, Some(100e9), 0.85),
    known("binancecoin", "bnb", 850.0, 139e6, Some(200e6), 0.55),
    known("solana", "sol", 200.0, 540e6, None, 0.9),
    known("dogecoin", "doge", 0.22, 150e9, None, 1.0),
    known("tron", "trx", 0.34, 94.7e9, None, 0.6),
    known("cardano", "ada", 0.8, 36e9, Some(45e9), 0.9),
    known("hyperliquid", "hype", 45.0, 334e6, Some(1e9), 1.2),
    known("sui", "sui", 3.5, 3.5e9, Some(10e9), 1.1),
];

/// The profile of `id`; an unknown coin gets a generic one (price 1, its id as symbol).
pub fn profile(id: &str) -> CoinProfile {
    match KNOWN.iter().find(|known| known.id == id) {
        Some(known) => CoinProfile {
            id: id.to_string(),
            symbol: known.symbol.to_string(),
            price: known.price,
            circulating_supply: known.circulating_supply,
            max_supply: known.max_supply,
            volatility: known.volatility,
        },
        None => CoinProfile {
            id: id.to_string(),
            symbol: id.to_string(),
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
        for id in DEFAULT_COINS {
            let coin = profile(id);
            assert_ne!(coin.price, 1.0, "{id} has the generic profile");
            assert!(coin.price > 0.0 && coin.circulating_supply > 0.0);
        }
        assert_eq!(profile("ripple").symbol, "xrp");
    }
}
