//! Messages by topic: a handler per topic filter (paho's
//! `message_callback_add`), without heap.

use super::{Error, Hooks};
use crate::Publish;
use crate::topic::{TopicFilter, TopicName};

/// A message handler.
pub type Handler<'a> = &'a mut dyn FnMut(&Publish<'_>);

/// Hands each message to every handler whose filter matches its topic
/// ([`TopicFilter::matches`]); one no filter matches goes to the
/// catch-all, if set, or else to the mailbox of
/// [`Client::receive`](super::Client::receive). Up to `N` filters.
///
/// ```
/// use umqtt::robust::Router;
///
/// let (mut temps, mut rest) = (0, 0);
/// let mut on_temp = |_: &umqtt::Publish<'_>| temps += 1;
/// let mut on_rest = |_: &umqtt::Publish<'_>| rest += 1;
/// let mut router = Router::<2>::new().otherwise(&mut on_rest);
/// router.add("sensors/+/temp", &mut on_temp)?;
/// # Ok::<(), umqtt::robust::Error>(())
/// ```
pub struct Router<'a, const N: usize> {
    routes: heapless::Vec<(TopicFilter<'a>, Handler<'a>), N>,
    otherwise: Option<Handler<'a>>,
}

impl<const N: usize> Default for Router<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Router<'a, N> {
    /// A router with no filter and no catch-all.
    pub const fn new() -> Self {
        Self { routes: heapless::Vec::new(), otherwise: None }
    }

    /// Sends what no filter matches to `handler` instead of the mailbox.
    pub fn otherwise(mut self, handler: Handler<'a>) -> Self {
        self.otherwise = Some(handler);
        self
    }

    /// Adds a handler for `filter`: [`Error::InvalidArgument`] for an
    /// invalid filter, [`Error::BufferTooSmall`] when `N` are taken.
    pub fn add(&mut self, filter: &'a str, handler: Handler<'a>) -> Result<(), Error> {
        let filter = TopicFilter::new(filter).map_err(Error::InvalidArgument)?;
        self.routes.push((filter, handler)).map_err(|_| Error::BufferTooSmall { needed: N + 1 })
    }

    /// Routes `message`; `false` when nothing took it (no filter matched,
    /// no catch-all).
    pub fn route(&mut self, message: &Publish<'_>) -> bool {
        let mut taken = false;
        if let Ok(name) = TopicName::new(message.topic) {
            for (filter, handler) in self.routes.iter_mut() {
                if filter.matches(&name) {
                    handler(message);
                    taken = true;
                }
            }
        }
        if !taken {
            if let Some(handler) = self.otherwise.as_mut() {
                handler(message);
                taken = true;
            }
        }
        taken
    }
}

impl<const N: usize> Hooks for Router<'_, N> {
    fn on_message(&mut self, message: &Publish<'_>) -> bool {
        self.route(message)
    }
}
