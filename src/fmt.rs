//! One small logging facade over the optional `defmt` and `log` features.
//!
//! Both features may be enabled at once; with neither the macros compile to
//! nothing and their arguments are not evaluated.

#[allow(unused_macros)]
macro_rules! log_debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
        #[cfg(feature = "log")]
        ::log::debug!($($arg)*);
    }};
}

#[allow(unused_macros)]
macro_rules! log_warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(feature = "log")]
        ::log::warn!($($arg)*);
    }};
}

#[allow(unused_imports)]
pub(crate) use {log_debug, log_warn};
