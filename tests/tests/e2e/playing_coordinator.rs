//! What the tests that play the coordinator themselves share.

use std::time::Duration;

use fedseg_common::proto::participant_message::Body as Up;
use fedseg_coordinator::service::Event;
use tokio::sync::mpsc::UnboundedReceiver;

/// The next message from a participant (Hello aside), within 30 s.
pub(crate) async fn next_message(events: &mut UnboundedReceiver<Event>) -> (String, Up) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("a participant answers")
            .expect("the server runs");
        if let Event::Message(id, message) = event
            && let Some(body) = message.body
            && !matches!(body, Up::Hello(_))
        {
            return (id, body);
        }
    }
}
